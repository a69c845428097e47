#!/usr/bin/env python3
"""The demo's main job: one Nora step of a 1024x1024 layer (T = 64 tokens)
through nora-run, fused and op by op, compared with the f64 numpy reference
written from SEMANTICS.md (python/nora/reference.py)."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
from nora import reference  # noqa: E402


def main():
    nora_run = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "build/bin/nora-run")
    example = ROOT / "examples/nora_step.mlir"
    rng = np.random.default_rng(2026)
    t, m_rows, n_cols = 64, 1024, 1024
    dy = rng.standard_normal((t, m_rows), dtype=np.float32)
    x = rng.standard_normal((t, n_cols), dtype=np.float32)
    w = (rng.standard_normal((m_rows, n_cols), dtype=np.float32) * 0.02).astype(np.float32)
    m = (rng.standard_normal((m_rows, n_cols), dtype=np.float32) * 0.01).astype(np.float32)
    lr, wd = np.float32(0.005), np.float32(0.1)

    g = reference.wgrad(dy, x)
    w_ref, m_ref = reference.nora_step(g, w, m, float(lr), float(wd))

    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, arr in dict(dy=dy, x=x, w=w, m=m).items():
            np.save(f"{tmp}/{name}.npy", arr)
        for mode, extra in (("fused", []), ("--no-fuse", ["--no-fuse"])):
            cmd = [nora_run, str(example), "--entry=nora_step",
                   f"--input=@{tmp}/dy.npy", f"--input=@{tmp}/x.npy",
                   f"--input=@{tmp}/w.npy", f"--input=@{tmp}/m.npy",
                   f"--input={float(lr)!r}", f"--input={float(wd)!r}",
                   f"--output=@{tmp}/w_new.npy", f"--output=@{tmp}/m_new.npy",
                   "--repeat=10", *extra]
            shown = " ".join(["nora-run", "examples/nora_step.mlir"] + cmd[2:])
            print("$ " + shown.replace(tmp + "/", ""))
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"nora-run failed:\n{run.stderr}")
            timing = re.search(r"median=([0-9.]+)", run.stdout).group(1)
            w_new, m_new = np.load(f"{tmp}/w_new.npy"), np.load(f"{tmp}/m_new.npy")
            err_w = float(np.max(np.abs(w_new - w_ref) / (1 + np.abs(w_ref))))
            err_m = float(np.max(np.abs(m_new - m_ref) / (1 + np.abs(m_ref))))
            worst = max(worst, err_w, err_m)
            print(f"  {mode:9s}: {timing} ms per step (median of 10); "
                  f"max error vs reference: W' {err_w:.2e}, M' {err_m:.2e} "
                  f"(tolerance 1e-4 * (1 + |ref|))")
    if worst > 1e-4:
        sys.exit(f"demo: error {worst:.2e} above the tolerance")
    print("demo: fused and op-by-op steps agree with the reference")


if __name__ == "__main__":
    main()
