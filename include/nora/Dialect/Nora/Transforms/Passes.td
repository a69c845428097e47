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

def NoraGuardNonfinite : Pass<"nora-guard-nonfinite", "::mlir::func::FuncOp"> {
  let summary = "Guard every optimizer step against a non-finite gradient";
  let description = [{
    Gives every optimizer step of the function that has no guard yet the
    non-finite mode `mode` (`skip_row` or `skip_step`, see
    `nora.skip_nonfinite`): composite steps and `nora.fused_wgrad_step` get
    the `nonfinite` attribute and their `skipped` result; a primitive chain
    (`nora.momentum` ... `nora.apply_update`) gets a `nora.skip_nonfinite`
    after it, and the uses of its `(w_new, m_new)` read the guarded values.
    With `append-count`, the function also returns the sum of the new guards'
    `skipped` counts as one more result, a `tensor<1xi64>` (what
    `nora-run --nonfinite` prints). With `append-single-count` it returns
    the one new guard's `skipped` itself, an `i64` (what a GPU artifact can
    return: it has no host arithmetic); a function with another number of
    unguarded steps is an error. Steps that already have a guard keep it.

    Before (`mode=skip_row`):
    ```mlir
    %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : ...
    return %w1, %m1 : ...
    ```
    After:
    ```mlir
    %w1, %m1, %skipped = nora.nora_step %g, %w, %m, %lr, %wd
        {nonfinite = "skip_row"} : ... -> i64
    return %w1, %m1 : ...
    ```
  }];
  let options = [
    Option<"mode", "mode", "std::string", /*default=*/"\"skip_step\"",
           "skip_step (a non-finite gradient skips the whole step) or "
           "skip_row (only its rows)">,
    Option<"appendCount", "append-count", "bool", /*default=*/"false",
           "Return the total number of skipped rows (skip_row) or steps "
           "(skip_step) as one more result, a tensor<1xi64>">,
    Option<"appendSingleCount", "append-single-count", "bool",
           /*default=*/"false",
           "Return the one new guard's count as one more result, an i64 "
           "(an error unless the function has one unguarded step)">,
  ];
  let dependentDialects = ["::mlir::nora::NoraDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

#endif // NORA_DIALECT_NORA_TRANSFORMS_PASSES_TD
