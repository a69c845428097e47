#!/usr/bin/env python3
"""CPU benchmark of one Nora step: nora's fused path vs its op-by-op path vs
numpy vs torch eager, on f32 weights of M = N in {1024, 2048, 4096} and
T in {64, 1024} tokens.

    python3 bench/cpu/bench.py [--nora-run build/bin/nora-run] [--repeat 5]
                               [--shapes 64x2048,...] [--markdown out.md]

Each nora figure is the median of `--repeat` calls inside one nora-run process
(`--repeat=N` excludes compilation and file I/O). numpy and torch run the
official formulas (torch: lerp, clamp with max(norm, eps), decoupled weight
decay) in f32 after the matmul. Reported:

- time of the whole step (ms) for each implementation;
- GEMM GFLOP/s: 2*T*M*N / time of the gradient matmul alone (nora's
  micro-kernel through nora-run, numpy's OpenBLAS sgemm);
- effective update GB/s: 16*M*N bytes (read W and M, write W' and M') over the
  time the step takes beyond its matmul.
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

STEP_IR = """
func.func @step(%dy: tensor<{T}x{M}xf32>, %x: tensor<{T}x{N}xf32>,
                %w: tensor<{M}x{N}xf32>, %m: tensor<{M}x{N}xf32>,
                %lr: f32, %wd: f32) -> (tensor<{M}x{N}xf32>, tensor<{M}x{N}xf32>) {{
  %g = nora.wgrad %dy, %x : tensor<{T}x{M}xf32>, tensor<{T}x{N}xf32> -> tensor<{M}x{N}xf32>
  %w1, %m1 = nora.nora_step %g, %w, %m, %lr, %wd
      : tensor<{M}x{N}xf32>, tensor<{M}x{N}xf32>, tensor<{M}x{N}xf32>
  return %w1, %m1 : tensor<{M}x{N}xf32>, tensor<{M}x{N}xf32>
}}
"""

GEMM_IR = """
func.func @gemm(%dy: tensor<{T}x{M}xf32>, %x: tensor<{T}x{N}xf32>) -> tensor<{M}x{N}xf32> {{
  %g = nora.wgrad %dy, %x : tensor<{T}x{M}xf32>, tensor<{T}x{N}xf32> -> tensor<{M}x{N}xf32>
  return %g : tensor<{M}x{N}xf32>
}}
"""

LR, WD, BETA, EPS = 0.005, 0.1, 0.95, 1e-10


def nora_time(nora_run, ir, entry, inputs, n_out, repeat, extra=(), env=None):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "step.mlir"
        path.write_text(ir)
        cmd = [nora_run, str(path), f"--entry={entry}"]
        cmd += [f"--input={i}" for i in inputs]
        cmd += [f"--output=@{tmp}/out{i}.npy" for i in range(n_out)]
        cmd += [f"--repeat={repeat}", *extra]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            sys.exit(f"nora-run failed: {out.stderr}")
        match = re.search(r"time_ms median=([0-9.]+)", out.stdout)
        return float(match.group(1))


def median_ms(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def openblas_one_thread_ms(t, mn, repeat):
    """numpy's sgemm with OpenBLAS limited to one thread (a fresh process:
    the thread count is read when OpenBLAS loads)."""
    code = (f"import numpy as np, time\n"
            f"r = np.random.default_rng(0)\n"
            f"dy = r.standard_normal(({t}, {mn}), dtype=np.float32)\n"
            f"x = r.standard_normal(({t}, {mn}), dtype=np.float32)\n"
            f"dy.T @ x\n"
            f"ts = []\n"
            f"for _ in range({repeat}):\n"
            f"    s = time.perf_counter(); dy.T @ x; ts.append(time.perf_counter() - s)\n"
            f"print(sorted(ts)[len(ts) // 2] * 1e3)\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    return float(out.stdout)


def numpy_step(dy, x, w, m):
    g = dy.T @ x
    m = m + np.float32(1 - BETA) * (g - m)
    u = m + (g - m) * np.float32(-(1 - BETA))  # g.lerp(m, beta) = m - (m - g)(1 - beta)
    wn = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), np.float32(EPS))
    v = u - np.sum(u * wn, axis=1, keepdims=True) * wn
    scale = np.float32(max(1.0, (w.shape[0] / w.shape[1]) ** 0.5))
    d = scale * v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), np.float32(EPS))
    w = w * np.float32(1 - LR * WD) - np.float32(LR) * d
    return w, m


def torch_step(torch, dy, x, w, m):
    g = dy.t() @ x
    m.lerp_(g, 1 - BETA)
    u = g.lerp(m, BETA)
    wn = w / w.norm(dim=1, keepdim=True).clamp_min(EPS)
    v = u - (u * wn).sum(dim=1, keepdim=True) * wn
    scale = max(1.0, (w.shape[0] / w.shape[1]) ** 0.5)
    d = scale * v / v.norm(dim=1, keepdim=True).clamp_min(EPS)
    w.mul_(1 - LR * WD).add_(d, alpha=-LR)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nora-run", default=str(ROOT / "build/bin/nora-run"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shapes", default="64x1024,64x2048,64x4096,1024x1024,1024x2048,1024x4096",
                        help="comma-separated TxM (M = N)")
    parser.add_argument("--markdown", help="append the table to this file")
    args = parser.parse_args()

    try:
        import torch
        torch.set_num_threads(os.cpu_count())
    except ImportError:
        torch = None

    rows = []
    for shape in args.shapes.split(","):
        t, mn = (int(v) for v in shape.split("x"))
        m_rows = n_cols = mn
        print(f"== T={t} M=N={mn}", file=sys.stderr, flush=True)
        rng = np.random.default_rng(0)
        dy = rng.standard_normal((t, m_rows), dtype=np.float32)
        x = rng.standard_normal((t, n_cols), dtype=np.float32)
        w = rng.standard_normal((m_rows, n_cols), dtype=np.float32)
        m = rng.standard_normal((m_rows, n_cols), dtype=np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            for name, arr in dict(dy=dy, x=x, w=w, m=m).items():
                np.save(f"{tmp}/{name}.npy", arr)
            step_inputs = [f"@{tmp}/dy.npy", f"@{tmp}/x.npy", f"@{tmp}/w.npy",
                           f"@{tmp}/m.npy", repr(LR), repr(WD)]
            ir = STEP_IR.format(T=t, M=m_rows, N=n_cols)
            one = dict(os.environ, OMP_NUM_THREADS="1")
            fused = nora_time(args.nora_run, ir, "step", step_inputs, 2, args.repeat)
            fused1 = nora_time(args.nora_run, ir, "step", step_inputs, 2, args.repeat, env=one)
            unfused = nora_time(args.nora_run, ir, "step", step_inputs, 2, args.repeat,
                                extra=["--no-fuse"])
            gemm = nora_time(args.nora_run, GEMM_IR.format(T=t, M=m_rows, N=n_cols), "gemm",
                             step_inputs[:2], 1, args.repeat)
        np_gemm = median_ms(lambda: dy.T @ x, args.repeat)
        np_gemm1 = openblas_one_thread_ms(t, mn, args.repeat)
        np_step = median_ms(lambda: numpy_step(dy, x, w, m), args.repeat)
        if torch is not None:
            tdy, tx = torch.from_numpy(dy), torch.from_numpy(x)
            tw, tm = torch.from_numpy(w.copy()), torch.from_numpy(m.copy())
            with torch.no_grad():
                t_step = median_ms(lambda: torch_step(torch, tdy, tx, tw, tm), args.repeat)
        else:
            t_step = float("nan")
        flop = 2.0 * t * m_rows * n_cols
        state = 16.0 * m_rows * n_cols
        rows.append(dict(
            T=t, MN=mn, fused=fused, fused1=fused1, unfused=unfused, numpy=np_step,
            torch=t_step, gemm=gemm, np_gemm=np_gemm,
            gemm_gflops=flop / gemm / 1e6, np_gflops=flop / np_gemm / 1e6,
            np1_gflops=flop / np_gemm1 / 1e6, ratio1=fused1 / unfused,
            fused_gflops=flop / fused / 1e6,
            update_gbs=state / max(fused - gemm / 2, 1e-9) / 1e6,
            ratio=fused / unfused))
        print(rows[-1], file=sys.stderr, flush=True)

    header = ("| T | M = N | fused ms (2 thr) | fused ms (1 thr) | --no-fuse ms (1 thr) | "
              "numpy ms | torch eager ms | fused/no-fuse (2 thr, 1 thr) | "
              "nora GEMM GFLOP/s (1 thr) | OpenBLAS sgemm GFLOP/s (1 thr, 2 thr) | "
              "fused step GFLOP/s (2 thr) | update GB/s |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['T']} | {r['MN']} | {r['fused']:.2f} | {r['fused1']:.2f} | {r['unfused']:.2f} | "
            f"{r['numpy']:.2f} | {r['torch']:.2f} | {r['ratio']:.2f}, {r['ratio1']:.2f} | "
            f"{r['gemm_gflops']:.1f} | {r['np1_gflops']:.1f}, {r['np_gflops']:.1f} | "
            f"{r['fused_gflops']:.1f} | {r['update_gbs']:.1f} |")
    table = "\n".join(lines)
    print(table)
    info = (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"numpy {np.__version__}; torch {torch.__version__ if torch else 'absent'}")
    print(info)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(table + "\n\n" + info + "\n")


if __name__ == "__main__":
    main()
