// Not parseable: a missing operand type list and an unterminated region.
func.func @update(%w: tensor<4x8xf32>, %d: tensor<4x8xf32>, %lr: f32,
                  %wd: f32) -> tensor<4x8xf32> {
  %w1 = nora.apply_update %w, %d, %lr, %wd :
  return %w1 : tensor<4x8xf32>
