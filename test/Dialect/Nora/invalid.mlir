// Every verifier rule of SEMANTICS.md's "Bad input" section, one case each.
// RUN: nora-opt %s -split-input-file -verify-diagnostics

// Rank: every tensor operand is 2-D.

func.func @momentum_rank(%m: tensor<4xf32>, %g: tensor<4xf32>) {
  // expected-error @+1 {{'nora.momentum' op operand #0 must be 2D tensor of 32-bit float values, but got 'tensor<4xf32>'}}
  %mn, %u = "nora.momentum"(%m, %g) {beta = 0.9 : f32} : (tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @wgrad_rank(%dy: tensor<2x3x4xbf16>, %x: tensor<2x5xbf16>) {
  // expected-error @+1 {{'nora.wgrad' op operand #0 must be 2D tensor of 32-bit float or bfloat16 type or 16-bit float values, but got 'tensor<2x3x4xbf16>'}}
  %g = "nora.wgrad"(%dy, %x) : (tensor<2x3x4xbf16>, tensor<2x5xbf16>) -> tensor<4x5xf32>
  return
}

// -----

func.func @row_normalize_result_rank(%v: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.row_normalize' op result #0 must be 2D tensor of 32-bit float values, but got 'tensor<32xf32>'}}
  %d = "nora.row_normalize"(%v) : (tensor<4x8xf32>) -> tensor<32xf32>
  return
}

// Element types.

// -----

func.func @momentum_f16_state(%m: tensor<4x8xf16>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op operand #0 must be 2D tensor of 32-bit float values, but got 'tensor<4x8xf16>'}}
  %mn, %u = "nora.momentum"(%m, %g) {beta = 0.9 : f32} : (tensor<4x8xf16>, tensor<4x8xf32>) -> (tensor<4x8xf16>, tensor<4x8xf16>)
  return
}

// -----

func.func @wgrad_integer_input(%dy: tensor<2x4xi32>, %x: tensor<2x5xi32>) {
  // expected-error @+1 {{'nora.wgrad' op operand #0 must be 2D tensor of 32-bit float or bfloat16 type or 16-bit float values, but got 'tensor<2x4xi32>'}}
  %g = "nora.wgrad"(%dy, %x) : (tensor<2x4xi32>, tensor<2x5xi32>) -> tensor<4x5xf32>
  return
}

// -----

func.func @wgrad_bf16_gradient(%dy: tensor<2x4xbf16>, %x: tensor<2x5xbf16>) {
  // expected-error @+1 {{'nora.wgrad' op result #0 must be 2D tensor of 32-bit float values, but got 'tensor<4x5xbf16>'}}
  %g = "nora.wgrad"(%dy, %x) : (tensor<2x4xbf16>, tensor<2x5xbf16>) -> tensor<4x5xbf16>
  return
}

// -----

func.func @wgrad_mixed_inputs(%dy: tensor<2x4xbf16>, %x: tensor<2x5xf32>) {
  // expected-error @+1 {{'nora.wgrad' op element type mismatch: 'dy' has 'bf16' but 'x' has 'f32'}}
  %g = nora.wgrad %dy, %x : tensor<2x4xbf16>, tensor<2x5xf32> -> tensor<4x5xf32>
  return
}

// -----

func.func @apply_update_f64_lr(%w: tensor<4x8xf32>, %d: tensor<4x8xf32>, %lr: f64, %wd: f32) {
  // expected-error @+1 {{'nora.apply_update' op operand #2 must be 32-bit float, but got 'f64'}}
  %wn = "nora.apply_update"(%w, %d, %lr, %wd) : (tensor<4x8xf32>, tensor<4x8xf32>, f64, f32) -> tensor<4x8xf32>
  return
}

// -----

func.func @apply_update_bf16_wd(%w: tensor<4x8xf32>, %d: tensor<4x8xf32>, %lr: f32, %wd: bf16) {
  // expected-error @+1 {{'nora.apply_update' op operand #3 must be 32-bit float, but got 'bf16'}}
  %wn = "nora.apply_update"(%w, %d, %lr, %wd) : (tensor<4x8xf32>, tensor<4x8xf32>, f32, bf16) -> tensor<4x8xf32>
  return
}

// -----

func.func @apply_update_tensor_lr(%w: tensor<4x8xf32>, %d: tensor<4x8xf32>, %lr: tensor<f32>, %wd: f32) {
  // expected-error @+1 {{'nora.apply_update' op operand #2 must be 32-bit float, but got 'tensor<f32>'}}
  %wn = "nora.apply_update"(%w, %d, %lr, %wd) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>, f32) -> tensor<4x8xf32>
  return
}

// -----

func.func @step_f64_lr(%g: tensor<4x8xf32>, %w: tensor<4x8xf32>, %m: tensor<4x8xf32>, %lr: f64, %wd: f32) {
  // expected-error @+1 {{'nora.nora_step' op operand #3 must be 32-bit float, but got 'f64'}}
  %w1, %m1 = "nora.nora_step"(%g, %w, %m, %lr, %wd) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>, f64, f32) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// Shape mismatches between operands.

// -----

func.func @momentum_shapes(%m: tensor<4x8xf32>, %g: tensor<4x9xf32>) {
  // expected-error @+1 {{'nora.momentum' op shape mismatch: 'm' is 4x8 but 'g' is 4x9}}
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32} : tensor<4x8xf32>, tensor<4x9xf32>
  return
}

// -----

func.func @momentum_result_type(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op failed to verify that all of {m, m_new, u} have same type}}
  %mn, %u = "nora.momentum"(%m, %g) {beta = 0.9 : f32} : (tensor<4x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x4xf32>)
  return
}

// -----

func.func @orth_project_shapes(%u: tensor<4x8xf32>, %w: tensor<5x8xf32>) {
  // expected-error @+1 {{'nora.orth_project' op shape mismatch: 'u' is 4x8 but 'w' is 5x8}}
  %v = nora.orth_project %u, %w : tensor<4x8xf32>, tensor<5x8xf32>
  return
}

// -----

func.func @apply_update_shapes(%w: tensor<4x8xf32>, %d: tensor<?x7xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.apply_update' op shape mismatch: 'w' is 4x8 but 'd' is ?x7}}
  %wn = nora.apply_update %w, %d, %lr, %wd : tensor<4x8xf32>, tensor<?x7xf32>
  return
}

// -----

func.func @wgrad_tokens(%dy: tensor<3x4xf32>, %x: tensor<2x5xf32>) {
  // expected-error @+1 {{'nora.wgrad' op shape mismatch: 'dy' is 3x4 and 'x' is 2x5 but they must have the same number of rows (tokens)}}
  %g = nora.wgrad %dy, %x : tensor<3x4xf32>, tensor<2x5xf32> -> tensor<4x5xf32>
  return
}

// -----

func.func @wgrad_result_shape(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>) {
  // expected-error @+1 {{'nora.wgrad' op shape mismatch: 'g' is 5x4 but dy^T x is 4x5}}
  %g = nora.wgrad %dy, %x : tensor<2x4xf32>, tensor<2x5xf32> -> tensor<5x4xf32>
  return
}

// -----

func.func @wgrad_acc_shape(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %acc: tensor<4x6xf32>) {
  // expected-error @+1 {{'nora.wgrad' op shape mismatch: 'acc' is 4x6 but dy^T x is 4x5}}
  %g = nora.wgrad %dy, %x acc(%acc : tensor<4x6xf32>) : tensor<2x4xf32>, tensor<2x5xf32> -> tensor<4x5xf32>
  return
}

// -----

func.func @step_gradient_shape(%g: tensor<4x9xf32>, %w: tensor<4x8xf32>, %m: tensor<4x8xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.nora_step' op shape mismatch: 'g' is 4x9 but 'w' is 4x8}}
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<4x9xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @step_momentum_shape(%g: tensor<4x8xf32>, %w: tensor<4x8xf32>, %m: tensor<3x8xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.rmnp_step' op shape mismatch: 'm' is 3x8 but 'w' is 4x8}}
  %w1, %m1 = nora.rmnp_step %g, %w, %m, %lr, %wd : tensor<4x8xf32>, tensor<4x8xf32>, tensor<3x8xf32>
  return
}

// -----

func.func @fused_weight_shape(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %w: tensor<4x6xf32>, %m: tensor<4x6xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op shape mismatch: 'w' is 4x6 but dy^T x is 4x5}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<2x4xf32>) x(%x : tensor<2x5xf32>) w(%w : tensor<4x6xf32>) m(%m : tensor<4x6xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x6xf32>, %w0: tensor<4x6xf32>, %m0: tensor<4x6xf32>, %lr0: f32, %wd0: f32):
    nora.yield %w0, %m0 : tensor<4x6xf32>, tensor<4x6xf32>
  }
  return
}

// -----

func.func @fused_momentum_shape(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %w: tensor<4x5xf32>, %m: tensor<5x5xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op shape mismatch: 'm' is 5x5 but 'w' is 4x5}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<2x4xf32>) x(%x : tensor<2x5xf32>) w(%w : tensor<4x5xf32>) m(%m : tensor<5x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<5x5xf32>, %lr0: f32, %wd0: f32):
    nora.yield %w0, %m0 : tensor<4x5xf32>, tensor<5x5xf32>
  }
  return
}

// -----

func.func @fused_mixed_inputs(%dy: tensor<2x4xf16>, %x: tensor<2x5xbf16>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op element type mismatch: 'dy' has 'f16' but 'x' has 'bf16'}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<2x4xf16>) x(%x : tensor<2x5xbf16>) w(%w : tensor<4x5xf32>) m(%m : tensor<4x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    nora.yield %w0, %m0 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return
}

// Attribute ranges: beta and nesterov in [0, 1), eps >= 0, finite scales.

// -----

func.func @beta_one(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op attribute 'beta' must be in [0, 1), got 1.000000e+00}}
  %mn, %u = nora.momentum %m, %g {beta = 1.0 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @beta_negative(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op attribute 'beta' must be in [0, 1), got -5.000000e-01}}
  %mn, %u = nora.momentum %m, %g {beta = -0.5 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @beta_nan(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op attribute 'beta' must be in [0, 1), got nan}}
  %mn, %u = nora.momentum %m, %g {beta = 0x7FC00000 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @beta_missing(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op requires attribute 'beta'}}
  %mn, %u = "nora.momentum"(%m, %g) : (tensor<4x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @beta_f64(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op attribute 'beta' failed to satisfy constraint: 32-bit float attribute}}
  %mn, %u = "nora.momentum"(%m, %g) {beta = 0.9 : f64} : (tensor<4x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}

// -----

func.func @nesterov_too_big(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op attribute 'nesterov' must be in [0, 1), got 1.500000e+00}}
  %mn, %u = nora.momentum %m, %g {beta = 0.9 : f32, nesterov = 1.5 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @step_beta(%g: tensor<4x8xf32>, %w: tensor<4x8xf32>, %m: tensor<4x8xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.nora_step' op attribute 'beta' must be in [0, 1), got 2.000000e+00}}
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd {beta = 2.0 : f32} : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @orth_project_negative_eps(%u: tensor<4x8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.orth_project' op attribute 'eps' must be a finite non-negative number, got -1.000000e-10}}
  %v = nora.orth_project %u, %w {eps = -1.0e-10 : f32} : tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @row_normalize_negative_eps(%v: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.row_normalize' op attribute 'eps' must be a finite non-negative number, got -1.000000e+00}}
  %d = nora.row_normalize %v {eps = -1.0 : f32} : tensor<4x8xf32>
  return
}

// -----

func.func @row_normalize_infinite_eps(%v: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.row_normalize' op attribute 'eps' must be a finite non-negative number, got INF}}
  %d = nora.row_normalize %v {eps = 0x7F800000 : f32} : tensor<4x8xf32>
  return
}

// -----

func.func @row_normalize_infinite_scale(%v: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.row_normalize' op attribute 'scale' must be finite, got INF}}
  %d = nora.row_normalize %v {scale = 0x7F800000 : f32} : tensor<4x8xf32>
  return
}

// -----

func.func @wgrad_nan_scale(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>) {
  // expected-error @+1 {{'nora.wgrad' op attribute 'scale' must be finite, got nan}}
  %g = nora.wgrad %dy, %x {scale = 0x7FC00000 : f32} : tensor<2x4xf32>, tensor<2x5xf32> -> tensor<4x5xf32>
  return
}

// -----

func.func @step_negative_eps(%g: tensor<4x8xf32>, %w: tensor<4x8xf32>, %m: tensor<4x8xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.rmnp_step' op attribute 'eps' must be a finite non-negative number, got -1.000000e-12}}
  %w1, %m1 = nora.rmnp_step %g, %w, %m, %lr, %wd {eps = -1.0e-12 : f32} : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @step_infinite_scale(%g: tensor<4x8xf32>, %w: tensor<4x8xf32>, %m: tensor<4x8xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.nora_step' op attribute 'scale' must be finite, got -INF}}
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd {scale = 0xFF800000 : f32} : tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
  return
}

// The epilogue region of nora.fused_wgrad_step.

// -----

func.func @fused_block_arity(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op epilogue must have 5 block arguments (g, w, m, lr, wd), got 4}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<2x4xf32>) x(%x : tensor<2x5xf32>) w(%w : tensor<4x5xf32>) m(%m : tensor<4x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32):
    nora.yield %w0, %m0 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return
}

// -----

func.func @fused_block_type(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op epilogue block argument #3 ('lr') must be 'f32', got 'f64'}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<2x4xf32>) x(%x : tensor<2x5xf32>) w(%w : tensor<4x5xf32>) m(%m : tensor<4x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f64, %wd0: f32):
    nora.yield %w0, %m0 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return
}

// -----

func.func @fused_gradient_type(%dy: tensor<2x4xbf16>, %x: tensor<2x5xbf16>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op epilogue block argument #0 ('g') must be 'tensor<4x5xf32>', got 'tensor<4x5xbf16>'}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<2x4xbf16>) x(%x : tensor<2x5xbf16>) w(%w : tensor<4x5xf32>) m(%m : tensor<4x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x5xbf16>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    nora.yield %w0, %m0 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return
}

// -----

func.func @fused_yield_types(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op epilogue must yield (w_new, m_new) of types 'tensor<4x5xf32>', 'tensor<4x5xf32>', got 'tensor<4x5xf32>'}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<2x4xf32>) x(%x : tensor<2x5xf32>) w(%w : tensor<4x5xf32>) m(%m : tensor<4x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    nora.yield %w0 : tensor<4x5xf32>
  }
  return
}

// -----

func.func @fused_captures_value(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) {
  // expected-note @+1 {{required by region isolation constraints}}
  %wn, %mn = nora.fused_wgrad_step dy(%dy : tensor<2x4xf32>) x(%x : tensor<2x5xf32>) w(%w : tensor<4x5xf32>) m(%m : tensor<4x5xf32>) lr(%lr) wd(%wd) {
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    // expected-error @+1 {{using value defined outside the region}}
    nora.yield %w, %m0 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return
}

// -----

func.func @yield_outside(%w: tensor<4x5xf32>) {
  // expected-error @+1 {{'nora.yield' op expects parent op 'nora.fused_wgrad_step'}}
  "nora.yield"(%w) : (tensor<4x5xf32>) -> ()
  return
}

// -----

func.func @skip_bad_mode(%g: tensor<4x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>, i64) {
  // expected-error @+1 {{'nora.skip_nonfinite' op attribute 'mode' must be "skip_row" or "skip_step", got "skip"}}
  %w, %m, %s = nora.skip_nonfinite %g, %g, %g, %g, %g {mode = "skip"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
  return %w, %m, %s : tensor<4x5xf32>, tensor<4x5xf32>, i64
}

// -----

func.func @skip_shape(%g: tensor<4x6xf32>, %w: tensor<4x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>, i64) {
  // expected-error @+1 {{'nora.skip_nonfinite' op shape mismatch: 'g' is 4x6 but 'w' is 4x5}}
  %w1, %m1, %s = nora.skip_nonfinite %g, %w, %w, %w, %w {mode = "skip_row"} : tensor<4x6xf32>, tensor<4x5xf32>, tensor<4x5xf32>
  return %w1, %m1, %s : tensor<4x5xf32>, tensor<4x5xf32>, i64
}

// -----

func.func @step_nonfinite_no_result(%g: tensor<4x5xf32>, %lr: f32) {
  // expected-error @+1 {{'nora.nora_step' op has attribute 'nonfinite' and must have the third result 'skipped : i64'}}
  %w, %m = nora.nora_step %g, %g, %g, %lr, %lr {nonfinite = "skip_step"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
  return
}

// -----

func.func @step_result_no_nonfinite(%g: tensor<4x5xf32>, %lr: f32) {
  // expected-error @+1 {{'nora.rmnp_step' op has a third result 'skipped' but no 'nonfinite' attribute}}
  %w, %m, %s = nora.rmnp_step %g, %g, %g, %lr, %lr : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32> -> i64
  return
}

// -----

func.func @step_bad_nonfinite(%g: tensor<4x5xf32>, %lr: f32) {
  // expected-error @+1 {{'nora.nora_step' op attribute 'nonfinite' must be "skip_row" or "skip_step", got "nan"}}
  %w, %m, %s = nora.nora_step %g, %g, %g, %lr, %lr {nonfinite = "nan"} : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32> -> i64
  return
}

// -----

func.func @fused_bad_nonfinite(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op attribute 'nonfinite' must be "skip_row" or "skip_step", got "skip_rows"}}
  %wn, %mn, %s = nora.fused_wgrad_step dy(%dy : tensor<2x4xf32>) x(%x : tensor<2x5xf32>) w(%w : tensor<4x5xf32>) m(%m : tensor<4x5xf32>) lr(%lr) wd(%wd) attributes {nonfinite = "skip_rows"} {
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    nora.yield %w0, %m0 : tensor<4x5xf32>, tensor<4x5xf32>
  }
  return
}

// -----

func.func @fused_generic_skipped_without_mode(%dy: tensor<2x4xf32>, %x: tensor<2x5xf32>, %w: tensor<4x5xf32>, %m: tensor<4x5xf32>, %lr: f32, %wd: f32) {
  // expected-error @+1 {{'nora.fused_wgrad_step' op has a third result 'skipped' but no 'nonfinite' attribute}}
  %r:3 = "nora.fused_wgrad_step"(%dy, %x, %w, %m, %lr, %wd) <{operandSegmentSizes = array<i32: 1, 1, 0, 1, 1, 1, 1>}> ({
  ^bb0(%g: tensor<4x5xf32>, %w0: tensor<4x5xf32>, %m0: tensor<4x5xf32>, %lr0: f32, %wd0: f32):
    "nora.yield"(%w0, %m0) : (tensor<4x5xf32>, tensor<4x5xf32>) -> ()
  }) : (tensor<2x4xf32>, tensor<2x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>, f32, f32) -> (tensor<4x5xf32>, tensor<4x5xf32>, i64)
  return
}
