func.func @bad(%m: tensor<4x8xf32>, %g: tensor<4x8xf32>) {
  // expected-error @+1 {{'nora.momentum' op attribute 'beta' must be in [0, 1), got 1.000000e+00}}
  %mn, %u = "nora.momentum"(%m, %g) {beta = 1.0 : f32} : (tensor<4x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  return
}
