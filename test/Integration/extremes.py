# Very large (1e30) and very small (1e-30) values in W, M and G. Squares
# of such rows overflow or underflow in f32 (1e60, 1e-60): the row
# statistics must not (the reference is f64). Outputs must be finite, at
# tolerance, and rows of D must have norm `scale`. With the default eps the
# 1e-30 rows fall under eps; with eps = 0 they are normalized like any row.
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t

import numpy as np

import harness
from harness import NORA_CHAIN, RMNP_CHAIN, Case, chain_data, nora_attrs, \
    rmnp_attrs

WGRAD = ("wgrad",)
M, N, T = 40, 33, 8


def extreme_data(seed, big, from_wgrad):
    """Rows scaled by `big` (1e30 or 1e-30) in g, m, w and combinations."""
    d = chain_data(seed, M, N, T if from_wgrad else None, lr=0.1, wd=0.1)
    b = np.float32(big)
    if from_wgrad:
        d["dy"][:, 0:5] *= b           # g rows 0-4 (and 15-19 below)
        d["dy"][:, 15:20] *= b
    else:
        d["g"][0:5] *= b
        d["g"][15:20] *= b
        d["g"][23, 7] = b              # one element of a row
    d["m"][5:10] *= b
    d["m"][15:20] *= b
    d["m"][24, 2] = -b
    d["w"][10:15] *= b
    d["w"][15:20] *= b
    d["w"][20:23, 3] = b               # one element of a row
    # A small-W row with large G and M, and the other way round.
    d["w"][30] /= b
    d["m"][31] *= b
    d["w"][31] /= b
    return d


def cases():
    out = []
    for tag, big in (("large", 1e30), ("tiny", 1e-30)):
        for src, wg in (("wgrad", True), ("g", False)):
            d = extreme_data(700 + (big > 1) * 10 + wg, big, wg)
            ops = (WGRAD if wg else ()) + NORA_CHAIN
            rops = (WGRAD if wg else ()) + RMNP_CHAIN
            name = "%s_%s" % (tag, src)
            out.append(Case("nora_" + name, ops, ["w1", "m1"], d,
                            attrs=nora_attrs(M, N)))
            out.append(Case("nora_all_" + name, ops,
                            ["u", "v", "d", "w1", "m1"], d,
                            attrs=nora_attrs(M, N)))
            out.append(Case("nora_eps0_" + name, ops, ["v", "d", "w1"], d,
                            attrs=nora_attrs(M, N, eps=0.0)))
            out.append(Case("rmnp_" + name, rops, ["d", "w1", "m1"], d,
                            attrs=rmnp_attrs(M, N)))
            out.append(Case("rmnp_eps0_" + name, rops, ["d", "w1"], d,
                            attrs=rmnp_attrs(M, N, eps=0.0)))
            step_ops = (WGRAD if wg else ()) + ("nora_step",)
            out.append(Case("nora_step_" + name, step_ops, ["w1", "m1"], d))
            rstep_ops = (WGRAD if wg else ()) + ("rmnp_step",)
            out.append(Case("rmnp_step_" + name, rstep_ops, ["w1", "m1"], d))

    # Both magnitudes in one weight.
    d = extreme_data(720, 1e30, False)
    tiny = extreme_data(721, 1e-30, False)
    for k in ("g", "m", "w"):
        d[k][25:] = tiny[k][25:]
    out.append(Case("nora_mixed", NORA_CHAIN, ["d", "w1", "m1"], d,
                    attrs=nora_attrs(M, N)))
    out.append(Case("nora_mixed_eps0", NORA_CHAIN, ["d", "w1", "m1"], d,
                    attrs=nora_attrs(M, N, eps=0.0)))
    # orth_project and row_normalize alone on 1e30 / 1e-30 rows.
    out.append(Case("project_mixed_eps0", ("orth_project", "row_normalize"),
                    ["v", "d"], {"u": d["g"], "w": d["w"]},
                    attrs={"proj_eps": 0.0, "norm_eps": 0.0, "scale": 2.0}))
    return out


if __name__ == "__main__":
    harness.main(cases)
