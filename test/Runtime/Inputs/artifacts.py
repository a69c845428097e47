"""Fixtures of the nora-exec tests: artifacts (good and broken), .npy inputs,
and the numpy checks of the results.

  artifacts.py good DIR PLAN [--chip=CHIP] [--cubin=NAME=FILE]...
                   [--edit=KEY.KEY...=JSON]...
      DIR/plan.json from PLAN (chip replaced, the value at a path of keys
      and indices replaced), each cubin NAME copied from FILE; a cubin not
      given is a fake ELF file (enough for validation and the fake driver).
  artifacts.py bad OUT PLAN     OUT/<case>.nora for every validation error
  artifacts.py inputs OUT       the .npy inputs of the axpy and workspace plans
  artifacts.py bad-tensor-maps OUT PLAN   OUT/tmap-<case>.nora, one broken map
  artifacts.py check-axpy OUT A / check-workspace OUT / check-tmap OUT
      compare with numpy
"""

import json
import os
import shutil
import sys

import numpy as np

FAKE_ELF = b"\x7fELF" + bytes(60)


def write_artifact(directory, plan, cubins=None, raw_plan=None):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "plan.json"), "wb") as f:
        f.write(raw_plan if raw_plan is not None
                else json.dumps(plan, indent=1).encode())
    for kernel in plan.get("kernels", []) if isinstance(plan, dict) else []:
        name = kernel.get("cubin") if isinstance(kernel, dict) else None
        if not isinstance(name, str) or cubins is None:
            continue
        path = os.path.join(directory, name)
        if name in cubins:
            shutil.copyfile(cubins[name], path)
        else:
            with open(path, "wb") as f:
                f.write(FAKE_ELF)


def good(args):
    directory, plan_file = args[0], args[1]
    plan = json.load(open(plan_file))
    cubins = {}
    for arg in args[2:]:
        if arg.startswith("--chip="):
            plan["chip"] = arg[len("--chip="):]
        elif arg.startswith("--edit="):
            path, value = arg[len("--edit="):].split("=", 1)
            keys = [int(k) if k.isdigit() else k for k in path.split(".")]
            target = plan
            for key in keys[:-1]:
                target = target[key]
            target[keys[-1]] = json.loads(value)
        elif arg.startswith("--cubin="):
            name, path = arg[len("--cubin="):].split("=", 1)
            cubins[name] = path
        else:
            sys.exit("unknown argument " + arg)
    write_artifact(directory, plan, cubins)


def bad(args):
    out, plan_file = args
    base = json.load(open(plan_file))
    text = json.dumps(base, indent=1).encode()

    def case(name, edit=None, raw=None, cubins=True):
        plan = json.loads(text)
        if edit:
            edit(plan)
        write_artifact(os.path.join(out, name + ".nora"), plan,
                       {} if cubins else None, raw)

    def setter(*path_and_value):
        *path, value = path_and_value

        def edit(plan):
            target = plan
            for key in path[:-1]:
                target = target[key]
            if value is KeyError:
                del target[path[-1]]
            else:
                target[path[-1]] = value
        return edit

    os.makedirs(os.path.join(out, "noplan.nora"), exist_ok=True)
    case("badjson", raw=b'{"format": "nora-artifact", "version": 1,,}')
    case("truncated", raw=text[:len(text) // 2])
    case("garbage", raw=bytes(range(256)) * 4)
    case("empty", raw=b"")
    case("deep", raw=b"[" * 100000)
    case("version", setter("version", 5))
    # workspace_zero_once is a version-4 key: an older runtime would never
    # zero-fill those counters.
    case("onceversion", setter("workspace_zero_once", [[0, 4]]))
    # tensor_maps is a version-2 key (the axpy plan is version 1).
    case("tmapversion", setter("tensor_maps", [
        {"workspace": 0, "argument": 0, "box": [8, 8]}]))
    case("format", setter("format", "onnx"))
    case("noentry", setter("entry", KeyError))
    case("dtype", setter("arguments", 0, "dtype", "f8"))
    case("scalardtype", setter("arguments", 2, "dtype", "bf16"))
    case("resultdtype", setter("results", 0, "dtype", "bf16"))
    # An i64 count (a guarded step's) is a version-3 result, a scalar.
    def count_result(version, kind="scalar"):
        def edit(plan):
            plan["version"] = version
            plan["results"][0] = {"name": "skipped", "kind": kind,
                                  "dtype": "i64"}
            if kind == "tensor":
                plan["results"][0]["shape"] = [1]
        return edit
    case("countversion", count_result(2))
    case("counttensor", count_result(3, "tensor"))
    case("countarg", setter("arguments", 0, "dtype", "i64"))
    case("negative", setter("arguments", 1, "shape", [40, -32]))
    case("overflow", setter("arguments", 0, "shape",
                            [2**40, 2**40, 2**40]))
    case("negworkspace", setter("workspace_bytes", -4))
    case("argindex", setter("kernels", 0, "params", 3, {"argument": 3}))
    case("resultindex", setter("kernels", 0, "params", 0, {"result": 1}))
    case("noworkspace", setter("kernels", 0, "params", 0, {"workspace": 0}))
    case("paramkind", setter("kernels", 0, "params", 4, {"f32": 1.5}))
    case("i32range", setter("kernels", 0, "params", 4, {"i32": 2**31}))
    case("block", setter("kernels", 0, "block", [2048, 1, 1]))
    case("grid", setter("kernels", 0, "grid", {"tiles": 4}))
    case("chip", setter("chip", "gfx90a"))
    case("escape", setter("kernels", 0, "cubin", "../axpy.cubin"))
    case("nocubin", cubins=False)
    case("emptycubin")
    open(os.path.join(out, "emptycubin.nora", "axpy.cubin"), "wb").close()
    case("notelf")
    with open(os.path.join(out, "notelf.nora", "axpy.cubin"), "wb") as f:
        f.write(b"// PTX is not a cubin\n.version 8.0\n")


def bad_tensor_maps(args):
    """OUT/tmap-<case>.nora: the tensor-map plan with one map broken."""
    out, plan_file = args
    text = json.dumps(json.load(open(plan_file))).encode()

    def case(name, **fields):
        plan = json.loads(text)
        for key, value in fields.items():
            if value is KeyError:
                del plan["tensor_maps"][0][key]
            else:
                plan["tensor_maps"][0][key] = value
        write_artifact(os.path.join(out, "tmap-" + name + ".nora"), plan, {})

    case("misaligned", workspace=96)
    case("outside", workspace=320)
    case("zeroed", workspace=0)
    case("scalar", argument=1)
    case("rank", box=[48])
    case("boxbig", box=[300, 8])
    case("inner", box=[48, 3])
    case("swizzlewide", box=[16, 32], swizzle=64)
    case("swizzle", swizzle=96)
    case("nobox", box=KeyError)


def inputs(args):
    out = args[0]
    rng = np.random.default_rng(7)
    np.save(os.path.join(out, "x.npy"), rng.standard_normal((40, 32),
                                                            np.float32))
    np.save(os.path.join(out, "y.npy"), rng.standard_normal((40, 32),
                                                            np.float32))
    np.save(os.path.join(out, "x64.npy"), rng.standard_normal((40, 32)))
    np.save(os.path.join(out, "wrongshape.npy"), np.zeros((32, 40),
                                                          np.float32))
    np.save(os.path.join(out, "rank1.npy"), np.zeros(1280, np.float32))
    np.save(os.path.join(out, "ints.npy"), np.zeros((40, 32), np.int32))
    np.save(os.path.join(out, "u16.npy"), np.zeros((40, 32), np.uint16))
    # bf16 input of the workspace plan: raw bits of values exact in bf16.
    bits = (rng.standard_normal((3, 100)).astype(np.float32)
            .view(np.uint32) >> 16).astype(np.uint16)
    np.save(os.path.join(out, "xbf16.npy"), bits)


def check_axpy(args):
    out, a = args[0], float(args[1])
    x = np.load(os.path.join(out, "x.npy"))
    y = np.load(os.path.join(out, "y.npy"))
    got = np.load(os.path.join(out, "axpy.out.npy"))
    want = np.float32(a) * x + y
    assert got.dtype == np.float32 and got.shape == want.shape, got.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    print("axpy matches numpy:", got.shape)


def check_tmap(args):
    """The box at (0, 0) of x, rows beyond x's 40 as zeros."""
    out = args[0]
    x = np.load(os.path.join(out, "x.npy"))
    got = np.load(os.path.join(out, "tmap.out.npy"))
    want = np.zeros((48, 8), np.float32)
    want[:40] = x[:, :8]
    np.testing.assert_array_equal(got, want)
    print("tensor map box matches numpy:", got.shape)


def check_workspace(args):
    out = args[0]
    bits = np.load(os.path.join(out, "xbf16.npy"))
    x = (bits.astype(np.uint32) << 16).view(np.float32)
    got = np.load(os.path.join(out, "ws.out.npy"))
    want = x * np.float32(300)
    assert got.shape == want.shape, got.shape
    np.testing.assert_array_equal(got, want)
    print("workspace matches numpy:", got.shape)


if __name__ == "__main__":
    commands = {"good": good, "bad": bad, "inputs": inputs,
                "check-axpy": check_axpy, "check-workspace": check_workspace,
                "bad-tensor-maps": bad_tensor_maps, "check-tmap": check_tmap}
    commands[sys.argv[1]](sys.argv[2:])
