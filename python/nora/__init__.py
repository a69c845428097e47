"""nora: fused matrix-optimizer updates in the weight-gradient GEMM.

- ``nora.compile(ir, entry)``: a nora function compiled for the CPU JIT,
  callable on numpy arrays and CPU torch tensors; ``nora.lower(ir, stage)``
  and ``nora.stages(ir)``: the IR at every stage of the compiler. These need
  the compiled library (libNoraCAPI.so, see ``nora.available()``).
- ``nora.steps``: the IR of Nora / RMNP steps for given shapes.
- ``nora.optim``: ``Nora`` and ``RMNP`` torch optimizers (needs torch).
- ``nora.reference``: float64 evaluation of every nora op (SEMANTICS.md).
- ``nora.official``: the official Nora / RMNP PyTorch optimizers' formulas
  transcribed to float32 numpy, to check that the op semantics match them.
"""

from ._capi import NoraError, NoraUnavailable, available
from .compiler import STAGES, Step, compile, lower, stages

__all__ = ["compile", "lower", "stages", "Step", "STAGES", "available",
           "NoraError", "NoraUnavailable"]
