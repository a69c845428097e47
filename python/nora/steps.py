"""The IR of one optimizer step for a weight of a given shape, as the
optimizers of `nora.optim` compile it.

`optimizer_step_ir(kind, M, N, ...)` writes

    func.func @step(%g, %w, %m : tensor<MxNxf32>, %lr, %wd : f32)
        -> (w_new, m_new)

with the primitive chain (nora.momentum, [nora.orth_project],
nora.row_normalize, nora.apply_update); with `tokens=T` the gradient is
computed in the step from (dy : T x M, x : T x N) by nora.wgrad, the form that
fuses into one kernel. Hyper-parameters are attributes, rounded to f32 as
the ops see them; lr and wd stay runtime arguments (a schedule never
recompiles).
"""

import math

__all__ = ["optimizer_step_ir", "default_scale"]


def default_scale(kind, M, N):
    """Nora: max(1, sqrt(M/N)); RMNP: Moonlight's 0.2 sqrt(max(M, N))."""
    if kind == "nora":
        return max(1.0, math.sqrt(M / N))
    return 0.2 * math.sqrt(max(M, N))


def _f(value):
    """An MLIR float literal (always with a mantissa point)."""
    return "%.17e" % float(value)


def optimizer_step_ir(kind, M, N, beta=0.95, nesterov=0.95, eps=None,
                      scale=None, tokens=None, act="f32", name="step",
                      acc=False, grad_scale=1.0, nonfinite=None):
    """kind: "nora" or "rmnp". nesterov: the Nesterov mu, or None for plain
    momentum (u = m_new). eps: 1e-10 (Nora) / 1e-12 (RMNP) when None.
    With tokens: acc adds an accumulated gradient argument (after x), and
    grad_scale scales dy^T x (not acc). nonfinite: "skip_row" or
    "skip_step" guards the step (nora.skip_nonfinite), which then returns
    its i64 count third."""
    if nonfinite not in (None, "skip_row", "skip_step"):
        raise ValueError("nonfinite must be None, 'skip_row' or 'skip_step', "
                         "got %r" % (nonfinite,))
    if kind not in ("nora", "rmnp"):
        raise ValueError("kind must be 'nora' or 'rmnp', got %r" % (kind,))
    if eps is None:
        eps = 1e-10 if kind == "nora" else 1e-12
    if scale is None:
        scale = default_scale(kind, M, N)
    mat = "tensor<%dx%dxf32>" % (M, N)
    mu = "" if nesterov is None else ", nesterov = %s : f32" % _f(nesterov)
    results = "%s, %s%s" % (mat, mat, ", i64" if nonfinite else "")
    if tokens is None:
        head = ("func.func @%s(%%g: %s, %%w: %s, %%m: %s, %%lr: f32, "
                "%%wd: f32) -> (%s) {" % (name, mat, mat, mat, results))
        grad = ""
    else:
        dy = "tensor<%dx%dx%s>" % (tokens, M, act)
        x = "tensor<%dx%dx%s>" % (tokens, N, act)
        acc_arg = ", %%acc: %s" % mat if acc else ""
        head = ("func.func @%s(%%dy: %s, %%x: %s%s, %%w: %s, %%m: %s, "
                "%%lr: f32, %%wd: f32) -> (%s) {"
                % (name, dy, x, acc_arg, mat, mat, results))
        acc_use = " acc(%%acc : %s)" % mat if acc else ""
        attrs = (" {scale = %s : f32}" % _f(grad_scale)
                 if grad_scale != 1.0 else "")
        grad = ("  %%g = nora.wgrad %%dy, %%x%s%s : %s, %s -> %s\n"
                % (acc_use, attrs, dy, x, mat))
    body = ("  %%mn, %%u = nora.momentum %%m, %%g {beta = %s : f32%s} : "
            "%s, %s\n" % (_f(beta), mu, mat, mat))
    direction = "%u"
    if kind == "nora":
        body += ("  %%v = nora.orth_project %%u, %%w {eps = %s : f32} : "
                 "%s, %s\n" % (_f(eps), mat, mat))
        direction = "%v"
    body += ("  %%d = nora.row_normalize %s {eps = %s : f32, scale = %s : "
             "f32} : %s\n" % (direction, _f(eps), _f(scale), mat))
    body += ("  %%wn = nora.apply_update %%w, %%d, %%lr, %%wd : %s, %s\n"
             % (mat, mat))
    if nonfinite:
        body += ("  %%w1, %%m1, %%s = nora.skip_nonfinite %%g, %%w, %%m, %%wn, "
                 "%%mn {mode = \"%s\"} : %s, %s, %s\n"
                 "  return %%w1, %%m1, %%s : %s\n}\n"
                 % (nonfinite, mat, mat, mat, results))
    else:
        body += "  return %%wn, %%mn : %s\n}\n" % results
    return head + "\n" + grad + body
