# The full primitive chains (f32): wgrad -> momentum -> orth_project ->
# row_normalize -> apply_update (Nora) and the RMNP chain without projection,
# Nesterov on and off, returning only (w_new, m_new) (fusable) or the
# intermediate values too, so that every stage is checked inside a chain.
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t

import harness
from harness import NORA_CHAIN, RMNP_CHAIN, Case, chain_data, nora_attrs, \
    rmnp_attrs

WGRAD = ("wgrad",)


def cases():
    out = []
    M, N, T = 96, 80, 64
    d = chain_data(201, M, N, T, lr=0.1, wd=0.1)

    # Nora, Nesterov on (mu = beta), the official defaults.
    out.append(Case("nora_chain", WGRAD + NORA_CHAIN, ["w1", "m1"], d,
                    attrs=nora_attrs(M, N)))
    out.append(Case("nora_chain_all", WGRAD + NORA_CHAIN,
                    ["g", "m1", "u", "v", "d", "w1"], d,
                    attrs=nora_attrs(M, N)))
    out.append(Case("nora_chain_d", WGRAD + NORA_CHAIN, ["d", "w1", "m1"],
                    d, attrs=nora_attrs(M, N)))
    # Nesterov off.
    out.append(Case("nora_chain_plain", WGRAD + NORA_CHAIN, ["w1", "m1"], d,
                    attrs=nora_attrs(M, N, nesterov=None)))
    out.append(Case("nora_chain_plain_all", WGRAD + NORA_CHAIN,
                    ["g", "m1", "v", "d", "w1"], d,
                    attrs=nora_attrs(M, N, nesterov=None)))
    # Other attribute values: beta 0.9, mu 0.8, eps 1e-6, scale 1.7; acc
    # with a wgrad scale.
    da = chain_data(202, M, N, T, acc=True, lr=0.05, wd=0.2)
    attrs = nora_attrs(M, N, beta=0.9, nesterov=0.8, eps=1e-6, scale=1.7)
    attrs["wgrad_scale"] = 0.25
    out.append(Case("nora_chain_acc_attrs", WGRAD + NORA_CHAIN,
                    ["w1", "m1"], da, attrs=attrs))
    out.append(Case("nora_chain_acc_attrs_all", WGRAD + NORA_CHAIN,
                    ["g", "u", "v", "d", "w1", "m1"], da, attrs=attrs))
    # Wide weight (M < N: scale 1) and tall weight (scale sqrt(M/N)).
    dw = chain_data(203, 48, 144, 32, lr=0.2, wd=0.05)
    out.append(Case("nora_chain_wide", WGRAD + NORA_CHAIN, ["w1", "m1"], dw,
                    attrs=nora_attrs(48, 144)))
    dt = chain_data(204, 160, 40, 16, lr=0.2, wd=0.05)
    out.append(Case("nora_chain_tall", WGRAD + NORA_CHAIN, ["d", "w1", "m1"],
                    dt, attrs=nora_attrs(160, 40)))
    # The chain without wgrad (g given).
    dg = chain_data(205, M, N, lr=0.1, wd=0.1)
    out.append(Case("nora_chain_from_g", NORA_CHAIN, ["w1", "m1", "d"], dg,
                    attrs=nora_attrs(M, N)))

    # RMNP: no projection, eps 1e-12, scale 0.2 * sqrt(max(M, N)).
    out.append(Case("rmnp_chain", WGRAD + RMNP_CHAIN, ["w1", "m1"], d,
                    attrs=rmnp_attrs(M, N)))
    out.append(Case("rmnp_chain_all", WGRAD + RMNP_CHAIN,
                    ["g", "m1", "u", "d", "w1"], d, attrs=rmnp_attrs(M, N)))
    out.append(Case("rmnp_chain_plain", WGRAD + RMNP_CHAIN,
                    ["d", "w1", "m1"], d,
                    attrs=rmnp_attrs(M, N, nesterov=None)))
    out.append(Case("rmnp_chain_from_g", RMNP_CHAIN, ["w1", "m1"], dg,
                    attrs=rmnp_attrs(M, N, beta=0.9, nesterov=0.9)))
    return out


if __name__ == "__main__":
    harness.main(cases)
