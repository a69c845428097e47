#!/usr/bin/env python3
"""Compiles the fused-step kernel for sm_80 and sm_90a at the benchmark and
test shapes and checks its resources with `ptxas -v`: no spills (stores or
loads), no stack frame, no wgmma that ptxas serializes (its C75xx
performance warnings), and at most --max-registers registers a thread (176
by default: the SIMT kernel, one 256-thread CTA a SM, two at <= 128; the
warp-specialized kernels' 168 at launch) or, for the kernels capped at 255
(mma.sync, tf32, wgmma: one CTA a SM either way), 255. The
persistent grid is sized from the occupancy, so both are correct; the budget
catches regressions.

    scripts/check-gpu-resources.py [--bin DIR] [--max-registers N]
                                   [--chips sm_80,sm_90a]
                                   [--mainloops auto,simt]
                                   [--shapes guard_,bench_4096x4096]

Prints one line a kernel and exits 1 if any kernel breaks the budget (or
does not compile). scripts/test.sh runs it through lit
(test/Pipelines/gpu-resources.test).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_steps import (BENCH_VARIANTS, cluster_fits, optim_mlir,  # noqa: E402
                       step_mlir)

# nora-compile's flags for each --mainloops value: its own --mainloop, or
# a variant of the benchmark's (wgmma-ws6: 6 stages of 64 tokens,
# wgmma-ws-t16: 16-token stages), or mma-sync with tf32.
FLAGS = dict((suffix, flags) for suffix, flags, _, _ in BENCH_VARIANTS)
FLAGS["tf32"] = ["--mainloop=mma-sync", "--allow-tf32"]
# The cluster row exchange (sm_90a) with the exact-f32, wgmma and
# wgmma-ws mainloops too ("cluster" and "wgmma-wide-cluster" are the
# benchmark's).
FLAGS["cluster-simt"] = ["--mainloop=simt", "--row-exchange=cluster"]
FLAGS["cluster-wgmma"] = ["--mainloop=wgmma", "--row-exchange=cluster"]
FLAGS["cluster-wgmma-ws"] = ["--mainloop=wgmma-ws", "--row-exchange=cluster"]
CLUSTER = ("cluster", "cluster-simt", "cluster-wgmma", "cluster-wgmma-ws",
           "wgmma-wide-cluster")

# (name, T, M, N, activation dtype, step, accumulator)
SHAPES = [
    ("bench_4096x4096_T8192", 8192, 4096, 4096, "bf16", "nora_step", False),
    ("bench_11008x4096_T8192", 8192, 11008, 4096, "bf16", "nora_step", False),
    ("bench_4096x11008_T8192", 8192, 4096, 11008, "bf16", "nora_step", False),
    ("bench_4096x2048_T8192", 8192, 4096, 2048, "bf16", "nora_step", False),
    ("bench_4096x4096_T2048", 2048, 4096, 4096, "bf16", "nora_step", False),
    ("rmnp_4096x11008_T2048", 2048, 4096, 11008, "bf16", "rmnp_step", False),
    ("f32_nora_97x61_T33", 33, 97, 61, "f32", "nora_step", True),
    ("f16_rmnp_256x128_T64", 64, 256, 128, "f16", "rmnp_step", False),
    # Partial tiles (a row block and a column tile the matrix does not
    # fill): the epilogue's range predicates.
    ("partial_136x200_T96", 96, 136, 200, "bf16", "nora_step", False),
    ("partial_4104x4104_T8192", 8192, 4104, 4104, "bf16", "nora_step", False),
    # The optimizer step alone, on a given gradient (no T).
    ("optim_nora_4096x11008", None, 4096, 11008, None, "nora_step", False),
    # Steps guarded against non-finite gradients (GUARDS: their modes).
    ("guard_row_4096x11008_T8192", 8192, 4096, 11008, "bf16", "nora_step",
     False),
    ("guard_step_4096x11008_T8192", 8192, 4096, 11008, "bf16", "nora_step",
     False),
    ("partial_guard_row_136x200_T96", 96, 136, 200, "bf16", "nora_step",
     False),
    # Partial tiles on a grid of 9 x 9 tiles (and 17 x 9 of simt's).
    ("partial_guard_row_1032x1032_T512", 512, 1032, 1032, "bf16",
     "nora_step", False),
    # One whose row block fits a cluster (the cluster exchange's guard).
    ("guard_row_4096x2048_T8192", 8192, 4096, 2048, "bf16", "nora_step",
     False),
]
GUARDS = {"guard_row_4096x11008_T8192": "skip_row",
          "guard_step_4096x11008_T8192": "skip_step",
          "partial_guard_row_136x200_T96": "skip_row",
          "partial_guard_row_1032x1032_T512": "skip_row",
          "guard_row_4096x2048_T8192": "skip_row"}


def find(tool, bin_dir):
    for d in ([bin_dir] if bin_dir else []) + ["/usr/local/cuda/bin"]:
        p = os.path.join(d, tool)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(tool)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", help="directory of nora-compile (default: PATH)")
    p.add_argument("--max-registers", type=int, default=176)
    p.add_argument("--chips", default="sm_80,sm_90a")
    p.add_argument("--mainloops",
                   default="auto,simt,wgmma,wgmma-ws,wgmma-ws-t16,"
                           "wgmma-pingpong,wgmma-tall,wgmma-wide,tf32,"
                           "cluster,cluster-simt,cluster-wgmma,"
                           "cluster-wgmma-ws,wgmma-wide-cluster",
                   help="nora-compile --mainloop values (auto: tensor cores "
                        "for bf16/f16) or the benchmark's wgmma variants "
                        "(wgmma-ws6, wgmma-ws-t16); tf32: mma-sync with "
                        "--allow-tf32 at the benchmark shapes with f32 "
                        "activations; cluster, cluster-simt, "
                        "cluster-wgmma, cluster-wgmma-ws, "
                        "wgmma-wide-cluster: --row-exchange=cluster "
                        "(sm_90a) with auto, simt, wgmma, wgmma-ws, "
                        "wgmma-wide at the shapes it takes")
    p.add_argument("--shapes", default="",
                   help="only the shapes whose names start with one of "
                        "these (comma-separated; default: all)")
    opts = p.parse_args()
    prefixes = tuple(x for x in opts.shapes.split(",") if x)
    compiler, ptxas = find("nora-compile", opts.bin), find("ptxas", None)
    if not compiler or not ptxas:
        sys.exit("error: nora-compile and ptxas are needed")
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        # wgmma and the cluster exchange are sm_90a's.
        for chip, mainloop in [(c, ml) for ml in opts.mainloops.split(",")
                               for c in opts.chips.split(",")
                               if not ml.startswith(("wgmma", "cluster"))
                               or c == "sm_90a"]:
            for name, T, M, N, act, step, acc in SHAPES:
                if prefixes and not name.startswith(prefixes):
                    continue
                columns = 64 if mainloop == "cluster-simt" or act == "f32" \
                    else 256 if mainloop == "wgmma-wide-cluster" else 128
                if mainloop in CLUSTER and (
                        T is None or not cluster_fits(N, columns) or
                        (mainloop.startswith("cluster-wgmma") and
                         act == "f32") or
                        (mainloop == "cluster-wgmma" and
                         name.startswith("partial_guard"))):
                    continue  # what the cluster exchange takes
                # wgmma, tf32 and mma-sync (bf16/f16 under auto and
                # cluster) may use their nvvm.maxnreg, 255.
                budget = max(opts.max_registers, 255) \
                    if mainloop in ("wgmma", "tf32", "cluster-wgmma") or (
                        mainloop in ("auto", "mma-sync", "cluster") and
                        act != "f32") else opts.max_registers
                if (mainloop.startswith("wgmma") or
                        mainloop == "mma-sync") and act == "f32":
                    continue  # tensor cores take bf16/f16 only
                if mainloop.startswith(("wgmma-pingpong", "wgmma-tall",
                                        "wgmma-wide")) \
                        and name.startswith("partial_"):
                    continue  # whole tiles only (an error of the pass)
                if mainloop == "tf32":
                    # The benchmark shapes with f32 dy and x.
                    if not name.startswith(("bench_", "rmnp_", "partial_")) \
                            or name in GUARDS:
                        continue
                    act = "f32"
                src = os.path.join(tmp, name + ".mlir")
                ptx = os.path.join(tmp, "%s.%s.%s.ptx" % (name, chip, mainloop))
                with open(src, "w") as f:
                    f.write(optim_mlir(name, M, N, step) if T is None else
                            step_mlir(name, T, M, N, act, step, acc,
                                      GUARDS.get(name)))
                flags = FLAGS.get(mainloop, ["--mainloop=" + mainloop])
                res = subprocess.run(
                    [compiler, src, "--chip=" + chip, "--emit-ptx=" + ptx]
                    + flags +
                    ["-o", os.path.join(tmp, "%s.%s.nora" % (name, chip))],
                    capture_output=True, text=True)
                if res.returncode != 0:
                    print("FAIL %s %s %s: nora-compile: %s"
                          % (chip, mainloop, name, res.stderr.strip()))
                    bad += 1
                    continue
                res = subprocess.run(
                    [ptxas, "-v", "-arch=" + chip, ptx, "-o", os.devnull],
                    capture_output=True, text=True)
                info = res.stderr
                regs = re.findall(r"Used (\d+) registers", info)
                spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes "
                                    r"spill loads", info)
                stack = re.findall(r"(\d+) bytes stack frame", info)
                smem = re.findall(r"(\d+) bytes smem", info)
                if res.returncode != 0 or not regs or not spills:
                    print("FAIL %s %s %s: ptxas: %s"
                          % (chip, mainloop, name, info.strip()))
                    bad += 1
                    continue
                r = max(int(v) for v in regs)
                spilled = sum(int(a) + int(b) for a, b in spills)
                frame = sum(int(v) for v in stack)
                # ptxas serializes wgmmas it cannot prove warpgroup-uniform
                # or whose accumulators are touched between the fence and
                # the wgmma (C7510-C7520: "Potential Performance Loss").
                serialized = re.findall(r"\((C75\d\d)\) (?:Potential "
                                        r"Performance Loss|warpgroup\.arrive "
                                        r"is injected)", info)
                ok = spilled == 0 and frame == 0 and r <= budget and \
                    not serialized
                bad += not ok
                print("%s %-6s %-4s %-26s registers %3d (budget %d), spills "
                      "%d bytes, stack %d bytes, smem %s bytes%s"
                      % ("ok  " if ok else "FAIL", chip, mainloop, name, r,
                         budget, spilled, frame,
                         smem[0] if smem else "?",
                         ", wgmma serialized (%s)" % ", ".join(serialized)
                         if serialized else ""))
    if bad:
        print("%d kernel(s) over budget or failed" % bad)
        return 1
    print("all kernels within budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
