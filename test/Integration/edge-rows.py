# Special rows: zero rows of W (w^ = 0, so V = U), of U and of V (D = 0), of
# G and M together (D = 0, W' = W (1 - lr wd)), eps = 0 with zero rows (no
# NaN), and rows where U is almost parallel to W (|cosine| >= 0.999999):
# there the D rows must still have norm `scale` within 1e-4 relative, which
# the one-pass identity ||V||^2 = ||U||^2 - <U,W>^2/||W||^2 in f32 misses.
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t

import numpy as np

import harness
from harness import NORA_CHAIN, RMNP_CHAIN, Case, chain_data, near_parallel, \
    nora_attrs, randn, rmnp_attrs, rng

WGRAD = ("wgrad",)
PROJECT = ("orth_project", "row_normalize")


def cases():
    out = []

    # Zero rows of W: V = U there.
    M, N = 50, 37
    d = chain_data(601, M, N, lr=0.1, wd=0.1)
    d["w"][[0, 7, 49]] = 0
    out.append(Case("zero_w_rows", NORA_CHAIN, ["v", "d", "w1", "m1"], d,
                    attrs=nora_attrs(M, N)))
    dw = chain_data(602, M, N, 9, lr=0.1, wd=0.1)
    dw["w"][[0, 7, 49]] = 0
    out.append(Case("zero_w_rows_wgrad", WGRAD + NORA_CHAIN, ["w1", "m1"],
                    dw, attrs=nora_attrs(M, N)))
    out.append(Case("zero_w_rows_step", ["wgrad", "nora_step"],
                    ["w1", "m1"], dw))
    dz = chain_data(603, M, N, lr=0.1, wd=0.1)
    dz["w"][:] = 0
    out.append(Case("zero_w_all", NORA_CHAIN, ["v", "d", "w1"], dz,
                    attrs=nora_attrs(M, N)))

    # Zero rows of U (V = 0, D = 0), one of them with a zero W row too.
    gen = rng(604)
    u, w = randn(gen, (M, N)), randn(gen, (M, N))
    u[[1, 20, 33]] = 0
    w[[20, 40]] = 0
    out.append(Case("zero_u_rows", PROJECT, ["v", "d"], {"u": u, "w": w},
                    attrs={"scale": 1.5}))

    # Zero rows of V.
    v = randn(gen, (M, N))
    v[[0, 3, M - 1]] = 0
    out.append(Case("zero_v_rows", ["row_normalize"], ["d"], {"v": v},
                    attrs={"scale": 1.7}))

    # Zero rows of G (dy columns) and M: U = V = D = 0 there.
    dg = chain_data(605, M, N, 11, lr=0.2, wd=0.1)
    dg["dy"][:, [2, 9]] = 0
    dg["m"][[2, 9]] = 0
    dg["w"][9] = 0
    out.append(Case("zero_gm_rows", WGRAD + NORA_CHAIN, ["w1", "m1"], dg,
                    attrs=nora_attrs(M, N)))
    out.append(Case("zero_gm_rows_all", WGRAD + NORA_CHAIN,
                    ["g", "u", "v", "d", "w1", "m1"], dg,
                    attrs=nora_attrs(M, N)))
    out.append(Case("zero_gm_rows_rmnp", WGRAD + RMNP_CHAIN,
                    ["d", "w1", "m1"], dg, attrs=rmnp_attrs(M, N)))
    out.append(Case("zero_gm_rows_rmnp_step", ["wgrad", "rmnp_step"],
                    ["w1", "m1"], dg))

    # eps = 0 (allowed: eps must only be >= 0) with zero rows: w^ = 0 and
    # D = 0 there, never NaN.
    de = chain_data(606, M, N, lr=0.1, wd=0.1)
    de["w"][[4, 5]] = 0
    de["g"][[5, 6]] = 0
    de["m"][[5, 6]] = 0
    out.append(Case("eps0_zero_rows", NORA_CHAIN, ["v", "d", "w1", "m1"], de,
                    attrs=nora_attrs(M, N, eps=0.0)))
    out.append(Case("eps0_zero_rows_rmnp", RMNP_CHAIN, ["d", "w1"], de,
                    attrs=rmnp_attrs(M, N, eps=0.0)))
    out.append(Case("eps0_zero_rows_step", ["nora_step"], ["w1", "m1"], de,
                    attrs={"step": {"eps": 0.0}}))

    # Almost parallel rows: u_i = a_i w_i + delta_i, delta_i perpendicular,
    # ||delta_i|| = (1.0e-3 .. 1.4e-3) ||a_i w_i||, a_i of both signs.
    M, N = 97, 61
    gen = rng(607)
    w = randn(gen, (M, N))
    u = near_parallel(gen, w)
    rows = np.arange(M)
    out.append(Case("near_parallel_project", PROJECT, ["v", "d"],
                    {"u": u, "w": w},
                    attrs={"scale": harness.ref.default_nora_scale(M, N)},
                    parallel_rows=rows))
    # Half the rows almost parallel, W rows of very different sizes.
    w2 = w * np.exp2(gen.integers(-20, 20, size=(M, 1))).astype(np.float32)
    u2 = randn(gen, (M, N))
    u2[::2] = near_parallel(gen, w2[::2])
    out.append(Case("near_parallel_half_rows", PROJECT, ["d", "v"],
                    {"u": u2, "w": w2}, parallel_rows=rows[::2]))

    # In the chain: with G = M = u and beta = mu = 0.5, M' = U = u exactly,
    # so U is almost parallel to W inside the chain.
    M, N = 64, 96
    gen = rng(608)
    w = randn(gen, (M, N))
    u = near_parallel(gen, w)
    dc = {"g": u, "m": u.copy(), "w": w, "lr": 0.5, "wd": 0.1}
    out.append(Case("near_parallel_chain", NORA_CHAIN, ["d", "w1", "m1"], dc,
                    attrs=nora_attrs(M, N, beta=0.5, nesterov=0.5),
                    parallel_rows=np.arange(M)))
    out.append(Case("near_parallel_chain_wm", NORA_CHAIN, ["w1", "m1"], dc,
                    attrs=nora_attrs(M, N, beta=0.5, nesterov=0.5),
                    parallel_rows=np.arange(M)))

    # Through wgrad (the fused path): T = 1 and dy = +-2^k make g = dy^T x
    # exact and every row of g parallel to x; W rows almost parallel to it.
    M, N = 48, 80
    gen = rng(609)
    dy = (gen.choice([-1.0, 1.0], size=(1, M))
          * np.exp2(gen.integers(-2, 3, size=(1, M)))).astype(np.float32)
    x = randn(gen, (1, N))
    g = (dy.astype(np.float64).T @ x.astype(np.float64)).astype(np.float32)
    w = near_parallel(gen, g, scale=(0.2, 3.0))
    df = {"dy": dy, "x": x, "m": g, "w": w, "lr": 0.5, "wd": 0.1}
    out.append(Case("near_parallel_wgrad", WGRAD + NORA_CHAIN,
                    ["w1", "m1"], df,
                    attrs=nora_attrs(M, N, beta=0.5, nesterov=0.5),
                    parallel_rows=np.arange(M)))
    out.append(Case("near_parallel_wgrad_d", WGRAD + NORA_CHAIN,
                    ["d", "w1", "m1"], df,
                    attrs=nora_attrs(M, N, beta=0.5, nesterov=0.5),
                    parallel_rows=np.arange(M)))
    out.append(Case("near_parallel_wgrad_step", ["wgrad", "nora_step"],
                    ["w1", "m1"], df, attrs={"step": {"beta": 0.5}},
                    parallel_rows=np.arange(M)))
    return out


if __name__ == "__main__":
    harness.main(cases)
