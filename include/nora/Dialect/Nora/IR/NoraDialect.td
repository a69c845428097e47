//===- NoraDialect.td - nora dialect definition ------------*- tablegen -*-===//
//
// The nora dialect: row-wise matrix-optimizer updates (Nora, RMNP) as ops that
// can be fused into the epilogue of the weight-gradient matmul.
//
//===----------------------------------------------------------------------===//

#ifndef NORA_DIALECT_NORA_IR_NORADIALECT_TD
#define NORA_DIALECT_NORA_IR_NORADIALECT_TD

include "mlir/IR/OpBase.td"

def Nora_Dialect : Dialect {
  let name = "nora";
  let cppNamespace = "::mlir::nora";
  let summary = "Row-wise matrix optimizer updates fused into the wgrad GEMM";
  let description = [{
    The nora dialect expresses one step of a row-wise matrix optimizer
    (Nora: momentum, projection onto the orthogonal complement of each weight
    row, row normalization, decoupled weight decay; RMNP: the same chain
    without the projection) on 2-D tensors, together with the weight-gradient
    contraction `dW = dY^T X` that produces its gradient. The op contract is
    fixed by `shared/SEMANTICS.md`; see `docs/dialect.md` for examples.

    A row is dim 0 of a weight `W : MxN` (PyTorch `nn.Linear.weight` layout):
    every row statistic reduces over the N columns of one row.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
  let hasConstantMaterializer = 0;
}

class Nora_Op<string mnemonic, list<Trait> traits = []>
    : Op<Nora_Dialect, mnemonic, traits>;

#endif // NORA_DIALECT_NORA_IR_NORADIALECT_TD
