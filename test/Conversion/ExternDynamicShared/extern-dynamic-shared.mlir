// RUN: nora-opt %s --pass-pipeline="builtin.module(gpu.module(nora-extern-dynamic-shared))" | FileCheck %s

// The zero-length shared global of gpu.dynamic_shared_memory becomes an
// external declaration (PTX: .extern .shared ... []); static shared
// buffers, other address spaces and globals with a value stay as they are.

// CHECK-LABEL: gpu.module @kernels
// CHECK: llvm.mlir.global external @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64, dso_local} : !llvm.array<0 x i8>
// CHECK: llvm.mlir.global internal @static_buffer() {addr_space = 3 : i32, alignment = 1024 : i64} : !llvm.array<64 x i8>
// CHECK: llvm.mlir.global internal @global_zero() {addr_space = 1 : i32} : !llvm.array<0 x i8>
// CHECK: llvm.mlir.global internal constant @shared_value(dense<0> : tensor<0xi8>) {addr_space = 3 : i32} : !llvm.array<0 x i8>
gpu.module @kernels {
  llvm.mlir.global internal @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64, dso_local} : !llvm.array<0 x i8>
  llvm.mlir.global internal @static_buffer() {addr_space = 3 : i32, alignment = 1024 : i64} : !llvm.array<64 x i8>
  llvm.mlir.global internal @global_zero() {addr_space = 1 : i32} : !llvm.array<0 x i8>
  llvm.mlir.global internal constant @shared_value(dense<0> : tensor<0xi8>) {addr_space = 3 : i32} : !llvm.array<0 x i8>
}
