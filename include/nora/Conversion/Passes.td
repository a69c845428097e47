//===- Passes.td - nora conversion passes ------------------*- tablegen -*-===//

#ifndef NORA_CONVERSION_PASSES_TD
#define NORA_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertNoraToLinalg : Pass<"convert-nora-to-linalg"> {
  let summary = "Lower nora ops to linalg on tensors, op by op (the CPU semantics)";
  let description = [{
    Rewrites every nora op into `linalg.generic` ops on tensors that keep the
    accumulation rules of SEMANTICS.md:

    - `nora.wgrad`: a contraction with loops (i, k, j) that extends bf16/f16
      inputs to f32 and accumulates in f32, k ascending (deterministic);
      `scale` and `acc` are applied after the sum.
    - `nora.momentum`: torch's `lerp` form, elementwise in f32.
    - `nora.orth_project`, `nora.row_normalize`: the row statistics
      `<u, w>`, `||w||^2`, `||v||^2` are accumulated in f64, one per-row
      coefficient is computed in f64, and `v` (resp. `d`) is formed in f64 and
      rounded once to f32. `v` is computed before its norm, so rows where `u`
      is almost parallel to `w` keep full accuracy.
    - `nora.apply_update`: `w * f32(1 - lr * wd) + (-lr) * d` in f32.
    - `nora.fused_wgrad_step`: the contraction, then the epilogue region
      inlined (the op-by-op reference of the fused path).
    - `nora.nora_step`, `nora.rmnp_step`: decomposed first.

    Zero rows never divide by zero, also with `eps = 0`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect", "::mlir::tensor::TensorDialect"
  ];
}

#endif // NORA_CONVERSION_PASSES_TD
