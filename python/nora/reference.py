"""Float64 reference implementation of the nora ops (see SEMANTICS.md).

Every function takes numpy arrays (float32 is the usual input; bf16/f16
values are passed as the float32 arrays of their exact values, e.g. from
`bf16_round`), converts them to float64 and evaluates the formulas of
SEMANTICS.md in float64. Nothing here rounds intermediate values to float32:
this is the "f64 evaluation of the formulas above on the same f32/bf16
inputs" that backends are compared against.

Attributes (beta, nesterov, eps, scale) and the scalars lr, wd are used as
given: a backend sees them as f32, so pass `f32(value)` where the exact
float32 value matters.

Row convention: a weight is M x N ([out_features, in_features]); every row
statistic reduces over the N columns of one row (axis 1).
"""

import math

import numpy as np

__all__ = [
    "f32",
    "bf16_bits",
    "bf16_from_bits",
    "bf16_round",
    "f16_bits",
    "f16_round",
    "row_norms",
    "default_nora_scale",
    "moonlight_scale",
    "wgrad",
    "momentum",
    "orth_project",
    "row_normalize",
    "apply_update",
    "nora_step",
    "rmnp_step",
]


# ---------------------------------------------------------------------------
# Number formats
# ---------------------------------------------------------------------------

def f32(value):
    """The float32 value nearest to `value`, as a Python float."""
    return float(np.float32(value))


def bf16_bits(a):
    """float32 -> bfloat16 bits (uint16), rounding to nearest, ties to even.

    Overflow rounds to +-inf, infinities are kept, NaNs stay (quiet) NaNs.
    """
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    u = a.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    bits = (rounded & 0xFFFF).astype(np.uint16)
    nan_bits = ((u >> 16) | 0x0040).astype(np.uint16)
    return np.where(np.isnan(a), nan_bits, bits).astype(np.uint16)


def bf16_from_bits(bits):
    """bfloat16 bits (uint16) -> their exact values as a float32 array."""
    bits = np.ascontiguousarray(np.asarray(bits, dtype=np.uint16))
    return (bits.astype(np.uint32) << 16).view(np.float32)


def bf16_round(a):
    """Rounds float32 values to the nearest bfloat16 (ties to even).

    Returns the rounded values as a float32 array (exactly representable)."""
    return bf16_from_bits(bf16_bits(a))


def tf32_round(a):
    """Rounds float32 values to the nearest TensorFloat-32 (10 mantissa
    bits; ties away from zero, as cvt.rna.tf32.f32), as float32. NaN and Inf
    stay as they are."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    special = (u & 0x7F800000) == 0x7F800000
    r = ((u + 0x1000) & 0xFFFFE000).astype(np.uint32)
    return np.where(special, u.astype(np.uint32), r).view(np.float32)


def f16_bits(a):
    """float32 -> IEEE half bits (uint16), round to nearest even."""
    return np.asarray(a, dtype=np.float32).astype(np.float16).view(np.uint16)


def f16_round(a):
    """Rounds float32 values to the nearest float16 (ties to even), as f32."""
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _matrix(a, name):
    a = _f64(a)
    if a.ndim != 2:
        raise ValueError("%s must be 2-D, got shape %s" % (name, a.shape))
    return a


def _same_shape(*pairs):
    shape = pairs[0][1].shape
    for name, a in pairs[1:]:
        if a.shape != shape:
            raise ValueError("%s has shape %s, expected %s (like %s)"
                             % (name, a.shape, shape, pairs[0][0]))


def row_norms(a):
    """Euclidean norm of every row, in float64 (no overflow for |a| < 1e150)."""
    a = _f64(a)
    return np.sqrt(np.sum(a * a, axis=1))


def _row_scale(numerator_scale, norms, eps):
    """numerator_scale / max(norms, eps) per row; 0 where the denominator is 0
    (a zero row with eps = 0) instead of a NaN."""
    den = np.maximum(norms, float(eps))
    out = np.zeros_like(den)
    nz = den > 0
    out[nz] = numerator_scale / den[nz]
    return out


def default_nora_scale(M, N):
    """Nora's shape rule: max(1, sqrt(M / N))."""
    return max(1.0, math.sqrt(float(M) / float(N)))


def moonlight_scale(M, N):
    """Moonlight's RMS-matching rule used by RMNP: 0.2 * sqrt(max(M, N))."""
    return 0.2 * math.sqrt(float(max(M, N)))


# ---------------------------------------------------------------------------
# Primitive ops
# ---------------------------------------------------------------------------

def wgrad(dy, x, acc=None, scale=1.0):
    """nora.wgrad: g = scale * dy^T @ x (+ acc), dy: T x M, x: T x N.

    `dy` and `x` are the values the op sees (already rounded to bf16/f16 when
    the op's inputs are bf16/f16); the product is evaluated in float64.
    `scale` multiplies the product only; `acc` is added unscaled.
    """
    dy = _matrix(dy, "dy")
    x = _matrix(x, "x")
    if dy.shape[0] != x.shape[0]:
        raise ValueError("dy (%s) and x (%s) differ in T" % (dy.shape, x.shape))
    g = float(scale) * (dy.T @ x)
    if acc is not None:
        acc = _matrix(acc, "acc")
        _same_shape(("g", g), ("acc", acc))
        g = g + acc
    return g


def momentum(m, g, beta, nesterov=None):
    """nora.momentum: returns (m_new, u).

    m_new = beta * m + (1 - beta) * g
    u     = (1 - mu) * g + mu * m_new   with mu = nesterov, when not None
    u     = m_new                        otherwise
    """
    m = _matrix(m, "m")
    g = _matrix(g, "g")
    _same_shape(("m", m), ("g", g))
    beta = float(beta)
    m_new = beta * m + (1.0 - beta) * g
    if nesterov is None:
        u = m_new
    else:
        mu = float(nesterov)
        u = (1.0 - mu) * g + mu * m_new
    return m_new, u


def orth_project(u, w, eps=1e-10):
    """nora.orth_project: per row, w^ = w_i / max(||w_i||, eps),
    v_i = u_i - <u_i, w^> w^. A zero row of w gives v_i = u_i."""
    u = _matrix(u, "u")
    w = _matrix(w, "w")
    _same_shape(("u", u), ("w", w))
    w_hat = w * _row_scale(1.0, row_norms(w), eps)[:, None]
    c = np.sum(u * w_hat, axis=1)
    return u - c[:, None] * w_hat


def row_normalize(v, eps=1e-10, scale=1.0):
    """nora.row_normalize: d_i = scale * v_i / max(||v_i||, eps).
    A zero row of v gives d_i = 0."""
    v = _matrix(v, "v")
    return v * _row_scale(float(scale), row_norms(v), eps)[:, None]


def apply_update(w, d, lr, wd):
    """nora.apply_update: w_new = w * (1 - lr * wd) - lr * d."""
    w = _matrix(w, "w")
    d = _matrix(d, "d")
    _same_shape(("w", w), ("d", d))
    lr = float(lr)
    wd = float(wd)
    return w * (1.0 - lr * wd) - lr * d


# ---------------------------------------------------------------------------
# Composite steps
# ---------------------------------------------------------------------------

def _mu(beta, nesterov):
    """nesterov: True -> mu = beta, False/None -> no Nesterov, a number -> mu."""
    if nesterov is True:
        return float(beta)
    if nesterov is False or nesterov is None:
        return None
    return float(nesterov)


def nora_step(g, w, m, lr, wd, beta=0.95, nesterov=True, eps=1e-10,
              scale=None, return_intermediates=False):
    """One Nora step (nora.nora_step): returns (w_new, m_new).

    nesterov: True means mu = beta (the official default), False or None no
    Nesterov, a number is mu itself. scale None means max(1, sqrt(M/N)).
    With return_intermediates=True, returns (w_new, m_new, dict) where the
    dict holds u, v, d and the scale used.
    """
    g = _matrix(g, "g")
    M, N = g.shape
    if scale is None:
        scale = default_nora_scale(M, N)
    m_new, u = momentum(m, g, beta, _mu(beta, nesterov))
    v = orth_project(u, w, eps)
    d = row_normalize(v, eps, scale)
    w_new = apply_update(w, d, lr, wd)
    if return_intermediates:
        return w_new, m_new, {"u": u, "v": v, "d": d, "scale": float(scale)}
    return w_new, m_new


def rmnp_step(g, w, m, lr, wd, beta=0.95, nesterov=True, eps=1e-12,
              scale=None, return_intermediates=False):
    """One RMNP step (nora.rmnp_step) in the EMA momentum form: returns
    (w_new, m_new). The Nora chain without orth_project; eps defaults to
    F.normalize's 1e-12 and scale None means 0.2 * sqrt(max(M, N)).
    `m` is the EMA buffer (RMNP's heavy-ball buffer times (1 - beta))."""
    g = _matrix(g, "g")
    M, N = g.shape
    if scale is None:
        scale = moonlight_scale(M, N)
    m_new, u = momentum(m, g, beta, _mu(beta, nesterov))
    d = row_normalize(u, eps, scale)
    w_new = apply_update(w, d, lr, wd)
    if return_intermediates:
        return w_new, m_new, {"u": u, "v": u, "d": d, "scale": float(scale)}
    return w_new, m_new
