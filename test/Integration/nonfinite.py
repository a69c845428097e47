# Non-finite gradients (`--nonfinite`, nora.skip_nonfinite, the `nonfinite`
# attribute): a NaN or Inf in one row of G, in every row, in dy (one row of
# G) or in x (every row of G), with skip_row and skip_step, fused and op by
# op. Kept rows of W and M must be bit for bit the inputs; the other rows must
# match the f64 reference; the printed count must be the number of rows
# (skip_row) or steps (skip_step) skipped. Also the IR forms: a composite
# step with the attribute returning its i64 count, and an explicit
# nora.skip_nonfinite after a primitive chain.
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t
# RUN: %python %s %t --rows-per-panel=6
#
# With --gpusim [--mainloop=M] [--max-ctas=N,..] [--row-exchange=E] the same
# cases run as the GPU kernels (tools/gpusim; gpusim.test): the guarded fused
# kernel and its finish kernel, on the f32 shape (simt) and on a bf16 one with
# partial tiles (tensor cores), on the full grid and on smaller ones (two
# phases; with the cluster exchange, whole clusters).

import os
import subprocess
import sys

import numpy as np

from nora import reference as ref

T, M, N = 9, 23, 17
LR, WD = 0.05, 0.1


def step_ir(attrs="", extra_result=False):
    f = "tensor<%dx%dxf32>"
    g, dy, x = f % (M, N), f % (T, M), f % (T, N)
    results = "%s, %s" % (g, g) + (", i64" if extra_result else "")
    names = "%wn, %mn" + (", %s" % "%skipped" if extra_result else "")
    arrow = " -> i64" if extra_result else ""
    return """
func.func @step(%dy: {dy}, %x: {x}, %w: {g}, %m: {g}, %lr: f32, %wd: f32)
    -> ({results}) {{
  %g = nora.wgrad %dy, %x : {dy}, {x} -> {g}
  {names} = nora.nora_step %g, %w, %m, %lr, %wd {attrs}
      : {g}, {g}, {g}{arrow}
  return {names} : {results}
}}
""".format(dy=dy, x=x, g=g, results=results, names=names, attrs=attrs,
           arrow=arrow)


def chain_ir(mode):
    g = "tensor<%dx%dxf32>" % (M, N)
    return """
func.func @step(%g: {g}, %w: {g}, %m: {g}, %lr: f32, %wd: f32)
    -> ({g}, {g}, i64) {{
  %mn, %u = nora.momentum %m, %g {{beta = 0.9 : f32}} : {g}, {g}
  %d = nora.row_normalize %u {{scale = 2.0 : f32}} : {g}
  %wn = nora.apply_update %w, %d, %lr, %wd : {g}, {g}
  %w1, %m1, %s = nora.skip_nonfinite %g, %w, %m, %wn, %mn
      {{mode = "{mode}"}} : {g}, {g}, {g}
  return %w1, %m1, %s : {g}, {g}, i64
}}
""".format(g=g, mode=mode)


def run(directory, name, ir, inputs, n_out, extra):
    path = os.path.join(directory, name + ".mlir")
    with open(path, "w") as f:
        f.write(ir)
    args = []
    for i, value in enumerate(inputs):
        if isinstance(value, np.ndarray):
            p = os.path.join(directory, "%s.in%d.npy" % (name, i))
            np.save(p, value)
            args.append("--input=@" + p)
        else:
            args.append("--input=%r" % value)
    outs = [os.path.join(directory, "%s.out%d.npy" % (name, i))
            for i in range(n_out)]
    for o in outs:
        if os.path.exists(o):
            os.remove(o)
    cmd = (["nora-run", path, "--entry=step"] + args +
           ["--output=@" + o for o in outs] + extra)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if res.returncode != 0:
        sys.exit("FAIL %s: %s\n%s" % (name, " ".join(cmd), res.stderr))
    return [np.load(o) for o in outs], res.stdout


def same_bits(a, b):
    return np.array_equal(a.view(np.uint32), b.view(np.uint32))


def check_step(name, w, m, w1, m1, g, bad_rows, mode, failures):
    """Kept rows bit for bit; updated rows against the reference."""
    skip_all = mode == "skip_step" and len(bad_rows) > 0
    w_ref, m_ref = ref.nora_step(g, w, m, ref.f32(LR), ref.f32(WD))
    for i in range(M):
        kept = skip_all or i in bad_rows
        if kept:
            if not (same_bits(w1[i], w[i]) and same_bits(m1[i], m[i])):
                failures.append("%s: row %d must keep W and M bit for bit"
                                % (name, i))
            continue
        for what, out, want in (("W", w1[i], w_ref[i]), ("M", m1[i], m_ref[i])):
            err = np.abs(out.astype(np.float64) - want)
            if not np.all(err <= 1e-4 * (1 + np.abs(want))):
                failures.append("%s: row %d of %s off by %g" %
                                (name, i, what, err.max()))


def check_chain(name, mode, w, m, w1, m1, s, failures):
    """The explicit guard after a chain on g with NaN/Inf in rows 1 and 8:
    the count, and exactly the kept rows (all with skip_step) bit for bit."""
    want = 2 if mode == "skip_row" else 1
    if int(s) != want:
        failures.append("%s: skipped %d, want %d" % (name, int(s), want))
    kept = [1, 8] if mode == "skip_row" else list(range(M))
    for i in range(M):
        same = same_bits(w1[i], w[i]) and same_bits(m1[i], m[i])
        if (i in kept) != same:
            failures.append("%s: row %d %s" % (
                name, i, "changed" if i in kept else "not updated"))


def gpusim_main(directory, opts):
    """The cases on the GPU kernels, run by gpusim: the attribute form (the
    step returns its count), fused, and the explicit guard after a chain on
    a given gradient."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "tools", "gpusim"))
    import gpusim
    nora_opt = os.environ.get("NORA_OPT", "nora-opt")
    grids = [None] + [int(v) for v in opts.max_ctas.split(",") if v]
    failures = []
    checks = 0

    def simulate(name, ir, inputs, mainloop):
        path = os.path.join(directory, name + ".mlir")
        with open(path, "w") as f:
            f.write(ir)
        try:
            text = gpusim.lower(path, "step", mainloop, nora_opt,
                                row_exchange=opts.row_exchange)
            outs = [gpusim.simulate(text, "step", inputs, grid)
                    for grid in grids]
        except gpusim.SimError as e:
            sys.exit("FAIL %s (%s): gpusim: %s" % (name, mainloop, e))
        for grid, other in zip(grids[1:], outs[1:]):
            for a, b in zip(outs[0][:2], other[:2]):
                if not same_bits(a, b):
                    failures.append("%s: %d CTAs differ from the full grid"
                                    % (name, grid))
            if int(other[2]) != int(outs[0][2]):
                failures.append("%s: %d CTAs count %d, the full grid %d"
                                % (name, grid, int(other[2]), int(outs[0][2])))
        return outs[0]

    global T, M, N
    gen = np.random.default_rng(11)
    shapes = [("f32", 9, 23, 17, "auto")]
    if opts.mainloop == "wgmma-pingpong":
        # Whole tiles only: 2 x 3 tiles of 128, in two phases on one CTA
        # (2 consumers, 3 column tiles), in one on two.
        shapes.append(("bf16", 40, 256, 384, opts.mainloop))
    elif opts.mainloop in ("wgmma-tall", "wgmma-wide"):
        # Whole tiles only: 3 x 3 tiles of 128 in 2 row pairs (wgmma-wide:
        # column pairs), the second with one row block (column tile), in
        # two phases on one CTA (3 column tiles: wgmma-wide's 2 workers),
        # in one on three (two).
        shapes.append(("bf16", 40, 384, 384, opts.mainloop))
    elif opts.mainloop != "simt":
        shapes.append(("bf16", 40, 136, 200, opts.mainloop))
    for act, T, M, N, mainloop in shapes:
        for case, rows in (("one_row", [5]), ("two_rows", [0, M - 1]),
                           ("every_row", list(range(M))), ("clean", [])):
            dy = gen.standard_normal((T, M)).astype(np.float32)
            x = gen.standard_normal((T, N)).astype(np.float32)
            w = gen.standard_normal((M, N)).astype(np.float32)
            m = (0.1 * gen.standard_normal((M, N))).astype(np.float32)
            if act == "bf16":
                dy, x = gpusim.bf16_round(dy), gpusim.bf16_round(x)
            for k, i in enumerate(rows):
                dy[k % T, i] = np.nan if k % 2 == 0 else np.inf
            with np.errstate(all="ignore"):
                g = dy.astype(np.float64).T @ x.astype(np.float64)
            bad = sorted(np.nonzero(~np.isfinite(g).all(axis=1))[0])
            assert bad == rows, case
            ir = step_ir('{nonfinite = "MODE"}', extra_result=True)
            if act == "bf16":
                ir = ir.replace("%dx%dxf32>" % (T, M), "%dx%dxbf16>" % (T, M))
                ir = ir.replace("%dx%dxf32>" % (T, N), "%dx%dxbf16>" % (T, N))
            for mode in ("skip_row", "skip_step"):
                name = "gpu_%s_%s_%s" % (act, case, mode)
                w1, m1, s = simulate(name, ir.replace("MODE", mode),
                                     [dy, x, w, m, LR, WD], mainloop)
                want = len(bad) if mode == "skip_row" else int(bool(bad))
                if int(s) != want:
                    failures.append("%s: skipped %d, want %d"
                                    % (name, int(s), want))
                check_step(name, w, m, w1, m1, np.where(np.isfinite(g), g, 0),
                           bad, mode, failures)
                checks += 1
        # The explicit guard after a chain on a given gradient.
        for mode in ("skip_row", "skip_step"):
            gm = gen.standard_normal((M, N)).astype(np.float32)
            gm[[1, 8], [2, 3]] = [np.nan, np.inf]
            w = gen.standard_normal((M, N)).astype(np.float32)
            m = gen.standard_normal((M, N)).astype(np.float32)
            name = "gpu_chain_%s_%s" % (act, mode)
            w1, m1, s = simulate(name, chain_ir(mode), [gm, w, m, LR, WD],
                                 "auto")
            check_chain(name, mode, w, m, w1, m1, s, failures)
            checks += 1
    if failures:
        sys.exit("FAIL\n" + "\n".join(failures[:40]))
    print("PASS: non-finite guard on the GPU kernels (gpusim), %d checks"
          % checks)


def main():
    if "--gpusim" in sys.argv:
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("directory")
        p.add_argument("--gpusim", action="store_true")
        p.add_argument("--mainloop", default="auto")
        p.add_argument("--max-ctas", default="")
        p.add_argument("--row-exchange", default="workspace",
                       choices=("workspace", "cluster"))
        opts = p.parse_args()
        os.makedirs(opts.directory, exist_ok=True)
        return gpusim_main(opts.directory, opts)
    directory, extra = sys.argv[1], sys.argv[2:]
    os.makedirs(directory, exist_ok=True)
    gen = np.random.default_rng(7)
    failures = []

    def data():
        dy = gen.standard_normal((T, M)).astype(np.float32)
        x = gen.standard_normal((T, N)).astype(np.float32)
        w = gen.standard_normal((M, N)).astype(np.float32)
        m = (0.1 * gen.standard_normal((M, N))).astype(np.float32)
        return dy, x, w, m

    # (name, how to poison dy/x, rows of G that become non-finite)
    def one_row_nan(dy, x):
        dy[4, 5] = np.nan
        return [5]

    def two_rows_inf(dy, x):
        dy[0, 0] = np.inf
        dy[T - 1, M - 1] = -np.inf
        return [0, M - 1]

    def every_row(dy, x):
        dy[2, :] = np.nan
        return list(range(M))

    def x_inf(dy, x):
        x[3, 7] = np.inf  # reaches every row of G
        return list(range(M))

    def clean(dy, x):
        return []

    def overflow(dy, x):
        dy[:, 9] = 1e30  # finite inputs whose G row overflows to Inf
        x[:, 0] = 1e30
        return [9]

    cases = [("one_row_nan", one_row_nan), ("two_rows_inf", two_rows_inf),
             ("every_row", every_row), ("x_inf", x_inf), ("clean", clean),
             ("overflow", overflow)]
    for case, poison in cases:
        dy, x, w, m = data()
        bad = poison(dy, x)
        with np.errstate(all="ignore"):
            g = dy.astype(np.float64).T @ x.astype(np.float64)
            g = g.astype(np.float32).astype(np.float64)
        # The rows the test expects are exactly the non-finite rows of G.
        assert sorted(np.nonzero(~np.isfinite(g).all(axis=1))[0]) == bad, case
        for mode in ("skip_row", "skip_step"):
            name = "%s_%s" % (case, mode)
            (w1, m1), out = run(directory, name, step_ir(),
                                [dy, x, w, m, LR, WD], 2,
                                extra + ["--nonfinite=" + mode])
            want = len(bad) if mode == "skip_row" else int(bool(bad))
            key = "skipped_rows" if mode == "skip_row" else "skipped_steps"
            if out.strip() != "nonfinite %s=%d" % (key, want):
                failures.append("%s: printed %r, want '%s=%d'" %
                                (name, out.strip(), key, want))
            g_finite = np.where(np.isfinite(g), g, 0.0)
            check_step(name, w, m, w1, m1, g_finite, bad, mode, failures)
            if not (np.isfinite(w1).all() and np.isfinite(m1).all()):
                failures.append("%s: non-finite W' or M'" % name)

        # Without the option the official behaviour stays (no check).
        if bad:
            (w1, _), _ = run(directory, case + "_default", step_ir(),
                             [dy, x, w, m, LR, WD], 2, extra)
            if np.isfinite(w1).all():
                failures.append("%s: without --nonfinite the step must not "
                                "be guarded" % case)

    # The attribute on a composite step: its own i64 result, 0-d int64 file.
    dy, x, w, m = data()
    bad = one_row_nan(dy, x)
    (w1, m1, s), _ = run(directory, "attr", step_ir(
        '{nonfinite = "skip_row"}', extra_result=True),
        [dy, x, w, m, LR, WD], 3, extra)
    if s.dtype != np.int64 or s.shape != () or int(s) != 1:
        failures.append("attr: skipped is %r, want int64 1" % (s,))
    with np.errstate(all="ignore"):
        g = (dy.astype(np.float64).T @ x.astype(np.float64))
    check_step("attr", w, m, w1, m1, np.where(np.isfinite(g), g, 0.0), bad,
               "skip_row", failures)

    # An explicit guard after a primitive chain.
    for mode in ("skip_row", "skip_step"):
        gm = gen.standard_normal((M, N)).astype(np.float32)
        gm[[1, 8], [2, 3]] = [np.nan, np.inf]
        w = gen.standard_normal((M, N)).astype(np.float32)
        m = gen.standard_normal((M, N)).astype(np.float32)
        (w1, m1, s), _ = run(directory, "chain_" + mode, chain_ir(mode),
                             [gm, w, m, LR, WD], 3, extra)
        check_chain("chain_" + mode, mode, w, m, w1, m1, s, failures)

    if failures:
        sys.exit("FAIL\n" + "\n".join(failures[:40]))
    print("PASS: non-finite guard, %d checks" % (len(cases) * 2 + 3))


if __name__ == "__main__":
    main()
