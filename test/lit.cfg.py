# -*- Python -*-
# lit configuration of the nora test suite.

import os
import shutil

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "NORA"

# `lit --param nora_tools_dir=DIR` runs the suite against other builds of the
# tools (scripts/test.sh uses it for the ASan+UBSan build).
config.nora_tools_dir = lit_config.params.get("nora_tools_dir",
                                              config.nora_tools_dir)
# The tests that check Python tools (not the C++ ones) run once, in the
# suite of the main build.
if "nora_tools_dir" in lit_config.params:
    config.available_features.add("other-tools-build")
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "Inputs", "CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.nora_obj_root, "test")

config.substitutions.append(
    ("%nora_plugin", os.path.join(config.nora_lib_dir, "libNoraPlugin.so")))
config.substitutions.append(("%nora_src_root", config.nora_src_root))
config.substitutions.append(("%nora_bin", config.nora_tools_dir))
config.substitutions.append(("%nora_lib", config.nora_lib_dir))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP",
                                    "ASAN_OPTIONS", "UBSAN_OPTIONS",
                                    "OMP_NUM_THREADS"])
llvm_config.use_default_substitutions()

# lit clears the environment: hand the tools we need back explicitly. The CUDA
# toolkit (ptxas) and the Python that has numpy come from PATH.
cuda_bin = "/usr/local/cuda/bin"
path = [config.nora_tools_dir, config.llvm_tools_dir]
if os.path.isdir(cuda_bin):
    path.append(cuda_bin)
llvm_config.with_system_environment(["PATH", "PYTHONPATH", "VIRTUAL_ENV"])
llvm_config.with_environment("PATH", os.pathsep.join(path), append_path=True)

# The Python that has numpy (scripts/setup.sh installs it there), not the one
# running lit: drop lit's own %python and put ours in its place.
config.substitutions = [(k, v) for (k, v) in config.substitutions
                        if k != "%python"]
config.substitutions.insert(0, ("%python", config.nora_python))

tools = [
    "nora-opt",
    ToolSubst("mlir-opt", os.path.join(config.llvm_tools_dir, "mlir-opt"),
              unresolved="fatal"),
]
llvm_config.add_tool_substitutions(tools, [config.nora_tools_dir])

if config.nora_build_unittests:
    config.available_features.add("unittests")
if shutil.which("ptxas", path=os.pathsep.join(path)):
    config.available_features.add("ptxas")

# The GPU runtime's tests (test/Runtime). nvcc builds their fixture kernels;
# `nora-exec --probe` (in a child process) says whether a CUDA driver and
# device are usable: `cuda-device`, with %cuda_arch the chip to compile for.
import re
import subprocess

if shutil.which("nvcc", path=os.pathsep.join(path)):
    config.available_features.add("nvcc")
_cuda_stub = "/usr/local/cuda/lib64/stubs/libcuda.so"
if os.path.isfile(_cuda_stub):
    config.available_features.add("cuda-stub-driver")
    config.substitutions.append(("%cuda_stub_driver", _cuda_stub))
config.substitutions.append(
    ("%fake_cuda_no_tma",
     os.path.join(config.nora_lib_dir, "libnora-fake-cuda-no-tma.so")))
config.substitutions.append(
    ("%fake_cuda", os.path.join(config.nora_lib_dir, "libnora-fake-cuda.so")))
_nora_exec = os.path.join(config.nora_tools_dir, "nora-exec")
if os.access(_nora_exec, os.X_OK):
    try:
        _probe = subprocess.run([_nora_exec, "--probe"], capture_output=True,
                                text=True, timeout=120)
        _chip = re.search(r"\(sm_(\d+),", _probe.stdout)
        if _probe.returncode == 0 and _chip:
            config.available_features.add("cuda-device")
            _arch = "sm_" + _chip.group(1)
            # Hopper kernels use the arch-specific sm_90a features.
            config.substitutions.append(
                ("%cuda_arch", _arch + "a" if _arch == "sm_90" else _arch))
            if _arch == "sm_90":
                config.available_features.add("cuda-sm90a")
    except (OSError, subprocess.SubprocessError):
        pass
