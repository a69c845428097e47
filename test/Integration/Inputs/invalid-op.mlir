// Parses, but the verifier rejects it: apply_update's operands differ in
// shape.
func.func @update(%w: tensor<4x8xf32>, %d: tensor<8x4xf32>, %lr: f32,
                  %wd: f32) -> tensor<4x8xf32> {
  %w1 = nora.apply_update %w, %d, %lr, %wd : tensor<4x8xf32>, tensor<8x4xf32>
  return %w1 : tensor<4x8xf32>
}
