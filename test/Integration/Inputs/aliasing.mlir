// Results that alias: the same value returned twice (nora.momentum without
// Nesterov has u = m_new), and a function argument returned as a result.
func.func @same_twice(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>)
    -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %m1, %u = nora.momentum %m, %g {beta = 0.5 : f32}
      : tensor<4x8xf32>, tensor<4x8xf32>
  return %m1, %u : tensor<4x8xf32>, tensor<4x8xf32>
}

func.func @one_value_twice(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>)
    -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %m1, %u = nora.momentum %m, %g {beta = 0.5 : f32, nesterov = 0.5 : f32}
      : tensor<4x8xf32>, tensor<4x8xf32>
  return %m1, %m1 : tensor<4x8xf32>, tensor<4x8xf32>
}

func.func @argument(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>)
    -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %m1, %u = nora.momentum %m, %g {beta = 0.5 : f32, nesterov = 0.5 : f32}
      : tensor<4x8xf32>, tensor<4x8xf32>
  return %g, %u : tensor<4x8xf32>, tensor<4x8xf32>
}
