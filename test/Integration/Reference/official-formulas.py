# The f64 op semantics (python/nora/reference.py) agree with the official
# optimizers' float32 formulas (python/nora/official.py) over 10 steps of a
# small model, for Nora and for RMNP (whose heavy-ball buffer is converted to
# the EMA momentum of nora.momentum). Needs only numpy.
#
# RUN: %python %s | FileCheck %s
# CHECK: nora nesterov=True: {{.*}} OK
# CHECK: nora nesterov=False: {{.*}} OK
# CHECK: rmnp nesterov=True: {{.*}} OK
# CHECK: rmnp nesterov=False: {{.*}} OK
# CHECK: PASS

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "python"))

import numpy as np  # noqa: E402

from nora import official, reference  # noqa: E402

SHAPES = [(64, 32), (32, 64), (48, 48)]
STEPS = 10
LR = 0.02
WD = 0.1
BETA = 0.95
RTOL = 1e-5


def rel_diff(a, ref):
    """max |a - ref| relative to max |ref| (the tensor's scale)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-30))


def run(kind, nesterov, seed):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(s).astype(np.float32) * np.float32(0.1)
               for s in SHAPES]
    # A non-zero initial buffer checks the buffer conversion as well.
    buffers = [rng.standard_normal(s).astype(np.float32) * np.float32(0.01)
               for s in SHAPES]

    off_w = [w.copy() for w in weights]
    ref_w = [w.astype(np.float64) for w in weights]
    if kind == "nora":
        off_buf = [b.copy() for b in buffers]
        ref_m = [b.astype(np.float64) for b in buffers]
    else:
        off_buf = [b.copy() for b in buffers]           # heavy-ball buffer
        ref_m = [official.rmnp_buffer_to_ema(b, BETA).astype(np.float64)
                 for b in buffers]

    worst_w = worst_m = 0.0
    for step in range(STEPS):
        for i, shape in enumerate(SHAPES):
            g = rng.standard_normal(shape).astype(np.float32)
            if kind == "nora":
                off_w[i], off_buf[i] = official.official_nora_step(
                    off_w[i], off_buf[i], g, LR, WD, beta=BETA,
                    nesterov=nesterov)
                ref_w[i], ref_m[i] = reference.nora_step(
                    g, ref_w[i], ref_m[i], LR, WD, beta=BETA,
                    nesterov=nesterov)
                off_m = off_buf[i]
            else:
                off_w[i], off_buf[i] = official.official_rmnp_step(
                    off_w[i], off_buf[i], g, LR, WD, beta=BETA,
                    nesterov=nesterov)
                ref_w[i], ref_m[i] = reference.rmnp_step(
                    g, ref_w[i], ref_m[i], LR, WD, beta=BETA,
                    nesterov=nesterov)
                off_m = official.rmnp_buffer_to_ema(off_buf[i], BETA)
            dw = rel_diff(off_w[i], ref_w[i])
            dm = rel_diff(off_m, ref_m[i])
            worst_w = max(worst_w, dw)
            worst_m = max(worst_m, dm)
            if not (dw <= RTOL and dm <= RTOL):
                print("FAIL %s nesterov=%s step %d weight %d %s: "
                      "rel diff w %.3e, momentum %.3e (limit %.0e)"
                      % (kind, nesterov, step, i, shape, dw, dm, RTOL))
                return False
    print("%s nesterov=%s: %d steps x %d weights, max rel diff w %.3e, "
          "momentum %.3e (limit %.0e) OK"
          % (kind, nesterov, STEPS, len(SHAPES), worst_w, worst_m, RTOL))
    return True


def check_rmnp_direction():
    """The heavy-ball and EMA forms give the same row direction (SEMANTICS)."""
    rng = np.random.default_rng(7)
    buf = rng.standard_normal((16, 24))
    g = rng.standard_normal((16, 24))
    mu = 0.9
    hb_buf = mu * buf + g
    hb_u = g + mu * hb_buf
    ema_m, ema_u = reference.momentum((1 - mu) * buf, g, mu, mu)
    assert np.allclose(ema_m, (1 - mu) * hb_buf, rtol=1e-12, atol=1e-12)
    assert np.allclose(reference.row_normalize(ema_u, 0.0),
                       reference.row_normalize(hb_u, 0.0),
                       rtol=1e-12, atol=1e-12)


def main():
    check_rmnp_direction()
    ok = True
    seed = 1234
    for kind in ("nora", "rmnp"):
        for nesterov in (True, False):
            ok = run(kind, nesterov, seed) and ok
            seed += 1
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
