# The LLVM-free GPU runtime (artifact loading, the CUDA driver layer loaded at
# run time) and its runner nora-exec. Included by lib/Runtime/CMakeLists.txt
# in the main build and by runtime/CMakeLists.txt in the runtime-only build
# (no LLVM/MLIR); both define NoraNpy first.
set(NORA_RUNTIME_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}")
add_library(NoraCudaRuntime STATIC
  ${NORA_RUNTIME_SOURCE_DIR}/Json.cpp
  ${NORA_RUNTIME_SOURCE_DIR}/CudaArtifact.cpp
  ${NORA_RUNTIME_SOURCE_DIR}/CudaDriver.cpp
  ${NORA_RUNTIME_SOURCE_DIR}/CudaDriverAbi.cpp
  ${NORA_RUNTIME_SOURCE_DIR}/CudaExecutable.cpp)
target_link_libraries(NoraCudaRuntime PUBLIC NoraNpy ${CMAKE_DL_LIBS})

# Where the CUDA toolkit is present, CudaDriverAbi.cpp checks the driver
# types and enum values the runtime declares itself against cuda.h.
find_path(NORA_CUDA_INCLUDE_DIR cuda.h
  HINTS "$ENV{CUDA_HOME}/include" "$ENV{CUDA_PATH}/include"
        /usr/local/cuda/include)
if(NORA_CUDA_INCLUDE_DIR)
  set_property(SOURCE ${NORA_RUNTIME_SOURCE_DIR}/CudaDriverAbi.cpp
    APPEND PROPERTY COMPILE_OPTIONS "-isystem${NORA_CUDA_INCLUDE_DIR}")
  set_property(SOURCE ${NORA_RUNTIME_SOURCE_DIR}/CudaDriverAbi.cpp
    APPEND PROPERTY COMPILE_DEFINITIONS NORA_HAVE_CUDA_H)
endif()

# libNoraRuntimeCAPI.so: the C API of the runtime (include/nora-c/Runtime.h)
# that the Python package loads with ctypes on the GPU machine.
set_target_properties(NoraNpy NoraCudaRuntime PROPERTIES
  POSITION_INDEPENDENT_CODE ON)
add_library(NoraRuntimeCAPI SHARED ${NORA_RUNTIME_SOURCE_DIR}/RuntimeCAPI.cpp)
target_link_libraries(NoraRuntimeCAPI PRIVATE NoraCudaRuntime)
set_target_properties(NoraRuntimeCAPI PROPERTIES
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
install(TARGETS NoraRuntimeCAPI LIBRARY DESTINATION lib)
