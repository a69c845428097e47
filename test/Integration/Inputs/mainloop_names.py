"""The mainloop and row-exchange names the tools offer are nora-opt's:
gpusim's --mainloop and --row-exchange choices and the test harness's
MAINLOOPS and ROW_EXCHANGES against the lists in nora-opt's errors for an
unknown value (tables in FusedStepToGPU.cpp); and every name that the GPU
scripts pass by hand (scripts/prepare-gpu.sh, scripts/gpu-check.sh, the
variants of scripts/gpu_steps.py and scripts/check-gpu-resources.py) is
one of nora-opt's, with every mainloop but mma-sync (which auto is for
bf16 and f16) among the ones prepare-gpu.sh compiles for sm_90a.

    mainloop_names.py NORA_OPT
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools", "gpusim"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(HERE, ".."))
import gpusim  # noqa: E402
import gpu_steps  # noqa: E402
import harness  # noqa: E402


def listed(nora_opt, option):
    """The values nora-opt's error for an unknown `option` lists."""
    res = subprocess.run([nora_opt, "--nora-fused-step-to-gpu=%s=no-such"
                          % option], input="module {}\n",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    found = re.search(r"unknown %s 'no-such' \(expected ([^)]*)\)" % option,
                      res.stderr)
    if res.returncode == 0 or not found:
        sys.exit("FAIL: nora-opt did not list its %s values:\n%s"
                 % (option, res.stderr))
    names = tuple(re.split(r", | or ", found.group(1)))
    print("nora-opt %s: %s" % (option, " ".join(names)))
    return names


def script_names(path, patterns):
    """The names that `patterns` (each with one group: a space-separated
    list) find in `path`."""
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    names = set()
    for pattern in patterns:
        for m in re.finditer(pattern, text, re.M):
            names.update(m.group(1).split())
    return names


def main():
    mainloops = listed(sys.argv[1], "mainloop")
    exchanges = listed(sys.argv[1], "row-exchange")
    bad = 0
    for tool, offered, names in (
            ("gpusim mainloops", gpusim.MAINLOOPS, mainloops),
            ("harness mainloops", harness.MAINLOOPS, mainloops),
            ("gpusim row exchanges", gpusim.ROW_EXCHANGES, exchanges),
            ("harness row exchanges", harness.ROW_EXCHANGES, exchanges)):
        same = tuple(offered) == names
        print("%s: %s" % (tool, "same" if same else
                          "DIFFERS: %s" % " ".join(offered)))
        bad += not same

    # The scripts' hand-written names.
    prepared = script_names("scripts/prepare-gpu.sh",
                            [r'mainloops="([^"]*)"'])
    used = {
        "scripts/prepare-gpu.sh": prepared,
        "scripts/gpu-check.sh": script_names(
            "scripts/gpu-check.sh",
            [r"^\s*run_groups ([a-z0-9 -]+)$",
             r"for mainloop in ([a-z0-9 -]+); do",
             r"run_group \S+ ([a-z0-9-]+) "]),
    }
    flags = [f for _, fl, _, _ in gpu_steps.BENCH_VARIANTS for f in fl]
    with open(os.path.join(ROOT, "scripts", "check-gpu-resources.py")) as f:
        flags += re.findall(r'"(--(?:mainloop|row-exchange)=[a-z0-9-]+)"',
                            f.read())
    used["scripts (--mainloop=)"] = {f.split("=", 1)[1] for f in flags
                                     if f.startswith("--mainloop=")}
    unknown_exchanges = {f.split("=", 1)[1] for f in flags
                         if f.startswith("--row-exchange=")} - set(exchanges)
    for where, names in sorted(used.items()):
        unknown = names - set(mainloops)
        print("%s: %s" % (where, "nora-opt's" if not unknown else
                          "UNKNOWN: %s" % " ".join(sorted(unknown))))
        bad += bool(unknown)
    print("scripts (--row-exchange=): %s" % (
        "nora-opt's" if not unknown_exchanges else
        "UNKNOWN: %s" % " ".join(sorted(unknown_exchanges))))
    bad += bool(unknown_exchanges)
    missing = set(mainloops) - prepared - {"mma-sync"}
    print("prepare-gpu.sh compiles: %s" % (
        "every mainloop but mma-sync" if not missing else
        "NOT %s" % " ".join(sorted(missing))))
    bad += bool(missing)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
