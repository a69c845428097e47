// A fused Nora step with 300 rows: 7 panels of 48 rows when panels are 48,
// so OpenMP threads split them.
func.func @step(%dy: tensor<40x300xbf16>, %x: tensor<40x70xbf16>,
                %w: tensor<300x70xf32>, %m: tensor<300x70xf32>,
                %lr: f32, %wd: f32) -> (tensor<300x70xf32>, tensor<300x70xf32>) {
  %g = nora.wgrad %dy, %x : tensor<40x300xbf16>, tensor<40x70xbf16> -> tensor<300x70xf32>
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd
      : tensor<300x70xf32>, tensor<300x70xf32>, tensor<300x70xf32>
  return %w1, %m1 : tensor<300x70xf32>, tensor<300x70xf32>
}
