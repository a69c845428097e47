//===- NoraInterfaces.td - nora op interfaces --------------*- tablegen -*-===//

#ifndef NORA_DIALECT_NORA_IR_NORAINTERFACES_TD
#define NORA_DIALECT_NORA_IR_NORAINTERFACES_TD

include "mlir/IR/OpBase.td"


def RowwiseEpilogueOpInterface : OpInterface<"RowwiseEpilogueOpInterface"> {
  let cppNamespace = "::mlir::nora";
  let description = [{
    An op that may run in the epilogue of the weight-gradient matmul
    (`nora.fused_wgrad_step`): row i of each of its results depends only on
    row i of its matrix operands (and on scalars). The kind says what the op
    is to a row, which is what a backend needs to schedule it tile by tile:

    - `Elementwise`: result (i, j) depends on operand elements (i, j) only;
      it runs on a tile as soon as the tile is there.
    - `RowReduction`: result (i, j) depends on whole operand rows through
      per-row scalars (a norm, a dot product) computed over all N columns;
      a tiled backend reduces partial statistics per tile and synchronizes
      once per row before it can produce the result.
    - `RowBroadcast`: the op consumes per-row scalars (tensor<M>) produced
      by a row reduction and broadcasts them along the row.

    The fusion pass accepts any chain of ops implementing this interface (and
    arith/math elementwise ops on tensors), so a new optimizer op fuses by
    implementing it, without editing the pass.
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/"What the op is to a row: elementwise, row reduction or row broadcast.",
      /*retTy=*/"::mlir::nora::RowwiseKind",
      /*methodName=*/"getRowwiseKind",
      /*args=*/(ins)>,
    InterfaceMethod<
      /*desc=*/[{Number of dependent row reductions inside the op (0 for an
                 elementwise op, 1 for a norm or a projection whose
                 statistics are accumulated together).}],
      /*retTy=*/"unsigned",
      /*methodName=*/"getRowReductionDepth",
      /*args=*/(ins),
      /*methodBody=*/"",
      /*defaultImplementation=*/[{
        return $_op.getRowwiseKind() == ::mlir::nora::RowwiseKind::RowReduction
                   ? 1 : 0;
      }]>,
  ];
}

#endif // NORA_DIALECT_NORA_IR_NORAINTERFACES_TD
