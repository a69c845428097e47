# The composite steps nora.nora_step and nora.rmnp_step: official defaults
# (beta = mu = 0.95, eps 1e-10 / 1e-12, scale max(1, sqrt(M/N)) /
# 0.2 * sqrt(max(M, N))) and explicit attributes, on a given g and after
# nora.wgrad (the fusable form), and agreement with the primitive chains.
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t

import harness
from harness import NORA_CHAIN, RMNP_CHAIN, Case, chain_data, nora_attrs, \
    rmnp_attrs


def cases():
    out = []
    M, N, T = 96, 80, 64
    dg = chain_data(501, M, N, lr=0.1, wd=0.1)
    dw = chain_data(502, M, N, T, acc=True, lr=0.05, wd=0.1)

    out.append(Case("nora_step_default", ["nora_step"], ["w1", "m1"], dg))
    out.append(Case("nora_step_attrs", ["nora_step"], ["w1", "m1"], dg,
                    attrs={"step": {"beta": 0.9, "nesterov": False,
                                    "eps": 1e-8, "scale": 2.0}}))
    out.append(Case("nora_step_nesterov_scale", ["nora_step"], ["m1", "w1"],
                    dg, attrs={"step": {"nesterov": True, "scale": 0.5}}))
    out.append(Case("rmnp_step_default", ["rmnp_step"], ["w1", "m1"], dg))
    out.append(Case("rmnp_step_attrs", ["rmnp_step"], ["w1", "m1"], dg,
                    attrs={"step": {"beta": 0.9, "nesterov": False,
                                    "scale": 1.0}}))
    out.append(Case("rmnp_step_eps", ["rmnp_step"], ["w1", "m1"], dg,
                    attrs={"step": {"eps": 1e-6, "beta": 0.5}}))

    # After wgrad (with acc and a wgrad scale): the fusable form.
    out.append(Case("wgrad_nora_step", ["wgrad", "nora_step"], ["w1", "m1"],
                    dw, attrs={"wgrad_scale": 0.5}))
    out.append(Case("wgrad_rmnp_step", ["wgrad", "rmnp_step"], ["w1", "m1"],
                    dw, attrs={"wgrad_scale": 0.5}))
    out.append(Case("wgrad_nora_step_g", ["wgrad", "nora_step"],
                    ["g", "w1", "m1"], dw))

    # Tall and wide weights: the default scales differ from 1.
    for i, (M2, N2) in enumerate([(200, 50), (50, 200)]):
        d2 = chain_data(510 + i, M2, N2, 16, lr=0.1, wd=0.1)
        out.append(Case("wgrad_nora_step_%dx%d" % (M2, N2),
                        ["wgrad", "nora_step"], ["w1", "m1"], d2))
        out.append(Case("wgrad_rmnp_step_%dx%d" % (M2, N2),
                        ["wgrad", "rmnp_step"], ["w1", "m1"], d2))

    # The steps give the same values as their primitive chains.
    out.append(Case("nora_chain_like_step", NORA_CHAIN, ["w1", "m1"], dg,
                    attrs=nora_attrs(M, N)))
    out.append(Case("rmnp_chain_like_step", RMNP_CHAIN, ["w1", "m1"], dg,
                    attrs=rmnp_attrs(M, N)))
    return out


if __name__ == "__main__":
    harness.main(cases)
