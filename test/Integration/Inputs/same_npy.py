"""same_npy.py EXPECTED.npy OUT.npy...: every OUT equals EXPECTED exactly
(float32, same shape); prints the first difference and exits 1 otherwise."""

import sys

import numpy as np

expected = np.load(sys.argv[1])
status = 0
for path in sys.argv[2:]:
    out = np.load(path)
    if out.dtype != np.float32 or out.shape != expected.shape:
        print("%s: dtype %s shape %s, expected float32 %s"
              % (path, out.dtype, out.shape, expected.shape))
        status = 1
    elif not np.array_equal(out, expected):
        i = np.argwhere(out != expected)[0]
        print("%s differs from %s at %s: %r vs %r"
              % (path, sys.argv[1], tuple(i), out[tuple(i)],
                 expected[tuple(i)]))
        status = 1
sys.exit(status)
