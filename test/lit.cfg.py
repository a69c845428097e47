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
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "Inputs", "CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.nora_obj_root, "test")

config.substitutions.append(
    ("%nora_plugin", os.path.join(config.nora_lib_dir, "libNoraPlugin.so")))
config.substitutions.append(("%nora_src_root", config.nora_src_root))
config.substitutions.append(("%nora_bin", config.nora_tools_dir))

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
