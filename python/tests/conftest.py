"""pytest set-up: the package from this source tree; the compiled library
from the build tree (python/nora/_capi.py finds build/lib)."""

import os
import sys

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(__file__),
                                                 "..")))
