// RUN: nora-opt %s --nora-fused-step-to-gpu -split-input-file -verify-diagnostics

// An epilogue with an extra elementwise op: the GPU kernel computes only the
// Nora and RMNP chains, and says which op it cannot compute.
func.func @extra_op(%dy: tensor<4x8xf32>, %x: tensor<4x16xf32>, %w: tensor<8x16xf32>,
                    %m: tensor<8x16xf32>, %lr: f32, %wd: f32) -> (tensor<8x16xf32>, tensor<8x16xf32>) {
  // expected-error @+2 {{'nora.fused_wgrad_step' op cannot be lowered to the GPU: expected nora.row_normalize of the (projected) momentum direction}}
  // expected-note @+1 {{the GPU kernel computes the Nora chain}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<4x8xf32>) x(%x : tensor<4x16xf32>)
      w(%w : tensor<8x16xf32>) m(%m : tensor<8x16xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<8x16xf32>, %w0: tensor<8x16xf32>, %m0: tensor<8x16xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<8x16xf32>, tensor<8x16xf32>
    // expected-note @+1 {{this 'arith.mulf' op}}
    %u2 = arith.mulf %u, %u : tensor<8x16xf32>
    %d = nora.row_normalize %u2 : tensor<8x16xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<8x16xf32>, tensor<8x16xf32>
    nora.yield %w1, %m1 : tensor<8x16xf32>, tensor<8x16xf32>
  }
  return %wn, %mn : tensor<8x16xf32>, tensor<8x16xf32>
}

// -----

// A GPU step is compiled for static shapes.
func.func @dynamic(%dy: tensor<?x8xf32>, %x: tensor<?x16xf32>, %w: tensor<8x16xf32>,
                   %m: tensor<8x16xf32>, %lr: f32, %wd: f32) -> (tensor<8x16xf32>, tensor<8x16xf32>) {
  // expected-error @+1 {{cannot be lowered to the GPU: dynamic shape 'tensor<?x8xf32>' (a GPU step is compiled for static shapes)}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<?x8xf32>) x(%x : tensor<?x16xf32>)
      w(%w : tensor<8x16xf32>) m(%m : tensor<8x16xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<8x16xf32>, %w0: tensor<8x16xf32>, %m0: tensor<8x16xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<8x16xf32>, tensor<8x16xf32>
    %d = nora.row_normalize %u : tensor<8x16xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<8x16xf32>, tensor<8x16xf32>
    nora.yield %w1, %m1 : tensor<8x16xf32>, tensor<8x16xf32>
  }
  return %wn, %mn : tensor<8x16xf32>, tensor<8x16xf32>
}

// -----

// The momentum result that is not the chain's: the step yields g's momentum
// from the wrong operand order.
func.func @wrong_yield(%dy: tensor<4x8xf32>, %x: tensor<4x16xf32>, %w: tensor<8x16xf32>,
                       %m: tensor<8x16xf32>, %lr: f32, %wd: f32) -> (tensor<8x16xf32>, tensor<8x16xf32>) {
  // expected-error @+2 {{the epilogue must yield the updated weight and momentum right after nora.apply_update}}
  // expected-note @+1 {{the GPU kernel computes}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<4x8xf32>) x(%x : tensor<4x16xf32>)
      w(%w : tensor<8x16xf32>) m(%m : tensor<8x16xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<8x16xf32>, %w0: tensor<8x16xf32>, %m0: tensor<8x16xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<8x16xf32>, tensor<8x16xf32>
    %d = nora.row_normalize %u : tensor<8x16xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<8x16xf32>, tensor<8x16xf32>
    // expected-note @+1 {{this 'nora.yield' op}}
    nora.yield %w1, %u : tensor<8x16xf32>, tensor<8x16xf32>
  }
  return %wn, %mn : tensor<8x16xf32>, tensor<8x16xf32>
}

// -----

// Sizes of 2^31 or more are refused before any count is derived from them.
func.func @huge(%dy: tensor<4x8xf32>, %x: tensor<4x4294967296xf32>, %w: tensor<8x4294967296xf32>,
                %m: tensor<8x4294967296xf32>, %lr: f32, %wd: f32) -> (tensor<8x4294967296xf32>, tensor<8x4294967296xf32>) {
  // expected-error @+1 {{cannot be lowered to the GPU: size 4294967296 of 'tensor<4x4294967296xf32>' is 2^31 or more}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<4x8xf32>) x(%x : tensor<4x4294967296xf32>)
      w(%w : tensor<8x4294967296xf32>) m(%m : tensor<8x4294967296xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<8x4294967296xf32>, %w0: tensor<8x4294967296xf32>, %m0: tensor<8x4294967296xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<8x4294967296xf32>, tensor<8x4294967296xf32>
    %d = nora.row_normalize %u : tensor<8x4294967296xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<8x4294967296xf32>, tensor<8x4294967296xf32>
    nora.yield %w1, %m1 : tensor<8x4294967296xf32>, tensor<8x4294967296xf32>
  }
  return %wn, %mn : tensor<8x4294967296xf32>, tensor<8x4294967296xf32>
}

// -----

// Sizes below 2^31 whose tiles do not fit the 32-bit grid.
func.func @too_many_tiles(%dy: tensor<4x3000000xf32>, %x: tensor<4x3000000xf32>, %w: tensor<3000000x3000000xf32>,
                          %m: tensor<3000000x3000000xf32>, %lr: f32, %wd: f32) -> (tensor<3000000x3000000xf32>, tensor<3000000x3000000xf32>) {
  // expected-error @+1 {{cannot be lowered to the GPU: 2197265625 tiles exceed the 32-bit grid}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<4x3000000xf32>) x(%x : tensor<4x3000000xf32>)
      w(%w : tensor<3000000x3000000xf32>) m(%m : tensor<3000000x3000000xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<3000000x3000000xf32>, %w0: tensor<3000000x3000000xf32>, %m0: tensor<3000000x3000000xf32>, %lr0: f32, %wd0: f32):
    %m1, %u = nora.momentum %m0, %g {beta = 0.9 : f32} : tensor<3000000x3000000xf32>, tensor<3000000x3000000xf32>
    %d = nora.row_normalize %u : tensor<3000000x3000000xf32>
    %w1 = nora.apply_update %w0, %d, %lr0, %wd0 : tensor<3000000x3000000xf32>, tensor<3000000x3000000xf32>
    nora.yield %w1, %m1 : tensor<3000000x3000000xf32>, tensor<3000000x3000000xf32>
  }
  return %wn, %mn : tensor<3000000x3000000xf32>, tensor<3000000x3000000xf32>
}
