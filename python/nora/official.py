"""The official optimizers' update formulas, transcribed to float32 numpy.

These mirror, operation by operation, how the official PyTorch optimizers
compute one step, so that `nora.reference` (the f64 op semantics) can be
checked against them (test/Integration/Reference/official-formulas.py):

Nora (official optimizer, arXiv 2605.03769), per 2-D weight:

    buf.lerp_(g, 1 - beta)                 # EMA momentum
    u = g.lerp(buf, beta) if nesterov else buf
    w_hat = w / w.norm(dim=1, keepdim=True).clamp_min(eps)
    v = u - (u * w_hat).sum(dim=1, keepdim=True) * w_hat
    d = v / v.norm(dim=1, keepdim=True).clamp_min(eps) * scale
    w.mul_(1 - lr * wd)                    # decoupled weight decay
    w.add_(d, alpha=-lr)

RMNP (row-normalized momentum, heavy-ball buffer, no projection):

    buf.mul_(mu).add_(g)
    u = g.add(buf, alpha=mu) if nesterov else buf
    d = F.normalize(u, p=2, dim=1, eps=1e-12) * scale   # Moonlight scale
    w.mul_(1 - lr * wd)
    w.add_(d, alpha=-lr)

Everything is float32 as in a float32 PyTorch model; Python-float scalars
become float32 the way PyTorch converts a Scalar for a float32 tensor.
"""

import math

import numpy as np

__all__ = [
    "torch_lerp",
    "official_nora_step",
    "official_rmnp_step",
    "rmnp_buffer_to_ema",
    "ema_to_rmnp_buffer",
]

_F32 = np.float32


def _t(a):
    """A float32 copy, like a float32 torch tensor."""
    return np.array(a, dtype=_F32, copy=True)


def _s(x):
    """A Python scalar as PyTorch hands it to a float32 kernel."""
    return _F32(x)


def torch_lerp(start, end, weight):
    """torch.lerp(start, end, weight) with a scalar weight, as ATen computes
    it: start + weight * (end - start) for |weight| < 0.5, else
    end - (end - start) * (1 - weight)."""
    start = np.asarray(start, dtype=_F32)
    end = np.asarray(end, dtype=_F32)
    w = _s(weight)
    diff = end - start
    if abs(float(w)) < 0.5:
        return (start + w * diff).astype(_F32)
    return (end - diff * (_F32(1) - w)).astype(_F32)


def _row_norm(a):
    """a.norm(dim=1, keepdim=True) in float32."""
    return np.sqrt(np.sum(a * a, axis=1, keepdims=True, dtype=_F32)).astype(_F32)


def _normalize(a, eps):
    """F.normalize(a, p=2, dim=1, eps): a / max(||a||, eps) (clamp form)."""
    return (a / np.maximum(_row_norm(a), _s(eps))).astype(_F32)


def _nesterov_mu(beta, nesterov):
    if nesterov is True:
        return float(beta)
    if nesterov is False or nesterov is None:
        return None
    return float(nesterov)


def official_nora_step(w, buf, g, lr, wd, beta=0.95, nesterov=True, eps=1e-10,
                       scale=None):
    """One step of the official Nora optimizer on one 2-D weight.

    Returns (w_new, buf_new), float32. `buf` is the EMA momentum buffer.
    nesterov: True means mu = beta; a number is mu itself; False/None: off.
    scale None means max(1, sqrt(M / N)).
    """
    w = _t(w)
    buf = _t(buf)
    g = _t(g)
    M, N = w.shape
    if scale is None:
        scale = max(1.0, math.sqrt(M / N))
    mu = _nesterov_mu(beta, nesterov)

    buf = torch_lerp(buf, g, 1 - beta)                   # buf.lerp_(g, 1-beta)
    u = torch_lerp(g, buf, mu) if mu is not None else buf  # g.lerp(buf, mu)

    w_hat = (w / np.maximum(_row_norm(w), _s(eps))).astype(_F32)
    coef = np.sum(u * w_hat, axis=1, keepdims=True, dtype=_F32)
    v = (u - coef * w_hat).astype(_F32)
    d = (_normalize(v, eps) * _s(scale)).astype(_F32)

    w *= _s(1 - lr * wd)                                 # w.mul_(1 - lr*wd)
    w += _s(-lr) * d                                     # w.add_(d, alpha=-lr)
    return w.astype(_F32), buf.astype(_F32)


def official_rmnp_step(w, buf, g, lr, wd, beta=0.95, nesterov=True, eps=1e-12,
                       scale=None):
    """One step of the official RMNP optimizer on one 2-D weight.

    `beta` is RMNP's momentum mu. `buf` is RMNP's heavy-ball buffer
    (buf = mu * buf + g); returns (w_new, buf_new), float32. nesterov True
    means u = g + mu * buf. scale None means Moonlight's
    0.2 * sqrt(max(M, N)); eps is F.normalize's (1e-12).
    """
    w = _t(w)
    buf = _t(buf)
    g = _t(g)
    M, N = w.shape
    if scale is None:
        scale = 0.2 * math.sqrt(max(M, N))
    mu = _nesterov_mu(beta, nesterov)
    momentum = _s(beta)

    buf = (buf * momentum + g).astype(_F32)              # buf.mul_(mu).add_(g)
    if mu is not None:
        u = (g + _s(mu) * buf).astype(_F32)              # g.add(buf, alpha=mu)
    else:
        u = buf
    d = (_normalize(u, eps) * _s(scale)).astype(_F32)

    w *= _s(1 - lr * wd)
    w += _s(-lr) * d
    return w.astype(_F32), buf.astype(_F32)


def rmnp_buffer_to_ema(buf, mu):
    """RMNP heavy-ball buffer -> the EMA momentum nora.momentum keeps:
    ema = (1 - mu) * buf (SEMANTICS.md). Returns float32."""
    return (np.asarray(buf, dtype=np.float64) * (1.0 - float(mu))).astype(_F32)


def ema_to_rmnp_buffer(ema, mu):
    """Inverse of rmnp_buffer_to_ema: buf = ema / (1 - mu). Returns float32."""
    return (np.asarray(ema, dtype=np.float64) / (1.0 - float(mu))).astype(_F32)
