# Every primitive nora op on its own (f32), against the f64 reference.
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t

import numpy as np

import harness
from harness import Case, randn, rng


def cases():
    out = []
    M, N, T = 96, 80, 64

    # nora.wgrad: g = scale * dy^T x (+ acc).
    gen = rng(101)
    dy, x, acc = randn(gen, (T, M)), randn(gen, (T, N)), randn(gen, (M, N))
    out.append(Case("wgrad_f32", ["wgrad"], ["g"], {"dy": dy, "x": x}))
    out.append(Case("wgrad_scale2", ["wgrad"], ["g"], {"dy": dy, "x": x},
                    attrs={"wgrad_scale": 2.0}))
    out.append(Case("wgrad_acc", ["wgrad"], ["g"],
                    {"dy": dy, "x": x, "acc": acc}))
    out.append(Case("wgrad_acc_scale", ["wgrad"], ["g"],
                    {"dy": dy, "x": x, "acc": acc},
                    attrs={"wgrad_scale": 0.5}))
    out.append(Case("wgrad_acc_scale_odd", ["wgrad"], ["g"],
                    {"dy": randn(gen, (7, 33)), "x": randn(gen, (7, 19)),
                     "acc": randn(gen, (33, 19), 3.0)},
                    attrs={"wgrad_scale": -0.125}))

    # nora.momentum: with and without Nesterov, beta = 0.
    gen = rng(102)
    m, g = randn(gen, (M, N)), randn(gen, (M, N))
    out.append(Case("momentum_nesterov", ["momentum"], ["m1", "u"],
                    {"m": m, "g": g},
                    attrs={"beta": 0.95, "nesterov": 0.95}))
    out.append(Case("momentum_plain", ["momentum"], ["m1", "u"],
                    {"m": m, "g": g}, attrs={"beta": 0.9}))
    out.append(Case("momentum_beta0_mu", ["momentum"], ["u", "m1"],
                    {"m": m, "g": g}, attrs={"beta": 0.0, "nesterov": 0.5}))
    out.append(Case("momentum_mu_differs", ["momentum"], ["m1", "u"],
                    {"m": m, "g": g}, attrs={"beta": 0.8, "nesterov": 0.99}))

    # nora.orth_project: default eps, and an eps that clamps small rows.
    gen = rng(103)
    u, w = randn(gen, (M, N)), randn(gen, (M, N))
    out.append(Case("orth_project", ["orth_project"], ["v"],
                    {"u": u, "w": w}))
    w_small = w.copy()
    w_small[::3] *= np.float32(1e-3)       # ||w_i|| ~ 9e-3 < eps = 0.05
    out.append(Case("orth_project_eps_clamp", ["orth_project"], ["v"],
                    {"u": u, "w": w_small}, attrs={"proj_eps": 0.05}))

    # nora.row_normalize: default eps, scale; an eps that clamps small rows.
    gen = rng(104)
    v = randn(gen, (M, N))
    out.append(Case("row_normalize", ["row_normalize"], ["d"], {"v": v}))
    out.append(Case("row_normalize_scale", ["row_normalize"], ["d"],
                    {"v": v}, attrs={"scale": 2.5}))
    v_small = v.copy()
    v_small[1::4] *= np.float32(1e-2)      # ||v_i|| ~ 0.09 < eps = 0.5
    out.append(Case("row_normalize_eps_clamp", ["row_normalize"], ["d"],
                    {"v": v_small}, attrs={"norm_eps": 0.5, "scale": 1.5}))

    # nora.apply_update: runtime lr and wd (wd = 0, lr = 0 too).
    gen = rng(105)
    w, d = randn(gen, (M, N)), randn(gen, (M, N), 0.1)
    out.append(Case("apply_update", ["apply_update"], ["w1"],
                    {"w": w, "d": d, "lr": 0.05, "wd": 0.1}))
    out.append(Case("apply_update_wd0", ["apply_update"], ["w1"],
                    {"w": w, "d": d, "lr": 0.3, "wd": 0.0}))
    out.append(Case("apply_update_lr0", ["apply_update"], ["w1"],
                    {"w": w, "d": d, "lr": 0.0, "wd": 0.1}))
    out.append(Case("apply_update_big_lr_wd", ["apply_update"], ["w1"],
                    {"w": w, "d": d, "lr": 1.5, "wd": 0.4}))
    return out


if __name__ == "__main__":
    harness.main(cases)
