"""What the non-finite guard costs on the fused CPU step (docs/nonfinite.md).

    python3 bench/cpu/nonfinite.py [--nora-run build/bin/nora-run] [--repeat 9]

Times one fused Nora step (f32, T = 64, M = N in {1024, 2048}) inside one
nora-run process per configuration: no guard, --nonfinite=skip_row and
--nonfinite=skip_step on a finite gradient (the common path), and both modes
on a gradient with a NaN in one row (skip_row keeps that row; skip_step
copies W and M back over W' and M').
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bench import LR, STEP_IR, WD, nora_time


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nora-run", default="build/bin/nora-run")
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args()
    print("| T | M = N | no guard ms | skip_row ms | skip_step ms "
          "| skip_row, NaN row ms | skip_step, NaN row ms |")
    print("|---|---|---|---|---|---|---|")
    t = 64
    for mn in (1024, 2048):
        gen = np.random.default_rng(0)
        with tempfile.TemporaryDirectory() as tmp:
            def save(name, a):
                path = Path(tmp) / f"{name}.npy"
                np.save(path, a)
                return f"@{path}"
            dy = gen.standard_normal((t, mn), dtype=np.float32)
            x = gen.standard_normal((t, mn), dtype=np.float32)
            w = gen.standard_normal((mn, mn), dtype=np.float32)
            m = gen.standard_normal((mn, mn), dtype=np.float32) * 0.1
            dy_nan = dy.copy()
            dy_nan[5, 17] = np.nan
            rest = [save("x", x), save("w", w), save("m", m), LR, WD]
            clean = [save("dy", dy)] + rest
            poisoned = [save("dy_nan", dy_nan)] + rest
            ir = STEP_IR.format(T=t, M=mn, N=mn)
            row = [nora_time(args.nora_run, ir, "step", clean, 2, args.repeat)]
            for inputs in (clean, poisoned):
                for mode in ("skip_row", "skip_step"):
                    row.append(nora_time(args.nora_run, ir, "step", inputs, 2,
                                         args.repeat, [f"--nonfinite={mode}"]))
        print(f"| {t} | {mn} | " + " | ".join(f"{v:.2f}" for v in row) + " |")


if __name__ == "__main__":
    main()
