// A weight gradient with no optimizer step: the GPU kernel with an epilogue
// that stores g (nora_wgrad_0, not cooperative).
func.func @grad(%dy: tensor<8x16xf32>, %x: tensor<8x32xf32>) -> tensor<16x32xf32> {
  %g = nora.wgrad %dy, %x : tensor<8x16xf32>, tensor<8x32xf32> -> tensor<16x32xf32>
  return %g : tensor<16x32xf32>
}
