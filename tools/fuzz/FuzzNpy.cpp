//===- FuzzNpy.cpp - fuzz: the .npy reader of nora-run ---------*- C++ -*-===//

#include "nora/Runtime/Npy.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::nora::npy::Array array;
  std::string error = mlir::nora::npy::parse(data, size, "input", array);
  if (error.empty() &&
      array.data.size() != size_t(array.numElements()) * array.elementSize())
    __builtin_trap(); // a successful parse must hold exactly its data
  return 0;
}
