// RUN: nora-opt %s -split-input-file --nora-gpu-pipeline=chip=sm_80 --nora-gpu-host-to-runtime -verify-diagnostics | FileCheck %s
// REQUIRES: ptxas

// Two functions with steps: each becomes an llvm.func on device pointers
// (tensors and results as ptr, scalars as f32, then the stream) returning
// the runtime's status; each embeds its plan and a cache slot, both share
// the one cubin, and the gpu.binary is gone.

// CHECK-LABEL: module
// CHECK-NOT: gpu.binary
// CHECK-DAG: llvm.func @nora_embedded_call(!llvm.ptr, !llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr) -> i32
// CHECK-DAG: llvm.mlir.global internal @__nora_cache_rmnp()
// CHECK-DAG: llvm.mlir.global internal @__nora_cache_nora()
// CHECK-DAG: llvm.mlir.global internal constant @__nora_plan_rmnp("{{.*}}\22chip\22: \22sm_80\22{{.*}}\22entry\22: \22rmnp\22{{.*}}\00")
// CHECK-DAG: llvm.mlir.global internal constant @__nora_plan_nora("{{.*}}\22entry\22: \22nora\22{{.*}}\00")
// CHECK-DAG: llvm.mlir.global internal constant @__nora_kernels_cubin("\7FELF{{.*}}") {addr_space = 0 : i32, alignment = 64 : i64}
// CHECK-LABEL: llvm.func @rmnp(
// CHECK-SAME: %[[DY:.*]]: !llvm.ptr, %[[X:.*]]: !llvm.ptr, %[[W:.*]]: !llvm.ptr, %[[M:.*]]: !llvm.ptr, %[[LR:.*]]: f32, %[[WD:.*]]: f32, %[[WN:.*]]: !llvm.ptr, %[[MN:.*]]: !llvm.ptr, %[[S:.*]]: !llvm.ptr) -> i32
// CHECK: %[[T:.*]] = llvm.alloca %{{.*}} x !llvm.array<6 x i64>
// CHECK: %[[F:.*]] = llvm.alloca %{{.*}} x !llvm.array<6 x f32>
// CHECK: llvm.ptrtoint %[[DY]]
// CHECK: llvm.store %[[LR]]
// CHECK: llvm.store %[[WD]]
// CHECK: %[[R:.*]] = llvm.alloca %{{.*}} x !llvm.array<2 x i64>
// CHECK: llvm.ptrtoint %[[WN]]
// CHECK: llvm.ptrtoint %[[MN]]
// CHECK: %[[C:.*]] = llvm.mlir.addressof @__nora_cache_rmnp
// CHECK: %[[P:.*]] = llvm.mlir.addressof @__nora_plan_rmnp
// CHECK: %[[B:.*]] = llvm.mlir.addressof @__nora_kernels_cubin
// CHECK: %[[RC:.*]] = llvm.call @nora_embedded_call(%[[C]], %[[P]], %[[B]], %{{.*}}, %[[T]], %[[F]], %[[R]], %[[S]])
// CHECK: llvm.return %[[RC]] : i32
// CHECK-LABEL: llvm.func @nora(
// CHECK: llvm.call @nora_embedded_call
func.func @rmnp(%dy: tensor<4x128xf32>, %x: tensor<4x64xf32>,
                %w: tensor<128x64xf32>, %m: tensor<128x64xf32>,
                %lr: f32, %wd: f32) -> (tensor<128x64xf32>, tensor<128x64xf32>) {
  %g = nora.wgrad %dy, %x : tensor<4x128xf32>, tensor<4x64xf32> -> tensor<128x64xf32>
  %wn, %mn = nora.rmnp_step %g, %w, %m, %lr, %wd : tensor<128x64xf32>, tensor<128x64xf32>, tensor<128x64xf32>
  return %wn, %mn : tensor<128x64xf32>, tensor<128x64xf32>
}
func.func @nora(%dy: tensor<8x64xbf16>, %x: tensor<8x32xbf16>,
                %w: tensor<64x32xf32>, %m: tensor<64x32xf32>,
                %lr: f32, %wd: f32) -> (tensor<64x32xf32>, tensor<64x32xf32>) {
  %g = nora.wgrad %dy, %x : tensor<8x64xbf16>, tensor<8x32xbf16> -> tensor<64x32xf32>
  %wn, %mn = nora.nora_step %g, %w, %m, %lr, %wd : tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x32xf32>
  return %wn, %mn : tensor<64x32xf32>, tensor<64x32xf32>
}

// -----

// A guarded step: its i64 count is one more result pointer (to one int64 in
// device memory), and the embedded plan is version 4 (an i64 result, and
// counters zero-filled once).
// CHECK-LABEL: module
// CHECK-DAG: llvm.mlir.global internal constant @__nora_plan_guarded("{{.*}}\22dtype\22: \22i64\22{{.*}}\22kind\22: \22scalar\22{{.*}}\22version\22: 4{{.*}}\22workspace_zero_once\22{{.*}}\00")
// CHECK-LABEL: llvm.func @guarded(
// CHECK-SAME: %[[WN:.*]]: !llvm.ptr, %[[MN:.*]]: !llvm.ptr, %[[K:.*]]: !llvm.ptr, %[[S:.*]]: !llvm.ptr) -> i32
// CHECK: %[[R:.*]] = llvm.alloca %{{.*}} x !llvm.array<3 x i64>
// CHECK: llvm.ptrtoint %[[K]]
// CHECK: llvm.call @nora_embedded_call(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[R]], %[[S]])
func.func @guarded(%g: tensor<16x32xf32>, %w: tensor<16x32xf32>, %m: tensor<16x32xf32>,
                   %lr: f32, %wd: f32) -> (tensor<16x32xf32>, tensor<16x32xf32>, i64) {
  %wn, %mn, %k = nora.rmnp_step %g, %w, %m, %lr, %wd {nonfinite = "skip_step"} : tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32> -> i64
  return %wn, %mn, %k : tensor<16x32xf32>, tensor<16x32xf32>, i64
}

// -----

// A step on a given gradient beside a row normalization, which no kernel
// computes: the pass fails on it and rewrites nothing.
func.func @mixed(%g: tensor<16x32xf32>, %w: tensor<16x32xf32>, %m: tensor<16x32xf32>,
                 %lr: f32, %wd: f32, %v: tensor<16x32xf32>)
    -> (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>) {
  %wn, %mn = nora.rmnp_step %g, %w, %m, %lr, %wd : tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>
  // expected-error @+1 {{'nora.row_normalize' cannot run in a GPU artifact}}
  %d = nora.row_normalize %v : tensor<16x32xf32>
  return %wn, %mn, %d : tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>
}
