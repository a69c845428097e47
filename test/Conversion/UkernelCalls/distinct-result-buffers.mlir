// RUN: nora-opt %s -nora-distinct-result-buffers | FileCheck %s

// One buffer returned twice and an argument returned: each gets its own copy;
// the first return of a fresh allocation stays as it is.
// CHECK-LABEL: func.func @aliasing
// CHECK-SAME: (%[[ARG:.*]]: memref<4x8xf32>)
// CHECK: %[[A:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK: %[[C1:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK: memref.copy %[[A]], %[[C1]]
// CHECK: %[[C2:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK: memref.copy %[[ARG]], %[[C2]]
// CHECK: return %[[A]], %[[C1]], %[[C2]]
func.func @aliasing(%arg: memref<4x8xf32>) -> (memref<4x8xf32>, memref<4x8xf32>, memref<4x8xf32>) {
  %a = memref.alloc() : memref<4x8xf32>
  return %a, %a, %arg : memref<4x8xf32>, memref<4x8xf32>, memref<4x8xf32>
}

// Dynamic sizes come from the returned buffer.
// CHECK-LABEL: func.func @dynamic
// CHECK: %[[D0:.*]] = memref.dim %{{.*}}, %c0
// CHECK: %[[D1:.*]] = memref.dim %{{.*}}, %c1
// CHECK: memref.alloc(%[[D0]], %[[D1]]) : memref<?x?xf32>
func.func @dynamic(%arg: memref<?x?xf32>) -> memref<?x?xf32> {
  return %arg : memref<?x?xf32>
}
