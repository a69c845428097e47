"""Compile nora IR for the CPU, call it on numpy arrays or torch tensors, and
read the IR back at every pipeline stage.

    import nora
    step = nora.compile(ir_text, entry="step")       # CPU JIT, fused
    w_new, m_new = step(dy, x, w, m, 0.01, 0.0)      # numpy or torch (CPU)
    print(nora.lower(ir_text, "fused"))              # IR after fusion
    stages = nora.stages(ir_text)                    # every stage, in order

Tensor arguments are passed without a copy when they are C-contiguous and
already of the argument's element type (f32; bf16/f16 as 16-bit patterns);
otherwise they are converted once (numpy: float arrays are rounded to
nearest even for bf16/f16). Results are new f32 (or int64) arrays, or
written into `out=` buffers. Shapes and dtypes are checked before the call:
a mismatch is a ValueError/TypeError that names the argument.
"""

import ctypes
import os

import numpy as np

from . import _capi
from ._capi import NoraError

__all__ = ["compile", "lower", "stages", "Step", "STAGES", "NoraError"]

_DTYPES = {0: "f32", 1: "bf16", 2: "f16"}

# The stages of the compiler, each as the pass pipeline that produces it from
# what a front end writes (docs/passes/).
STAGES = {
    "decomposed": "builtin.module(nora-decompose)",
    "fused": "builtin.module(nora-decompose,nora-fuse-wgrad-epilogue)",
    "panels": "builtin.module(nora-decompose,nora-fuse-wgrad-epilogue,"
              "nora-fused-step-to-panels)",
    "linalg": "builtin.module(nora-decompose,nora-fuse-wgrad-epilogue,"
              "nora-fused-step-to-panels,convert-nora-to-linalg)",
    "llvm": "builtin.module(nora-cpu-pipeline)",
    "gpu": "builtin.module(nora-decompose,nora-fuse-wgrad-epilogue,"
           "nora-fused-step-to-gpu)",
    "ptx": "builtin.module(nora-gpu-pipeline{chip=sm_90a format=isa})",
}


def lower(ir, stage_or_pipeline):
    """The IR after `stage_or_pipeline`: a key of STAGES, or a textual pass
    pipeline as mlir-opt's --pass-pipeline takes it."""
    lib = _capi.load()
    pipeline = STAGES.get(stage_or_pipeline, stage_or_pipeline)
    data = ir.encode()
    error = ctypes.c_void_p()
    out = lib.nora_lower(data, len(data), pipeline.encode(),
                         ctypes.byref(error))
    if not out:
        raise NoraError(_capi.take_string(lib.nora_string_free, error.value))
    return _capi.take_string(lib.nora_string_free, out)


def stages(ir, names=("decomposed", "fused", "panels", "linalg", "llvm")):
    """{stage: IR} for each stage in `names` (see STAGES)."""
    return {name: lower(ir, name) for name in names}


def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


class Step:
    """A nora function compiled for the CPU. Call it with its arguments in
    order: tensors (numpy arrays or CPU torch tensors) and floats."""

    def __init__(self, ir, entry, fuse=True, nonfinite=None, threads=False):
        self._lib = _capi.load()
        data = ir.encode()
        error = ctypes.c_void_p()
        handle = self._lib.nora_compile_cpu(
            data, len(data), entry.encode(),
            (1 if fuse else 0) | (2 if threads else 0),
            (nonfinite or "").encode(), ctypes.byref(error))
        if not handle:
            raise NoraError(_capi.take_string(self._lib.nora_string_free, error.value))
        self._handle = ctypes.c_void_p(handle)
        self.entry = entry
        self.arguments = []
        for i in range(self._lib.nora_function_num_arguments(self._handle)):
            is_tensor, dtype, rank = ctypes.c_int(), ctypes.c_int(), \
                ctypes.c_int()
            dims = (ctypes.c_int64 * 8)()
            self._lib.nora_function_argument(
                self._handle, i, ctypes.byref(is_tensor), ctypes.byref(dtype),
                ctypes.byref(rank), dims)
            self.arguments.append(
                (bool(is_tensor.value), _DTYPES[dtype.value],
                 tuple(dims[d] for d in range(rank.value))))
        self.results = []
        for k in range(self._lib.nora_function_num_results(self._handle)):
            is_int, rank = ctypes.c_int(), ctypes.c_int()
            dims = (ctypes.c_int64 * 8)()
            self._lib.nora_function_result(self._handle, k,
                                           ctypes.byref(is_int),
                                           ctypes.byref(rank), dims)
            self.results.append(
                (np.int64 if is_int.value else np.float32,
                 tuple(dims[d] for d in range(rank.value))))

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle:
            self._lib.nora_function_destroy(handle)
            self._handle = None

    def __repr__(self):
        def t(a):
            return ("%s[%s]" % (a[1], "x".join("?" if d < 0 else str(d)
                                                for d in a[2]))
                    if a[0] else "f32")
        return "<nora.Step @%s(%s) -> %d results>" % (
            self.entry, ", ".join(t(a) for a in self.arguments),
            len(self.results))

    def _tensor(self, index, value, dtype, dims, keep):
        where = "argument #%d of @%s" % (index, self.entry)
        torch = _torch()
        if torch is not None and isinstance(value, torch.Tensor):
            if value.device.type != "cpu":
                raise ValueError("%s is on %s; the compiled CPU step takes "
                                 "CPU tensors" % (where, value.device))
            want = {"f32": torch.float32, "bf16": torch.bfloat16,
                    "f16": torch.float16}[dtype]
            if value.dtype != want:
                if not value.dtype.is_floating_point:
                    raise TypeError("%s must be a floating tensor (%s), got "
                                    "%s" % (where, dtype, value.dtype))
                value = value.to(want)
            value = value.detach().contiguous()
            keep.append(value)
            shape, pointer = tuple(value.shape), value.data_ptr()
        else:
            array = _capi.host_array(value, dtype, where)
            keep.append(array)
            shape, pointer = array.shape, array.ctypes.data
        if len(shape) != len(dims) or any(
                d >= 0 and d != s for d, s in zip(dims, shape)):
            raise ValueError("%s has shape %s, the function takes %s"
                             % (where, tuple(shape),
                                tuple("?" if d < 0 else d for d in dims)))
        sizes = (ctypes.c_int64 * max(1, len(shape)))(*shape)
        keep.append(sizes)
        return pointer, sizes

    def __call__(self, *args, out=None):
        if len(args) != len(self.arguments):
            raise TypeError("@%s takes %d arguments, got %d"
                            % (self.entry, len(self.arguments), len(args)))
        n = len(args)
        keep = []
        tensors = (ctypes.c_void_p * n)()
        shapes = (ctypes.POINTER(ctypes.c_int64) * n)()
        scalars = (ctypes.c_float * n)()
        for i, (value, (is_tensor, dtype, dims)) in enumerate(
                zip(args, self.arguments)):
            if is_tensor:
                pointer, sizes = self._tensor(i, value, dtype, dims, keep)
                tensors[i] = pointer
                shapes[i] = ctypes.cast(sizes, ctypes.POINTER(ctypes.c_int64))
            else:
                scalars[i] = _capi.check_scalar(
                    value, "argument #%d of @%s" % (i, self.entry))
        outputs = self._outputs(out)
        results = (ctypes.c_void_p * len(outputs))()
        for k, o in enumerate(outputs):
            results[k] = (o.data_ptr() if not isinstance(o, np.ndarray)
                          else o.ctypes.data)
        error = ctypes.c_void_p()
        status = self._lib.nora_function_call(self._handle, tensors, shapes,
                                              scalars, results,
                                              ctypes.byref(error))
        if status != 0:
            raise NoraError(_capi.take_string(self._lib.nora_string_free, error.value))
        del keep
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _outputs(self, out):
        """New result arrays, or the checked `out` buffers."""
        if out is None:
            return [np.empty(shape, dtype) for dtype, shape in self.results]
        if not isinstance(out, (list, tuple)):
            out = [out]
        if len(out) != len(self.results):
            raise ValueError("@%s has %d results, out= gives %d"
                             % (self.entry, len(self.results), len(out)))
        torch = _torch()
        for k, (o, (dtype, shape)) in enumerate(zip(out, self.results)):
            if torch is not None and isinstance(o, torch.Tensor):
                want = torch.float32 if dtype == np.float32 else torch.int64
                ok = (o.device.type == "cpu" and o.dtype == want and
                      tuple(o.shape) == shape and o.is_contiguous())
            else:
                ok = (isinstance(o, np.ndarray) and o.dtype == dtype and
                      o.shape == shape and o.flags.c_contiguous and
                      o.flags.writeable)
            if not ok:
                raise ValueError("out[%d] must be a writable C-contiguous "
                                 "CPU %s buffer of shape %s" %
                                 (k, np.dtype(dtype).name, shape))
        return list(out)


def compile(ir, entry=None, device="cpu", fuse=True, nonfinite=None,
            threads=False, chip="sm_90a"):
    """Compiles function `entry` of the MLIR text `ir` (the only function
    when None). device="cpu": the CPU JIT; device="cuda": nora-compile for
    `chip` into a temporary artifact, run by the LLVM-free runtime
    (nora.gpu.Artifact). nonfinite: None, "skip_step" or
    "skip_row" (the step then returns the count of skipped rows/steps).
    threads: run the row panels of fused steps on OpenMP threads. Off by
    default: it loads LLVM's OpenMP runtime into the process for good, and
    a library that bundles its own LLVM (triton, which torch.compile and
    torch.optim import) then crashes when it is imported later."""
    if device not in ("cpu", "cuda"):
        raise ValueError("nora.compile: device must be 'cpu' or 'cuda', got "
                         "%r" % (device,))
    if nonfinite not in (None, "", "skip_step", "skip_row"):
        raise ValueError("nonfinite must be None, 'skip_step' or 'skip_row'")
    if entry is None:
        import re
        names = re.findall(r"func\.func\s+@([\w$.]+)", ir)
        if len(names) != 1:
            raise ValueError("nora.compile: give entry= (the IR has %d "
                             "functions)" % len(names))
        entry = names[0]
    if device == "cuda":
        if nonfinite or not fuse:
            raise ValueError("nora.compile: device='cuda' compiles fused "
                             "steps without a non-finite guard")
        import tempfile
        from . import gpu
        out = tempfile.mkdtemp(prefix="nora-%s-" % entry)
        return gpu.compile_artifact(ir, entry, os.path.join(out, "step.nora"),
                                    chip=chip)
    return Step(ir, entry, fuse=fuse, nonfinite=nonfinite, threads=threads)
