"""nora.compile / nora.lower: the compiled CPU step on numpy arrays and
torch tensors against the float64 reference, and every bad input."""

import os

import numpy as np
import pytest

import nora
from nora import reference as R
from nora import steps

pytestmark = pytest.mark.skipif(not nora.available(),
                                reason="libNoraCAPI.so is not built")

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = open(os.path.join(ROOT, "examples", "nora_step.mlir")).read()


def close(out, ref, tol=1e-4):
    err = np.abs(out.astype(np.float64) - ref) / (1 + np.abs(ref))
    assert err.max() <= tol, err.max()


def data(seed, T, M, N):
    r = np.random.default_rng(seed)
    return (r.standard_normal((T, M), dtype=np.float32),
            r.standard_normal((T, N), dtype=np.float32),
            r.standard_normal((M, N), dtype=np.float32) * 0.05,
            r.standard_normal((M, N), dtype=np.float32) * 0.1)


def test_example_step_matches_reference():
    step = nora.compile(EXAMPLE)
    assert step.entry == "nora_step"
    dy, x, w, m = data(0, 64, 1024, 1024)
    wn, mn = step(dy, x, w, m, 0.01, 0.1)
    wr, mr = R.nora_step(R.wgrad(dy, x), w, m, R.f32(0.01), R.f32(0.1))
    close(wn, wr)
    close(mn, mr)
    # Unfused: the same function op by op.
    wn2, mn2 = nora.compile(EXAMPLE, fuse=False)(dy, x, w, m, 0.01, 0.1)
    close(wn2, wr)
    close(mn2, mr)


@pytest.mark.parametrize("kind", ["nora", "rmnp"])
@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_wgrad_step_ir(kind, act):
    T, M, N = 16, 40, 24
    step = nora.compile(steps.optimizer_step_ir(kind, M, N, tokens=T,
                                                act=act))
    dy, x, w, m = data(1, T, M, N)
    if act == "bf16":
        dy, x = R.bf16_round(dy), R.bf16_round(x)
    wn, mn = step(dy, x, w, m, 0.02, 0.1)
    ref = R.nora_step if kind == "nora" else R.rmnp_step
    wr, mr = ref(R.wgrad(dy, x), w, m, R.f32(0.02), R.f32(0.1),
                 beta=R.f32(0.95), nesterov=R.f32(0.95),
                 eps=R.f32(1e-10 if kind == "nora" else 1e-12),
                 scale=R.f32(steps.default_scale(kind, M, N)))
    close(wn, wr)
    close(mn, mr)


def test_torch_tensors_and_out_buffers():
    torch = pytest.importorskip("torch")
    M, N = 32, 48
    step = nora.compile(steps.optimizer_step_ir("nora", M, N))
    _, _, w, m = data(2, 1, M, N)
    g = np.random.default_rng(3).standard_normal((M, N), dtype=np.float32)
    out = (torch.empty(M, N), torch.empty(M, N))
    res = step(torch.from_numpy(g), torch.from_numpy(w), torch.from_numpy(m),
               0.01, 0.0, out=out)
    assert res[0] is out[0] and res[1] is out[1]
    wn, mn = step(g, w, m, 0.01, 0.0)
    assert np.array_equal(out[0].numpy(), wn)
    assert np.array_equal(out[1].numpy(), mn)
    # A non-contiguous view and a float64 tensor are converted.
    wt = torch.from_numpy(w.T.copy()).t()
    res2 = step(torch.from_numpy(g).double(), wt, torch.from_numpy(m), 0.01,
                0.0)
    assert np.array_equal(res2[0], wn)


def test_bf16_bits_and_rounding_agree():
    T, M, N = 8, 16, 16
    step = nora.compile(steps.optimizer_step_ir("rmnp", M, N, tokens=T,
                                                act="bf16"))
    dy, x, w, m = data(4, T, M, N)
    a = step(dy, x, w, m, 0.01, 0.0)
    b = step(R.bf16_bits(dy), R.bf16_bits(x), w, m, 0.01, 0.0)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_nonfinite_guard_result():
    step = nora.compile(EXAMPLE, nonfinite="skip_step")
    assert len(step.results) == 3
    dy, x, w, m = data(5, 64, 1024, 1024)
    dy[3, 7] = np.nan
    wn, mn, skipped = step(dy, x, w, m, 0.01, 0.1)
    assert int(np.asarray(skipped).reshape(-1)[0]) == 1
    assert np.array_equal(wn, w) and np.array_equal(mn, m)


def test_bad_inputs():
    step = nora.compile(steps.optimizer_step_ir("nora", 8, 4))
    g = np.ones((8, 4), np.float32)
    with pytest.raises(ValueError, match=r"argument #1 of @step has shape "
                       r"\(4, 8\), the function takes \(8, 4\)"):
        step(g, g.T.copy(), g, 0.1, 0.0)
    with pytest.raises(TypeError, match="must be a float array"):
        step(g, np.ones((8, 4), np.int32), g, 0.1, 0.0)
    with pytest.raises(TypeError, match="takes 5 arguments, got 4"):
        step(g, g, g, 0.1)
    with pytest.raises(ValueError, match="not a finite f32"):
        step(g, g, g, float("nan"), 0.0)
    with pytest.raises(ValueError, match="not a finite f32"):
        step(g, g, g, 1e39, 0.0)
    with pytest.raises(TypeError, match="is an f32 scalar"):
        step(g, g, g, "fast", 0.0)
    with pytest.raises(ValueError, match="out\\[1\\] must be"):
        step(g, g, g, 0.1, 0.0, out=(np.empty((8, 4), np.float32),
                                      np.empty((4, 8), np.float32)))


def test_bad_ir_and_options():
    with pytest.raises(nora.NoraError, match="cannot parse the IR"):
        nora.compile("func.func @f(", entry="f")
    with pytest.raises(nora.NoraError, match="no function @nope"):
        nora.compile(EXAMPLE, entry="nope")
    bad = EXAMPLE.replace("nora.nora_step", "nora.nora_stepp")
    with pytest.raises(nora.NoraError, match="nora_stepp"):
        nora.compile(bad)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        nora.compile(EXAMPLE, device="tpu")
    with pytest.raises(ValueError, match="without a non-finite guard"):
        nora.compile(EXAMPLE, device="cuda", nonfinite="skip_row")
    with pytest.raises(ValueError, match="nonfinite"):
        nora.compile(EXAMPLE, nonfinite="skip_everything")


def test_lower_every_stage():
    got = nora.stages(EXAMPLE)
    assert list(got) == ["decomposed", "fused", "panels", "linalg", "llvm"]
    assert "nora.momentum" in got["decomposed"]
    assert "nora.fused_wgrad_step" in got["fused"]
    assert "scf.forall" in got["panels"]
    assert "linalg.generic" in got["linalg"]
    assert "llvm.func @nora_step" in got["llvm"]
    assert "gpu.launch_func" in nora.lower(EXAMPLE, "gpu")
    assert "nora.fused_wgrad_step" in nora.lower(
        EXAMPLE, "builtin.module(nora-decompose,nora-fuse-wgrad-epilogue)")
    with pytest.raises(nora.NoraError, match="bad pass pipeline"):
        nora.lower(EXAMPLE, "builtin.module(no-such-pass)")
    with pytest.raises(nora.NoraError, match="cannot parse"):
        nora.lower("}", "fused")
