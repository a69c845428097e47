// The CPU pipeline takes what a front end writes (wgrad + a composite step)
// to the LLVM dialect, with results as caller-allocated out-params.
// RUN: nora-opt %s --nora-cpu-pipeline | FileCheck %s --check-prefixes=CHECK,FUSED
// RUN: nora-opt %s --nora-cpu-pipeline=fuse=false | FileCheck %s --check-prefixes=CHECK,UNFUSED
// RUN: nora-opt %s --nora-cpu-pipeline=threads=false | FileCheck %s --check-prefixes=CHECK,SERIAL

// CHECK-NOT: nora.
// CHECK-NOT: linalg.
// CHECK-NOT: memref.
// CHECK-NOT: tensor.
// The contraction calls the micro-kernel through its C interface.
// FUSED: llvm.func @_mlir_ciface_nora_wgrad_packed_f32(!llvm.ptr, !llvm.ptr, !llvm.ptr)
// UNFUSED: llvm.func @_mlir_ciface_nora_wgrad_f32(!llvm.ptr, !llvm.ptr, !llvm.ptr)
// CHECK-LABEL: llvm.func @step
// Inputs dy, x, w, m (2 pointers, offset, 2 sizes, 2 strides each), then lr,
// wd, then the two out-params; nothing is returned.
// CHECK-SAME: %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr,
// CHECK-NOT: -> !llvm.struct
// Fused: x is packed once, then the row panels run on OpenMP threads, each
// calls the micro-kernel on the packed x.
// FUSED: omp.parallel
// FUSED: omp.wsloop
// FUSED: llvm.call @nora_wgrad_packed_f32
// FUSED: llvm.intr.sqrt
// Unfused: one call for the whole gradient, no threads.
// UNFUSED-NOT: omp.
// UNFUSED: llvm.call @nora_wgrad_f32
// SERIAL-NOT: omp.
// SERIAL: llvm.call @nora_wgrad_packed_f32
// CHECK: llvm.return
// CHECK-LABEL: llvm.func @_mlir_ciface_step
func.func @step(%dy: tensor<8x100xbf16>, %x: tensor<8x12xbf16>, %w: tensor<100x12xf32>, %m: tensor<100x12xf32>, %lr: f32, %wd: f32)
    -> (tensor<100x12xf32>, tensor<100x12xf32>) attributes {llvm.emit_c_interface} {
  %g = nora.wgrad %dy, %x : tensor<8x100xbf16>, tensor<8x12xbf16> -> tensor<100x12xf32>
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd : tensor<100x12xf32>, tensor<100x12xf32>, tensor<100x12xf32>
  return %w1, %m1 : tensor<100x12xf32>, tensor<100x12xf32>
}
