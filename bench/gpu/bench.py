#!/usr/bin/env python3
"""GPU benchmark of the fused Nora step (the GPU issue's table), run on the
GPU machine with the artifacts that scripts/prepare-gpu.sh compiled:

    python3 bench/gpu/bench.py [BUNDLE] [--repeat N] [--ncu] [--out FILE]

For every bf16 shape (T, M, N) of BUNDLE/bench/ it times, with CUDA events,
median of N runs after warm-up:

  (a) the weight-gradient GEMM alone: cuBLAS through torch.mm, bf16 in, f32
      out (out_dtype=torch.float32; where that overload is missing, a bf16 GEMM
      and a conversion, flagged in the table);
  (b) (a) + the official Nora step in eager PyTorch;
  (c) (a) + the same step under torch.compile;
  (e) our fused kernel: nora-exec --repeat=N on the artifact (GEMM and
      update in one launch, the gradient never written), and the same with
      the exact-f32 mainloop (NAME-simt.nora, last column);

  (d) unfused: (a)'s cuBLAS GEMM, then our optimizer-only kernel on its g
      (NAME-optim.nora, the same epilogue without the matmul; timed apart
      and added); "(d) ours": our own GEMM kernel (NAME-wgrad.nora, the
      mainloop with an epilogue that stores g) instead of cuBLAS's;

Beside them, the variants of gpu_steps.BENCH_VARIANTS (the default
without its L2 prefetch; on sm_90a wgmma, wgmma-ws rings,
wgmma-pingpong, wgmma-tall's two rings, wgmma-wide (also with the cluster
exchange, at most 4096 columns) and the cluster
exchange), each with its difference from (b); and the device-to-device
copy rate, with the time
the state traffic (16 B an element) takes at it ("state ms", a floor of
(e) beside (a)). The table is rewritten after each shape. It checks that
(e)'s W' and M' agree with (b)'s (SEMANTICS.md tolerance, the bf16 GEMM
allowance included) and, with --ncu, reads (e)'s DRAM bytes and the
bytes its loads read from L2 with Nsight Compute. Prints a markdown table (also written to --out) with the device
name, ready for bench/RESULTS.md.

--device=cpu --small runs (a)-(c) on the CPU at small shapes, to check the
script itself on a machine without a GPU.
"""

import argparse
import csv
import datetime
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from gpu_steps import BENCH_SHAPES, BENCH_VARIANTS, bench_name  # noqa: E402

LR, WD, BETA, EPS = 0.005, 0.1, 0.95, 1e-10


def nora_step(torch, w, m, g, lr, wd, beta=BETA, eps=EPS, scale=None):
    """The official Nora update (SEMANTICS.md), in place on w and m."""
    M, N = w.shape
    if scale is None:
        scale = max(1.0, math.sqrt(M / N))
    m.lerp_(g, 1 - beta)
    u = g.lerp(m, beta)
    w_hat = w / w.norm(dim=1, keepdim=True).clamp_min(eps)
    v = u - (u * w_hat).sum(dim=1, keepdim=True) * w_hat
    d = v * (scale / v.norm(dim=1, keepdim=True).clamp_min(eps))
    w.mul_(1 - lr * wd).add_(d, alpha=-lr)


def nora_step_functional(torch, w, m, g, lr, wd, beta=BETA, eps=EPS,
                         scale=None):
    """The same update returning (w', m'): the form given to torch.compile
    (Inductor fuses it; it writes the new tensors instead of in place, the
    same traffic)."""
    M, N = w.shape
    if scale is None:
        scale = max(1.0, math.sqrt(M / N))
    m_new = torch.lerp(m, g, 1 - beta)
    u = torch.lerp(g, m_new, beta)
    w_hat = w / w.norm(dim=1, keepdim=True).clamp_min(eps)
    v = u - (u * w_hat).sum(dim=1, keepdim=True) * w_hat
    d = v * (scale / v.norm(dim=1, keepdim=True).clamp_min(eps))
    return w * (1 - lr * wd) - lr * d, m_new


def gemm_f32_out(torch, dy, x):
    """g = dy^T x, bf16 in, f32 out; (g, exact) where exact says the f32-out
    cuBLAS overload was used."""
    try:
        return torch.mm(dy.t(), x, out_dtype=torch.float32), True
    except (RuntimeError, TypeError):
        return torch.mm(dy.t(), x).float(), False


def timed(torch, device, fn, repeat):
    """Median and min milliseconds of fn() over `repeat` runs (CUDA events on
    the GPU, perf_counter on the CPU), after 3 warm-up runs."""
    import time
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        if device == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def copy_rate(torch, device, small, repeat):
    """The device's copy bandwidth (GB/s, bytes read plus bytes written) on
    a large device-to-device copy: the ceiling of the state traffic."""
    n = (4 << 20) if small else (256 << 20)  # floats: 16 MiB or 1 GiB
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    ms_, _ = timed(torch, device, lambda: dst.copy_(src), repeat)
    return 2 * 4 * n / (ms_ * 1e6)


def run_wgrad(nora_exec, artifact, tmp, dy, x, repeat, torch):
    """nora-exec --repeat on a gradient-only artifact: (median ms, g)."""
    inputs = []
    for k, t in enumerate((dy, x)):
        path = os.path.join(tmp, "g_in%d.npy" % k)
        np.save(path, t.contiguous().view(torch.int16).cpu().numpy().view(
            np.uint16) if t.dtype == torch.bfloat16 else t.cpu().numpy())
        inputs.append("--input=@" + path)
    out = os.path.join(tmp, "g.npy")
    res = subprocess.run([nora_exec, artifact] + inputs +
                         ["--output=@" + out, "--repeat=%d" % repeat],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("nora-exec failed: " + res.stderr.strip())
    found = re.search(r"time_ms median=([0-9.]+)", res.stdout)
    return float(found.group(1)), np.load(out)


def run_nora_exec(nora_exec, artifact, tmp, tensors, repeat, torch):
    """Writes the tensor inputs (bf16 as raw uint16 bits), runs nora-exec
    --repeat with lr and wd after them, returns (median ms, W', M', the
    command). (e): tensors dy, x, w, m; (d): g, w, m."""
    def host(t):
        if t.dtype == torch.bfloat16:
            return t.contiguous().view(torch.int16).cpu().numpy().view(
                np.uint16)
        return t.cpu().numpy()
    inputs = []
    for k, t in enumerate(tensors):
        path = os.path.join(tmp, "in%d.npy" % k)
        np.save(path, host(t))
        inputs.append("--input=@" + path)
    out_w, out_m = os.path.join(tmp, "w1.npy"), os.path.join(tmp, "m1.npy")
    cmd = ([nora_exec, artifact] + inputs +
           ["--input=%r" % LR, "--input=%r" % WD,
            "--output=@" + out_w, "--output=@" + out_m,
            "--repeat=%d" % repeat])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("nora-exec failed: " + res.stderr.strip())
    found = re.search(r"time_ms median=([0-9.]+) min=([0-9.]+)", res.stdout)
    return float(found.group(1)), np.load(out_w), np.load(out_m), cmd


# Per key, (metric, bytes a unit): DRAM bytes read and written; the 32-byte
# L2 sectors that the SMs' L1 (loads, not the TMA) read, where the row
# statistics' slots show (each CTA of a row block reads all of its slots).
NCU_METRICS = {"dram": (("dram__bytes_read.sum", 1),
                        ("dram__bytes_write.sum", 1)),
               "l2_read": (("lts__t_sectors_srcunit_tex_op_read.sum", 32),)}


def parse_ncu_csv(text):
    """{"dram": bytes read + written, "l2_read": bytes L1 read from L2}
    summed over the kernels of ncu's --csv output (None where ncu gave no
    value)."""
    totals = {key: 0.0 for key in NCU_METRICS}
    seen = set()
    # Fields are quoted, values may have thousands separators: "1,234".
    for fields in csv.reader(text.splitlines()):
        if len(fields) < 2:
            continue
        for key, metrics in NCU_METRICS.items():
            for name, unit in metrics:
                if name not in fields[:-1]:
                    continue
                try:
                    totals[key] += unit * float(fields[-1].replace(",", ""))
                    seen.add(key)
                except ValueError:
                    pass
    return {key: totals[key] if key in seen else None for key in totals}


def ncu_bytes(cmd):
    """DRAM bytes (read + written) and L2 read bytes of the kernels of
    `cmd` (one call), or None where ncu is missing."""
    ncu = shutil.which("ncu") or "/usr/local/cuda/bin/ncu"
    if not os.path.exists(ncu):
        return None
    run = [a for a in cmd if not a.startswith("--repeat")]
    metrics = ",".join(name for metrics in NCU_METRICS.values()
                       for name, _ in metrics)
    res = subprocess.run(
        [ncu, "--metrics", metrics, "--csv", "--print-units", "base"] + run,
        capture_output=True, text=True)
    return parse_ncu_csv(res.stdout)


def render(rows, name, torch_version, repeat, copy_gbs):
    """The markdown table of the rows measured so far; `copy_gbs` gives the
    time the state traffic (16 B an element) takes at the copy rate."""
    def ms(v):
        return "%.3f" % v if v is not None else "n/a"

    def ratio(num, den):
        return "%.2fx" % (num / den) if num and den else "n/a"
    lines = ["GPU benchmark, %s, %s, torch %s, median of %d runs (CUDA "
             "events)." % (name, datetime.date.today().isoformat(),
                           torch_version, repeat),
             "",
             "Device-to-device copy: %.0f GB/s (read + write); \"state "
             "ms\" is 16 B an element of W, M, W' and M' at that rate, a "
             "floor of (e) beside (a)." % copy_gbs,
             "",
             "| T | M | N | (a) GEMM ms | (b) eager ms | (c) compile ms | "
             "(d) unfused | (e) fused ms | (e)/(a) | (b)/(e) | (c)/(e) | "
             "max rel. diff (e) vs (b) | DRAM B/elem (e) | L2 read B/elem (e) | "
             "(e) simt ms | "
             + "".join("(e) %s ms | " % title
                       for _, _, title, _ in BENCH_VARIANTS) +
             "(d) ours ms | state ms |",
             "|---" * (17 + len(BENCH_VARIANTS)) + "|"]
    for r in rows:
        def per_elem(key):
            v = (r.get("ncu") or {}).get(key)
            return "%.1f" % (v / (r["M"] * r["N"])) if v else "n/a"
        dram, l2 = per_elem("dram"), per_elem("l2_read")
        variants = ["%s (diff %.2g)" % (ms(r["variants"][suffix][0]),
                                        r["variants"][suffix][1])
                    if suffix in r["variants"] else "n/a"
                    for suffix, _, _, _ in BENCH_VARIANTS]
        lines.append("| %d | %d | %d | %s%s | %s | %s | %s | %s | %s | %s | "
                     "%s | %s | %s | %s | %s | %s | %s | %s |" % (
                         r["T"], r["M"], r["N"], ms(r["a"]),
                         "" if r["exact_gemm"] else " (bf16 out)",
                         ms(r["b"]), ms(r["c"]),
                         ms(r["d"]) + ("" if r["d_err"] is None else
                                       " (diff %.2g)" % r["d_err"]),
                         ms(r["e"]),
                         ratio(r["e"], r["a"]), ratio(r["b"], r["e"]),
                         ratio(r["c"], r["e"]),
                         "%.2g" % r["err"] if r["err"] is not None else "n/a",
                         dram, l2, ms(r["e_simt"]),
                         " | ".join(variants),
                         ms(r.get("d_ours")) + (
                             "" if r.get("d_ours_err") is None else
                             " (g diff %.2g)" % r["d_ours_err"]),
                         ms(16.0 * r["M"] * r["N"] / (copy_gbs * 1e6))))
    return "\n".join(lines) + "\n"


def write_table(path, table):
    """Writes `table` to `path` (if set) whole: a temporary, then renamed."""
    if not path:
        return
    with open(path + ".tmp", "w") as f:
        f.write(table)
    os.replace(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("bundle", nargs="?", default=os.path.join(ROOT,
                                                             "gpu-bundle"))
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--device", default="cuda")
    p.add_argument("--small", action="store_true",
                   help="small shapes (checks the script, not the GPU)")
    p.add_argument("--no-compile", action="store_true",
                   help="skip (c), torch.compile")
    p.add_argument("--ncu", action="store_true",
                   help="DRAM bytes of (e) with Nsight Compute")
    p.add_argument("--nora-exec", default=shutil.which("nora-exec"))
    p.add_argument("--out", help="also write the table here")
    p.add_argument("--budget", type=float, default=0,
                   help="start no shape after this many seconds (0: no "
                        "limit); it prints which shapes it left out")
    opts = p.parse_args()

    import torch
    device = opts.device
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: no CUDA device for torch (use --device=cpu --small "
                 "to check the script)")
    name = (torch.cuda.get_device_name() if device == "cuda"
            else "CPU (script check only)")
    shapes = [(64, 192, 128), (32, 96, 256)] if opts.small else BENCH_SHAPES
    compiled = None if opts.no_compile else torch.compile(
        lambda w, m, g: nora_step_functional(torch, w, m, g, LR, WD))

    copy_gbs = copy_rate(torch, device, opts.small, opts.repeat)
    print("device-to-device copy: %.0f GB/s" % copy_gbs, file=sys.stderr)
    rows = []
    gen = torch.Generator(device=device).manual_seed(0)
    import time
    started = time.monotonic()
    for T, M, N in shapes:
        if opts.budget and time.monotonic() - started > opts.budget:
            left = shapes[shapes.index((T, M, N)):]
            print("bench: budget of %.0f s spent; not run: %s" % (
                opts.budget, ", ".join("T=%d %dx%d" % s for s in left)),
                file=sys.stderr)
            break
        def rand(*shape, dtype=torch.float32):
            return torch.randn(*shape, generator=gen, device=device,
                               dtype=torch.float32).to(dtype)
        dy, x = rand(T, M, dtype=torch.bfloat16), rand(T, N,
                                                        dtype=torch.bfloat16)
        w0, m0 = rand(M, N) * 0.02, rand(M, N) * 1e-3
        w, m = w0.clone(), m0.clone()
        g, exact = gemm_f32_out(torch, dy, x)
        a_ms, _ = timed(torch, device, lambda: gemm_f32_out(torch, dy, x),
                        opts.repeat)

        def eager():
            gg, _ = gemm_f32_out(torch, dy, x)
            nora_step(torch, w, m, gg, LR, WD)
        b_ms, _ = timed(torch, device, eager, opts.repeat)
        c_ms = None
        if compiled is not None:
            # The compiled step agrees with the eager one.
            wc, mc = compiled(w0, m0, g)
            w_e, m_e = w0.clone(), m0.clone()
            nora_step(torch, w_e, m_e, g, LR, WD)
            for got, want, what in ((wc, w_e, "W'"), (mc, m_e, "M'")):
                diff = float((got - want).abs().max() / want.abs().max())
                if diff > 1e-4:
                    print("warning: torch.compile's %s differs from eager by "
                          "%.3g (relative to its largest element)"
                          % (what, diff), file=sys.stderr)
            def fused_by_torch():
                gg, _ = gemm_f32_out(torch, dy, x)
                compiled(w, m, gg)
            c_ms, _ = timed(torch, device, fused_by_torch, opts.repeat)

        # The reference W', M' of one step from (w0, m0), in eager torch.
        w_ref, m_ref = w0.clone(), m0.clone()
        nora_step(torch, w_ref, m_ref, g, LR, WD)
        row = {"T": T, "M": M, "N": N, "a": a_ms, "b": b_ms, "c": c_ms,
               "exact_gemm": exact, "e": None, "e_simt": None, "err": None,
               "ncu": None, "d": None, "d_err": None,
               "variants": {}}
        artifact = os.path.join(opts.bundle, "bench",
                                bench_name(T, M, N) + ".nora")
        if device == "cuda" and opts.nora_exec and os.path.isdir(artifact):
            with tempfile.TemporaryDirectory() as tmp:
                e_ms, w1, m1, cmd = run_nora_exec(opts.nora_exec, artifact,
                                                  tmp, (dy, x, w0, m0),
                                                  opts.repeat, torch)
                row["e"] = e_ms
                wr, mr = w_ref.cpu().numpy(), m_ref.cpu().numpy()
                # Relative to the reference's scale (W' ~ 0.02, M' ~ g).
                row["err"] = max(
                    float(np.abs(w1 - wr).max() / (np.abs(wr).max() or 1)),
                    float(np.abs(m1 - mr).max() / (np.abs(mr).max() or 1)))
                if opts.ncu:
                    row["ncu"] = ncu_bytes(cmd)
        # The same step's variants (the wgmma mainloops on sm_90a; no L2
        # prefetch), for comparison: suffix -> (ms, max rel. diff).
        for suffix, _, _, _ in BENCH_VARIANTS:
            wg = artifact[:-len(".nora")] + "-" + suffix + ".nora"
            if not (device == "cuda" and opts.nora_exec and
                    os.path.isdir(wg)):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                e_w, w1, m1, _ = run_nora_exec(opts.nora_exec, wg, tmp,
                                               (dy, x, w0, m0), opts.repeat,
                                               torch)
                wr, mr = w_ref.cpu().numpy(), m_ref.cpu().numpy()
                row["variants"][suffix] = (e_w, max(
                    float(np.abs(w1 - wr).max() / (np.abs(wr).max() or 1)),
                    float(np.abs(m1 - mr).max() / (np.abs(mr).max() or 1))))
        # The same step with the exact-f32 (SIMT) mainloop, for comparison.
        simt = artifact[:-len(".nora")] + "-simt.nora"
        if device == "cuda" and opts.nora_exec and os.path.isdir(simt):
            with tempfile.TemporaryDirectory() as tmp:
                row["e_simt"] = run_nora_exec(opts.nora_exec, simt, tmp,
                                              (dy, x, w0, m0), opts.repeat,
                                              torch)[0]
        # (d): cuBLAS's g (a), then our optimizer-only kernel on it.
        optim = artifact[:-len(".nora")] + "-optim.nora"
        if device == "cuda" and opts.nora_exec and os.path.isdir(optim):
            with tempfile.TemporaryDirectory() as tmp:
                d_ms, w1, m1, _ = run_nora_exec(opts.nora_exec, optim, tmp,
                                                (g, w0, m0), opts.repeat,
                                                torch)
                row["d"] = a_ms + d_ms
                wr, mr = w_ref.cpu().numpy(), m_ref.cpu().numpy()
                row["d_err"] = max(
                    float(np.abs(w1 - wr).max() / (np.abs(wr).max() or 1)),
                    float(np.abs(m1 - mr).max() / (np.abs(mr).max() or 1)))
            # (d) ours: our GEMM kernel's g, then the same optimizer kernel.
            wgrad = artifact[:-len(".nora")] + "-wgrad.nora"
            if os.path.isdir(wgrad):
                with tempfile.TemporaryDirectory() as tmp:
                    g_ms, g_ours = run_wgrad(opts.nora_exec, wgrad, tmp, dy,
                                             x, opts.repeat, torch)
                row["d_ours"] = g_ms + d_ms
                gr = g.float().cpu().numpy()
                row["d_ours_err"] = float(np.abs(g_ours - gr).max() /
                                          (np.abs(gr).max() or 1))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
        # The table so far, so that a run cut short still leaves its rows.
        write_table(opts.out, render(rows, name, torch.__version__,
                                     opts.repeat, copy_gbs))

    table = render(rows, name, torch.__version__, opts.repeat, copy_gbs)
    print(table)
    write_table(opts.out, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
