"""Writes random inputs of Inputs/threads.mlir into the directory argv[1]."""

import os
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
for name, shape in dict(dy=(40, 300), x=(40, 70), w=(300, 70), m=(300, 70)).items():
    np.save(os.path.join(out, name + ".npy"), rng.standard_normal(shape).astype(np.float32))
