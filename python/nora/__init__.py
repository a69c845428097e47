"""nora: fused matrix-optimizer updates in the weight-gradient GEMM.

Pure-numpy modules available here:

- ``nora.reference``: float64 evaluation of every nora op (SEMANTICS.md).
- ``nora.official``: the official Nora / RMNP PyTorch optimizers' formulas
  transcribed to float32 numpy, to check that the op semantics match them.
"""
