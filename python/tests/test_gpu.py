"""nora.gpu: step artifacts through the LLVM-free runtime. Without a GPU:
opening and validating nora-compile's artifacts, the no-driver message, and
the whole call path against the host-only fake driver of the runtime tests
(test/Runtime/FakeCuda, the axpy fixture). With a GPU (skipped otherwise,
with the reason): the fused Nora step against the CPU JIT, twice, bit for
bit."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nora
from nora import gpu, steps
from nora import reference as R

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
FAKE_DRIVER = os.path.join(ROOT, "build", "lib", "libnora-fake-cuda.so")
TMAP_PLAN = os.path.join(ROOT, "test", "Runtime", "Inputs", "tmap.plan.json")
AXPY_PLAN = os.path.join(ROOT, "test", "Runtime", "Inputs", "axpy.plan.json")

pytestmark = pytest.mark.skipif(not gpu.runtime_available(),
                                reason="libNoraRuntimeCAPI.so is not built")


def run_isolated(code, **env):
    """Runs `code` in a fresh Python (the CUDA driver is loaded once per
    process) with `env` added; returns its stdout."""
    full = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), **env)
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                         env=full, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def cuda_device():
    """The device's chip ("sm_90a", "sm_80", ...) or None."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import ctypes,sys\n"
         "try:\n l=ctypes.CDLL('libcuda.so.1')\nexcept OSError: sys.exit(1)\n"
         "n=ctypes.c_int();a=ctypes.c_int();b=ctypes.c_int()\n"
         "ok=l.cuInit(0)==0 and l.cuDeviceGetCount(ctypes.byref(n))==0 and "
         "n.value>0\n"
         "ok=ok and l.cuDeviceGetAttribute(ctypes.byref(a),75,0)==0 and "
         "l.cuDeviceGetAttribute(ctypes.byref(b),76,0)==0\n"
         "print('%d%d'%(a.value,b.value)) if ok else sys.exit(1)\n"],
        capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        return None
    cc = out.stdout.strip()
    return "sm_90a" if cc == "90" else "sm_80" if int(cc) >= 80 else None


needs_fake_driver = pytest.mark.skipif(
    not os.path.exists(FAKE_DRIVER),
    reason="the fake driver (test/Runtime/FakeCuda) is not built")


def axpy_script(art_dir, body):
    """A fake-driver run: open the axpy artifact at `art_dir`, make its
    inputs x and y, then `body`."""
    return textwrap.dedent("""
        import numpy as np, nora.gpu as gpu
        art = gpu.Artifact(%r)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((40, 32), dtype=np.float32)
        y = rng.standard_normal((40, 32), dtype=np.float32)
        """) % str(art_dir) + textwrap.dedent(body)


def axpy_artifact(tmp_path):
    """The runtime tests' axpy artifact (run by the fake driver's host
    kernel; its cubin is a placeholder ELF header)."""
    art_dir = tmp_path / "axpy.nora"
    art_dir.mkdir()
    (art_dir / "plan.json").write_text(json.dumps(json.load(open(AXPY_PLAN))))
    (art_dir / "axpy.cubin").write_bytes(b"\x7fELF" + bytes(60))
    return art_dir


@pytest.fixture(scope="module")
def step_artifact(tmp_path_factory):
    if not nora.available():
        pytest.skip("nora-compile needs the compiler (libNoraCAPI.so built)")
    out = tmp_path_factory.mktemp("gpu") / "step.nora"
    ir = steps.optimizer_step_ir("nora", 70, 100, tokens=16, act="bf16")
    try:
        return gpu.compile_artifact(ir, "step", out, chip="sm_90a"), ir
    except nora.NoraUnavailable as e:
        pytest.skip(str(e))


def test_compiled_artifact_opens_without_a_gpu(step_artifact):
    art, _ = step_artifact
    assert art.entry == "step"
    assert art.arguments[0] == (True, "bf16", (16, 70))
    assert art.arguments[4] == (False, "f32", ())
    assert art.results == [(70, 100), (70, 100)]
    text = art.describe()
    assert "nora_fused_step_0" in text and "cooperative" in text


def test_no_driver_is_a_clear_error(step_artifact):
    art, _ = step_artifact
    out = run_isolated("""
        import numpy as np, nora.gpu as gpu
        art = gpu.Artifact(%r)
        try:
            art(np.zeros((16, 70)), np.zeros((16, 100)), np.zeros((70, 100)),
                np.zeros((70, 100)), 0.1, 0.0)
        except Exception as e:
            print(type(e).__name__, e)
        """ % art.path, NORA_CUDA_DRIVER="/nonexistent/libcuda.so.1")
    assert out.startswith("NoraError no CUDA driver"), out


def test_bad_artifacts_and_arguments(tmp_path, step_artifact):
    with pytest.raises(nora.NoraError, match="cannot open the artifact"):
        gpu.Artifact(tmp_path / "missing.nora")
    art, _ = step_artifact
    with pytest.raises(ValueError, match=r"argument #1 of step has shape"):
        art(np.zeros((16, 70)), np.zeros((16, 99)), np.zeros((70, 100)),
            np.zeros((70, 100)), 0.1, 0.0)
    with pytest.raises(TypeError, match="takes 6 arguments"):
        art(np.zeros((16, 70)))
    with pytest.raises(ValueError, match="not a finite f32"):
        art(np.zeros((16, 70)), np.zeros((16, 100)), np.zeros((70, 100)),
            np.zeros((70, 100)), float("inf"), 0.0)


@needs_fake_driver
def test_call_path_against_the_fake_driver(tmp_path):
    art_dir = axpy_artifact(tmp_path)
    out = run_isolated(axpy_script(art_dir, """
        got = art(x, y, 2.5, repeats=3)
        ok = np.allclose(got, np.float32(2.5) * x + y, rtol=1e-6, atol=1e-6)
        print(art.device_name, ok, art.last_timing is not None)
        """), NORA_CUDA_DRIVER=FAKE_DRIVER)
    assert out.strip() == "Fake GPU True True", out


@needs_fake_driver
def test_device_call_path_against_the_fake_driver(tmp_path):
    """call_device: caller-owned memory, nothing copied, on the caller's
    stream (the fake driver's device memory is host memory, so numpy
    arrays' addresses stand in for device pointers)."""
    art_dir = axpy_artifact(tmp_path)
    out = run_isolated(axpy_script(art_dir, """
        z = np.full((40, 32), np.nan, np.float32)
        try:
            art.call_device(x.ctypes.data, y.ctypes.data, 2.5,
                            out=[z.ctypes.data])
        except gpu.NoraError as e:
            print("before load:", e)
        art.load(0)
        art.call_device(x.ctypes.data, y.ctypes.data, 2.5,
                        out=[z.ctypes.data], stream=0x1234)
        print(np.allclose(z, np.float32(2.5) * x + y, rtol=1e-6, atol=1e-6))
        try:
            art.call_device(x.ctypes.data + 4, y.ctypes.data, 2.5,
                            out=[z.ctypes.data])
        except gpu.NoraError as e:
            print("misaligned:", e)
        try:
            art.call_device(x.ctypes.data, y.ctypes.data, 2.5)
        except TypeError as e:
            print("no out:", e)
        """), NORA_CUDA_DRIVER=FAKE_DRIVER)
    lines = out.strip().splitlines()
    # Loaded on first use (device 0), then explicitly: both calls run.
    assert lines[-3] == "True", out
    assert lines[-2].startswith("misaligned: argument #0 (x, f32[40x32]): "
                                "the device pointer is not 16-byte aligned")
    assert lines[-1] == "no out: call_device with raw pointers needs `out`"


@needs_fake_driver
def test_device_call_rewrites_tensor_maps(tmp_path):
    """A plan with a tensor map (TMA descriptor): call_device encodes it
    for the caller's pointer, again when the pointer changes (the fake
    kernel copies the box the map describes)."""
    art_dir = tmp_path / "tmap.nora"
    art_dir.mkdir()
    (art_dir / "plan.json").write_text(json.dumps(json.load(open(TMAP_PLAN))))
    (art_dir / "tmap.cubin").write_bytes(b"\x7fELF" + bytes(60))
    out = run_isolated(textwrap.dedent("""
        import numpy as np, nora.gpu as gpu
        art = gpu.Artifact(%r)
        art.load(0)
        rng = np.random.default_rng(0)
        box = np.full((48, 8), np.nan, np.float32)
        for _ in range(2):
            x = rng.standard_normal((40, 32), dtype=np.float32)
            art.call_device(x.ctypes.data, 1.0, out=[box.ctypes.data],
                            stream=0x1234)
            want = np.zeros((48, 8), np.float32)
            want[:40] = x[:, :8]
            print(np.array_equal(box, want))
        """) % str(art_dir), NORA_CUDA_DRIVER=FAKE_DRIVER)
    assert out.split() == ["True", "True"], out


def test_device_call_checks_torch_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    art_dir = axpy_artifact(tmp_path)
    art = gpu.Artifact(art_dir)
    cpu = torch.zeros(40, 32)
    with pytest.raises(ValueError, match="call_device takes CUDA tensors"):
        art.call_device(cpu, cpu, 1.0)
    with pytest.raises(TypeError, match="expected a torch CUDA tensor"):
        art.call_device(np.zeros((40, 32)), cpu, 1.0)
    with pytest.raises(TypeError, match="takes 3 arguments"):
        art.call_device(cpu)


def test_artifact_cache(tmp_path, monkeypatch):
    """cached_artifact compiles once into $NORA_ARTIFACT_CACHE and finds the
    artifact there again with no compiler (a training machine's case)."""
    if gpu._nora_compile_tool() is None:
        pytest.skip("nora-compile is needed to fill the cache")
    cache, other = tmp_path / "cache", tmp_path / "other"
    monkeypatch.setenv("NORA_ARTIFACT_CACHE", "%s:%s" % (other, cache))
    ir = steps.optimizer_step_ir("rmnp", 40, 24)
    first = gpu.cached_artifact(ir, "step", "sm_80")
    assert first.path.startswith(str(other))   # the first directory is written
    assert first.arguments[0] == (True, "f32", (40, 24))
    # Moved to the second directory: found there, nothing compiled.
    os.makedirs(cache)
    moved = os.path.join(cache, os.path.basename(first.path))
    os.rename(first.path, moved)
    monkeypatch.setenv("NORA_COMPILE", str(tmp_path / "no-compiler"))
    again = gpu.cached_artifact(ir, "step", "sm_80")
    assert again.path == moved
    # Another chip, other IR or other options are another artifact: that
    # needs the compiler.
    with pytest.raises(nora.NoraUnavailable, match="nora-compile"):
        gpu.cached_artifact(ir, "step", "sm_90a")
    with pytest.raises(nora.NoraUnavailable, match="nora-compile"):
        gpu.cached_artifact(ir, "step", "sm_80", options=("--allow-tf32",))


def test_guarded_step_artifact(tmp_path):
    """A step with a nonfinite guard: its third result is the i64 count
    (plan version 3, and 4 for its zero-once counters), which the host call
    returns as a 0-d int64 array."""
    if gpu._nora_compile_tool() is None:
        pytest.skip("nora-compile is needed")
    for mode in ("skip_row", "skip_step"):
        ir = steps.optimizer_step_ir("nora", 40, 24, nonfinite=mode)
        # sm_90a: the fake driver's GPU.
        art = gpu.compile_artifact(ir, "step", tmp_path / (mode + ".nora"),
                                   "sm_90a")
        assert art.results == [(40, 24), (40, 24), ()]
        assert art.result_dtypes == ["f32", "f32", "i64"]
        text = art.describe()
        assert "version 4" in text and "skipped: i64 scalar" in text
        # Four counters (one row block, the grid barrier, the flagged rows,
        # the finish kernel's departures), zero-filled once.
        assert "once: [0, 16))" in text
        assert "nora_nonfinite_1" in text
    if not os.path.exists(FAKE_DRIVER):
        return
    # The fake driver runs no real kernel: what comes back is the buffers'
    # bytes, in the results' types.
    out = run_isolated("""
        import numpy as np, nora.gpu as gpu
        art = gpu.Artifact(%r)
        z = np.zeros((40, 24), np.float32)
        w, m, s = art(z, z, z, 0.1, 0.0)
        print(w.dtype, w.shape, m.dtype, s.dtype, s.shape)
        """ % str(tmp_path / "skip_row.nora"), NORA_CUDA_DRIVER=FAKE_DRIVER,
        FAKE_CUDA_ANY_KERNEL="1")
    assert out.split() == ["float32", "(40,", "24)", "float32", "int64",
                           "()"], out


def test_optimizer_counts_the_gpu_guard_on_the_device():
    """The CUDA path's count: each guarded call's i64 result is added to a
    device-side total (no host sync in step()); nonfinite_skipped reads it
    and setting it resets it. A stand-in artifact plays the kernels."""
    torch = pytest.importorskip("torch")
    from nora.optim import Nora

    class Kernels:
        def __init__(self, counts):
            self.counts = list(counts)

        def call_device(self, g, w, m, lr, wd, out):
            out[0].copy_(w)
            out[1].copy_(m)
            out[2].fill_(self.counts.pop(0))

    w = torch.zeros(4, 3)
    opt = Nora([torch.nn.Parameter(w.clone())], nonfinite="skip_row")
    group = opt.param_groups[0]
    m = torch.zeros(4, 3)
    art = Kernels([2, 0, 3])
    for _ in range(3):
        opt._gpu_update("k", art, [torch.zeros(4, 3)], w, m, group)
    assert opt.nonfinite_skipped == 5
    assert isinstance(opt._skipped_device[w.device], torch.Tensor)
    opt.nonfinite_skipped = 1
    assert opt.nonfinite_skipped == 1 and not opt._skipped_device


def test_compile_options_reach_nora_compile(tmp_path):
    """compile_artifact passes its options to nora-compile: with
    --allow-tf32 an f32 fused step takes the tf32 kernel (another cubin),
    and a bad option is nora-compile's error."""
    if gpu._nora_compile_tool() is None:
        pytest.skip("nora-compile is needed")
    import sys
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from gpu_steps import step_mlir
    ir = step_mlir("step", 16, 128, 128, act="f32")
    exact = gpu.compile_artifact(ir, "step", tmp_path / "exact.nora", "sm_80")
    tf32 = gpu.compile_artifact(ir, "step", tmp_path / "tf32.nora", "sm_80",
                                options=("--allow-tf32",))
    cubin = lambda art: open(os.path.join(art.path, "kernel0.cubin"),
                             "rb").read()
    assert cubin(exact) != cubin(tf32)
    with pytest.raises(nora.NoraError, match="allow-tf33"):
        gpu.compile_artifact(ir, "step", tmp_path / "bad.nora", "sm_80",
                             options=("--allow-tf33",))


def test_host_lowered_step_on_a_gpu():
    """The step of test/Pipelines/gpu-pipeline.mlir lowered by
    --nora-gpu-host-to-runtime (a shared library on device pointers,
    prepared by scripts/prepare-gpu.sh in $NORA_HOST_STEP) gives bit for bit
    what its artifact gives through call_device: the same kernel, the same
    runtime, on torch CUDA tensors."""
    chip = cuda_device()
    if chip is None:
        pytest.skip("no CUDA GPU on this machine")
    where = os.environ.get("NORA_HOST_STEP")
    if not where or not os.path.exists(os.path.join(where, "libstep.so")):
        pytest.skip("no prepared host-lowered step ($NORA_HOST_STEP, "
                    "scripts/prepare-gpu.sh)")
    torch = pytest.importorskip("torch")
    import ctypes
    art = gpu.Artifact(os.path.join(where, "step.nora"))
    art.load(0)  # loads libNoraRuntimeCAPI.so, which libstep.so needs
    lib = ctypes.CDLL(os.path.join(where, "libstep.so"))
    p, f = ctypes.c_void_p, ctypes.c_float
    lib.nora_step.argtypes = [p, p, p, p, f, f, p, p, p]
    lib.nora_step.restype = ctypes.c_int
    lib.nora_runtime_last_error.restype = ctypes.c_char_p
    gen = torch.Generator(device="cuda").manual_seed(5)
    dy = torch.randn(32, 128, device="cuda", generator=gen).bfloat16()
    x = torch.randn(32, 96, device="cuda", generator=gen).bfloat16()
    w = torch.randn(128, 96, device="cuda", generator=gen)
    m = torch.randn(128, 96, device="cuda", generator=gen)
    want_w, want_m = art.call_device(dy, x, w, m, 0.02, 0.01)
    got_w, got_m = torch.empty_like(w), torch.empty_like(m)
    stream = torch.cuda.current_stream().cuda_stream
    rc = lib.nora_step(dy.data_ptr(), x.data_ptr(), w.data_ptr(),
                       m.data_ptr(), 0.02, 0.01, got_w.data_ptr(),
                       got_m.data_ptr(), stream)
    assert rc == 0, lib.nora_runtime_last_error()
    torch.cuda.synchronize()
    assert torch.equal(got_w, want_w) and torch.equal(got_m, want_m)


def test_on_a_gpu(tmp_path):
    chip = cuda_device()
    if chip is None:
        pytest.skip("no CUDA GPU on this machine (the GPU run of the fused "
                    "step needs one)")
    if not nora.available():
        pytest.skip("nora-compile needs the compiler")
    T, M, N = 64, 300, 200
    ir = steps.optimizer_step_ir("nora", M, N, tokens=T, act="bf16")
    art = gpu.compile_artifact(ir, "step", tmp_path / "s.nora", chip=chip)
    rng = np.random.default_rng(1)
    dy = R.bf16_round(rng.standard_normal((T, M), dtype=np.float32))
    x = R.bf16_round(rng.standard_normal((T, N), dtype=np.float32))
    w = rng.standard_normal((M, N), dtype=np.float32) * 0.05
    m = rng.standard_normal((M, N), dtype=np.float32) * 0.1
    w1, m1 = art(dy, x, w, m, 0.01, 0.1)
    w2, m2 = art(dy, x, w, m, 0.01, 0.1)
    assert np.array_equal(w1, w2) and np.array_equal(m1, m2)
    wc, mc = nora.compile(ir)(dy, x, w, m, 0.01, 0.1)
    for got, want in ((w1, wc), (m1, mc)):
        err = np.abs(got - want) / (1 + np.abs(want))
        assert err.max() <= 1e-4, err.max()


def torch_on_a_gpu(what):
    """torch, or a skip saying what needs a GPU and the artifacts."""
    torch = pytest.importorskip("torch")
    if cuda_device() is None or not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine (%s needs one)" % what)
    if gpu._nora_compile_tool() is None and \
            not os.environ.get("NORA_ARTIFACT_CACHE"):
        pytest.skip("nora-compile or an artifact cache (NORA_ARTIFACT_CACHE, "
                    "scripts/prepare-gpu.sh fills one) is needed")
    return torch


def test_optimizer_on_cuda_parameters():
    """nora.optim.Nora/RMNP on CUDA parameters: the GPU kernel of the step
    alone (backend "nora") against the PyTorch backend, 5 steps."""
    torch = torch_on_a_gpu("the CUDA path of the optimizers")
    from nora import optim
    for Opt in (optim.Nora, optim.RMNP):
        torch.manual_seed(0)
        w0 = torch.randn(96, 80, device="cuda") * 0.02
        ws = [w0.clone().requires_grad_(), w0.clone().requires_grad_()]
        opts = [Opt([ws[0]], lr=0.02, backend="nora"),
                Opt([ws[1]], lr=0.02, backend="torch")]
        for _ in range(5):
            g = torch.randn(96, 80, device="cuda")
            for w, o in zip(ws, opts):
                w.grad = g.clone()
                o.step()
        torch.cuda.synchronize()
        diff = (ws[0] - ws[1]).abs().max().item()
        assert diff <= 1e-5 * ws[1].abs().max().item() + 1e-7, (Opt, diff)


def test_guarded_optimizer_on_cuda_parameters():
    """nonfinite= on CUDA parameters: the GPU kernels' guard against the
    PyTorch backend's, with NaN and Inf rows, both modes: kept rows bit for
    bit, the same counts."""
    torch = torch_on_a_gpu("the CUDA path's nonfinite guard")
    from nora import optim
    for mode in ("skip_row", "skip_step"):
        torch.manual_seed(0)
        w0 = torch.randn(96, 80, device="cuda") * 0.02
        ws = [w0.clone().requires_grad_(), w0.clone().requires_grad_()]
        opts = [optim.Nora([ws[0]], lr=0.02, backend="nora", nonfinite=mode),
                optim.Nora([ws[1]], lr=0.02, backend="torch",
                           nonfinite=mode)]
        for step in range(4):
            g = torch.randn(96, 80, device="cuda")
            if step % 2:
                g[3, 5] = float("nan")
                g[70, 0] = float("inf")
            for w, o in zip(ws, opts):
                w.grad = g.clone()
                o.step()
        torch.cuda.synchronize()
        assert opts[0].nonfinite_skipped == opts[1].nonfinite_skipped, mode
        diff = (ws[0] - ws[1]).abs().max().item()
        assert diff <= 1e-5 * ws[1].abs().max().item() + 1e-7, (mode, diff)


def test_fused_linear_on_cuda():
    """nora.nn.Linear on CUDA: the fused kernel (gradient and update in one
    launch, tensor cores for bf16 activations) against the PyTorch
    backend, 3 steps."""
    torch = torch_on_a_gpu("the fused Linear's CUDA path")
    from nora import nn
    torch.manual_seed(0)
    layers = [nn.Linear(80, 96, backend=b).cuda() for b in ("nora", "torch")]
    layers[1].weight.data.copy_(layers[0].weight.data)
    for step in range(3):
        x = torch.randn(64, 80, device="cuda")
        for layer in layers:
            layer(x).square().sum().backward()
    torch.cuda.synchronize()
    w0, w1 = layers[0].weight.data, layers[1].weight.data
    assert (w0 - w1).abs().max().item() <= 1e-4 * w1.abs().max().item()
