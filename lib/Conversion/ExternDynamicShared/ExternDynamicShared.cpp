//===- ExternDynamicShared.cpp - dynamic shared memory as .extern --------===//
//
// convert-gpu-to-nvvm lowers gpu.dynamic_shared_memory to an internal
// zero-length global in address space 3. The NVPTX back end prints it as a
// kernel-local one-byte variable (".shared .align 16 .b8 __dynamic_shmem__0;",
// "demoted"), which ptxas lays out among the kernel's static shared memory
// (first, at offset 0, with the static buffers after it) instead of where the
// launch's dynamic shared memory starts: a kernel that writes past its first
// byte overwrites its own static buffers. An external declaration is what
// CUDA's `extern __shared__ char smem[]` gives (".extern .shared .align 16
// .b8 __dynamic_shmem__0[];"): the dynamic shared memory, after the static.
//
//===----------------------------------------------------------------------===//

#include "nora/Conversion/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace mlir::nora {
#define GEN_PASS_DEF_NORAEXTERNDYNAMICSHARED
#include "nora/Conversion/Passes.h.inc"
} // namespace mlir::nora

using namespace mlir;

namespace {

struct NoraExternDynamicSharedPass
    : nora::impl::NoraExternDynamicSharedBase<NoraExternDynamicSharedPass> {
  void runOnOperation() override {
    getOperation().walk([](LLVM::GlobalOp global) {
      auto array = dyn_cast<LLVM::LLVMArrayType>(global.getGlobalType());
      if (global.getAddrSpace() !=
              static_cast<unsigned>(NVVM::NVVMMemorySpace::Shared) ||
          !array || array.getNumElements() != 0 ||
          global.getLinkage() != LLVM::Linkage::Internal ||
          global.getValueOrNull() || !global.getInitializerRegion().empty())
        return;
      global.setLinkage(LLVM::Linkage::External);
    });
  }
};

} // namespace
