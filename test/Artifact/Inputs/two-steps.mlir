// Two weights of a layer stack in one step function: two kernels in one
// artifact, each with its own part of the workspace. A second public
// function makes --entry necessary.
func.func @step(%dy1: tensor<16x64xf32>, %x1: tensor<16x96xf32>,
                %w1: tensor<64x96xf32>, %m1: tensor<64x96xf32>,
                %dy2: tensor<16x96xbf16>, %x2: tensor<16x32xbf16>,
                %w2: tensor<96x32xf32>, %m2: tensor<96x32xf32>,
                %lr: f32, %wd: f32)
    -> (tensor<64x96xf32>, tensor<64x96xf32>, tensor<96x32xf32>, tensor<96x32xf32>) {
  %g1 = nora.wgrad %dy1, %x1 : tensor<16x64xf32>, tensor<16x96xf32> -> tensor<64x96xf32>
  %wn1, %mn1 = nora.nora_step %g1, %w1, %m1, %lr, %wd
      : tensor<64x96xf32>, tensor<64x96xf32>, tensor<64x96xf32>
  %g2 = nora.wgrad %dy2, %x2 : tensor<16x96xbf16>, tensor<16x32xbf16> -> tensor<96x32xf32>
  %wn2, %mn2 = nora.rmnp_step %g2, %w2, %m2, %lr, %wd
      : tensor<96x32xf32>, tensor<96x32xf32>, tensor<96x32xf32>
  return %wn1, %mn1, %wn2, %mn2
      : tensor<64x96xf32>, tensor<64x96xf32>, tensor<96x32xf32>, tensor<96x32xf32>
}

func.func @other(%a: f32) -> f32 {
  return %a : f32
}
