// Functions that nora-run-errors.test calls with bad command lines.
func.func @update(%w: tensor<4x8xf32>, %d: tensor<4x8xf32>, %lr: f32,
                  %wd: f32) -> tensor<4x8xf32> {
  %w1 = nora.apply_update %w, %d, %lr, %wd : tensor<4x8xf32>, tensor<4x8xf32>
  return %w1 : tensor<4x8xf32>
}

func.func @two(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>)
    -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %m1, %u = nora.momentum %m, %g {beta = 0.9 : f32, nesterov = 0.9 : f32}
      : tensor<4x8xf32>, tensor<4x8xf32>
  return %m1, %u : tensor<4x8xf32>, tensor<4x8xf32>
}
