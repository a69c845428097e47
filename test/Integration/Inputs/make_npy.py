"""Writes the .npy files of nora-run-errors.test into the directory argv[1].

good.npy      4x8 float32          (argument of tensor<4x8xf32>)
wrongshape.npy 8x4 float32         shape mismatch
rank1.npy     32 float32           rank mismatch
ints.npy      4x8 int32            dtype that cannot convert
badmagic.npy  a valid file with its magic string overwritten
truncated.npy a valid header with half of the data
trunchdr.npy  the first 20 bytes of a valid file (header cut short)
"""

import os
import sys

import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
a = np.arange(32, dtype=np.float32).reshape(4, 8) / 8
np.save(os.path.join(out, "good.npy"), a)
np.save(os.path.join(out, "wrongshape.npy"), a.reshape(8, 4))
np.save(os.path.join(out, "rank1.npy"), a.reshape(32))
np.save(os.path.join(out, "ints.npy"), np.arange(32, dtype=np.int32)
        .reshape(4, 8))

with open(os.path.join(out, "good.npy"), "rb") as f:
    data = f.read()
with open(os.path.join(out, "badmagic.npy"), "wb") as f:
    f.write(b"\x93NUMPZ" + data[6:])
header_len = len(data) - a.nbytes
with open(os.path.join(out, "truncated.npy"), "wb") as f:
    f.write(data[:header_len + a.nbytes // 2])
with open(os.path.join(out, "trunchdr.npy"), "wb") as f:
    f.write(data[:20])
