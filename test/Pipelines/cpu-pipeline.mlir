// The CPU pipeline takes what a front end writes (wgrad + a composite step)
// to the LLVM dialect, with results as caller-allocated out-params.
// RUN: nora-opt %s --nora-cpu-pipeline | FileCheck %s
// RUN: nora-opt %s --nora-cpu-pipeline=fuse=false | FileCheck %s

// CHECK-NOT: nora.
// CHECK-NOT: linalg.
// CHECK-NOT: memref.
// CHECK-NOT: tensor.
// CHECK-LABEL: llvm.func @step
// Inputs dy, x, w, m (5 words each: 2 pointers, offset, 2 sizes, 2 strides),
// then lr, wd, then the two out-params; nothing is returned.
// CHECK-SAME: %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr,
// CHECK-NOT: -> !llvm.struct
// CHECK: llvm.intr.sqrt
// CHECK: llvm.return
// CHECK-LABEL: llvm.func @_mlir_ciface_step
func.func @step(%dy: tensor<8x16xbf16>, %x: tensor<8x12xbf16>, %w: tensor<16x12xf32>, %m: tensor<16x12xf32>, %lr: f32, %wd: f32)
    -> (tensor<16x12xf32>, tensor<16x12xf32>) attributes {llvm.emit_c_interface} {
  %g = nora.wgrad %dy, %x : tensor<8x16xbf16>, tensor<8x12xbf16> -> tensor<16x12xf32>
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<16x12xf32>, tensor<16x12xf32>, tensor<16x12xf32>
  return %w1, %m1 : tensor<16x12xf32>, tensor<16x12xf32>
}
