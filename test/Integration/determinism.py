# The same inputs give bitwise the same outputs on every run: each case runs
# the same nora-run command twice and compares the bytes of the output files
# (besides the usual comparison with the reference).
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t

import harness
from harness import NORA_CHAIN, RMNP_CHAIN, Case, chain_data, nora_attrs, \
    rmnp_attrs

WGRAD = ("wgrad",)


def cases():
    out = []
    M, N, T = 300, 257, 64
    d = chain_data(801, M, N, T, acc=True, lr=0.1, wd=0.1)
    out.append(Case("det_nora_chain_bf16", WGRAD + NORA_CHAIN, ["w1", "m1"],
                    d, act="bf16", attrs=nora_attrs(M, N), determinism=True))
    out.append(Case("det_nora_chain_all", WGRAD + NORA_CHAIN,
                    ["g", "v", "d", "w1", "m1"], d, attrs=nora_attrs(M, N),
                    determinism=True))
    out.append(Case("det_rmnp_chain", WGRAD + RMNP_CHAIN, ["w1", "m1"], d,
                    attrs=rmnp_attrs(M, N), determinism=True))
    out.append(Case("det_nora_step", ("wgrad", "nora_step"), ["w1", "m1"], d,
                    act="bf16", act_file="bits", determinism=True))
    dt = chain_data(802, 257, 300, lr=0.1, wd=0.1)
    out.append(Case("det_rmnp_step", ["rmnp_step"], ["w1", "m1"], dt,
                    determinism=True))
    return out


if __name__ == "__main__":
    harness.main(cases)
