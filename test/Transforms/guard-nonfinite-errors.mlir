// RUN: nora-opt %s -pass-pipeline='builtin.module(func.func(nora-guard-nonfinite{mode=skip_row append-count=1}))' -verify-diagnostics

// append-count appends to the one func.return: a function of several blocks
// is an error, not a silently dropped count.
// expected-error @+1 {{nora-guard-nonfinite: append-count needs a function with one block that ends in func.return}}
func.func @two_blocks(%g: tensor<6x5xf32>, %w: tensor<6x5xf32>, %m: tensor<6x5xf32>, %lr: f32, %wd: f32) -> (tensor<6x5xf32>, tensor<6x5xf32>) {
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<6x5xf32>, tensor<6x5xf32>
  %wn = nora.apply_update %w, %u, %lr, %wd : tensor<6x5xf32>, tensor<6x5xf32>
  cf.br ^exit
^exit:
  return %wn, %mn : tensor<6x5xf32>, tensor<6x5xf32>
}
