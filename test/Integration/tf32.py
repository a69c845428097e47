# f32 steps at the tile edges of the tf32 mainloop (allow-tf32: mma.sync
# m16n8k8 on 128 x 128 tiles, 8-token stages in a 4-stage ring): partial
# row blocks and column tiles, a token count that is no multiple of 8, one
# token, exact cover, and more column tiles than a small grid has CTAs. On
# the CPU (this RUN line) they check the exact fused lowering; gpusim.test
# runs them on the tf32 kernel (harness --allow-tf32: the reference rounds
# dy and x to tf32).
#
# RUN: %python %s %t

import harness
from harness import NORA_CHAIN, Case, chain_data, nora_attrs

WGRAD = ("wgrad",)


def cases():
    out = []

    def step(name, kind, M, N, T, seed, **data_args):
        d = chain_data(seed, M, N, T, **data_args)
        out.append(Case(name, ("wgrad", kind), ["w1", "m1"], d, act="f32"))

    # 3 x 2 tiles of 128, the last ones partial; 20 tokens = 2.5 stages.
    step("nora_f32_264x200_T20", "nora_step", 264, 200, 20, 501)
    # One tile exactly, one token.
    step("rmnp_f32_128x128_T1", "rmnp_step", 128, 128, 1, 502)
    # 5 column tiles in one row block, 37 tokens (the ring wraps), with an
    # accumulator, a gradient scale and Nesterov: two phases on 3 CTAs.
    M, N, T = 132, 516, 37
    d = chain_data(503, M, N, T, acc=True, lr=0.05, wd=0.01)
    attrs = nora_attrs(M, N)
    attrs["wgrad_scale"] = 0.5
    out.append(Case("nora_chain_f32_132x516_acc", WGRAD + NORA_CHAIN,
                    ["w1", "m1"], d, act="f32", attrs=attrs))
    return out


if __name__ == "__main__":
    harness.main(cases)
