"""The GPU path: step artifacts (nora-compile's plan.json + cubin) run
through nora's LLVM-free runtime (libNoraRuntimeCAPI.so, which opens the CUDA
driver at run time), so that a training process needs no compiler.

    import nora.gpu
    nora.gpu.compile_artifact(ir, "step", "step.nora", chip="sm_90a")  # needs nora-compile
    art = nora.gpu.Artifact("step.nora")        # validates; no GPU needed
    print(art.describe())
    w_new, m_new = art(dy, x, w, m, 0.01, 0.0)  # numpy or torch (any device)
    art(dy, x, w, m, 0.01, 0.0, repeats=20); art.last_timing  # (median_ms, min_ms)

`nora.compile(ir, device="cuda")` does both steps. Arguments are copied
to the device for each call and results come back as float32 numpy arrays
(torch tensors on a GPU are copied through the host: zero-copy device
pointers are not in the runtime's API yet).

The runtime library is found like the compiler's: $NORA_RUNTIME_LIBRARY, the
package's `_lib/`, the build trees (build/lib, build-runtime/lib), the
system path. $NORA_CUDA_DRIVER names another driver library (tests).
"""

import ctypes
import os
import shutil
import subprocess

import numpy as np

from . import _capi
from ._capi import NoraError, NoraUnavailable

__all__ = ["Artifact", "cached_artifact", "compile_artifact",
           "runtime_available"]

_DTYPES = {0: "f32", 1: "bf16", 2: "f16"}
_lib = None


def _declare(lib):
    c, p = ctypes, ctypes.c_void_p
    lib.nora_artifact_open.restype = p
    lib.nora_artifact_open.argtypes = [c.c_char_p, c.POINTER(p)]
    lib.nora_artifact_close.argtypes = [p]
    for name in ("nora_artifact_entry", "nora_artifact_describe",
                 "nora_artifact_device_name"):
        getattr(lib, name).restype = c.c_char_p
        getattr(lib, name).argtypes = [p]
    lib.nora_artifact_num_arguments.argtypes = [p]
    lib.nora_artifact_num_results.argtypes = [p]
    i = c.POINTER(c.c_int)
    dims = c.POINTER(c.c_int64)
    lib.nora_artifact_argument.argtypes = [p, c.c_int, i, i, i, dims]
    lib.nora_artifact_result.argtypes = [p, c.c_int, i, dims]
    lib.nora_artifact_result_is_count.argtypes = [p, c.c_int]
    lib.nora_artifact_load.argtypes = [p, c.c_int, c.POINTER(p)]
    lib.nora_artifact_call.argtypes = [
        p, c.POINTER(p), c.POINTER(c.c_float),
        c.POINTER(c.POINTER(c.c_float)), c.c_uint,
        c.POINTER(c.c_double), c.POINTER(c.c_double), c.POINTER(p)]
    lib.nora_artifact_call_device.argtypes = [
        p, c.POINTER(c.c_uint64), c.POINTER(c.c_float),
        c.POINTER(c.c_uint64), p, c.POINTER(p)]
    lib.nora_runtime_string_free.argtypes = [p]


def _load():
    global _lib
    if _lib is None:
        _lib = _capi.open_library(
            "libNoraRuntimeCAPI.so", "NORA_RUNTIME_LIBRARY",
            ("build", "build-runtime"), "nora_runtime_api_version", 4,
            _declare, "build nora (or scripts/build-runtime.sh) or set "
            "NORA_RUNTIME_LIBRARY")
    return _lib


def runtime_available():
    """Whether the runtime library loads (a GPU may still be missing)."""
    try:
        _load()
        return True
    except NoraUnavailable:
        return False


def _message(lib, pointer):
    return _capi.take_string(lib.nora_runtime_string_free, pointer)


def _to_numpy(value):
    try:
        import torch
        if isinstance(value, torch.Tensor):
            value = value.detach()
            if value.dtype == torch.bfloat16:
                return value.cpu().view(torch.int16).numpy().view(np.uint16)
            return value.cpu().numpy()
    except ImportError:
        pass
    return np.asarray(value)


class Artifact:
    """A step artifact, validated when opened; kernels load on first call
    (or `load(device)`)."""

    def __init__(self, path):
        self._lib = _load()
        error = ctypes.c_void_p()
        handle = self._lib.nora_artifact_open(os.fspath(path).encode(),
                                              ctypes.byref(error))
        if not handle:
            raise NoraError(_message(self._lib, error.value))
        self._handle = ctypes.c_void_p(handle)
        self.path = os.fspath(path)
        self.entry = self._lib.nora_artifact_entry(self._handle).decode()
        self.arguments = []
        for k in range(self._lib.nora_artifact_num_arguments(self._handle)):
            t, d, r = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            dims = (ctypes.c_int64 * 8)()
            self._lib.nora_artifact_argument(self._handle, k, ctypes.byref(t),
                                             ctypes.byref(d), ctypes.byref(r),
                                             dims)
            self.arguments.append((bool(t.value), _DTYPES[d.value],
                                   tuple(dims[j] for j in range(r.value))))
        self.results = []
        for k in range(self._lib.nora_artifact_num_results(self._handle)):
            r = ctypes.c_int()
            dims = (ctypes.c_int64 * 8)()
            self._lib.nora_artifact_result(self._handle, k, ctypes.byref(r),
                                           dims)
            self.results.append(tuple(dims[j] for j in range(r.value)))
        #: Per result: "f32" (a tensor) or "i64" (a guarded step's count,
        #: shape ()).
        self.result_dtypes = [
            "i64" if self._lib.nora_artifact_result_is_count(self._handle, k)
            == 1 else "f32" for k in range(len(self.results))]
        self.last_timing = None

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle:
            self._lib.nora_artifact_close(handle)
            self._handle = None

    def describe(self):
        """The plan, as nora-exec --print-plan prints it."""
        return self._lib.nora_artifact_describe(self._handle).decode()

    def load(self, device=0):
        """Opens CUDA device `device` and loads the kernels."""
        error = ctypes.c_void_p()
        if self._lib.nora_artifact_load(self._handle, int(device),
                                        ctypes.byref(error)) != 0:
            raise NoraError(_message(self._lib, error.value))
        return self

    @property
    def device_name(self):
        return self._lib.nora_artifact_device_name(self._handle).decode()

    def _tensor(self, index, value, dtype, shape, keep):
        where = "argument #%d of %s" % (index, self.entry)
        array = _to_numpy(value)
        if array.shape != shape:
            raise ValueError("%s has shape %s, the artifact takes %s"
                             % (where, array.shape, shape))
        array = _capi.host_array(array, dtype, where)
        keep.append(array)
        return array.ctypes.data

    def __call__(self, *args, repeats=0):
        if len(args) != len(self.arguments):
            raise TypeError("%s takes %d arguments, got %d"
                            % (self.entry, len(self.arguments), len(args)))
        n = len(args)
        keep = []
        tensors = (ctypes.c_void_p * n)()
        scalars = (ctypes.c_float * n)()
        for i, (value, (is_tensor, dtype, shape)) in enumerate(
                zip(args, self.arguments)):
            if is_tensor:
                tensors[i] = self._tensor(i, value, dtype, shape, keep)
            else:
                scalars[i] = _capi.check_scalar(
                    value, "argument #%d of %s" % (i, self.entry))
        outputs = [np.empty(shape, np.int64 if dtype == "i64" else np.float32)
                   for shape, dtype in zip(self.results, self.result_dtypes)]
        results = (ctypes.POINTER(ctypes.c_float) * len(outputs))()
        for k, o in enumerate(outputs):
            results[k] = o.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        median, minimum = ctypes.c_double(), ctypes.c_double()
        error = ctypes.c_void_p()
        status = self._lib.nora_artifact_call(
            self._handle, tensors, scalars, results, int(repeats),
            ctypes.byref(median), ctypes.byref(minimum), ctypes.byref(error))
        if status != 0:
            raise NoraError(_message(self._lib, error.value))
        if repeats:
            self.last_timing = (median.value, minimum.value)
        del keep
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def call_device(self, *args, out=None, stream=None):
        """One call on device memory, nothing copied through the host:
        torch CUDA tensors (contiguous, the plan's dtypes and shapes) for
        the tensor arguments, numbers for the scalars. Results go to `out`
        (f32 CUDA tensors of the result shapes; allocated on the arguments'
        device when None) and are returned. Runs on `stream` (a CUstream
        handle as int; default: torch's current stream of that device) and
        returns without waiting, like any CUDA op. Raw device pointers (int)
        may stand in for tensors. Calls of one artifact share its
        workspace: keep them on one stream."""
        if len(args) != len(self.arguments):
            raise TypeError("%s takes %d arguments, got %d"
                            % (self.entry, len(self.arguments), len(args)))
        n = len(args)
        tensors = (ctypes.c_uint64 * n)()
        scalars = (ctypes.c_float * n)()
        device = None
        for i, (value, (is_tensor, dtype, shape)) in enumerate(
                zip(args, self.arguments)):
            where = "argument #%d of %s" % (i, self.entry)
            if not is_tensor:
                scalars[i] = _capi.check_scalar(value, where)
                continue
            tensors[i], dev = _device_pointer(value, dtype, shape, where)
            if dev is not None:
                if device is not None and dev != device:
                    raise ValueError("%s is on %s, an earlier argument on %s"
                                     % (where, dev, device))
                device = dev
        if out is None:
            if device is None:
                raise TypeError("call_device with raw pointers needs `out`")
            import torch
            out = [torch.empty(shape, dtype=torch.int64 if dtype == "i64"
                               else torch.float32, device=device)
                   for shape, dtype in zip(self.results, self.result_dtypes)]
        out = list(out)
        if len(out) != len(self.results):
            raise TypeError("%s has %d results, got %d outputs"
                            % (self.entry, len(self.results), len(out)))
        results = (ctypes.c_uint64 * len(out))()
        for k, (o, shape, dtype) in enumerate(
                zip(out, self.results, self.result_dtypes)):
            where = "result #%d of %s" % (k, self.entry)
            results[k], dev = _device_pointer(o, dtype, shape, where)
            if dev is not None and device is not None and dev != device:
                raise ValueError("%s is on %s, the arguments on %s"
                                 % (where, dev, device))
            device = device or dev
        if stream is None and device is not None:
            import torch
            stream = torch.cuda.current_stream(device).cuda_stream
        if not self.device_name:
            self.load(device.index if device is not None else 0)
        error = ctypes.c_void_p()
        status = self._lib.nora_artifact_call_device(
            self._handle, tensors, scalars, results,
            ctypes.c_void_p(stream or None), ctypes.byref(error))
        if status != 0:
            raise NoraError(_message(self._lib, error.value))
        return out[0] if len(out) == 1 else tuple(out)


_TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16",
                 "i64": "int64"}


def _device_pointer(value, dtype, shape, where):
    """(CUdeviceptr, torch device or None) of a tensor argument of
    call_device: a contiguous CUDA tensor of the plan's dtype and shape, or
    an int (a raw device pointer the caller vouches for)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    try:
        import torch
    except ImportError:
        raise TypeError("%s: call_device takes torch CUDA tensors (or raw "
                        "device pointers as int)" % where)
    if not isinstance(value, torch.Tensor):
        raise TypeError("%s: expected a torch CUDA tensor, got %s"
                        % (where, type(value).__name__))
    if value.device.type != "cuda":
        raise ValueError("%s is on %s; call_device takes CUDA tensors (use "
                         "the artifact's __call__ for host memory)"
                         % (where, value.device))
    want = getattr(torch, _TORCH_DTYPES[dtype])
    if value.dtype != want:
        raise ValueError("%s has dtype %s, the artifact takes %s"
                         % (where, value.dtype, want))
    if tuple(value.shape) != tuple(shape):
        raise ValueError("%s has shape %s, the artifact takes %s"
                         % (where, tuple(value.shape), tuple(shape)))
    if not value.is_contiguous():
        raise ValueError("%s is not contiguous" % where)
    return value.data_ptr(), value.device


def device_ready(tensor):
    """`tensor` as call_device takes it: contiguous and 16-byte aligned (a
    copy only when it is not)."""
    if tensor.is_contiguous() and tensor.data_ptr() % 16 == 0:
        return tensor
    return tensor.contiguous().clone() if tensor.is_contiguous() else \
        tensor.contiguous()


def _nora_compile_tool():
    env = os.environ.get("NORA_COMPILE")
    if env:
        return env
    local = os.path.normpath(os.path.join(os.path.dirname(__file__), "..",
                                          "..", "build", "bin",
                                          "nora-compile"))
    if os.access(local, os.X_OK):
        return local
    return shutil.which("nora-compile")


def compile_artifact(ir, entry, out_dir, chip="sm_90a", options=()):
    """Runs nora-compile on `ir` (MLIR text) and opens the artifact it writes
    to `out_dir`. `options` are more nora-compile flags (e.g.
    ``("--allow-tf32",)``). Needs the compiler (a machine with LLVM/MLIR)."""
    tool = _nora_compile_tool()
    if not tool or not os.access(tool, os.X_OK):
        raise NoraUnavailable("nora-compile was not found (build nora, or set "
                              "NORA_COMPILE); on a machine without LLVM, "
                              "open an artifact compiled elsewhere with "
                              "nora.gpu.Artifact(path)")
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".mlir", delete=False) as f:
        f.write(ir)
        source = f.name
    try:
        res = subprocess.run([tool, source, "--entry=" + entry,
                              "--chip=" + chip] + list(options) +
                             ["-o", os.fspath(out_dir)],
                             capture_output=True, text=True)
    finally:
        os.unlink(source)
    if res.returncode != 0:
        raise NoraError(res.stderr.strip())
    return Artifact(out_dir)


def cached_artifact(ir, entry, chip, options=()):
    """The artifact of `ir` for `chip` (and nora-compile `options`, part of
    its name), from the artifact cache when it is
    there, else compiled into it. The cache is $NORA_ARTIFACT_CACHE (a
    directory; several separated by ':' are searched in order and the first
    is written), else ~/.cache/nora/artifacts. An artifact is named by a
    hash of the IR, the entry and the chip, so artifacts compiled ahead on
    another machine (with the same nora) are found by a training process
    that has no compiler: copy them into its cache."""
    import hashlib
    key = hashlib.sha256(("%s\0%s\0%s" % (ir, entry, chip) +
                          "".join("\0" + o for o in options)).encode())
    name = "%s-%s-%s.nora" % (entry, chip, key.hexdigest()[:20])
    dirs = [d for d in os.environ.get("NORA_ARTIFACT_CACHE", "").split(":")
            if d] or [os.path.join(os.path.expanduser("~"), ".cache", "nora",
                                   "artifacts")]
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.isfile(os.path.join(path, "plan.json")):
            return Artifact(path)
    os.makedirs(dirs[0], exist_ok=True)
    return compile_artifact(ir, entry, os.path.join(dirs[0], name), chip=chip,
                            options=options)
