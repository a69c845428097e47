"""The mainloop names the Python tools offer are nora-opt's: gpusim's
--mainloop choices and the test harness's MAINLOOPS against the list in
nora-opt's error for an unknown mainloop (one table in FusedStepToGPU.cpp).

    mainloop_names.py NORA_OPT
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "gpusim"))
sys.path.insert(0, os.path.join(HERE, ".."))
import gpusim  # noqa: E402
import harness  # noqa: E402


def main():
    res = subprocess.run([sys.argv[1], "--nora-fused-step-to-gpu="
                          "mainloop=no-such-mainloop"], input="module {}\n",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    found = re.search(r"unknown mainloop 'no-such-mainloop' \(expected "
                      r"([^)]*)\)", res.stderr)
    if res.returncode == 0 or not found:
        sys.exit("FAIL: nora-opt did not list its mainloops:\n" + res.stderr)
    names = tuple(re.split(r", | or ", found.group(1)))
    print("nora-opt: %s" % " ".join(names))
    bad = 0
    for tool, offered in (("gpusim", gpusim.MAINLOOPS),
                          ("harness", harness.MAINLOOPS)):
        same = tuple(offered) == names
        print("%s: %s" % (tool, "same" if same else
                          "DIFFERS: %s" % " ".join(offered)))
        bad += not same
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
