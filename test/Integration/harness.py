"""Integration-test harness: nora-run against the float64 numpy reference.

A test group is a .py file in this directory that defines `cases()` (a list
of `Case`) and ends with

    if __name__ == "__main__":
        harness.main(cases)

lit runs it twice (`%python %s %t --no-fuse` and `%python %s %t`). For every
case the harness

  (a) writes the MLIR function of the case (nora ops, pretty form),
  (b) writes the .npy inputs into the temporary directory,
  (c) runs `nora-run FILE.mlir --entry=NAME --input=@a.npy --input=0.01 ...
      --output=@out0.npy ... [--no-fuse]`,
  (d) loads the outputs and compares them with the float64 reference of
      python/nora/reference.py at the tolerances of SEMANTICS.md.

Command line of a group file (or of `harness.py --group=NAME`):

    GROUP.py TMPDIR [--no-fuse] [--device=cpu|cuda] [--nora-run=PATH]
             [--case=SUBSTRING]... [--check-determinism] [--list] [-v]
             [--gpu=CHIP [--mainloop=auto|simt|mma-sync|wgmma] [--max-ctas=N,..]
                         [--allow-tf32] [--compile-only | --prebuilt]]

--gpu=CHIP compiles each case with nora-compile and runs the artifact with
nora-exec instead of nora-run (cases that are no fused optimizer step are
SKIPped; --mainloop is nora-compile's); --compile-only stops after validating the artifacts (no GPU), and
--prebuilt runs what --compile-only left in TMPDIR on a machine with a GPU
but no LLVM/MLIR (scripts/prepare-gpu.sh, scripts/gpu-check.sh).

Files go to TMPDIR/fused or TMPDIR/no-fuse: CASE.mlir, CASE.ARG.npy,
CASE.RESULT.npy. nora-run is --nora-run, else $NORA_RUN (lit.local.cfg sets
it), else PATH. Exit status 0 when every case passes, 1 otherwise, after a
"FAIL [mode] case NAME" block per failing case (output, worst element, its
index, value, reference, tolerance, and the nora-run command).

`harness.py --self-test [--nora-opt=PATH]` checks the reference on
hand-computed examples, the comparison logic, and the IR and reference data
of every group (IR verified with nora-opt when it is found), without
running nora-run.

Tolerances (SEMANTICS.md, "Accuracy that every backend must meet"):
  * every element: |out - ref| <= 1e-4 * (1 + |ref|);
  * when wgrad's inputs are bf16/f16, g may differ by 2e-3 * ||g_ref row||;
    that allowance is carried through the chain to every output computed
    from g (see `_Evaluator`), on top of the element tolerance;
  * every row of a returned D whose input row (V, or U without projection)
    has a reference norm > eps has norm `scale` within 1e-4 relative;
  * outputs are finite wherever the reference is;
  * cases with `determinism=True` (all of them with --check-determinism)
    are run a second time and the output files must be bytewise identical;
  * cases with `same_as=OTHER` (the same values passed another way, e.g.
    uint16 bf16 bits instead of an f32 file) must give OTHER's outputs
    bit for bit.
"""

import argparse
import importlib.util
import math
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
GPUSIM = os.path.join(_HERE, "..", "..", "tools", "gpusim", "gpusim.py")
# nora-compile's --mainloop values, and those that take bf16/f16 steps only.
TENSOR_CORE_MAINLOOPS = ("mma-sync", "wgmma", "wgmma-ws", "wgmma-pingpong",
                         "wgmma-tall", "wgmma-wide")
MAINLOOPS = ("auto", "simt") + TENSOR_CORE_MAINLOOPS
# nora-compile's --row-exchange values.
ROW_EXCHANGES = ("workspace", "cluster")
try:
    from nora import reference as ref
except ImportError:  # run outside lit: use the source tree's python/
    sys.path.insert(0, os.path.normpath(os.path.join(_HERE, "..", "..",
                                                     "python")))
    from nora import reference as ref

ELEM_RTOL = 1e-4        # |out - ref| <= 1e-4 * (1 + |ref|)
LOWP_GRAD_RTOL = 2e-3   # bf16/f16 wgrad: 2e-3 relative to the row's norm
# --allow-tf32: f32 dy and x may run on tf32 tensor cores; the reference
# rounds them to tf32 and allows g the bf16 tolerance.
ALLOW_TF32 = False
NORM_RTOL = 1e-4        # rows of D: norm == scale within 1e-4 relative
PARALLEL_COS = 0.999999 # "almost parallel" rows of the near-parallel cases

ARG_ORDER = ["dy", "x", "acc", "g", "u", "v", "d", "w", "m", "lr", "wd"]
RESULTS = ["g", "m1", "u", "v", "d", "w1"]
STEP_OPS = ("nora_step", "rmnp_step")
PRIMITIVE_OPS = ("wgrad", "momentum", "orth_project", "row_normalize",
                 "apply_update")
STEP_DEFAULTS = {
    "nora_step": {"beta": 0.95, "nesterov": True, "eps": 1e-10},
    "rmnp_step": {"beta": 0.95, "nesterov": True, "eps": 1e-12},
}


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

class Case:
    """One function run by nora-run.

    name     an identifier (also the function name)
    ops      op sequence, e.g. ("wgrad", "momentum", "orth_project",
             "row_normalize", "apply_update"), ("nora_step",),
             ("wgrad", "rmnp_step"). Values flow by name: wgrad makes g,
             momentum m1 and u, orth_project v, row_normalize d (from v if
             made, else from u if made, else from the input v), apply_update
             and the steps w1 (steps also m1).
    returns  names of the values returned, in order (subset of RESULTS)
    data     input arrays by name (dy, x, acc, g, m, u, v, d, w: float32;
             dy and x unrounded, nora-run rounds them for bf16/f16), and
             the scalars lr, wd. An `acc` entry adds wgrad's acc operand.
    act      element type of dy and x: "f32", "bf16" or "f16"
    act_file how dy/x are written for bf16/f16: "f32" (nora-run rounds to
             nearest even), "bits" (uint16 raw bits), "f16" (float16 file)
    attrs    wgrad_scale, beta, nesterov (a number, for nora.momentum;
             absent: no Nesterov), proj_eps, norm_eps, scale; for the
             steps a dict under "step" with beta, nesterov (bool), eps,
             scale. Absent attributes are not printed (op defaults); beta
             of nora.momentum defaults to 0.95 here (it is required).
    parallel_rows  rows whose reference U and W must have |cosine| >=
             0.999999 (asserted on the data: near-parallel cases)
    determinism    run twice and compare the output bytes
    same_as  name of an earlier case of the group whose outputs must be
             bitwise identical (e.g. the same data given as uint16 bits
             instead of an f32 file that nora-run rounds)
    """

    def __init__(self, name, ops, returns, data, act="f32", act_file="f32",
                 attrs=None, parallel_rows=None, determinism=False,
                 same_as=None, note=""):
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise ValueError("case name must be an identifier: %r" % name)
        self.name = name
        self.ops = tuple(ops)
        self.returns = tuple(returns)
        self.data = dict(data)
        self.act = act
        self.act_file = act_file
        # An attribute given as None is absent (op default / no Nesterov).
        self.attrs = {k: v for k, v in (attrs or {}).items()
                      if v is not None}
        self.parallel_rows = parallel_rows
        self.determinism = determinism
        self.same_as = same_as
        self.note = note
        for op in self.ops:
            if op not in PRIMITIVE_OPS + STEP_OPS:
                raise ValueError("%s: unknown op %r" % (name, op))
        if act not in ("f32", "bf16", "f16"):
            raise ValueError("%s: act must be f32, bf16 or f16" % name)
        if act_file not in ("f32", "bits", "f16") or (
                act_file == "f16" and act != "f16"):
            raise ValueError("%s: bad act_file %r for %s" % (name, act_file,
                                                             act))
        self.args, produced = self._plan()
        for r in self.returns:
            if r not in produced:
                raise ValueError("%s: returns %r, which no op produces"
                                 % (name, r))
        for a in self.args:
            if a not in self.data:
                raise ValueError("%s: missing input %r" % (name, a))
        self.M, self.N = self._shape()

    # Values -------------------------------------------------------------
    def _plan(self):
        produced, needed = set(), []

        def need(n):
            if n not in produced and n not in needed:
                needed.append(n)

        self.norm_source = None
        for op in self.ops:
            if op == "wgrad":
                need("dy")
                need("x")
                if "acc" in self.data:
                    need("acc")
                produced.add("g")
            elif op == "momentum":
                need("m")
                need("g")
                produced.update(("m1", "u"))
            elif op == "orth_project":
                need("u")
                need("w")
                produced.add("v")
            elif op == "row_normalize":
                src = "u" if ("u" in produced and "v" not in produced) else "v"
                need(src)
                self.norm_source = src
                produced.add("d")
            elif op == "apply_update":
                for n in ("w", "d", "lr", "wd"):
                    need(n)
                produced.add("w1")
            else:
                for n in ("g", "w", "m", "lr", "wd"):
                    need(n)
                produced.update(("w1", "m1"))
        args = sorted(needed, key=ARG_ORDER.index)
        return args, produced

    def _shape(self):
        for n in ("w", "m", "g", "u", "v", "d", "acc"):
            if n in self.data and n in self.args:
                return tuple(np.shape(self.data[n]))
        dy, x = self.data["dy"], self.data["x"]
        return (np.shape(dy)[1], np.shape(x)[1])

    @property
    def T(self):
        return np.shape(self.data["dy"])[0] if "dy" in self.args else None

    # Input values as nora-run sees them -----------------------------------
    def seen(self, name):
        """The exact value nora-run computes with, as float32 (or float)."""
        value = self.data[name]
        if name in ("lr", "wd"):
            return ref.f32(value)
        value = np.asarray(value, dtype=np.float32)
        if name in ("dy", "x"):
            if self.act == "bf16":
                return ref.bf16_round(value)
            if self.act == "f16":
                return ref.f16_round(value)
            if ALLOW_TF32:
                return ref.tf32_round(value)
        return value

    # Attributes (as the f32 values the op holds) ------------------------
    def attr(self, key, default):
        return ref.f32(self.attrs[key]) if key in self.attrs else default

    def step_attrs(self, op):
        given = self.attrs.get("step", {})
        out = dict(STEP_DEFAULTS[op])
        out.update(given)
        for k in ("beta", "eps"):
            out[k] = ref.f32(out[k])
        if "scale" in out:
            out["scale"] = ref.f32(out["scale"])
        else:
            out["scale"] = (ref.default_nora_scale(self.M, self.N)
                            if op == "nora_step"
                            else ref.moonlight_scale(self.M, self.N))
        return out


# ---------------------------------------------------------------------------
# IR
# ---------------------------------------------------------------------------

def mlir_float(value):
    """A float literal that MLIR parses to exactly float32(value)."""
    v = ref.f32(value)
    if not math.isfinite(v):
        raise ValueError("attribute value %r is not finite" % value)
    s = repr(v)
    if "e" in s:
        mant, exp = s.split("e")
        if "." not in mant:
            mant += ".0"
        s = mant + "e" + exp
    elif "." not in s:
        s += ".0"
    return s


def scalar_arg(value):
    """Command-line text of an f32 scalar that parses to exactly f32(value)."""
    return repr(ref.f32(value))


def _attr_dict(items):
    items = [(k, v) for k, v in items if v is not None]
    if not items:
        return ""
    return " {" + ", ".join("%s = %s" % kv for kv in items) + "}"


def _fattr(case, key, name=None):
    if key not in case.attrs:
        return (name or key, None)
    return (name or key, mlir_float(case.attrs[key]) + " : f32")


def build_ir(case):
    """The MLIR text of the case's function."""
    M, N = case.M, case.N
    t = "tensor<%dx%dxf32>" % (M, N)
    act = case.act
    types = {}
    for a in case.args:
        if a in ("lr", "wd"):
            types[a] = "f32"
        elif a == "dy":
            types[a] = "tensor<%dx%dx%s>" % (case.T, M, act)
        elif a == "x":
            types[a] = "tensor<%dx%dx%s>" % (case.T, N, act)
        else:
            types[a] = t
    lines = []
    for op in case.ops:
        if op == "wgrad":
            acc = (" acc(%%acc : %s)" % t) if "acc" in case.args else ""
            attrs = _attr_dict([_fattr(case, "wgrad_scale", "scale")])
            lines.append("%%g = nora.wgrad %%dy, %%x%s%s : %s, %s -> %s"
                         % (acc, attrs, types["dy"], types["x"], t))
        elif op == "momentum":
            beta = mlir_float(case.attrs.get("beta", 0.95)) + " : f32"
            attrs = _attr_dict([("beta", beta),
                                _fattr(case, "nesterov")])
            lines.append("%%m1, %%u = nora.momentum %%m, %%g%s : %s, %s"
                         % (attrs, t, t))
        elif op == "orth_project":
            attrs = _attr_dict([_fattr(case, "proj_eps", "eps")])
            lines.append("%%v = nora.orth_project %%u, %%w%s : %s, %s"
                         % (attrs, t, t))
        elif op == "row_normalize":
            attrs = _attr_dict([_fattr(case, "norm_eps", "eps"),
                                _fattr(case, "scale")])
            lines.append("%%d = nora.row_normalize %%%s%s : %s"
                         % (case.norm_source, attrs, t))
        elif op == "apply_update":
            lines.append("%%w1 = nora.apply_update %%w, %%d, %%lr, %%wd : "
                         "%s, %s" % (t, t))
        else:
            given = case.attrs.get("step")
            items = []
            for k in ("beta", "nesterov", "eps", "scale"):
                if given and k in given:
                    v = given[k]
                    if k == "nesterov":
                        items.append((k, "true" if v else "false"))
                    else:
                        items.append((k, mlir_float(v) + " : f32"))
            lines.append("%%w1, %%m1 = nora.%s %%g, %%w, %%m, %%lr, %%wd%s : "
                         "%s, %s, %s" % (op, _attr_dict(items), t, t, t))
    args = ", ".join("%%%s: %s" % (a, types[a]) for a in case.args)
    rtypes = ", ".join([t] * len(case.returns))
    body = "\n".join("  " + l for l in lines)
    return ("func.func @%s(%s) -> (%s) {\n%s\n  return %s : %s\n}\n"
            % (case.name, args, rtypes, body,
               ", ".join("%" + r for r in case.returns), rtypes))


# ---------------------------------------------------------------------------
# Reference evaluation
# ---------------------------------------------------------------------------

class _Evaluator:
    """Evaluates the case in float64 and tracks, per value, a per-row bound
    on the error the bf16/f16 wgrad allowance may cause downstream (zero for
    f32 inputs). Propagation: momentum is linear in g; orth_project is a
    projection (does not grow errors); normalizing a row x with error e
    moves x/||x|| by at most 2e/||x||; apply_update scales by lr."""

    def __init__(self, case):
        self.case = case
        self.vals = {}
        self.slack = {}
        self.norm_checks = []   # (result name, input row norms, eps, scale)
        M = case.M
        for a in case.args:
            v = case.seen(a)
            self.vals[a] = v if a in ("lr", "wd") else v.astype(np.float64)
            self.slack[a] = np.zeros(M)
        for op in case.ops:
            getattr(self, "_" + op)()

    def _wgrad(self):
        c, v = self.case, self.vals
        g = ref.wgrad(v["dy"], v["x"], v.get("acc"),
                      c.attr("wgrad_scale", 1.0))
        v["g"] = g
        self.slack["g"] = (LOWP_GRAD_RTOL * ref.row_norms(g)
                           if c.act != "f32" or ALLOW_TF32 else np.zeros(c.M))

    def _momentum_core(self, beta, mu):
        v, s = self.vals, self.slack
        v["m1"], v["u"] = ref.momentum(v["m"], v["g"], beta, mu)
        s["m1"] = (1 - beta) * s["g"] + beta * s["m"]
        s["u"] = (s["m1"] if mu is None
                  else (1 - mu) * s["g"] + mu * s["m1"])

    def _momentum(self):
        c = self.case
        mu = c.attr("nesterov", None)
        self._momentum_core(c.attr("beta", ref.f32(0.95)), mu)

    def _project_core(self, eps):
        v, s = self.vals, self.slack
        v["v"] = ref.orth_project(v["u"], v["w"], eps)
        s["v"] = s["u"] + s["w"]

    def _orth_project(self):
        self._project_core(self.case.attr("proj_eps", 1e-10))

    def _normalize_core(self, src, eps, scale):
        v, s = self.vals, self.slack
        v["d"] = ref.row_normalize(v[src], eps, scale)
        norms = ref.row_norms(v[src])
        den = np.maximum(norms, eps)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = np.where(s[src] > 0,
                             np.minimum(2 * scale,
                                        2 * scale * s[src] /
                                        np.where(den > 0, den, 1.0)),
                             0.0)
        s["d"] = bound
        self.norm_checks.append(("d", norms, eps, scale))

    def _row_normalize(self):
        c = self.case
        self._normalize_core(c.norm_source, c.attr("norm_eps", 1e-10),
                             c.attr("scale", 1.0))

    def _update_core(self):
        v, s = self.vals, self.slack
        v["w1"] = ref.apply_update(v["w"], v["d"], v["lr"], v["wd"])
        s["w1"] = (abs(1 - v["lr"] * v["wd"]) * s["w"]
                   + abs(v["lr"]) * s["d"])

    def _apply_update(self):
        self._update_core()

    def _step(self, op):
        a = self.case.step_attrs(op)
        mu = a["beta"] if a["nesterov"] else None
        self._momentum_core(a["beta"], mu)
        if op == "nora_step":
            self._project_core(a["eps"])
            self._normalize_core("v", a["eps"], a["scale"])
        else:
            self._normalize_core("u", a["eps"], a["scale"])
        self._update_core()

    def _nora_step(self):
        self._step("nora_step")

    def _rmnp_step(self):
        self._step("rmnp_step")


def evaluate(case):
    """Reference outputs (float64), per-row slack, D-norm checks."""
    ev = _Evaluator(case)
    if case.parallel_rows is not None:
        u, w = ev.vals["u"], ev.vals["w"]
        rows = np.asarray(case.parallel_rows)
        cos = np.abs(np.sum(u[rows] * w[rows], axis=1)) / (
            ref.row_norms(u[rows]) * ref.row_norms(w[rows]))
        if not np.all(cos >= PARALLEL_COS):
            raise AssertionError(
                "%s: test data: rows %s of U and W are not almost parallel "
                "(min |cos| %.9f < %.6f)"
                % (case.name, rows[cos < PARALLEL_COS][:5], cos.min(),
                   PARALLEL_COS))
        if not np.all(cos < 1.0 - 1e-9):
            raise AssertionError("%s: test data: rows exactly parallel"
                                 % case.name)
    return ev


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------

def compare(case, index, name, out, ev):
    """Checks one output against the reference. Returns (messages, ratio):
    failure messages (empty when it passes) and the worst err/tol."""
    refv = ev.vals[name]
    msgs = []
    where = "output #%d '%s'" % (index, name)
    if out.shape != refv.shape:
        return ["%s has shape %s, expected %s" % (where, out.shape,
                                                 refv.shape)], float("inf")
    if out.dtype != np.float32:
        msgs.append("%s has dtype %s, expected float32" % (where, out.dtype))
    o = out.astype(np.float64)
    bad_finite = ~np.isfinite(o) & np.isfinite(refv)
    if bad_finite.any():
        i, j = np.argwhere(bad_finite)[0]
        msgs.append("%s: %d non-finite elements where the reference is "
                    "finite; first at [%d, %d]: got %r, reference %.9g"
                    % (where, int(bad_finite.sum()), i, j, float(o[i, j]),
                       refv[i, j]))
    tol = ELEM_RTOL * (1.0 + np.abs(refv)) + ev.slack[name][:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(o - refv)
    err = np.where(np.isnan(err), np.inf, err)
    ratio = err / tol
    worst = float(np.max(ratio)) if ratio.size else 0.0
    nbad = int(np.sum(ratio > 1.0))
    if nbad:
        i, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        msgs.append(
            "%s: %d of %d elements out of tolerance; worst at [%d, %d]: "
            "got %.9g, reference %.9g, |diff| %.3g > tol %.3g"
            % (where, nbad, ratio.size, i, j, o[i, j], refv[i, j],
               err[i, j], tol[i, j]))
    for rname, src_norms, eps, scale in ev.norm_checks:
        if rname != name:
            continue
        rows = src_norms > eps
        if not rows.any():
            continue
        norms = ref.row_norms(o)
        rel = np.abs(norms - scale) / scale
        rel = np.where(np.isnan(rel), np.inf, rel)
        rel = np.where(rows, rel, 0.0)
        worst = max(worst, float(np.max(rel)) / NORM_RTOL)
        nbadr = int(np.sum(rel > NORM_RTOL))
        if nbadr:
            i = int(np.argmax(rel))
            msgs.append(
                "%s: %d rows do not have norm scale = %.9g; worst row %d: "
                "norm %.9g (relative error %.3g > %.0e; reference input row "
                "norm %.6g > eps %.3g)"
                % (where, nbadr, scale, i, norms[i], rel[i], NORM_RTOL,
                   src_norms[i], eps))
    return msgs, worst


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------

def write_inputs(case, directory):
    """Writes the MLIR file and the inputs; returns (mlir_path, --input
    arguments)."""
    mlir = os.path.join(directory, case.name + ".mlir")
    with open(mlir, "w") as f:
        f.write(build_ir(case))
    specs = []
    for a in case.args:
        if a in ("lr", "wd"):
            specs.append("--input=" + scalar_arg(case.data[a]))
            continue
        value = np.asarray(case.data[a], dtype=np.float32)
        if a in ("dy", "x") and case.act != "f32":
            if case.act_file == "bits":
                value = (ref.bf16_bits(value) if case.act == "bf16"
                         else ref.f16_bits(value))
            elif case.act_file == "f16":
                value = value.astype(np.float16)
        path = os.path.join(directory, "%s.%s.npy" % (case.name, a))
        np.save(path, np.ascontiguousarray(value))
        specs.append("--input=@" + path)
    return mlir, specs


def _outputs(case, directory, tag):
    return [os.path.join(directory, "%s.%s%s.npy" % (case.name, r, tag))
            for r in case.returns]


def _run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)


def _status(code):
    if code < 0:
        return "crashed (signal %d)" % -code
    return "exited with status %d" % code


def _first_difference(a_path, b_path):
    a, b = np.load(a_path), np.load(b_path)
    if a.shape != b.shape:
        return "shapes %s and %s" % (a.shape, b.shape)
    diff = np.argwhere(a.view(np.uint32) != b.view(np.uint32))
    if not len(diff):
        return "headers differ"
    i, j = diff[0]
    return "%d elements differ, first at [%d, %d]: %r vs %r" % (
        len(diff), i, j, float(a[i, j]), float(b[i, j]))


GPU_UNSUPPORTED = ("cannot run in a GPU artifact", "is not written by a GPU kernel",
                   "cannot be lowered with mainloop=",
                   "cannot be lowered with row-exchange=",
                   "cannot be lowered to the GPU")


def _gpu_artifact(case, opts, directory, mlir):
    """--gpu=CHIP: compiles the case with nora-compile. Returns (artifact
    directory, None), (None, skip reason) when the case is no GPU step (the
    GPU kernel runs fused optimizer steps only), or (None, failure)."""
    # Both mainloops' artifacts sit beside the one copy of the inputs.
    tag = ("" if opts.mainloop == "auto" else "." + opts.mainloop) + \
        (".tf32" if opts.allow_tf32 else "") + \
        (".nofuse" if opts.no_fuse else "") + \
        (".ring%d" % opts.ring_stages if opts.ring_stages else "") + \
        (".tokens%d" % opts.stage_tokens if opts.stage_tokens else "") + \
        ("" if opts.row_exchange == "workspace" else "." + opts.row_exchange)
    art = os.path.join(directory, case.name + tag + ".nora")
    skip_file = os.path.join(directory, case.name + tag + ".skip")
    if opts.prebuilt:
        # Compiled on another machine with --compile-only (the GPU machine
        # has no LLVM/MLIR): its artifact, or why it is not a GPU step.
        if os.path.isdir(art):
            return art, None
        if os.path.exists(skip_file):
            with open(skip_file) as f:
                return None, ("skip", f.read().strip())
        return None, ("fail", "no prebuilt artifact %s" % art)
    cmd = [opts.nora_compile, mlir, "--entry=" + case.name,
           "--chip=" + opts.gpu, "--mainloop=" + opts.mainloop, "-o", art] + \
        (["--allow-tf32"] if opts.allow_tf32 else []) + \
        (["--no-fuse"] if opts.no_fuse else []) + \
        (["--ring-stages=%d" % opts.ring_stages] if opts.ring_stages else []) + \
        (["--stage-tokens=%d" % opts.stage_tokens] if opts.stage_tokens
         else []) + \
        ["--row-exchange=" + opts.row_exchange]
    res = _run(cmd)
    if res.returncode == 0:
        if os.path.exists(skip_file):
            os.remove(skip_file)
        return art, None
    if any(s in res.stderr for s in GPU_UNSUPPORTED):
        lines = [l for l in res.stderr.splitlines()
                 if any(s in l for s in GPU_UNSUPPORTED)]
        reason = lines[0].split("error: ", 1)[-1]
        with open(skip_file, "w") as f:
            f.write(reason + "\n")
        return None, ("skip", reason)
    return None, ("fail", "nora-compile %s:\n%s\n  command: %s"
                  % (_status(res.returncode), res.stderr.rstrip(),
                     " ".join(cmd)))


def run_case(case, opts, directory, done=()):
    """Runs one case; returns (failure messages, worst error/tolerance), or
    (None, skip reason) for a case that is not a GPU step under --gpu."""
    mlir, inputs = write_inputs(case, directory)
    outs = _outputs(case, directory, "")
    for p in outs:
        if os.path.exists(p):
            os.remove(p)
    art = None
    if opts.gpu:
        art, problem = _gpu_artifact(case, opts, directory, mlir)
        if problem and problem[0] == "skip":
            return None, problem[1]
        if problem:
            return [problem[1]], None
        if opts.compile_only:
            res = _run([opts.nora_exec, art, "--print-plan"])
            if res.returncode != 0:
                return (["nora-exec --print-plan %s:\n%s"
                         % (_status(res.returncode), res.stderr.rstrip())],
                        None)
            return [], 0.0

    def command(paths, extra=()):
        if opts.gpusim:
            grid = [x.replace("--max-ctas=", "--grid=") for x in extra]
            return ([sys.executable, GPUSIM, mlir, "--entry=" + case.name,
                     "--mainloop=" + opts.mainloop,
                     "--nora-opt=" + opts.nora_opt] + grid + inputs
                    + (["--allow-tf32"] if opts.allow_tf32 else [])
                    + (["--no-fuse"] if opts.no_fuse else [])
                    + (["--ring-stages=%d" % opts.ring_stages]
                       if opts.ring_stages else [])
                    + (["--stage-tokens=%d" % opts.stage_tokens]
                       if opts.stage_tokens else [])
                    + ["--row-exchange=" + opts.row_exchange]
                    + ["--output=@" + p for p in paths])
        if art:
            # $NORA_EXEC_WRAPPER: e.g. "compute-sanitizer --tool racecheck
            # --error-exitcode=1" (scripts/gpu-check.sh).
            wrapper = shlex.split(os.environ.get("NORA_EXEC_WRAPPER", ""))
            return (wrapper + [opts.nora_exec, art] + list(extra) + inputs
                    + ["--output=@" + p for p in paths])
        cmd = ([opts.nora_run, mlir, "--entry=" + case.name] + inputs
               + ["--output=@" + p for p in paths])
        if opts.no_fuse:
            cmd.append("--no-fuse")
        if opts.device:
            cmd.append("--device=" + opts.device)
        return cmd

    cmd = command(outs)
    shown = " ".join(cmd)
    if opts.verbose:
        print("  " + shown)
    ev = evaluate(case)
    res = _run(cmd)
    if opts.gpusim and res.returncode == 2:
        # Not a GPU step (gpusim says why).
        return None, res.stderr.strip().split("not a GPU step: ", 1)[-1]
    if res.returncode != 0:
        return (["%s %s:\n%s\n  command: %s"
                 % (os.path.basename(cmd[0]), _status(res.returncode),
                    res.stderr.rstrip(), shown)],
                None)
    failures = []
    worst = 0.0
    for i, (r, p) in enumerate(zip(case.returns, outs)):
        if not os.path.exists(p):
            failures.append("output #%d '%s': nora-run wrote no file %s"
                            % (i, r, p))
            continue
        msgs, w = compare(case, i, r, np.load(p), ev)
        failures += msgs
        worst = max(worst, w)
    if case.same_as and not failures:
        if case.same_as not in done:
            print("note: %s: case %s did not run, not compared"
                  % (case.name, case.same_as))
        else:
            other = _outputs(done[case.same_as], directory, "")
            for i, (r, p1, p2) in enumerate(zip(case.returns, outs, other)):
                a, b = np.load(p1), np.load(p2)
                if a.shape != b.shape or (a.view(np.uint32) !=
                                          b.view(np.uint32)).any():
                    failures.append(
                        "output #%d '%s' differs from the same output of "
                        "case %s (same values, passed differently): %s"
                        % (i, r, case.same_as, _first_difference(p1, p2)))
    # Runs whose outputs must be bitwise those of the first: the same
    # command again (determinism), and under --gpu the grids of --max-ctas
    # (the kernel sums the row statistics in the same order on any grid).
    reruns = []
    if (case.determinism or opts.check_determinism) and not failures:
        reruns.append(("second run", ".run2", ()))
    if (art or opts.gpusim) and opts.max_ctas and not failures:
        for n in opts.max_ctas:
            reruns.append(("run on %d CTAs" % n, ".ctas%d" % n,
                           ("--max-ctas=%d" % n,)))
    for what, suffix, extra in reruns:
        outs2 = _outputs(case, directory, suffix)
        for p in outs2:
            if os.path.exists(p):
                os.remove(p)
        res2 = _run(command(outs2, extra))
        if res2.returncode != 0:
            failures.append("%s: %s %s:\n%s"
                            % (what, os.path.basename(cmd[0]),
                               _status(res2.returncode),
                               res2.stderr.rstrip()))
            continue
        for i, (r, p1, p2) in enumerate(zip(case.returns, outs, outs2)):
            with open(p1, "rb") as f1, open(p2, "rb") as f2:
                if f1.read() != f2.read():
                    failures.append(
                        "output #%d '%s' is not bitwise identical in the %s: "
                        "%s" % (i, r, what, _first_difference(p1, p2)))
    if failures:
        failures.append("  command: " + shown)
    return failures, worst


def _find_tool(name, explicit):
    """--nora-run=/--nora-opt=, then $NORA_RUN/$NORA_OPT (set by
    lit.local.cfg), then PATH, then ../../build/bin."""
    if explicit:
        return explicit
    env = os.environ.get(name.upper().replace("-", "_"))
    if env and os.path.exists(env):
        return env
    found = shutil.which(name)
    if found:
        return found
    local = os.path.normpath(os.path.join(_HERE, "..", "..", "build", "bin",
                                          name))
    return local if os.path.exists(local) else None


def _parser(prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("tmpdir", nargs="?", help="scratch directory (lit's %%t)")
    p.add_argument("--no-fuse", action="store_true",
                   help="pass --no-fuse to nora-run (or to gpusim and "
                        "nora-compile with --gpusim and --gpu: the gradient "
                        "its own kernel)")
    p.add_argument("--device", default=None, help="pass --device= to nora-run")
    p.add_argument("--nora-run", default=None, help="nora-run binary")
    p.add_argument("--gpu", default=None, metavar="CHIP",
                   help="compile each case with nora-compile --chip=CHIP and "
                        "run the artifact with nora-exec (cases that are no "
                        "fused optimizer step are skipped)")
    p.add_argument("--gpusim", action="store_true",
                   help="run each GPU step in tools/gpusim (the kernel "
                        "interpreted on the CPU, as a GPU runs it) instead "
                        "of nora-run; other cases are skipped")
    p.add_argument("--mainloop", default="auto", choices=MAINLOOPS,
                   help="with --gpu: nora-compile's --mainloop (auto: "
                        "tensor cores for bf16/f16 steps)")
    p.add_argument("--allow-tf32", action="store_true",
                   help="with --gpu/--gpusim: f32 steps may use tf32 tensor "
                        "cores (the reference rounds dy and x to tf32)")
    p.add_argument("--ring-stages", type=int, default=0,
                   help="with a warp-specialized --mainloop (wgmma-ws, "
                        "wgmma-pingpong, wgmma-tall, wgmma-wide): the TMA "
                        "ring's stages (nora-compile --ring-stages)")
    p.add_argument("--stage-tokens", type=int, default=0,
                   help="with a warp-specialized --mainloop: the tokens of a "
                        "ring stage (nora-compile --stage-tokens)")
    p.add_argument("--row-exchange", default="workspace",
                   choices=ROW_EXCHANGES,
                   help="with --gpu/--gpusim: how a row block's CTAs sum its "
                        "statistics (nora-compile --row-exchange; cluster: "
                        "sm_90a, the steps it takes, the others SKIPped)")
    p.add_argument("--max-ctas", default=[], metavar="N,N,...",
                   type=lambda text: [int(n) for n in text.split(",") if n],
                   help="with --gpu: also run each case on at most N CTAs "
                        "(nora-exec --max-ctas) and compare the outputs bit "
                        "for bit with the full grid's")
    p.add_argument("--compile-only", action="store_true",
                   help="with --gpu: only compile and validate the "
                        "artifacts (nora-exec --print-plan), no GPU needed")
    p.add_argument("--prebuilt", action="store_true",
                   help="with --gpu: run the artifacts that --compile-only "
                        "left in TMPDIR (no nora-compile, no LLVM needed)")
    p.add_argument("--case", action="append", default=[],
                   help="run only cases whose name contains this (repeatable)")
    p.add_argument("--check-determinism", action="store_true",
                   help="run every case twice and compare the output bytes")
    p.add_argument("--list", action="store_true", help="list the cases")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print every nora-run command")
    return p


def main(cases, argv=None, prog=None):
    """Entry point of a group file: `harness.main(cases)`."""
    opts = _parser(prog).parse_args(argv)
    case_list = cases() if callable(cases) else list(cases)
    if opts.case:
        case_list = [c for c in case_list
                     if any(s in c.name for s in opts.case)]
    if opts.list:
        for c in case_list:
            print("%-32s %s %dx%d%s -> %s" % (
                c.name, "+".join(c.ops), c.M, c.N,
                (" T=%d %s" % (c.T, c.act)) if c.T else "",
                ", ".join(c.returns)))
        return 0
    if not opts.tmpdir:
        sys.exit("error: give the scratch directory (lit's %t)")
    global ALLOW_TF32
    ALLOW_TF32 = opts.allow_tf32
    if opts.allow_tf32 and not (opts.gpu or opts.gpusim):
        sys.exit("error: --allow-tf32 is for --gpu and --gpusim")
    opts.nora_run = _find_tool("nora-run", opts.nora_run)
    if opts.gpusim:
        opts.nora_opt = _find_tool("nora-opt", None)
        if not opts.nora_opt:
            sys.exit("error: --gpusim needs nora-opt")
    if not opts.nora_run and not opts.gpu and not opts.gpusim:
        sys.exit("error: nora-run not found (PATH or --nora-run=)")
    if opts.gpu:
        opts.nora_compile = _find_tool("nora-compile", None)
        opts.nora_exec = _find_tool("nora-exec", None)
        if not opts.nora_exec or not (opts.nora_compile or opts.prebuilt):
            sys.exit("error: --gpu needs nora-exec, and nora-compile unless "
                     "--prebuilt")
    mode = "no-fuse" if opts.no_fuse else "fused"
    if opts.gpu or opts.gpusim:
        mode = "gpu " + opts.gpu if opts.gpu else "gpusim"
        if opts.mainloop != "auto":
            mode += " " + opts.mainloop
        if opts.allow_tf32:
            mode += " tf32"
        if opts.no_fuse:
            mode += " no-fuse"
        if opts.ring_stages:
            mode += " ring %d" % opts.ring_stages
        if opts.stage_tokens:
            mode += " tokens %d" % opts.stage_tokens
        if opts.row_exchange != "workspace":
            mode += " " + opts.row_exchange + " exchange"
    directory = os.path.join(opts.tmpdir, ("gpu " + opts.gpu if opts.gpu
                                           else mode.split(" ")[0])
                             .replace(" ", "-"))
    os.makedirs(directory, exist_ok=True)
    failed = 0
    skipped = 0
    done = {}
    for case in case_list:
        failures, worst = run_case(case, opts, directory, done)
        if failures is None:
            skipped += 1
            print("SKIP [%s] case %s: %s" % (mode, case.name, worst))
            continue
        if not failures:
            done[case.name] = case
        if failures:
            failed += 1
            print("FAIL [%s] case %s (%s, %dx%d%s)" % (
                mode, case.name, " + ".join(case.ops), case.M, case.N,
                (", T=%d %s inputs as %s" % (case.T, case.act, case.act_file)
                 if case.T else "")))
            for m in failures:
                print("  " + m)
        else:
            print("PASS [%s] case %s (worst error/tolerance %.3g)"
                  % (mode, case.name, worst))
    if failed:
        print("FAILED: %d of %d cases [%s]" % (failed, len(case_list), mode))
        sys.exit(1)
    ran = len(case_list) - skipped
    if (opts.gpu or opts.gpusim) and ran == 0:
        if opts.mainloop in TENSOR_CORE_MAINLOOPS:
            # A tensor-core mainloop takes bf16/f16 steps only; a group may
            # have none.
            print("NONE RAN: no case of this group is a %s step [%s]"
                  % (opts.mainloop, mode))
            return 0
        print("FAILED: no case of this group is a GPU step [%s]" % mode)
        sys.exit(1)
    print("ALL PASSED: %d cases [%s]%s" % (
        ran, mode, " (%d skipped: not GPU steps)" % skipped if skipped else ""))
    return 0


# ---------------------------------------------------------------------------
# Data helpers for the group files
# ---------------------------------------------------------------------------

def rng(seed):
    return np.random.default_rng(seed)


def randn(gen, shape, scale=1.0):
    return (gen.standard_normal(shape) * scale).astype(np.float32)


def near_parallel(gen, w, ratio=(1.0e-3, 1.4e-3), scale=(0.5, 2.0),
                  signs=True):
    """u_i = a_i * w_i + delta_i with delta_i perpendicular to w_i and
    ||delta_i|| = r_i * ||a_i w_i||, r_i in `ratio`: |cos(u_i, w_i)| =
    1 / sqrt(1 + r_i^2) >= 0.999999 for r_i <= 1.414e-3. float32."""
    w64 = np.asarray(w, dtype=np.float64)
    M, N = w64.shape
    a = gen.uniform(scale[0], scale[1], size=M)
    if signs:
        a *= gen.choice([-1.0, 1.0], size=M)
    noise = gen.standard_normal((M, N))
    w_hat = w64 / ref.row_norms(w64)[:, None]
    noise -= np.sum(noise * w_hat, axis=1)[:, None] * w_hat
    noise /= ref.row_norms(noise)[:, None]
    r = gen.uniform(ratio[0], ratio[1], size=M)
    base = a[:, None] * w64
    u = base + (r * ref.row_norms(base))[:, None] * noise
    return u.astype(np.float32)


NORA_CHAIN = ("momentum", "orth_project", "row_normalize", "apply_update")
RMNP_CHAIN = ("momentum", "row_normalize", "apply_update")


def nora_attrs(M, N, beta=0.95, nesterov=0.95, eps=1e-10, scale=None):
    """Attributes of the primitive Nora chain (official defaults)."""
    return {"beta": beta, "nesterov": nesterov, "proj_eps": eps,
            "norm_eps": eps,
            "scale": ref.default_nora_scale(M, N) if scale is None else scale}


def rmnp_attrs(M, N, beta=0.95, nesterov=0.95, eps=1e-12, scale=None):
    """Attributes of the primitive RMNP chain (no projection)."""
    a = {"beta": beta, "norm_eps": eps,
         "scale": ref.moonlight_scale(M, N) if scale is None else scale}
    if nesterov is not None:
        a["nesterov"] = nesterov
    return a


def chain_data(seed, M, N, T=None, acc=False, lr=0.1, wd=0.1, w_scale=1.0,
               m_scale=1.0, g_scale=1.0):
    """Random inputs for a chain: dy, x (when T), else g; w, m; lr, wd."""
    gen = rng(seed)
    data = {"w": randn(gen, (M, N), w_scale), "m": randn(gen, (M, N),
                                                         m_scale),
            "lr": lr, "wd": wd}
    if T:
        data["dy"] = randn(gen, (T, M))
        data["x"] = randn(gen, (T, N))
        if acc:
            data["acc"] = randn(gen, (M, N))
    else:
        data["g"] = randn(gen, (M, N), g_scale)
    return data


def load_group(path):
    """Imports a group file (file names may contain '-')."""
    name = "nora_group_" + os.path.splitext(os.path.basename(path))[0] \
        .replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    spec.loader.exec_module(module)
    return module


def group_files():
    return sorted(os.path.join(_HERE, f) for f in os.listdir(_HERE)
                  if f.endswith(".py") and f != "harness.py"
                  and not f.startswith("lit."))


# ---------------------------------------------------------------------------
# Self-test (no nora-run)
# ---------------------------------------------------------------------------

def _close(a, b, what, tol=1e-12):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.allclose(a, b, rtol=tol, atol=tol):
        raise AssertionError("%s: got\n%r\nexpected\n%r" % (what, a, b))


def _self_test_reference():
    # wgrad: dy^T x = [[1,3,4],[2,4,6]].
    dy = np.array([[1, 2], [3, 4]], np.float32)
    x = np.array([[1, 0, 1], [0, 1, 1]], np.float32)
    _close(ref.wgrad(dy, x), [[1, 3, 4], [2, 4, 6]], "wgrad")
    _close(ref.wgrad(dy, x, np.ones((2, 3), np.float32), 0.5),
           [[1.5, 2.5, 3], [2, 3, 4]], "wgrad acc scale (acc unscaled)")
    # momentum.
    m1, u = ref.momentum([[1, 2]], [[3, 4]], 0.5, 0.5)
    _close(m1, [[2, 3]], "momentum m_new")
    _close(u, [[2.5, 3.5]], "momentum nesterov u")
    m1, u = ref.momentum([[1, 2]], [[3, 4]], 0.75)
    _close(m1, [[1.5, 2.5]], "momentum beta .75")
    _close(u, m1, "momentum without nesterov: u = m_new")
    # orth_project: row 0 w along e1, row 1 zero w, row 2 w along (1,1).
    v = ref.orth_project([[1, 1], [3, 4], [2, 5]], [[2, 0], [0, 0], [1, 1]])
    _close(v, [[0, 1], [3, 4], [-1.5, 1.5]], "orth_project")
    v = ref.orth_project([[1, 1]], [[0, 0]], eps=0.0)
    _close(v, [[1, 1]], "orth_project zero w row, eps 0")
    # ||w|| < eps: w^ = w / eps.
    v = ref.orth_project([[1, 1]], [[0.5, 0]], eps=1.0)
    _close(v, [[0.75, 1]], "orth_project clamp")
    # row_normalize.
    d = ref.row_normalize([[3, 4], [0, 0], [1e-12, 0]], 1e-10, 2.0)
    _close(d, [[1.2, 1.6], [0, 0], [2e-2, 0]], "row_normalize", 1e-15)
    _close(ref.row_normalize([[0, 0]], 0.0), [[0, 0]], "row_normalize eps 0")
    _close(ref.row_normalize([[3e30, 4e30]]), [[0.6, 0.8]],
           "row_normalize 1e30 (no overflow)")
    _close(ref.row_normalize([[3e-30, 4e-30]], 0.0), [[0.6, 0.8]],
           "row_normalize 1e-30 eps 0 (no underflow)")
    # apply_update.
    _close(ref.apply_update([[1, 2]], [[0.5, -1]], 0.1, 0.5), [[0.9, 2.0]],
           "apply_update")
    # steps on a 1x2 weight: u = [0, .75] is orthogonal to w = [1, 0].
    w1, m1 = ref.nora_step([[0, 1]], [[1, 0]], [[0, 0]], 0.1, 0.0, beta=0.5)
    _close(m1, [[0, 0.5]], "nora_step m")
    _close(w1, [[1, -0.1]], "nora_step w (scale max(1, sqrt(1/2)) = 1)")
    w1, m1 = ref.nora_step([[0, 1]], [[1, 0]], [[0, 0]], 0.1, 0.0, beta=0.5,
                           nesterov=False, scale=3.0)
    _close(w1, [[1, -0.3]], "nora_step no nesterov, scale 3")
    w1, _ = ref.nora_step([[1, 1]], [[1, 0]], [[0, 0]], 0.1, 0.0, beta=0.5)
    _close(w1, [[1, -0.1]], "nora_step projects out the w direction")
    w1, _ = ref.rmnp_step([[1, 1]], [[1, 0]], [[0, 0]], 0.1, 0.0, beta=0.5)
    s = 0.2 * math.sqrt(2)
    _close(w1, [[1 - 0.1 * s / math.sqrt(2), -0.1 * s / math.sqrt(2)]],
           "rmnp_step (no projection, moonlight scale)")
    # scales.
    _close(ref.default_nora_scale(96, 80), math.sqrt(1.2), "nora scale")
    _close(ref.default_nora_scale(80, 96), 1.0, "nora scale wide")
    _close(ref.moonlight_scale(3, 257), 0.2 * math.sqrt(257), "moonlight")
    # bf16 / f16 rounding: ties to even.
    one = 1.0
    vals = np.array([one, one + 2**-8, one + 3 * 2**-8, one + 2**-8 + 2**-20,
                     -2.0, np.inf, 3.4028235e38, 2**-133], np.float32)
    _close(ref.bf16_round(vals),
           [1.0, 1.0, 1 + 2**-6, 1 + 2**-7, -2.0, np.inf, np.inf, 0.0],
           "bf16_round")
    bits = ref.bf16_bits(vals)
    if list(bits[[0, 4, 5]]) != [0x3F80, 0xC000, 0x7F80]:
        raise AssertionError("bf16_bits: %r" % bits)
    if not np.isnan(ref.bf16_round(np.array([np.nan], np.float32)))[0]:
        raise AssertionError("bf16_round(nan) is not nan")
    _close(ref.f16_round(np.array([1 + 2**-11, 1 + 3 * 2**-11], np.float32)),
           [1.0, 1 + 2**-9], "f16_round")
    # MLIR float literals parse back to the f32 value.
    for v in (0.95, 1e-10, 1e-12, 2.0, 1e30, 0.0, 1.0954451):
        s = mlir_float(v)
        if "." not in s or float(np.float32(float(s))) != ref.f32(v):
            raise AssertionError("mlir_float(%r) = %r" % (v, s))


def _self_test_official():
    from nora import official
    gen = rng(5)
    w, buf, g = randn(gen, (12, 9)), randn(gen, (12, 9)), randn(gen, (12, 9))
    ow, ob = official.official_nora_step(w, buf, g, 0.02, 0.1)
    rw, rm = ref.nora_step(g, w, buf, 0.02, 0.1)
    _close(ow, rw, "official vs reference nora w", 1e-5)
    _close(ob, rm, "official vs reference nora m", 1e-5)
    ow, ob = official.official_rmnp_step(w, buf, g, 0.02, 0.1)
    rw, rm = ref.rmnp_step(g, w, official.rmnp_buffer_to_ema(buf, 0.95),
                           0.02, 0.1)
    _close(ow, rw, "official vs reference rmnp w", 1e-5)
    _close(official.rmnp_buffer_to_ema(ob, 0.95), rm,
           "official vs reference rmnp m", 1e-5)


def _self_test_compare(case):
    """The f32-rounded reference passes; a perturbation is caught."""
    ev = evaluate(case)
    for i, r in enumerate(case.returns):
        exact = ev.vals[r].astype(np.float32)
        msgs, _ = compare(case, i, r, exact, ev)
        if msgs:
            raise AssertionError("%s: the rounded reference fails: %s"
                                 % (case.name, msgs))
        bad = exact.copy()
        tol = ELEM_RTOL * (1 + abs(float(ev.vals[r][0, 0]))) + \
            ev.slack[r][0]
        bad[0, 0] = np.float32(float(ev.vals[r][0, 0]) + 3 * tol)
        if not compare(case, i, r, bad, ev)[0]:
            raise AssertionError("%s: a perturbation of %s[0,0] by 3 tol "
                                 "passes" % (case.name, r))
        bad = exact.copy()
        bad[0, 0] = np.nan
        if not compare(case, i, r, bad, ev)[0]:
            raise AssertionError("%s: NaN passes" % case.name)
        if r == "d" and ev.norm_checks:
            rows = ev.norm_checks[0][1] > ev.norm_checks[0][2]
            if rows.any():
                k = int(np.argmax(rows))
                bad = exact.copy()
                bad[k] *= np.float32(1 + 3 * NORM_RTOL)
                if not any("norm" in m for m in
                           compare(case, i, r, bad, ev)[0]):
                    raise AssertionError("%s: wrong D row norm passes"
                                         % case.name)


def _one_pass_f32_d(case, ev):
    """D as an f32 implementation with the one-pass identity
    ||V||^2 = ||U||^2 - <U,W>^2 / ||W||^2 computes it."""
    f = np.float32
    u, w = case.seen("u"), case.seen("w")
    eps, scale = f(ev.norm_checks[0][2]), f(ev.norm_checks[0][3])
    with np.errstate(all="ignore"):
        uw = np.sum(u * w, axis=1, dtype=f)
        ww = np.sum(w * w, axis=1, dtype=f)
        uu = np.sum(u * u, axis=1, dtype=f)
        c = (uw / np.maximum(ww, f(1e-30))).astype(f)
        v = (u - c[:, None] * w).astype(f)
        vv = np.maximum(uu - uw * c, f(0))
        return (v * (scale / np.maximum(np.sqrt(vv), eps))[:, None]).astype(f)


def _self_test_one_pass(case):
    """The near-parallel cases catch the one-pass f32 row norm."""
    if (case.parallel_rows is None or "d" not in case.returns
            or case.ops != ("orth_project", "row_normalize")):
        return False
    ev = evaluate(case)
    i = case.returns.index("d")
    msgs, _ = compare(case, i, "d", _one_pass_f32_d(case, ev), ev)
    if not any("norm" in m for m in msgs):
        raise AssertionError("%s: the one-pass f32 row norm passes" %
                             case.name)
    return True


def self_test(nora_opt=None):
    _self_test_reference()
    print("reference: hand-computed examples OK")
    _self_test_official()
    print("official formulas: one step agrees with the reference OK")
    nora_opt = _find_tool("nora-opt", nora_opt)
    if not nora_opt:
        print("note: nora-opt not found, generated IR not verified")
    total = 0
    for path in group_files():
        module = load_group(path)
        if not hasattr(module, "cases"):
            continue
        cases = module.cases()
        names = [c.name for c in cases]
        if len(set(names)) != len(names):
            raise AssertionError("%s: duplicate case names" % path)
        one_pass = 0
        for case in cases:
            _self_test_compare(case)
            one_pass += _self_test_one_pass(case)
            if nora_opt:
                res = subprocess.run([nora_opt, "-"], input=build_ir(case),
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     universal_newlines=True)
                if res.returncode != 0:
                    raise AssertionError("%s: nora-opt rejects the IR:\n%s\n%s"
                                         % (case.name, build_ir(case),
                                            res.stderr))
        total += len(cases)
        print("group %s: %d cases, reference data and comparison OK%s%s"
              % (os.path.basename(path), len(cases),
                 ", IR verified by nora-opt" if nora_opt else "",
                 (", one-pass f32 norm caught in %d near-parallel cases"
                  % one_pass) if one_pass else ""))
    print("self-test PASSED (%d cases)" % total)
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--self-test", action="store_true")
    p.add_argument("--nora-opt", default=None)
    p.add_argument("--group", default=None)
    known, rest = p.parse_known_args()
    if known.self_test:
        sys.exit(self_test(known.nora_opt))
    if known.group:
        g = known.group
        path = g if os.path.exists(g) else os.path.join(
            _HERE, g if g.endswith(".py") else g + ".py")
        sys.exit(main(load_group(path).cases, rest,
                      prog="harness.py --group=" + known.group))
    _parser("harness.py --group=NAME").print_help()
    print("\nor: harness.py --self-test [--nora-opt=PATH]")
    sys.exit(2)
