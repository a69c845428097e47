//===- NoraOps.td - nora dialect ops -----------------------*- tablegen -*-===//
//
// The op contract is shared/SEMANTICS.md: op names, operand order, result
// order and attribute names are fixed there and must not change.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_DIALECT_NORA_IR_NORAOPS_TD
#define NORA_DIALECT_NORA_IR_NORAOPS_TD

include "nora/Dialect/Nora/IR/NoraDialect.td"
include "nora/Dialect/Nora/IR/NoraInterfaces.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

/// Optimizer state, gradients and update directions: f32 matrices.
def Nora_Matrix : 2DTensorOf<[F32]>;
/// Activations and output gradients of the forward matmul.
def Nora_Activation : 2DTensorOf<[F32, BF16, F16]>;

//===----------------------------------------------------------------------===//
// Primitive ops
//===----------------------------------------------------------------------===//

def Nora_WgradOp : Nora_Op<"wgrad", [Pure]> {
  let summary = "weight gradient g = scale * dy^T x (+ acc), accumulated in f32";
  let description = [{
    The weight gradient of `y = x @ W^T`: for `dy : T x M` and `x : T x N`,
    `g = scale * transpose(dy) @ x`, plus `acc` when given (gradient
    accumulation over micro-batches). Products and sums are f32 whatever the
    input element type (f32, bf16 or f16); `g` and `acc` are f32.

    ```mlir
    %g = nora.wgrad %dy, %x : tensor<64x128xbf16>, tensor<64x256xbf16>
           -> tensor<128x256xf32>
    %g2 = nora.wgrad %dy, %x acc(%g : tensor<128x256xf32>) {scale = 0.5 : f32}
           : tensor<64x128xbf16>, tensor<64x256xbf16> -> tensor<128x256xf32>
    ```
  }];
  let arguments = (ins Nora_Activation:$dy, Nora_Activation:$x,
                       Optional<Nora_Matrix>:$acc,
                       DefaultValuedAttr<F32Attr, "1.0">:$scale);
  let results = (outs Nora_Matrix:$g);
  let assemblyFormat = [{
    $dy `,` $x (`acc` `(` $acc^ `:` type($acc) `)`)? attr-dict `:`
    type($dy) `,` type($x) `->` type($g)
  }];
  let hasVerifier = 1;
}

def Nora_MomentumOp : Nora_Op<"momentum",
    [Pure, AllTypesMatch<["m", "m_new", "u"]>,
     DeclareOpInterfaceMethods<RowwiseEpilogueOpInterface>]> {
  let summary = "EMA momentum update with optional Nesterov look-ahead";
  let description = [{
    `m_new = beta * m + (1 - beta) * g` (torch's lerp form
    `m.lerp(g, 1 - beta)`), and the update direction
    `u = (1 - nesterov) * g + nesterov * m_new` when `nesterov` is present,
    `u = m_new` when it is absent. `beta` and `nesterov` lie in [0, 1).

    ```mlir
    %m_new, %u = nora.momentum %m, %g {beta = 0.95 : f32, nesterov = 0.95 : f32}
                   : tensor<128x256xf32>, tensor<128x256xf32>
    ```
  }];
  let arguments = (ins Nora_Matrix:$m, Nora_Matrix:$g, F32Attr:$beta,
                       OptionalAttr<F32Attr>:$nesterov);
  let results = (outs Nora_Matrix:$m_new, Nora_Matrix:$u);
  let assemblyFormat = "$m `,` $g attr-dict `:` type($m) `,` type($g)";
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Nora_OrthProjectOp : Nora_Op<"orth_project",
    [Pure, AllTypesMatch<["u", "v"]>,
     DeclareOpInterfaceMethods<RowwiseEpilogueOpInterface>]> {
  let summary = "project each row of u onto the orthogonal complement of w's row";
  let description = [{
    Per row i, with `w^ = w_i / max(||w_i||, eps)`:
    `v_i = u_i - <u_i, w^> w^`. A zero row of `w` gives `v_i = u_i`.
    Backends accumulate the row statistics exactly enough that the result is
    accurate also when `u_i` and `w_i` are almost parallel (SEMANTICS.md).

    ```mlir
    %v = nora.orth_project %u, %w {eps = 1.0e-10 : f32}
           : tensor<128x256xf32>, tensor<128x256xf32>
    ```
  }];
  let arguments = (ins Nora_Matrix:$u, Nora_Matrix:$w,
                       DefaultValuedAttr<F32Attr, "1e-10">:$eps);
  let results = (outs Nora_Matrix:$v);
  let assemblyFormat = "$u `,` $w attr-dict `:` type($u) `,` type($w)";
  let hasVerifier = 1;
}

def Nora_RowNormalizeOp : Nora_Op<"row_normalize",
    [Pure, AllTypesMatch<["v", "d"]>,
     DeclareOpInterfaceMethods<RowwiseEpilogueOpInterface>]> {
  let summary = "scale each row to norm `scale`";
  let description = [{
    Per row i: `d_i = scale * v_i / max(||v_i||, eps)`. A zero row gives a zero
    row. `scale` is a plain number; shape rules such as `max(1, sqrt(M/N))`
    are computed by the front end (or by `nora-decompose` for the composite
    steps).

    ```mlir
    %d = nora.row_normalize %v {eps = 1.0e-10 : f32, scale = 2.0 : f32}
           : tensor<128x256xf32>
    ```
  }];
  let arguments = (ins Nora_Matrix:$v,
                       DefaultValuedAttr<F32Attr, "1e-10">:$eps,
                       DefaultValuedAttr<F32Attr, "1.0">:$scale);
  let results = (outs Nora_Matrix:$d);
  let assemblyFormat = "$v attr-dict `:` type($v)";
  let hasVerifier = 1;
}

def Nora_ApplyUpdateOp : Nora_Op<"apply_update",
    [Pure, AllTypesMatch<["w", "w_new"]>,
     DeclareOpInterfaceMethods<RowwiseEpilogueOpInterface>]> {
  let summary = "decoupled weight decay and step: w * (1 - lr * wd) - lr * d";
  let description = [{
    `w_new = w * (1 - lr * wd) - lr * d`. `lr` and `wd` are runtime f32
    scalars so that a learning-rate schedule never recompiles anything.

    ```mlir
    %w_new = nora.apply_update %w, %d, %lr, %wd
               : tensor<128x256xf32>, tensor<128x256xf32>
    ```
  }];
  let arguments = (ins Nora_Matrix:$w, Nora_Matrix:$d, F32:$lr, F32:$wd);
  let results = (outs Nora_Matrix:$w_new);
  let assemblyFormat = [{
    $w `,` $d `,` $lr `,` $wd attr-dict `:` type($w) `,` type($d)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Non-finite gradients
//===----------------------------------------------------------------------===//

def Nora_SkipNonfiniteOp : Nora_Op<"skip_nonfinite",
    [Pure, AllTypesMatch<["w", "w_new", "w_out"]>,
     AllTypesMatch<["m", "m_new", "m_out"]>]> {
  let summary = "keep W and M where the gradient is not finite";
  let description = [{
    Guards one optimizer step against a non-finite gradient `g` (NaN or Inf
    in any element, which is also what a NaN or Inf in `dy` or `x` gives).
    `mode` says what is kept:

    - `"skip_row"`: each row i of `g` with a non-finite element keeps its row
      of `w` and `m` (`w_out_i = w_i`, `m_out_i = m_i`); every other row
      takes `w_new_i`, `m_new_i`. `skipped` is the number of rows kept.
    - `"skip_step"`: if any element of `g` is not finite, the whole step is
      skipped (`w_out = w`, `m_out = m`, bit for bit, like PyTorch's
      GradScaler); else `w_out = w_new`, `m_out = m_new`. `skipped` is 1 for
      a skipped step, else 0.

    `skip_row` is row-local; `skip_step` needs every row's flag before any row
    is written, which a fused backend pays with one step-wide reduction
    (docs/nonfinite.md). `nora-fuse-wgrad-epilogue` turns this op into the
    `nonfinite` attribute of `nora.fused_wgrad_step`.

    ```mlir
    %w2, %m2, %skipped = nora.skip_nonfinite %g, %w, %m, %wn, %mn
        {mode = "skip_row"} : tensor<128x256xf32>, tensor<128x256xf32>,
        tensor<128x256xf32>
    ```
  }];
  let arguments = (ins Nora_Matrix:$g, Nora_Matrix:$w, Nora_Matrix:$m,
                       Nora_Matrix:$w_new, Nora_Matrix:$m_new, StrAttr:$mode);
  let results = (outs Nora_Matrix:$w_out, Nora_Matrix:$m_out, I64:$skipped);
  let assemblyFormat = [{
    $g `,` $w `,` $m `,` $w_new `,` $m_new attr-dict `:`
    type($g) `,` type($w) `,` type($m)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Composite steps (expanded by nora-decompose)
//===----------------------------------------------------------------------===//

class Nora_StepOp<string mnemonic, string defaultEps>
    : Nora_Op<mnemonic, [Pure, AllTypesMatch<["w", "w_new"]>,
                         AllTypesMatch<["m", "m_new"]>]> {
  let arguments = (ins Nora_Matrix:$g, Nora_Matrix:$w, Nora_Matrix:$m,
                       F32:$lr, F32:$wd,
                       DefaultValuedAttr<F32Attr, "0.95">:$beta,
                       DefaultValuedAttr<BoolAttr, "true">:$nesterov,
                       DefaultValuedAttr<F32Attr, defaultEps>:$eps,
                       OptionalAttr<F32Attr>:$scale,
                       OptionalAttr<StrAttr>:$nonfinite);
  // `skipped` is there exactly when `nonfinite` is (see nora.skip_nonfinite).
  let results = (outs Nora_Matrix:$w_new, Nora_Matrix:$m_new,
                      Optional<I64>:$skipped);
  let builders = [
    // A step with every hyper-parameter at its official default.
    OpBuilder<(ins "::mlir::Value":$g, "::mlir::Value":$w, "::mlir::Value":$m,
                   "::mlir::Value":$lr, "::mlir::Value":$wd), [{
      build($_builder, $_state, w.getType(), m.getType(), ::mlir::Type(), g,
            w, m, lr, wd, ::mlir::FloatAttr(), ::mlir::BoolAttr(),
            ::mlir::FloatAttr(), ::mlir::FloatAttr(), ::mlir::StringAttr());
    }]>
  ];
  let assemblyFormat = [{
    $g `,` $w `,` $m `,` $lr `,` $wd attr-dict `:`
    type($g) `,` type($w) `,` type($m) (`->` type($skipped)^)?
  }];
  let hasVerifier = 1;
}

def Nora_NoraStepOp : Nora_StepOp<"nora_step", "1e-10"> {
  let summary = "one Nora optimizer step (official defaults)";
  let description = [{
    One step of the Nora optimizer on a weight `w` with gradient `g` and
    momentum `m`, with the official defaults: `beta = 0.95`, Nesterov on with
    `mu = beta`, `eps = 1e-10`, and `scale = max(1, sqrt(M/N))` when `scale`
    is absent (static shapes needed then). `nora-decompose` expands it into
    `nora.momentum`, `nora.orth_project`, `nora.row_normalize` and
    `nora.apply_update`.

    ```mlir
    %w_new, %m_new = nora.nora_step %g, %w, %m, %lr, %wd
        : tensor<128x256xf32>, tensor<128x256xf32>, tensor<128x256xf32>
    ```
  }];
}

def Nora_RmnpStepOp : Nora_StepOp<"rmnp_step", "1e-12"> {
  let summary = "one RMNP optimizer step (row-normalized momentum, no projection)";
  let description = [{
    One step of RMNP: the Nora chain without `orth_project`, with
    F.normalize's `eps = 1e-12`, `beta = 0.95`, Nesterov on with `mu = beta`,
    and Moonlight's `scale = 0.2 * sqrt(max(M, N))` when `scale` is absent.
    The EMA momentum form used here gives exactly RMNP's heavy-ball direction
    after row normalization (SEMANTICS.md).

    ```mlir
    %w_new, %m_new = nora.rmnp_step %g, %w, %m, %lr, %wd {scale = 1.0 : f32}
        : tensor<128x256xf32>, tensor<128x256xf32>, tensor<128x256xf32>
    ```
  }];
}

//===----------------------------------------------------------------------===//
// Fused step
//===----------------------------------------------------------------------===//

def Nora_FusedWgradStepOp : Nora_Op<"fused_wgrad_step",
    [IsolatedFromAbove, RecursiveMemoryEffects, SingleBlock,
     InferTypeOpAdaptor]> {
  let summary = "weight-gradient matmul with the optimizer chain as its epilogue";
  let description = [{
    Computes `g = scale * dy^T x (+ acc)` and runs the epilogue region on it,
    producing the new weight and momentum. The region is the optimizer chain
    on whole tensors; its block arguments are
    `(g : tensor<MxNxf32>, w, m, lr : f32, wd : f32)` with `w` and `m` typed
    like the op's `w` and `m` operands, and it ends in a `nora.yield` of
    `(w_new, m_new)`. Backends compute `g` tile by tile and never materialize
    it in full; the region says what happens to each row.

    With `nonfinite = "skip_row"` or `"skip_step"`, the op has a third
    result `skipped : i64` and guards the step as `nora.skip_nonfinite` does
    (rows or the whole step whose gradient is not finite keep W and M).

    ```mlir
    %w_new, %m_new = nora.fused_wgrad_step
        dy(%dy : tensor<64x128xbf16>) x(%x : tensor<64x256xbf16>)
        w(%w : tensor<128x256xf32>) m(%m : tensor<128x256xf32>)
        lr(%lr) wd(%wd) {
      ^bb0(%g: tensor<128x256xf32>, %w0: tensor<128x256xf32>,
           %m0: tensor<128x256xf32>, %lr0: f32, %wd0: f32):
        %mn, %u = nora.momentum %m0, %g {beta = 0.95 : f32}
                    : tensor<128x256xf32>, tensor<128x256xf32>
        %d = nora.row_normalize %u : tensor<128x256xf32>
        %wn = nora.apply_update %w0, %d, %lr0, %wd0
                : tensor<128x256xf32>, tensor<128x256xf32>
        nora.yield %wn, %mn : tensor<128x256xf32>, tensor<128x256xf32>
    }
    ```
  }];
  let arguments = (ins Nora_Activation:$dy, Nora_Activation:$x,
                       Optional<Nora_Matrix>:$acc, Nora_Matrix:$w,
                       Nora_Matrix:$m, F32:$lr, F32:$wd,
                       DefaultValuedAttr<F32Attr, "1.0">:$scale,
                       OptionalAttr<StrAttr>:$nonfinite);
  // `skipped` is there exactly when `nonfinite` is: the step is guarded as
  // by nora.skip_nonfinite on (g, w, m) and the region's (w_new, m_new).
  let results = (outs Nora_Matrix:$w_new, Nora_Matrix:$m_new,
                      Optional<I64>:$skipped);
  let regions = (region SizedRegion<1>:$epilogue);
  let assemblyFormat = [{
    `dy` `(` $dy `:` type($dy) `)` `x` `(` $x `:` type($x) `)`
    (`acc` `(` $acc^ `:` type($acc) `)`)?
    `w` `(` $w `:` type($w) `)` `m` `(` $m `:` type($m) `)`
    `lr` `(` $lr `)` `wd` `(` $wd `)` attr-dict-with-keyword $epilogue
  }];
  let hasRegionVerifier = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The type of the gradient block argument: tensor<M x N x f32>.
    ::mlir::RankedTensorType getGradType();
  }];
}

def Nora_YieldOp : Nora_Op<"yield",
    [Pure, ReturnLike, Terminator, HasParent<"FusedWgradStepOp">]> {
  let summary = "terminates the epilogue of nora.fused_wgrad_step";
  let description = [{
    Yields `(w_new, m_new)` from the epilogue region.

    ```mlir
    nora.yield %wn, %mn : tensor<128x256xf32>, tensor<128x256xf32>
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

#endif // NORA_DIALECT_NORA_IR_NORAOPS_TD
