// RUN: nora-opt %s -nora-lower-ukernel-calls | FileCheck %s

// A generic on memrefs with a nora_* library_call becomes a call with fully
// dynamic strided operands and one private C-interface declaration.
// CHECK: func.func private @nora_wgrad_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @panel
// CHECK-SAME: (%[[DY:.*]]: memref<4x10xf32>, %[[X:.*]]: memref<4x6xf32>, %[[G:.*]]: memref<10x6xf32>)
// CHECK: %[[SUB:.*]] = memref.subview %[[DY]]
// CHECK: %[[A:.*]] = memref.cast %[[SUB]] : memref<4x5xf32, strided<[10, 1], offset: 5>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[B:.*]] = memref.cast %[[X]] : memref<4x6xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: call @nora_wgrad_f32(%[[A]], %[[B]], %{{.*}})
// CHECK-NOT: linalg.generic
// Other library calls are left alone.
// CHECK-LABEL: func.func @other
// CHECK: linalg.generic
#dy = affine_map<(i, k, j) -> (k, i)>
#x = affine_map<(i, k, j) -> (k, j)>
#g = affine_map<(i, k, j) -> (i, j)>
func.func @panel(%dy: memref<4x10xf32>, %x: memref<4x6xf32>, %g: memref<10x6xf32>) {
  %dyp = memref.subview %dy[0, 5] [4, 5] [1, 1] : memref<4x10xf32> to memref<4x5xf32, strided<[10, 1], offset: 5>>
  %gp = memref.subview %g[5, 0] [5, 6] [1, 1] : memref<10x6xf32> to memref<5x6xf32, strided<[6, 1], offset: 30>>
  linalg.generic {indexing_maps = [#dy, #x, #g], iterator_types = ["parallel", "reduction", "parallel"], library_call = "nora_wgrad_f32"}
      ins(%dyp, %x : memref<4x5xf32, strided<[10, 1], offset: 5>>, memref<4x6xf32>) outs(%gp : memref<5x6xf32, strided<[6, 1], offset: 30>>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    linalg.yield %s : f32
  }
  return
}
func.func @other(%a: memref<4xf32>, %b: memref<4xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"], library_call = "someone_else"}
      ins(%a : memref<4xf32>) outs(%b : memref<4xf32>) {
  ^bb0(%x: f32, %y: f32):
    linalg.yield %x : f32
  }
  return
}
