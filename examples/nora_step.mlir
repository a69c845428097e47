// One Nora step of a 1024x1024 linear layer, as a front end writes it: the
// weight gradient of y = x @ W^T from the saved activations x and the output
// gradient dy, then the composite optimizer step with the official defaults.
// lr and wd are runtime scalars: a schedule never recompiles.
func.func @nora_step(%dy: tensor<64x1024xf32>, %x: tensor<64x1024xf32>,
                     %w: tensor<1024x1024xf32>, %m: tensor<1024x1024xf32>,
                     %lr: f32, %wd: f32)
    -> (tensor<1024x1024xf32>, tensor<1024x1024xf32>) {
  %g = nora.wgrad %dy, %x : tensor<64x1024xf32>, tensor<64x1024xf32> -> tensor<1024x1024xf32>
  %w_new, %m_new = nora.nora_step %g, %w, %m, %lr, %wd
      : tensor<1024x1024xf32>, tensor<1024x1024xf32>, tensor<1024x1024xf32>
  return %w_new, %m_new : tensor<1024x1024xf32>, tensor<1024x1024xf32>
}
