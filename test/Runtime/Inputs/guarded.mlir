// A Nora step guarded against non-finite gradients (its i64 count is the
// third result), for nora-run --device=cuda (nora-run-cuda.test).
func.func @step(%dy: tensor<32x128xbf16>, %x: tensor<32x96xbf16>, %w: tensor<128x96xf32>, %m: tensor<128x96xf32>, %lr: f32, %wd: f32)
    -> (tensor<128x96xf32>, tensor<128x96xf32>, i64) {
  %g = nora.wgrad %dy, %x : tensor<32x128xbf16>, tensor<32x96xbf16> -> tensor<128x96xf32>
  %wn, %mn, %s = nora.nora_step %g, %w, %m, %lr, %wd {nonfinite = "skip_row"} : tensor<128x96xf32>, tensor<128x96xf32>, tensor<128x96xf32> -> i64
  return %wn, %mn, %s : tensor<128x96xf32>, tensor<128x96xf32>, i64
}
