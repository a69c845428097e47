//===- Passes.td - nora dialect passes ---------------------*- tablegen -*-===//

#ifndef NORA_DIALECT_NORA_TRANSFORMS_PASSES_TD
#define NORA_DIALECT_NORA_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def NoraDecompose : Pass<"nora-decompose"> {
  let summary = "Expand composite optimizer steps into primitive nora ops";
  let description = [{
    Rewrites `nora.nora_step` into `nora.momentum`, `nora.orth_project`,
    `nora.row_normalize` and `nora.apply_update`, and `nora.rmnp_step` into
    the same chain without `nora.orth_project`. Defaults are materialized: a
    Nesterov step gets `nesterov = beta`, and an absent `scale` becomes
    `max(1, sqrt(M/N))` (Nora) or `0.2 * sqrt(max(M, N))` (RMNP) from the
    static shape of `w`; a dynamic shape with no `scale` is an error.

    Before:
    ```mlir
    %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd
        : tensor<512x128xf32>, tensor<512x128xf32>, tensor<512x128xf32>
    ```
    After:
    ```mlir
    %m1, %u = nora.momentum %m, %g {beta = 0.95 : f32, nesterov = 0.95 : f32}
        : tensor<512x128xf32>, tensor<512x128xf32>
    %v = nora.orth_project %u, %w {eps = 1.0e-10 : f32}
        : tensor<512x128xf32>, tensor<512x128xf32>
    %d = nora.row_normalize %v {eps = 1.0e-10 : f32, scale = 2.0 : f32}
        : tensor<512x128xf32>
    %w1 = nora.apply_update %w, %d, %lr, %wd
        : tensor<512x128xf32>, tensor<512x128xf32>
    ```
  }];
  let dependentDialects = ["::mlir::nora::NoraDialect"];
}

#endif // NORA_DIALECT_NORA_TRANSFORMS_PASSES_TD
