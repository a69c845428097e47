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

def NoraFuseWgradEpilogue : Pass<"nora-fuse-wgrad-epilogue"> {
  let summary = "Fuse the weight-gradient matmul and the optimizer chain into "
                "one nora.fused_wgrad_step";
  let description = [{
    Finds the weight-gradient contraction `g = dy^T x (+ acc)` written as
    `nora.wgrad`, as `linalg.matmul` (or a contraction `linalg.generic`)
    whose `indexing_maps` read the first operand transposed, on a
    `linalg.fill` of zero or on an accumulator, or as `linalg.transpose` (or
    an equivalent `linalg.generic`) of dy feeding a plain `linalg.matmul`.
    It follows g through the optimizer chain (ops implementing
    `RowwiseEpilogueOpInterface` and elementwise arith/math ops on tensors)
    up to one `nora.momentum` (giving `m` and `m_new`) and one
    `nora.apply_update` (giving `w`, `lr`, `wd` and `w_new`), and replaces
    the contraction and the chain with one `nora.fused_wgrad_step` holding
    the chain in its region. The chain may read only `w`, `m`, `lr`, `wd`
    and constants from outside; anything else leaves the step unfused.

    When an intermediate (g, u, v, d, ...) has a use outside the chain, the
    step is fused all the same and the original ops stay for that use, so
    the value remains correct. Several steps in one function fuse on their
    own. See docs/passes/nora-fuse-wgrad-epilogue.md for IR before and
    after for each input form.
  }];
  let dependentDialects = ["::mlir::nora::NoraDialect"];
}

#endif // NORA_DIALECT_NORA_TRANSFORMS_PASSES_TD
