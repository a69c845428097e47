#!/usr/bin/env python3
"""gpusim: runs nora's GPU kernels on the CPU, as the GPU would, to test them
where no GPU is lent.

    gpusim.py FILE.mlir --entry=NAME --input=@a.npy --input=0.01 ...
              --output=@out.npy ...
              [--mainloop=auto|simt|mma-sync|wgmma|wgmma-ws|wgmma-pingpong|
               wgmma-tall|wgmma-wide]
              [--allow-tf32]
              [--grid=N] [--nora-opt=PATH]

Same conventions as nora-run (inputs in argument order, .npy files or f32
numbers; f32 files are rounded to nearest even for bf16/f16 arguments, uint16
files are raw bits; outputs as f32 .npy; an error: a message, exit 1, no
output file).

The function is lowered with nora-opt as the GPU pipeline does up to the
kernels (decompose, fuse, --nora-fused-step-to-gpu, canonicalize, cse), and
the generic form of that IR is interpreted:

- The host side (to_buffer, alloc, gpu.memset, memref.view, launch_func)
  runs as written. Fresh allocations are filled with 0xff bytes (NaN), so a
  kernel that reads what nobody wrote shows it. A gpu.memset marked
  nora.zero_once (the counters, which the runtime zero-fills only when it
  allocates the workspace) must find its range back at 0 when the call
  returns, or the call is an error.
- A kernel launch runs min(tiles, --grid) CTAs (cooperative: all resident).
  Each CTA is interpreted in lockstep, its threads (256, or 384 with a
  producer warpgroup) as one vector with an active mask: divergent
  scf.if/for/while run under a mask, warp-level ops (gpu.shuffle,
  nvvm.ldmatrix, nvvm.mma.sync) see all 32 lanes of a warp. An scf.if with
  both branches taken runs them as concurrent thread groups, interleaved at
  mbarrier waits and arrivals (a producer warpgroup and its consumers).
  The PTX semantics of ldmatrix (.x4, .trans) and mma.sync.m16n8k16
  (.row.col, bf16/f16 -> f32) are written here from the PTX ISA's fragment
  tables, independently of the kernel builder.
- CTAs interleave at every atomic load (the row-block spin waits), round
  robin; all CTAs spinning without progress is reported as a deadlock.
- cp.async copies land at cp.async.wait_group (the groups older than the N
  most recent), so a read of a stage before its wait sees stale bytes. TMA
  copies (cp.async.bulk.tensor, through the tensor maps of the launch's
  nora.tensor_maps) land at the mbarrier.try_wait.parity of their phase,
  with the transaction bytes and arrivals of the mbarrier checked.
- Shared-memory races: within a barrier interval, two different threads
  touching the same 4 bytes with at least one write is an error.

It checks the kernel's logic (indexing, fragment layouts, the ring, the
reductions, the row-block protocol, both phases); it cannot check the memory
model (fences), timing or anything ptxas does. f32 arithmetic is IEEE f32
(numpy); fma and the tensor-core sums are computed in f64 and rounded to f32
once.
"""

import argparse
import os
import re
import subprocess
import sys

import numpy as np

NTHREADS = 256
# nora-opt's mainloop= values (test/Integration/mainloop-names.test
# compares them with nora-opt's).
MAINLOOPS = ("auto", "simt", "mma-sync", "wgmma", "wgmma-ws",
             "wgmma-pingpong", "wgmma-tall", "wgmma-wide")
# nora-opt's row-exchange= values.
ROW_EXCHANGES = ("workspace", "cluster")


class SimError(Exception):
    pass


class NotGpuStep(SimError):
    """The function is not one the GPU runs (exit status 2)."""


# --- parsing the generic form ----------------------------------------------

_TOKEN = re.compile(r'''
    (?P<ws>\s+) |
    (?P<str>"(?:[^"\\]|\\.)*") |
    (?P<val>%[\w$.]+(?:\#\d+)?(?::\d+)?) |
    (?P<blk>\^[\w]+) |
    (?P<punct>[(){}\[\]<>,:=]|->) |
    (?P<other>[^\s(){}\[\]<>,:="%^]+)
''', re.X)


class Op:
    __slots__ = ("name", "results", "operands", "props", "attrs", "regions",
                 "types", "result_types")

    def __repr__(self):
        return "Op(%s)" % self.name


class Block:
    __slots__ = ("args", "arg_types", "ops")


def _tokens(text):
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(), m.start(), m.end()))
    return out


class Parser:
    def __init__(self, text):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k=0):
        return self.toks[self.i + k][1] if self.i + k < len(self.toks) else None

    def take(self, expect=None):
        tok = self.toks[self.i][1]
        if expect is not None and tok != expect:
            raise SimError("parse error: expected %r, got %r near token %d"
                           % (expect, tok, self.i))
        self.i += 1
        return tok

    def balanced(self, open_, close):
        """The source text of a balanced group starting at `open_`."""
        depth = 0
        start = self.toks[self.i][2]
        while True:
            tok = self.take()
            if tok in ("<", "{", "(", "["):
                depth += 1
            elif tok in (">", "}", ")", "]"):
                depth -= 1
            if depth == 0:
                return self.text[start:self.toks[self.i - 1][3]]

    def type_text(self):
        """One type: tokens up to a top-level ',' ')' '}' '->' or the start
        of the next op or block."""
        depth, parts = 0, []
        while True:
            tok = self.peek()
            if tok is None:
                break
            if depth == 0 and (tok in (",", ")", "}", "->") or
                               tok[0] in '%"^'):
                break
            if tok in ("(", "<", "[", "{"):
                depth += 1
            elif tok in (")", ">", "]", "}"):
                depth -= 1
            parts.append(self.take())
        return "".join(parts)

    def type_list(self):
        types = []
        if self.peek() == "(":
            self.take("(")
            while self.peek() != ")":
                types.append(self.type_text())
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
        else:
            types.append(self.type_text())
        return types

    def op(self):
        results = []
        if self.peek().startswith("%"):
            while True:
                tok = self.take()
                name, _, count = tok.partition(":")
                if count:
                    results += ["%s#%d" % (name, k) for k in range(int(count))]
                else:
                    results.append(name)
                if self.peek() == ",":
                    self.take(",")
                    continue
                break
            self.take("=")
        op = Op()
        op.name = self.take()[1:-1]
        op.results = results
        self.take("(")
        op.operands = []
        while self.peek() != ")":
            op.operands.append(self.take())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        op.props = ""
        op.attrs = ""
        op.regions = []
        if self.peek() == "<" and self.peek(1) == "{":
            op.props = self.balanced("<", ">")
        if self.peek() == "(" and self.peek(1) == "{":
            self.take("(")
            while True:
                op.regions.append(self.region())
                if self.peek() == ",":
                    self.take(",")
                    continue
                break
            self.take(")")
        if self.peek() == "{":
            op.attrs = self.balanced("{", "}")
        self.take(":")
        op.types = self.type_list()
        self.take("->")
        op.result_types = self.type_list()
        return op

    def region(self):
        self.take("{")
        blocks = []
        block = None
        while self.peek() != "}":
            if self.peek().startswith("^"):
                self.take()
                block = Block()
                block.args, block.arg_types, block.ops = [], [], []
                if self.peek() == "(":
                    self.take("(")
                    while self.peek() != ")":
                        block.args.append(self.take())
                        self.take(":")
                        block.arg_types.append(self.type_text())
                        if self.peek() == ",":
                            self.take(",")
                    self.take(")")
                self.take(":")
                blocks.append(block)
                continue
            if block is None:
                block = Block()
                block.args, block.arg_types, block.ops = [], [], []
                blocks.append(block)
            block.ops.append(self.op())
        self.take("}")
        return blocks


def prop(op, name, text=None):
    m = re.search(r"\b%s = ([^,}>]+(?:<[^>]*>)?)" % re.escape(name),
                  op.props + " " + op.attrs if text is None else text)
    return m.group(1).strip() if m else None


def int_prop(op, name):
    v = prop(op, name)
    return int(v.split(":")[0]) if v is not None else None


# --- types -----------------------------------------------------------------

def parse_memref(t):
    t2 = t.replace(" ", "")
    m = re.match(r"memref<((?:\d+x)*)([a-z]\w*)(,.*)?>$", t2)
    if not m:
        raise SimError("unsupported memref type %s" % t)
    dims = [int(d) for d in m.group(1).split("x") if d]
    return dims, m.group(2), "workgroup" in (m.group(3) or "")


NP = {"f32": np.float32, "f64": np.float64, "f16": np.float16,
      "bf16": np.float32, "i32": np.int32, "i64": np.int64, "index": np.int64,
      "i8": np.int8, "i1": np.bool_, "i16": np.int16}
SIZE = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2, "i32": 4, "i64": 8,
        "index": 8, "i8": 1, "i1": 1}


def bf16_round(x):
    """f32 -> nearest-even bf16, kept as f32."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    nan = np.isnan(np.asarray(x, np.float32))
    out = (r & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return np.where(nan, np.float32(np.nan), out)


# --- memory ----------------------------------------------------------------

class Memory:
    """A flat byte-addressed space (global, or one CTA's shared memory)."""

    def __init__(self, base):
        self.next = base
        self.buffers = []  # (start, bytearray as np.uint8)

    def alloc(self, nbytes, fill=0xFF, align=256, offset=0):
        start = (self.next + align - 1) // align * align + offset
        data = np.full(max(nbytes, 1), fill, np.uint8)
        self.buffers.append((start, data))
        self.next = start + nbytes + align
        return start

    def find(self, address):
        for start, data in self.buffers:
            if start <= address < start + len(data):
                return start, data
        raise SimError("address 0x%x is outside every buffer" % address)

    def read(self, addresses, dtype, size):
        out = np.zeros(len(addresses), dtype)
        for k, a in enumerate(addresses):
            start, data = self.find(int(a))
            off = int(a) - start
            if off + size > len(data):
                raise SimError("read past the end of a buffer")
            out[k] = data[off:off + size].view(dtype)[0]
        return out

    def span(self, address, nbytes):
        start, data = self.find(address)
        off = address - start
        if off + nbytes > len(data):
            raise SimError("access past the end of a buffer at 0x%x" % address)
        return data[off:off + nbytes]


class MemRef:
    """A static memref: memory, base address, shape, element type."""

    def __init__(self, mem, base, dims, elem, shared=False):
        self.mem, self.base, self.dims, self.elem = mem, base, dims, elem
        self.shared = shared
        self.strides = []
        s = 1
        for d in reversed(dims):
            self.strides.insert(0, s)
            s *= d
        self.count = s

    def typed(self):
        data = self.mem.span(self.base, self.count * SIZE[self.elem])
        return data.view(np.uint16 if self.elem == "bf16" else NP[self.elem])


# --- the interpreter ---------------------------------------------------------

class Races:
    """Shared-memory accesses of the current barrier interval, 4-byte words."""

    def __init__(self, nbytes):
        n = nbytes // 4 + 1
        self.epoch = 0
        self.w_epoch = np.full(n, -1, np.int64)
        self.w_thread = np.full(n, -1, np.int64)
        self.r_epoch = np.full(n, -1, np.int64)
        self.r_thread = np.full(n, -1, np.int64)

    def access(self, words, threads, write, what):
        words = np.asarray(words, np.int64)
        threads = np.asarray(threads, np.int64)
        e = self.epoch
        same_w = (self.w_epoch[words] == e) & (self.w_thread[words] != threads)
        if write:
            same_r = (self.r_epoch[words] == e) & \
                     (self.r_thread[words] != threads) & \
                     (self.r_thread[words] != -2)
            multi = (self.r_epoch[words] == e) & (self.r_thread[words] == -2)
            if same_w.any() or same_r.any() or multi.any():
                raise SimError("shared-memory race: %s of word %d by thread "
                               "%d in a barrier interval where another thread"
                               " accessed it" % (what, int(words[np.argmax(
                                   same_w | same_r | multi)]) * 4,
                                   int(threads[np.argmax(same_w | same_r |
                                                         multi)])))
            # Two lanes writing one word in the same op is a race too.
            order = np.lexsort((threads, words))
            w, t = words[order], threads[order]
            dup = (w[1:] == w[:-1]) & (t[1:] != t[:-1])
            if dup.any():
                raise SimError("shared-memory race: two threads write word "
                               "%d in one %s" % (int(w[1:][dup][0]) * 4, what))
            self.w_epoch[words] = e
            self.w_thread[words] = threads
        else:
            if same_w.any():
                k = int(np.argmax(same_w))
                raise SimError("shared-memory race: %s of word %d by thread "
                               "%d, written by thread %d in the same barrier "
                               "interval" % (what, int(words[k]) * 4,
                                             int(threads[k]),
                                             int(self.w_thread[words[k]])))
            prior = (self.r_epoch[words] == e) & (self.r_thread[words] != threads)
            self.r_thread[words] = np.where(prior, -2, threads)
            self.r_epoch[words] = e


class CTA:
    def __init__(self, index, grid, shared):
        self.index, self.grid, self.shared = index, grid, shared
        self.tid = np.arange(NTHREADS, dtype=np.int64)
        self.track_shared()
        self.pending = []  # per committed group: list of (dst, bytes)
        self.open_group = []
        # Per warpgroup set (the warpgroups that issue them together):
        # committed wgmma groups, oldest first, and the open one.
        self.wgmma_pending = {}
        self.wgmma_open = {}
        self.mbarriers = {}  # shared address -> MBarrier
        # What the CTA's suspended thread groups wait for (op -> text).
        self.waits = {}
        # Named barrier id -> the warps that use it (one set of warps a
        # barrier: the hardware counts every warp's arrival on an id).
        self.named_barriers = {}
        # Thread-block clusters: the cluster's CTAs (rank order), this
        # one's rank, each thread's cluster barrier arrivals and completed
        # waits (a producer warpgroup arrives apart from its consumers),
        # whether it has exited (track_shared: the words' marks).
        self.cluster, self.rank = [self], 0
        self.arrivals = np.zeros(NTHREADS, np.int64)
        self.waited = np.zeros(NTHREADS, np.int64)
        self.exited = False

    def track_shared(self):
        """(Re)sizes the per-word records to the shared memory allocated so
        far: the race intervals, and per 4-byte word the arrivals this CTA
        had made when it last wrote it and the most arrivals any CTA of the
        cluster had made when it last read it remotely."""
        self.races = Races(self.shared.next + 256)
        n = self.shared.next // 4 + 64
        self.word_written = np.full(n, -1, np.int64)
        self.word_read_remote = np.full(n, -1, np.int64)

    def written(self, words, threads):
        """Records a write of shared `words` by this CTA's `threads` (what
        a remote read checks against the cluster barrier)."""
        self.word_written[words] = self.arrivals[threads]
        late = self.word_read_remote[words] >= self.waited[threads]
        if late.any():
            raise SimError("cluster race: CTA %d writes shared word %d, "
                           "which another CTA of its cluster read through "
                           "ld.shared::cluster after its last cluster "
                           "arrival that this CTA waited for"
                           % (self.index, int(np.asarray(words)[late][0]) * 4))


class Machine:
    def __init__(self, module):
        self.module = module
        self.glob = Memory(1 << 32)
        self.funcs = {}
        self.kernels = {}
        for op in module.regions[0][0].ops:
            if op.name == "func.func":
                self.funcs[prop(op, "sym_name").strip('"')] = op
            elif op.name == "gpu.module":
                name = prop(op, "sym_name").strip('"')
                for k in op.regions[0][0].ops:
                    if k.name == "gpu.func":
                        self.kernels["%s::%s" % (name, prop(
                            k, "sym_name").strip('"'))] = k
        self.max_grid = None
        # Global address of a workspace descriptor -> TensorMap (what the
        # runtime encodes there before the launch).
        self.tensor_maps = {}
        self.prefetches = 0  # nvvm.prefetch lines (for tests)
        self.prefetchable = []  # (base, bytes) of the launch's W and M

    # -- host -----------------------------------------------------------
    def run_host(self, name, args):
        func = self.funcs[name]
        block = func.regions[0][0]
        env = {}
        zero_once = []  # the nora.zero_once memsets' views

        def workspace_base(ref):
            return self.glob.find(ref.base)[0]
        for a, t, v in zip(block.args, block.arg_types, args):
            env[a] = v
        for op in block.ops:
            n = op.name
            if n == "arith.constant":
                env[op.results[0]] = self.constant(op)
            elif n == "bufferization.to_buffer":
                env[op.results[0]] = env[op.operands[0]]
            elif n == "bufferization.to_tensor":
                env[op.results[0]] = env[op.operands[0]]
            elif n == "tensor.extract" and not op.operands[1:]:
                # A 0-d result (a guard's count), read back.
                env[op.results[0]] = env[op.operands[0]].typed()[0].copy()
            elif n == "memref.alloc":
                dims, elem, _ = parse_memref(op.result_types[0])
                count = int(np.prod(dims)) if dims else 1
                base = self.glob.alloc(count * SIZE[elem])
                env[op.results[0]] = MemRef(self.glob, base, dims, elem)
            elif n == "gpu.memset":
                ref = env[op.operands[0]]
                value = env[op.operands[1]]
                ref.typed()[:] = value
                if "nora.zero_once" in op.attrs:
                    zero_once.append(ref)
            elif n == "memref.view":
                src = env[op.operands[0]]
                shift = int(env[op.operands[1]])
                dims, elem, _ = parse_memref(op.result_types[0])
                env[op.results[0]] = MemRef(self.glob, src.base + shift, dims,
                                            elem)
            elif n == "gpu.launch_func":
                self.launch(op, env)
            elif n == "func.return":
                # The runtime zero-fills these only when it allocates the
                # workspace: every call must leave them at 0 for the next.
                for ref in zero_once:
                    left = ref.typed()
                    if left.any():
                        raise SimError(
                            "the call left a zero-once workspace range "
                            "non-zero (%s at workspace+%d), so the next call "
                            "would start from it" % (
                                np.array2string(left, threshold=16),
                                ref.base - workspace_base(ref)))
                return [env[v] for v in op.operands]
            else:
                raise NotGpuStep("'%s' cannot run on the GPU: only "
                                 "optimizer steps and weight gradients do"
                                 % n)
        raise SimError("no func.return")

    def constant(self, op):
        vector = re.match(r"vector<(\d+)x(\w+)>",
                          op.result_types[0].replace(" ", ""))
        if vector:
            # A splat (dense<c> : vector<n x T>), as an (n, NTHREADS) array.
            splat = re.search(r"dense<([^>\[\]]+)>", op.props)
            if not splat:
                raise SimError("a vector constant that is not a splat")
            return np.full((int(vector.group(1)), NTHREADS),
                           NP[vector.group(2)](float(splat.group(1))))
        v = prop(op, "value")
        num, _, typ = v.partition(":")
        typ = typ.strip()
        num = num.strip()
        if typ in ("index", "i64", "i32", "i8", "i16"):
            return NP[typ](int(num))
        if typ == "i1" or num in ("true", "false"):
            return np.bool_(num == "true")
        if num.startswith("0x"):
            raw = int(num, 16)
            return (np.array([raw], np.uint64).view(np.float64)[0]
                    if typ == "f64" else
                    np.array([raw], np.uint32).view(np.float32)[0])
        return NP[typ](float(num))

    def launch(self, op, env):
        seg = [int(x) for x in re.search(r"operandSegmentSizes = array<i32: "
                                         r"([\d, ]+)>", op.props).group(1)
               .split(",")]
        # async deps, grid xyz, block xyz, [cluster], dyn smem, operands...
        kernel_name = re.search(r"kernel = @([\w:@]+)", op.props).group(1) \
            .replace("@", "")
        kernel = self.kernels[kernel_name]
        pos = seg[0]
        grid = int(env[op.operands[pos]])
        pos += 6
        cluster = int(env[op.operands[pos]]) if seg[7] else 1
        if seg[7] and (int(env[op.operands[pos + 1]]) != 1 or
                       int(env[op.operands[pos + 2]]) != 1):
            raise SimError("clusters of more than one dimension")
        pos += seg[7] + seg[8] + seg[9]
        # The dynamic shared memory of each CTA (bytes).
        dynamic = int(env[op.operands[pos]]) if seg[10] else 0
        pos += seg[10]
        operands = [env[v] for v in op.operands[pos:pos + seg[11]]]
        maps = re.search(r"nora.tensor_maps = \[((?:\{[^{}]*\},?\s*)*)\]",
                         op.attrs)
        for entry in re.findall(r"\{([^{}]*)\}", maps.group(1) if maps
                                else ""):
            field = dict(re.findall(r"(\w+) = ([^,]+?(?:<[^>]*>)?)(?:,|$)",
                                    entry))
            box = [int(v) for v in re.search(r"array<i64: ([\d, ]+)>",
                                             field["box"]).group(1).split(",")]
            self.tensor_maps[operands[int(field["operand"].split(":")[0])]
                             .base] = TensorMap(
                operands[int(field["tensor"].split(":")[0])], box,
                int(field["swizzle"].split(":")[0]))
        # What the kernel may prefetch: the step's W and M.
        roles = re.search(r"nora.operand_roles = \[([^\]]*)\]", op.attrs)
        roles = re.findall(r'"(\w+)"', roles.group(1)) if roles else []
        self.prefetchable = [
            (operands[k].base, operands[k].count * SIZE[operands[k].elem])
            for k, role in enumerate(roles) if role in ("w", "m")]
        tiles = re.search(r"nora.persistent_tiles = (\d+)", op.attrs)
        if tiles:
            grid = min(int(tiles.group(1)), self.max_grid or grid)
            # Whole clusters, as the runtime sizes the grid.
            grid = max(grid - grid % cluster, cluster)
        self.run_kernel(kernel, operands, grid, dynamic, cluster)

    # -- kernel ---------------------------------------------------------
    def run_kernel(self, kernel, operands, grid, dynamic=0, cluster=1):
        global NTHREADS
        block = kernel.regions[0][0]
        # The CTA's threads: the kernel's known block size (256, or 384
        # with a producer warpgroup).
        size = re.search(r"known_block_size = array<i32: (\d+), 1, 1>",
                         kernel.props)
        NTHREADS = int(size.group(1)) if size else 256
        if NTHREADS % 128:
            raise SimError("a block of %d threads: gpusim simulates whole "
                           "warpgroups (multiples of 128)" % NTHREADS)
        nwg = int_prop(kernel, "workgroup_attributions") or 0
        nargs = len(block.args) - nwg
        ctas = []
        for c in range(grid):
            shared = Memory(0x1000)
            cta = CTA(c, grid, shared)
            env = dict(zip(block.args[:nargs], operands))
            # Workgroup buffers at the alignment the kernel asks for
            # (llvm.align), else 16 bytes.
            aligns = [int(a) for a in
                      re.findall(r"llvm\.align = (\d+)", kernel.props)]
            for n, (a, t) in enumerate(zip(block.args[nargs:],
                                           block.arg_types[nargs:])):
                dims, elem, _ = parse_memref(t)
                count = int(np.prod(dims))
                align = aligns[n] if n < len(aligns) else 16
                base = shared.alloc(count * SIZE[elem], fill=0xFF, align=align)
                env[a] = MemRef(shared, base, dims, elem, shared=True)
            # After the static buffers, 16 bytes past a 1024-byte boundary:
            # 16-byte alignment is all that the hardware promises, and the
            # kernel must align what needs more itself.
            cta.dynamic_shared = MemRef(
                shared, shared.alloc(dynamic, fill=0xFF, align=1024,
                                     offset=16) if dynamic
                else shared.next, [dynamic], "i8", shared=True)
            cta.track_shared()
            ctas.append((cta, self.exec_block(block, env, cta, None)))
        # Clusters of `cluster` consecutive CTAs, rank = blockIdx.x % size.
        if grid % cluster:
            raise SimError("a grid of %d CTAs in clusters of %d"
                           % (grid, cluster))
        for first in range(0, grid, cluster):
            members = [c for c, _ in ctas[first:first + cluster]]
            for rank, c in enumerate(members):
                c.cluster, c.rank = members, rank
        # Round robin until every CTA has returned.
        live = list(ctas)
        idle_rounds = 0
        while live:
            progressed = False
            still = []
            for cta, gen in live:
                try:
                    signal = next(gen)
                    still.append((cta, gen))
                    if signal != "spin":
                        progressed = True
                except StopIteration:
                    cta.exited = True
                    progressed = True
            live = still
            idle_rounds = 0 if progressed else idle_rounds + 1
            if idle_rounds > 10000:
                raise SimError("deadlock: %d CTAs spin and none progresses "
                               "(%s)" % (len(live), "; ".join(
                                   "CTA %d: %s" % (cta.index, " and ".join(
                                       cta.waits.values()))
                                   for cta, _ in live[:4])))

    def exec_block(self, block, env, cta, mask, args=()):
        for a, v in zip(block.args, args):
            env[a] = v
        for op in block.ops:
            r = yield from self.exec_op(op, env, cta, mask)
            if r is not None:
                return r
        return None

    def exec_region(self, region, env, cta, mask, args=()):
        return (yield from self.exec_block(region[0], env, cta, mask, args))

    def exec_op(self, op, env, cta, mask):
        n = op.name
        ops = [env[v] for v in op.operands]
        res = op.results
        # Terminators return their operands.
        if n in ("scf.yield", "gpu.return"):
            return ("yield", ops)
        if n == "scf.condition":
            return ("condition", ops)
        if n == "nvvm.mbarrier.try_wait.parity":
            # Spins (lets the other warpgroups and CTAs run) until the
            # phase completes.
            while not mbarrier_try_wait_parity(self, op, ops, cta, mask):
                yield "spin"
            cta.waits.pop(id(op), None)
            return None
        handler = SIMPLE.get(n)
        if handler is not None:
            with np.errstate(all="ignore"):
                out = handler(self, op, ops, cta, mask)
            if res:
                if len(res) == 1:
                    env[res[0]] = out
                else:
                    for r_, v in zip(res, out):
                        env[r_] = v
            if n in SYNC_POINTS:
                # Where the other warpgroups of the CTA (and other CTAs)
                # may run next: every arrival is seen at once.
                yield "step"
            return None
        if n == "scf.for":
            yield from self.exec_for(op, ops, env, cta, mask)
            return None
        if n == "scf.if":
            yield from self.exec_if(op, ops, env, cta, mask)
            return None
        if n == "scf.while":
            yield from self.exec_while(op, ops, env, cta, mask)
            return None
        if n == "nvvm.cluster.wait":
            # Until every thread of the cluster that has not exited has
            # arrived as often as these.
            act = cluster_barrier_threads(cta, mask, "nvvm.cluster.wait")
            phase = int(cta.arrivals[act][0])
            if (cta.waited[act] >= cta.arrivals[act]).any():
                raise SimError("nvvm.cluster.wait without a cluster.arrive "
                               "before it")
            while any((c.arrivals < phase).any() and not c.exited
                      for c in cta.cluster):
                cta.waits[id(op)] = "the cluster barrier (phase %d)" % phase
                yield "spin"
            cta.waits.pop(id(op), None)
            cta.waited[act] += 1
            cta.races.epoch += 1  # it orders the CTA's threads too
            return None
        if n == "llvm.load" and "!llvm.ptr<7>" in op.types[0]:
            env[res[0]] = remote_shared_read(op, ops, cta, mask)
            return None
        if n == "llvm.load":
            # A spin-wait's atomic load: let the other CTAs run first.
            cta.waits[id(op)] = "a spin wait on a global counter"
            yield "spin"
            cta.waits.pop(id(op), None)
            env[res[0]] = self.global_read(lanes(ops[0]), "i32", mask)
            return None
        raise SimError("kernel op %s is not simulated" % n)

    # structured control flow under a mask
    def exec_for(self, op, ops, env, cta, mask):
        lb, ub, step = (lanes(v) for v in ops[:3])
        carried = [v if _opaque(v) else
                   lanes(v).copy() if isinstance(v, np.ndarray) else
                   np.full(NTHREADS, v) for v in ops[3:]]
        iv = lb.copy()
        active = full(mask)
        while True:
            run = active & (iv < ub)
            if not run.any():
                break
            out = yield from self.exec_region(op.regions[0], env, cta, run,
                                              [iv] + carried)
            new = out[1]
            if any(_opaque(v) for v in new) and not (run == active).all():
                raise SimError("a loop carrying wgmma accumulators must be "
                               "uniform across the CTA")
            carried = [nv if _opaque(nv) else np.where(run, lanes(nv), c)
                       for nv, c in zip(new, carried)]
            iv = np.where(run, iv + step, iv)
        for r_, c in zip(op.results, carried):
            env[r_] = c

    def exec_if(self, op, ops, env, cta, mask):
        cond = lanes(ops[0]).astype(bool)
        active = full(mask)
        results = [None] * len(op.results)
        branches = []
        # nora.independent_warpgroups (ping-pong, wgmma-tall, wgmma-wide): each
        # warpgroup of a branch is a thread group of its own, with its own
        # values, as the hardware runs them (they wait on different
        # mbarriers at once).
        apart = "nora.independent_warpgroups" in op.attrs
        if apart and op.results:
            raise SimError("nora.independent_warpgroups on an scf.if with "
                           "results is not simulated")
        for k, region in enumerate(op.regions):
            sub = active & (cond if k == 0 else ~cond)
            if not sub.any() or not region or not region[0].ops:
                continue
            if not apart:
                branches.append((sub, self.exec_region(region, env, cta,
                                                       sub)))
                continue
            for wg in _warpgroups(sub, "nora.independent_warpgroups"):
                group = np.zeros(NTHREADS, bool)
                group[128 * wg:128 * wg + 128] = True
                branches.append((group, self.exec_region(
                    region, dict(env), cta, group)))
        # Both branches taken: the two groups of threads run concurrently
        # (a producer warpgroup and its consumers wait on each other).
        outs = yield from interleave([gen for _, gen in branches])
        for (sub, _), out in zip(branches, outs):
            for i, v in enumerate(out[1]):
                v = lanes(v)
                results[i] = v if results[i] is None else np.where(sub, v,
                                                                   results[i])
        for r_, v in zip(op.results, results):
            env[r_] = v if v is not None else np.zeros(NTHREADS)

    def exec_while(self, op, ops, env, cta, mask):
        values = [lanes(v).copy() for v in ops]
        active = full(mask)
        final = None
        while active.any():
            out = yield from self.exec_region(op.regions[0], env, cta, active,
                                              values)
            cond = lanes(out[1][0]).astype(bool)
            forwarded = [lanes(v) for v in out[1][1:]]
            if final is None:
                final = [f.copy() for f in forwarded]
            leaving = active & ~cond
            final = [np.where(leaving, f, o) for f, o in zip(forwarded, final)]
            active = active & cond
            if not active.any():
                break
            out = yield from self.exec_region(op.regions[1], env, cta, active,
                                              forwarded)
            values = [lanes(v) for v in out[1]]
        for r_, v in zip(op.results, final or []):
            env[r_] = v

    # memory
    def global_read(self, addresses, elem, mask):
        m = full(mask)
        out = np.zeros(NTHREADS, NP[elem])
        for t in np.nonzero(m)[0]:
            out[t] = self.glob.span(int(addresses[t]), SIZE[elem]).view(
                NP[elem])[0]
        return out


def interleave(gens):
    """Runs generators (thread groups of one CTA) round robin, one step
    each, until all return; returns their values. Yields "spin" when every
    live one spun (waits without progress), else "step"."""
    if len(gens) == 1:
        return [(yield from gens[0])]
    outs = [None] * len(gens)
    live = list(range(len(gens)))
    while live:
        spun = True
        still = []
        for i in live:
            try:
                signal = next(gens[i])
                still.append(i)
                spun = spun and signal == "spin"
            except StopIteration as stop:
                outs[i] = stop.value
                spun = False
        live = still
        if live:
            yield "spin" if spun else "step"
    return outs


class Pending:
    """The accumulators of a wgmma.mma_async, known once a
    wgmma.wait_group retires its group."""

    def __init__(self, op, acc, desc_a, desc_b, cta):
        self.op, self.acc, self.desc_a, self.desc_b = op, acc, desc_a, desc_b
        self.cta = cta
        self.result = None

    def value(self, what):
        if self.result is None:
            raise SimError("%s reads wgmma accumulators before the "
                           "wgmma.wait_group that retires them" % what)
        return self.result


def _opaque(v):
    return isinstance(v, (tuple, Pending))


def lanes(v):
    # A vector<n x T> value is an (n, NTHREADS) array: element-major, so
    # that a mask of the threads broadcasts over it.
    if isinstance(v, np.ndarray) and v.shape[-1:] == (NTHREADS,):
        return v
    return np.full(NTHREADS, v)


def full(mask):
    return np.ones(NTHREADS, bool) if mask is None else mask


# --- simple ops --------------------------------------------------------------

def _elem_type(t):
    t = t.replace(" ", "")
    return t


def _linear(ref, idx):
    lin = np.zeros(NTHREADS, np.int64)
    for i, s in zip(idx, ref.strides):
        lin = lin + lanes(i).astype(np.int64) * s
    return lin


def op_load(m, op, ops, cta, mask):
    ref = ops[0]
    lin = _linear(ref, ops[1:])
    act = full(mask)
    if (act & ((lin < 0) | (lin >= ref.count))).any():
        raise SimError("memref.load out of bounds of %s" % (ref.dims,))
    data = ref.typed()
    safe = np.where(act, lin, 0)
    if ref.shared:
        word = (ref.base + safe * SIZE[ref.elem]) // 4
        cta.races.access(word[act], cta.tid[act], False, "memref.load")
    v = data[safe]
    if ref.elem == "bf16":
        v = (v.astype(np.uint32) << 16).view(np.float32)
    return np.where(act, v, np.zeros(1, v.dtype))


def op_store(m, op, ops, cta, mask):
    value, ref = ops[0], ops[1]
    lin = _linear(ref, ops[2:])
    act = full(mask)
    if (act & ((lin < 0) | (lin >= ref.count))).any():
        raise SimError("memref.store out of bounds of %s" % (ref.dims,))
    data = ref.typed()
    v = lanes(value)
    if ref.elem == "bf16":
        v = (bf16_round(v).view(np.uint32) >> 16).astype(np.uint16)
    else:
        v = v.astype(data.dtype)
    if ref.shared:
        word = (ref.base + lin * SIZE[ref.elem]) // 4
        cta.races.access(word[act], cta.tid[act], True, "memref.store")
        check_wgmma_overlap(cta, word[act], "memref.store")
        if len(cta.cluster) > 1:
            words, threads = word[act], cta.tid[act]
            if SIZE[ref.elem] == 8:
                words = np.concatenate([words, words + 1])
                threads = np.concatenate([threads, threads])
            cta.written(words, threads)
    data[lin[act]] = v[act]


def _vector_access(op, ref, idx, mask, what):
    """The first elements' linear indices of a vector.load or vector.store
    of vector<n x f32> on a global memref, checked: in bounds, within the
    row, and at the alignment the op claims."""
    n = int(re.match(r"vector<(\d+)xf32>",
                     (op.result_types[0] if what == "vector.load"
                      else op.types[0]).replace(" ", "")).group(1))
    if ref.shared or ref.elem != "f32":
        raise SimError("%s of a %s memref is not simulated"
                       % (what, "shared" if ref.shared else ref.elem))
    lin = _linear(ref, idx)
    act = full(mask)
    last = lanes(idx[-1]).astype(np.int64) + n - 1
    if (act & ((lin < 0) | (lin + n > ref.count) |
               (last >= ref.dims[-1]))).any():
        raise SimError("%s out of bounds of %s" % (what, ref.dims))
    align = int_prop(op, "alignment") or 4
    if (act & ((ref.base + lin * 4) % align != 0)).any():
        raise SimError("%s at an address that is not %d-byte aligned"
                       % (what, align))
    return n, lin, act


def op_vector_load(m, op, ops, cta, mask):
    ref = ops[0]
    n, lin, act = _vector_access(op, ref, ops[1:], mask, "vector.load")
    data = ref.typed()
    safe = np.where(act, lin, 0)
    return np.stack([np.where(act, data[safe + k], np.float32(0))
                     for k in range(n)])


def op_vector_store(m, op, ops, cta, mask):
    value, ref = lanes(ops[0]), ops[1]
    n, lin, act = _vector_access(op, ref, ops[2:], mask, "vector.store")
    data = ref.typed()
    for k in range(n):
        data[lin[act] + k] = value[k][act].astype(np.float32)


def op_vector_extract(m, op, ops, cta, mask):
    pos = re.search(r"static_position = array<i64: (\d+)>", op.props)
    if not pos or len(op.operands) != 1:
        raise SimError("vector.extract at a dynamic position is not "
                       "simulated")
    return lanes(ops[0])[int(pos.group(1))]


def op_vector_from_elements(m, op, ops, cta, mask):
    return np.stack([lanes(v) for v in ops])


def op_barrier(m, op, ops, cta, mask):
    if mask is not None and not mask.all():
        raise SimError("gpu.barrier under divergent control flow")
    cta.races.epoch += 1


def _binary(fn):
    return lambda m, op, ops, cta, mask: fn(ops[0], ops[1])


def _typed(op, k=0):
    return op.result_types[k].strip()


def op_cmpi(m, op, ops, cta, mask):
    p = int_prop(op, "predicate")
    a, b = ops
    unsigned = p in (6, 7, 8, 9)
    if unsigned:
        a = np.asarray(a).astype(np.uint64)
        b = np.asarray(b).astype(np.uint64)
    return [np.equal, np.not_equal, np.less, np.less_equal, np.greater,
            np.greater_equal, np.less, np.less_equal, np.greater,
            np.greater_equal][p](a, b)


def op_cmpf(m, op, ops, cta, mask):
    p = int_prop(op, "predicate")
    a, b = np.asarray(ops[0]), np.asarray(ops[1])
    ordered = ~(np.isnan(a) | np.isnan(b))
    table = {1: ordered & (a == b), 2: ordered & (a > b),
             3: ordered & (a >= b), 4: ordered & (a < b),
             5: ordered & (a <= b), 6: ordered & (a != b), 7: ordered,
             8: ~ordered | (a == b), 9: ~ordered | (a > b),
             10: ~ordered | (a >= b), 11: ~ordered | (a < b),
             12: ~ordered | (a <= b), 13: ~ordered | (a != b), 14: ~ordered,
             0: np.zeros_like(ordered), 15: np.ones_like(ordered)}
    return table[p]


def op_cast_float(m, op, ops, cta, mask):
    t = _typed(op)
    v = np.asarray(ops[0])
    if t == "bf16":
        return bf16_round(v.astype(np.float32))
    return v.astype(NP[t])


def op_index_cast(m, op, ops, cta, mask):
    return np.asarray(ops[0]).astype(NP[_typed(op)])


def op_trunci(m, op, ops, cta, mask):
    return np.asarray(ops[0]).astype(np.uint64).astype(
        {"i32": np.uint32, "i16": np.uint16, "i8": np.uint8}[_typed(op)]) \
        .view({"i32": np.int32, "i16": np.int16, "i8": np.int8}[_typed(op)])


def op_extui(m, op, ops, cta, mask):
    v = np.asarray(ops[0])
    src = op.types[0].strip()
    if src == "i1":
        return v.astype(NP[_typed(op)])
    u = {"i32": np.uint32, "i16": np.uint16, "i8": np.uint8}[src]
    return v.astype(NP[src]).view(u).astype(np.uint64).astype(
        NP[_typed(op)])


def op_extsi(m, op, ops, cta, mask):
    return np.asarray(ops[0]).astype(NP[_typed(op)])


def op_bitcast(m, op, ops, cta, mask):
    src, dst = op.types[0].strip(), _typed(op)
    v = np.asarray(ops[0]).astype(NP[src])
    return np.ascontiguousarray(v).view(NP[dst])


def op_shrui(m, op, ops, cta, mask):
    t = _typed(op)
    u = {"i64": np.uint64, "i32": np.uint32, "index": np.uint64}[t]
    a = np.asarray(ops[0]).astype(NP[t]).view(u)
    return (a >> np.asarray(ops[1]).astype(u)).view(NP[t])


def op_shli(m, op, ops, cta, mask):
    t = _typed(op)
    u = {"i64": np.uint64, "i32": np.uint32, "index": np.uint64}[t]
    a = np.asarray(ops[0]).astype(NP[t]).view(u)
    return (a << np.asarray(ops[1]).astype(u)).view(NP[t])


def op_select(m, op, ops, cta, mask):
    return np.where(np.asarray(ops[0]).astype(bool), ops[1], ops[2]).astype(
        NP[_typed(op)])


def op_divui(m, op, ops, cta, mask):
    b = np.asarray(ops[1])
    return np.asarray(ops[0]) // np.where(b == 0, 1, b)


def op_remui(m, op, ops, cta, mask):
    b = np.asarray(ops[1])
    return np.asarray(ops[0]) % np.where(b == 0, 1, b)


def op_fma(m, op, ops, cta, mask):
    a, b, c = (np.asarray(v, np.float64) for v in ops)
    return (a * b + c).astype(np.float32)


def op_extract_ptr(m, op, ops, cta, mask):
    return np.int64(ops[0].base)


def op_dynamic_shared(m, op, ops, cta, mask):
    return cta.dynamic_shared


def op_kernel_view(m, op, ops, cta, mask):
    """memref.view in a kernel (of dynamic shared memory): a byte shift,
    uniform over the threads."""
    src, shift = ops[0], lanes(ops[1])
    act = full(mask)
    if (shift[act] != shift[act][0]).any():
        raise SimError("memref.view with a shift that differs across threads")
    dims, elem, _ = parse_memref(op.result_types[0])
    view = MemRef(src.mem, src.base + int(shift[act][0]), dims, elem,
                  shared=src.shared)
    if int(shift[act][0]) < 0 or \
            int(shift[act][0]) + view.count * SIZE[elem] > src.count:
        raise SimError("memref.view past the end of its %d-byte buffer"
                       % src.count)
    return view


def op_gpu_id(kind):
    def f(m, op, ops, cta, mask):
        if kind == "thread_id":
            return cta.tid.copy()
        if kind == "block_id":
            return np.int64(cta.index)
        return np.int64(cta.grid)
    return f


def op_atomicrmw(m, op, ops, cta, mask):
    # add (1), and uinc_wrap (15: PTX atom.inc, old >= val ? 0 : old + 1,
    # unsigned) on i32.
    kind = int_prop(op, "bin_op")
    if kind not in (1, 15):
        raise SimError("only atomicrmw add and uinc_wrap are simulated")
    addr, val = lanes(ops[0]), lanes(ops[1])
    out = np.zeros(NTHREADS, np.int32)
    for t in np.nonzero(full(mask))[0]:
        w = m.glob.span(int(addr[t]), 4).view(np.int32)
        out[t] = w[0]
        if kind == 1:
            w[0] = w[0] + np.int32(val[t])
        else:
            old, bound = int(w.view(np.uint32)[0]), int(val[t]) & 0xFFFFFFFF
            w.view(np.uint32)[0] = 0 if old >= bound else old + 1
    return out


def _whole_groups(mask, size, what, unit):
    """The groups of `size` threads (warps, warpgroups) that `mask` holds,
    which must hold each group wholly or not at all."""
    groups = full(mask).reshape(NTHREADS // size, size)
    if (groups.any(axis=1) != groups.all(axis=1)).any():
        raise SimError("%s under control flow that splits a %s" % (what, unit))
    return [int(g) for g in np.nonzero(groups.all(axis=1))[0]]


def _whole_warps(mask, what):
    """Warp-level ops: each warp all in or all out."""
    _whole_groups(mask, 32, what, "warp")


def op_shuffle(m, op, ops, cta, mask):
    _whole_warps(mask, "gpu.shuffle")
    mode = re.search(r"shuffle_mode (\w+)", op.props).group(1)
    v = lanes(ops[0])
    off = lanes(ops[1]).astype(np.int64)
    width = int(lanes(ops[2])[0])
    if width != 32 or mode != "xor":
        raise SimError("only gpu.shuffle xor of width 32 is simulated")
    lane = cta.tid % 32
    src = cta.tid - lane + (lane ^ off)
    return v[src], np.ones(NTHREADS, bool)


def op_cp_async(m, op, ops, cta, mask):
    dst, src, nbytes = lanes(ops[0]), lanes(ops[1]), lanes(ops[2])
    size = int_prop(op, "size")
    for t in np.nonzero(full(mask))[0]:
        n = int(nbytes[t])
        if int(dst[t]) % size or (n and int(src[t]) % size):
            raise SimError("cp.async of %d bytes at a misaligned address "
                           "(shared 0x%x, global 0x%x)"
                           % (size, int(dst[t]), int(src[t])))
        data = np.zeros(size, np.uint8)
        if n:
            data[:n] = m.glob.span(int(src[t]), n)
        words = np.arange(int(dst[t]) // 4, (int(dst[t]) + size) // 4)
        cta.races.access(words, np.full(len(words), t), True, "cp.async")
        check_wgmma_overlap(cta, words, "cp.async")
        cta.open_group.append((int(dst[t]), data, int(t)))


def _retire(groups, keep, each):
    """The async groups in `groups` (oldest first) but the `keep` most
    recent complete: `each(item)` for every item of each, in order."""
    while len(groups) > keep:
        for item in groups.pop(0):
            each(item)


def op_commit(m, op, ops, cta, mask):
    cta.pending.append(cta.open_group)
    cta.open_group = []


def op_wait(m, op, ops, cta, mask):
    def land(copy):
        dst, data, t = copy
        cta.shared.span(dst, len(data))[:] = data
        words = np.arange(dst // 4, (dst + len(data)) // 4)
        cta.races.access(words, np.full(len(words), t), True, "cp.async")
    _retire(cta.pending, int_prop(op, "n"), land)


def _warps(v):
    return lanes(v).reshape(NTHREADS // 32, 32)


def op_ldmatrix(m, op, ops, cta, mask):
    _whole_warps(mask, "nvvm.ldmatrix")
    num = int_prop(op, "num")
    trans = "mma_layout<col>" in op.props
    addr = _warps(ops[0])
    nwarps = addr.shape[0]
    regs = [np.zeros((nwarps, 32), np.uint32) for _ in range(num)]
    lane = np.arange(32)
    for w in range(nwarps):
        for i in range(num):
            # Matrix i: rows r at the addresses of lanes 8 i + r; 8 b16 each.
            if any(int(addr[w, 8 * i + r]) % 16 for r in range(8)):
                raise SimError("ldmatrix row address not 16-byte aligned")
            rows = np.stack([cta.shared.span(int(addr[w, 8 * i + r]), 16)
                             .view(np.uint16) for r in range(8)])
            words = np.concatenate([
                np.arange(int(addr[w, 8 * i + r]) // 4,
                          int(addr[w, 8 * i + r]) // 4 + 4) for r in range(8)])
            readers = np.repeat(w * 32 + 8 * i + np.arange(8), 4)
            cta.races.access(words, readers, False, "ldmatrix")
            if trans:
                lo = rows[2 * (lane % 4), lane // 4]
                hi = rows[2 * (lane % 4) + 1, lane // 4]
            else:
                lo = rows[lane // 4, 2 * (lane % 4)]
                hi = rows[lane // 4, 2 * (lane % 4) + 1]
            regs[i][w] = lo.astype(np.uint32) | (hi.astype(np.uint32) << 16)
    return tuple(r.reshape(NTHREADS).view(np.int32) for r in regs)


def _halves(reg, kind):
    u = lanes(reg).astype(np.int64).astype(np.uint32) if reg.dtype != \
        np.uint32 else reg
    u = np.asarray(u).view(np.uint32) if u.dtype == np.int32 else u
    lo = (u & 0xFFFF).astype(np.uint16)
    hi = (u >> 16).astype(np.uint16)
    if kind == "bf16":
        f = lambda h: (h.astype(np.uint32) << 16).view(np.float32)
    else:
        f = lambda h: h.view(np.float16).astype(np.float32)
    return f(lo).astype(np.float64), f(hi).astype(np.float64)


def tf32_rna(x):
    """cvt.rna.tf32.f32: the f32 bits rounded to 10 mantissa bits, to
    nearest with ties away from zero (the low 13 bits zero); NaN and Inf
    stay as they are."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    special = (u & 0x7F800000) == 0x7F800000
    r = ((u + 0x1000) & 0xFFFFE000).astype(np.uint32)
    return np.where(special, u.astype(np.uint32), r)


def op_cvt_tf32(m, op, ops, cta, mask):
    if "fp_rnd_mode<rna>" not in op.props:
        raise SimError("only cvt.rna.tf32.f32 is simulated")
    return tf32_rna(lanes(ops[0])).view(np.int32)


def _mma_m16n8(ops, operands):
    """One mma.sync m16n8kK .row.col -> f32 a warp: `operands(sl)` gives the
    warp's A (16 x K) and B (K x 8) from its lanes `sl`; C/D: c0, c1 row g,
    c2, c3 row g + 8, columns 2q + {0, 1} (lane l: g = l / 4, q = l % 4)."""
    c = [lanes(v).astype(np.float64) for v in ops[-4:]]
    lane = np.arange(32)
    g, q = lane // 4, lane % 4
    d = [np.zeros(NTHREADS, np.float32) for _ in range(4)]
    for w in range(NTHREADS // 32):
        sl = slice(32 * w, 32 * w + 32)
        A, B = operands(sl, g, q)
        C = np.zeros((16, 8))
        for j in range(4):
            C[g + (8 if j >= 2 else 0), 2 * q + (j % 2)] = c[j][sl]
        D = A @ B + C
        for j in range(4):
            d[j][sl] = D[g + (8 if j >= 2 else 0), 2 * q + (j % 2)]
    return tuple(d)


def _mma_tf32(ops):
    """mma.sync m16n8k8 .row.col tf32 -> f32 (PTX ISA fragments): a0 (g, t),
    a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4); b0 (t, g), b1 (t + 4,
    g). The low 13 bits of each operand register are ignored."""
    def value(reg):
        u = np.asarray(lanes(reg)).astype(np.int64).astype(np.uint32)
        return (u & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)
    a_regs = [value(v) for v in ops[0:4]]
    b_regs = [value(v) for v in ops[4:6]]

    def operands(sl, g, q):
        A, B = np.zeros((16, 8)), np.zeros((8, 8))
        for j in range(4):
            A[g + (8 if j in (1, 3) else 0), q + (4 if j >= 2 else 0)] = \
                a_regs[j][sl]
        for j in range(2):
            B[q + 4 * j, g] = b_regs[j][sl]
        return A, B
    return _mma_m16n8(ops, operands)


def op_mma(m, op, ops, cta, mask):
    _whole_warps(mask, "nvvm.mma.sync")
    if "m = 16, n = 8, k = 8" in op.props and "mma_type<tf32>" in op.props:
        return _mma_tf32(ops)
    if "m = 16, n = 8, k = 16" not in op.props:
        raise SimError("only mma.sync m16n8k16 (bf16, f16) and m16n8k8 "
                       "(tf32) are simulated")
    kind = "bf16" if "mma_type<bf16>" in op.props else "f16"
    a_regs = [np.asarray(lanes(v)).astype(np.int32).view(np.uint32)
              for v in ops[0:4]]
    b_regs = [np.asarray(lanes(v)).astype(np.int32).view(np.uint32)
              for v in ops[4:6]]

    def operands(sl, g, q):
        A, B = np.zeros((16, 16)), np.zeros((16, 8))
        # A: reg j holds a(2j), a(2j+1); rows g (+8 for regs 1, 3), columns
        # 2q + {0, 1} (+8 for regs 2, 3).
        for j in range(4):
            lo, hi = _halves(a_regs[j][sl], kind)
            row = g + (8 if j in (1, 3) else 0)
            col = 2 * q + (8 if j in (2, 3) else 0)
            A[row, col], A[row, col + 1] = lo, hi
        # B: reg j holds b(2j), b(2j+1); rows 2q + {0, 1} (+8 for reg 1),
        # column g.
        for j in range(2):
            lo, hi = _halves(b_regs[j][sl], kind)
            row = 2 * q + 8 * j
            B[row, g], B[row + 1, g] = lo, hi
        return A, B
    return _mma_m16n8(ops, operands)


def op_extractvalue(m, op, ops, cta, mask):
    k = int(re.search(r"position = array<i64: (\d+)>", op.props).group(1))
    v = ops[0]
    if isinstance(v, Pending):
        v = v.value("llvm.extractvalue")
    return v[k]


def _struct_of(op, fill):
    t = op.result_types[0].replace(" ", "")
    if not t.startswith("!llvm.struct<("):
        raise SimError("%s of %s is not simulated" % (op.name, t))
    n = len(t[len("!llvm.struct<("):-2].split(","))
    return tuple(np.full(NTHREADS, fill, np.float32) for _ in range(n))


def op_zero(m, op, ops, cta, mask):
    return _struct_of(op, 0.0)


def op_undef(m, op, ops, cta, mask):
    # NaN: whatever reads undefined accumulators shows it.
    return _struct_of(op, np.nan)


def _uniform(v, sl, what):
    v = lanes(v)[sl]
    if (v != v[0]).any():
        raise SimError("%s differs across a warpgroup" % what)
    return int(v[0])


def _sw128_addresses(start, lbo, sbo, mn, k):
    i = np.arange(mn)[:, None]
    j = np.arange(k)[None, :]
    addr = start + (i // 64) * lbo + (j // 8) * sbo + (j % 8) * 128 + \
        (i % 64) * 2
    return addr ^ (((addr >> 7) & 7) << 4)


def _descriptor_addresses(desc, mn, k, what):
    """The byte address of each element (i, j) of an MN x K (MN-major,
    128-byte swizzle) operand described by a wgmma matrix descriptor: start
    + (i / 64) LBO + (j / 8) SBO + (j % 8) 128 + (i % 64) 2, then bits 4-6
    of the address XOR bits 7-9 (Swizzle<3,4,3>)."""
    if desc >> 62 != 1:
        raise SimError("%s: only the 128-byte swizzle is simulated" % what)
    if (desc >> 49) & 7:
        raise SimError("%s: a non-zero matrix base offset" % what)
    start = (desc & 0x3FFF) << 4
    lbo = ((desc >> 16) & 0x3FFF) << 4
    sbo = ((desc >> 32) & 0x3FFF) << 4
    return _sw128_addresses(start, lbo, sbo, mn, k)


def _footprint(desc, mn, k):
    """The 4-byte shared words a descriptor's operand covers."""
    return np.unique(_descriptor_addresses(desc, mn, k, "wgmma") // 4)


def check_wgmma_overlap(cta, words, what):
    """A write to shared words that an unretired wgmma may still read."""
    pending = [p for groups in cta.wgmma_pending.values() for group in groups
               for p in group] + \
        [p for group in cta.wgmma_open.values() for p in group]
    for p in pending:
        if p.result is None and np.isin(words, p.words).any():
            raise SimError("%s writes shared memory that a wgmma not yet "
                           "retired by wgmma.wait_group may still read"
                           % what)


def _mn_major_sw128(cta, desc, mn, k, what):
    """The bf16/f16 bits of the operand a descriptor describes."""
    addr = _descriptor_addresses(desc, mn, k, what)
    out = np.zeros((mn, k), np.uint16)
    for (a, b_), v in np.ndenumerate(addr):
        out[a, b_] = cta.shared.span(int(v), 2).view(np.uint16)[0]
    return out


def _resolve(p):
    if p.result is not None:
        return
    op, cta = p.op, p.cta
    acc = p.acc
    # scale-d 0: D = A B, the accumulators in are not read.
    fresh = "scaleD = #nvvm.wgmma_scale_out<zero>" in op.props
    if "scaleA = #nvvm.wgmma_scale_in<one>" not in op.props or \
            "scaleB = #nvvm.wgmma_scale_in<one>" not in op.props:
        raise SimError("only wgmma with scale-a and scale-b one is simulated")
    if isinstance(acc, Pending) and not fresh:
        _resolve(acc)
        acc = acc.result
    if "m = 64, n = 128, k = 16" not in op.props:
        raise SimError("only wgmma m64n128k16 is simulated")
    if "layoutA = #nvvm.mma_layout<col>" not in op.props or \
            "layoutB = #nvvm.mma_layout<row>" not in op.props:
        raise SimError("only MN-major A and B (layouts col, row) are "
                       "simulated")
    kind = "bf16" if "typeA = #nvvm.wgmma_type<bf16>" in op.props else "f16"
    out = [np.zeros(NTHREADS, np.float32) if fresh else
           np.array(a, np.float32).copy() for a in acc]
    lane = np.arange(32)
    g, q = lane // 4, lane % 4
    for wg in p.warpgroups:
        sl = slice(128 * wg, 128 * wg + 128)
        da = _uniform(p.desc_a, sl, "descriptor A")
        db = _uniform(p.desc_b, sl, "descriptor B")
        A = _mn_major_sw128(cta, da, 64, 16, "A")          # A[m][k]
        B = _mn_major_sw128(cta, db, 128, 16, "B").T       # B[k][n]
        if kind == "bf16":
            f = lambda h: (h.astype(np.uint32) << 16).view(np.float32)
        else:
            f = lambda h: h.view(np.float16).astype(np.float32)
        D = f(A).astype(np.float64) @ f(B).astype(np.float64)
        for w in range(4):
            base = 128 * wg + 32 * w
            for i in range(64):
                j, r = i // 4, i % 4
                row = 16 * w + g + 8 * (r // 2)
                col = 8 * j + 2 * q + (r % 2)
                idx = base + lane
                out[i][idx] = (out[i][idx].astype(np.float64) +
                               D[row, col]).astype(np.float32)
    p.result = tuple(out)


def op_wgmma(m, op, ops, cta, mask):
    p = Pending(op, ops[0], lanes(ops[1]).astype(np.int64).view(np.uint64)
                .astype(object), lanes(ops[2]).astype(np.int64)
                .view(np.uint64).astype(object), cta)
    p.warpgroups = _warpgroups(mask, "nvvm.wgmma.mma_async")
    act = full(mask)
    p.words = np.unique(np.concatenate(
        [_footprint(int(d), mn, 16) for descs, mn in ((p.desc_a, 64),
                                                     (p.desc_b, 128))
         for d in set(descs[act])]))
    cta.wgmma_open.setdefault(tuple(p.warpgroups), []).append(p)
    return p


def op_wgmma_commit(m, op, ops, cta, mask):
    key = tuple(_warpgroups(mask, "nvvm.wgmma.commit.group"))
    cta.wgmma_pending.setdefault(key, []).append(
        cta.wgmma_open.pop(key, []))


def op_wgmma_wait(m, op, ops, cta, mask):
    key = tuple(_warpgroups(mask, "nvvm.wgmma.wait.group"))
    _retire(cta.wgmma_pending.setdefault(key, []), int_prop(op, "group"),
            _resolve)


class TensorMap:
    """A TMA descriptor as the runtime encodes it: the tensor, the box (in
    its row-major order) and the swizzle span (0 or 128 bytes)."""

    def __init__(self, ref, box, swizzle):
        if len(ref.dims) != 2 or len(box) != 2 or swizzle not in (0, 128):
            raise SimError("only rank-2 tensor maps with no swizzle or the "
                           "128-byte swizzle are simulated")
        self.ref, self.box, self.swizzle = ref, box, swizzle

    def copy(self, col, row):
        """The box at (row, col) as raw bytes in shared-memory order
        (row-major, out-of-bounds elements zero) and each byte's offset
        from the destination before swizzling."""
        size = SIZE[self.ref.elem]
        rows, cols = self.box
        r = np.arange(rows)[:, None] + row
        c = np.arange(cols)[None, :] + col
        inside = (r >= 0) & (r < self.ref.dims[0]) & (c >= 0) & \
            (c < self.ref.dims[1])
        data = self.ref.typed()
        lin = np.where(inside, r * self.ref.dims[1] + c, 0)
        values = np.where(inside, data[lin], np.zeros(1, data.dtype))
        raw = np.ascontiguousarray(values).view(np.uint8).reshape(-1)
        return raw, np.arange(rows * cols * size)


class MBarrier:
    """An mbarrier object: expected and pending arrivals, the transaction
    count, the phase, and the TMA copies of the current phase that have not
    landed yet."""

    def __init__(self, count):
        self.count = self.pending = count
        self.tx = 0
        self.phase = 0
        self.copies = []


def _barrier_at(cta, address, what):
    bar = cta.mbarriers.get(int(address))
    if bar is None:
        raise SimError("%s on shared address 0x%x, where no mbarrier was "
                       "initialized" % (what, int(address)))
    return bar


def op_mbarrier_init(m, op, ops, cta, mask):
    addr, count = lanes(ops[0]), lanes(ops[1])
    for t in np.nonzero(full(mask))[0]:
        if int(addr[t]) % 8:
            raise SimError("mbarrier.init at a misaligned address 0x%x"
                           % int(addr[t]))
        cta.mbarriers[int(addr[t])] = MBarrier(int(count[t]))


def op_mbarrier_arrive_expect_tx(m, op, ops, cta, mask):
    addr, tx = lanes(ops[0]), lanes(ops[1])
    for t in np.nonzero(full(mask))[0]:
        bar = _barrier_at(cta, addr[t], "mbarrier.arrive.expect_tx")
        bar.tx += int(tx[t])
        _arrive(cta, bar, 1, "mbarrier.arrive.expect_tx")


def op_tma_load(m, op, ops, cta, mask):
    seg = [int(x) for x in re.search(r"operandSegmentSizes = array<i32: "
                                     r"([\d, ]+)>", op.props).group(1)
           .split(",")]
    if seg[4] or seg[5] or seg[6] or seg[2] != 2:
        raise SimError("only 2-D tile-mode TMA loads without multicast or "
                       "cache hints are simulated")
    dst, desc = lanes(ops[0]), lanes(ops[1])
    col, row, bar_addr = lanes(ops[2]), lanes(ops[3]), lanes(ops[4])
    for t in np.nonzero(full(mask))[0]:
        tmap = m.tensor_maps.get(int(desc[t]))
        if tmap is None:
            raise SimError("cp.async.bulk.tensor with a descriptor at 0x%x "
                           "that the runtime did not write" % int(desc[t]))
        if int(dst[t]) % (1024 if tmap.swizzle == 128 else 128):
            raise SimError("cp.async.bulk.tensor to a misaligned shared "
                           "address 0x%x" % int(dst[t]))
        raw, offsets = tmap.copy(int(np.int32(col[t])), int(np.int32(row[t])))
        addresses = int(dst[t]) + offsets
        if tmap.swizzle == 128:
            addresses = addresses ^ (((addresses >> 7) & 7) << 4)
        words = np.unique(addresses // 4)
        check_wgmma_overlap(cta, words, "cp.async.bulk.tensor")
        bar = _barrier_at(cta, bar_addr[t], "cp.async.bulk.tensor")
        bar.copies.append((addresses, raw, words))


def mbarrier_try_wait_parity(m, op, ops, cta, mask):
    """Whether the wait passes now. A phase completes here, at the wait
    that observes it, once its arrivals and transaction bytes are all in:
    its TMA copies land then (as late as the hardware may land them)."""
    act = full(mask)
    addr = lanes(ops[0])[act]
    parity = lanes(ops[1])[act]
    if (addr != addr[0]).any() or (parity != parity[0]).any():
        raise SimError("mbarrier.try_wait.parity: the threads of a CTA wait "
                       "on different barriers or phases in lockstep")
    bar = _barrier_at(cta, addr[0], "mbarrier.try_wait.parity")
    if bar.phase % 2 != int(parity[0]):
        # The phase of that parity is the one before: complete, whatever
        # is in flight now (the copies land at a later wait).
        return True
    moved = sum(len(raw) for _, raw, _ in bar.copies)
    if bar.pending == 0 and moved > bar.tx:
        raise SimError("mbarrier: the TMA copies moved more bytes than "
                       "arrive.expect_tx announced")
    if bar.pending or moved < bar.tx:
        cta.waits[id(op)] = (
            "mbarrier.try_wait.parity on a phase that does not complete (%d "
            "arrivals and %d transaction bytes missing)"
            % (bar.pending, bar.tx - moved))
        return False
    for addresses, raw, words in bar.copies:
        check_wgmma_overlap(cta, words, "cp.async.bulk.tensor")
        start, data = cta.shared.find(int(addresses.min()))
        if int(addresses.max()) - start >= len(data):
            raise SimError("cp.async.bulk.tensor writes past the end of a "
                           "shared buffer")
        data[addresses - start] = raw
    bar.copies = []
    bar.tx = 0
    bar.phase += 1
    bar.pending = bar.count
    return True


def _arrive(cta, bar, arrivals, what):
    bar.pending -= arrivals
    if bar.pending < 0:
        raise SimError("%s: more arrivals than the barrier's count in one "
                       "phase (no wait completed the phase before: a "
                       "missing wait, or one on the wrong phase parity)"
                       % what)


def op_mbarrier_arrive(m, op, ops, cta, mask):
    """A plain arrival (a consumer releasing a stage): one a thread."""
    addr = lanes(ops[0])
    if len(ops) > 1:
        raise SimError("nvvm.mbarrier.arrive with a count is not simulated")
    for t in np.nonzero(full(mask))[0]:
        _arrive(cta, _barrier_at(cta, addr[t], "mbarrier.arrive"), 1,
                "mbarrier.arrive")
    return np.zeros(NTHREADS, np.int64)


def _warpgroups(mask, what):
    """The warpgroups of `mask`, which must be whole warpgroups."""
    return _whole_groups(mask, 128, what, "warpgroup")


def op_setmaxregister(m, op, ops, cta, mask):
    _warpgroups(mask, "nvvm.setmaxregister")


def op_named_barrier(m, op, ops, cta, mask):
    """bar.sync id, count: the count's threads, in lockstep here."""
    seg = [int(x) for x in re.search(r"operandSegmentSizes = array<i32: "
                                     r"([\d, ]+)>", op.props).group(1)
           .split(",")]
    if seg[2] or "reductionOp" in op.props:
        raise SimError("nvvm.barrier with a reduction is not simulated")
    act = full(mask)
    ident = _uniform(ops[0], act, "the barrier id") if seg[0] else 0
    count = _uniform(ops[seg[0]], act, "the thread count") \
        if seg[1] else NTHREADS
    if count != int(act.sum()):
        raise SimError("nvvm.barrier %d for %d threads reached by %d in "
                       "lockstep (gpusim runs a named barrier's threads "
                       "together)" % (ident, count, int(act.sum())))
    # gpusim runs a barrier's threads together, so two thread groups on one
    # id would each pass alone here; on the hardware their arrivals add up
    # and release a mix of both.
    warps = tuple(sorted(set((cta.tid[act] // 32).tolist())))
    users = cta.named_barriers.setdefault(ident, warps)
    if users != warps:
        raise SimError("nvvm.barrier %d is used by warps %s and by warps %s "
                       "of CTA %d: the hardware counts their arrivals "
                       "together" % (ident, _span(users), _span(warps),
                                     cta.index))
    cta.races.epoch += 1


def _span(warps):
    """Warps 4-7, or a list where they are not consecutive."""
    if list(warps) == list(range(warps[0], warps[-1] + 1)):
        return "%d-%d" % (warps[0], warps[-1])
    return ", ".join(str(w) for w in warps)


def op_inline_asm(m, op, ops, cta, mask):
    """The kernel's inline PTX: an opaque copy (mov.b32) or an L2 prefetch."""
    asm = re.search(r'asm_string = "([^"]*)"', op.props)
    asm = asm.group(1) if asm else ""
    if asm == "mov.b32 $0, $1;":
        return lanes(ops[0]).copy()
    if asm == "mov.u32 $0, %tid.x;":
        return cta.tid.astype(np.int32)
    if asm == "mov.u32 $0, %ctaid.x;":
        return np.full(NTHREADS, cta.index, np.int32)
    if asm == "mov.u32 $0, %nctaid.x;":
        return np.full(NTHREADS, cta.grid, np.int32)
    if asm == "prefetch.global.L2 [$0];":
        return op_prefetch(m, op, ops, cta, mask)
    raise SimError("inline PTX '%s' is not simulated" % asm)


def _prefetchable(m, a, n):
    """Whether bytes [a, a + n) lie in one of the launch's W and M."""
    return any(base <= a and a + n <= base + size for base, size in
               m.prefetchable)


def op_prefetch(m, op, ops, cta, mask):
    """prefetch.global.L2: no effect on any value, but its address must lie
    in the launch's W or M (the kernel clamps the lines past the matrix)."""
    addr = lanes(ops[0])
    for t in np.nonzero(full(mask))[0]:
        a = int(addr[t])
        if not _prefetchable(m, a, 1):
            raise SimError("prefetch.global.L2 of address 0x%x, outside the "
                           "step's W and M" % a)
    m.prefetches += int(full(mask).sum())


def op_bulk_prefetch(m, op, ops, cta, mask):
    """cp.async.bulk.prefetch.L2 (the ping-pong producer's): its bytes must
    lie in the launch's W or M; counted in 128-byte lines."""
    addr, size = lanes(ops[0]), lanes(ops[1])
    for t in np.nonzero(full(mask))[0]:
        a, n = int(addr[t]), int(size[t])
        if n <= 0 or n % 16 or a % 16:
            raise SimError("cp.async.bulk.prefetch of %d bytes at 0x%x (16-byte "
                           "multiples and alignment)" % (n, a))
        if not _prefetchable(m, a, n):
            raise SimError("cp.async.bulk.prefetch of 0x%x..0x%x, outside the "
                           "step's W and M" % (a, a + n))
        m.prefetches += (n + 127) // 128


# Distributed shared memory: nvvm.mapa tags a shared address with the
# cluster rank it maps to (rank + 1 above bit 40; shared addresses are
# small), which ld.shared::cluster (llvm.load from !llvm.ptr<7>) reads.
_RANK_SHIFT = 40


def cluster_barrier_threads(cta, mask, what):
    """The threads of an aligned barrier.cluster op: whole warps, at one
    phase."""
    act = full(mask)
    warps = act.reshape(-1, 32)
    if (warps.any(axis=1) != warps.all(axis=1)).any():
        raise SimError("%s (aligned) under divergent control flow in a warp"
                       % what)
    if len(set(cta.arrivals[act].tolist())) > 1:
        raise SimError("%s by threads at different cluster barrier phases"
                       % what)
    return act


def op_cluster_arrive(m, op, ops, cta, mask):
    act = cluster_barrier_threads(cta, mask, "nvvm.cluster.arrive")
    if (cta.arrivals[act] > cta.waited[act]).any():
        raise SimError("nvvm.cluster.arrive twice without a cluster.wait")
    cta.arrivals[act] += 1


def op_mapa(m, op, ops, cta, mask):
    addr = lanes(ops[0]).astype(np.int64)
    rank = lanes(ops[1]).astype(np.int64)
    act = full(mask)
    if ((rank < 0) | (rank >= len(cta.cluster)))[act].any():
        raise SimError("nvvm.mapa to rank %d of a cluster of %d CTAs"
                       % (int(rank[act].max()), len(cta.cluster)))
    if (addr >> _RANK_SHIFT)[act].any():
        raise SimError("nvvm.mapa of an address that is not a shared one")
    return addr | ((rank + 1) << _RANK_SHIFT)


def remote_shared_read(op, ops, cta, mask):
    """ld.shared::cluster: what the owner CTA wrote before a cluster
    arrival that this CTA's completed waits cover; the owner must not
    have exited."""
    elem = _typed(op)
    size = SIZE[elem]
    addr = lanes(ops[0]).astype(np.int64)
    out = np.zeros(NTHREADS, NP[elem])
    for t in np.nonzero(full(mask))[0]:
        tag = int(addr[t]) >> _RANK_SHIFT
        if tag == 0:
            raise SimError("llvm.load from !llvm.ptr<7> of an address no "
                           "nvvm.mapa made")
        owner = cta.cluster[tag - 1]
        a = int(addr[t]) & ((1 << _RANK_SHIFT) - 1)
        if owner.exited:
            raise SimError("CTA %d reads the shared memory of CTA %d of its "
                           "cluster, which has exited" % (cta.index,
                                                          owner.index))
        words = np.arange(a // 4, (a + size + 3) // 4)
        if (owner.word_written[words] >= cta.waited[t]).any():
            raise SimError("cluster race: CTA %d reads shared word %d of CTA "
                           "%d, written after the last cluster arrival of "
                           "that CTA that this one waited for"
                           % (cta.index, a, owner.index))
        owner.word_read_remote[words] = np.maximum(
            owner.word_read_remote[words], cta.arrivals[t])
        out[t] = owner.shared.span(a, size).view(NP[elem])[0]
    return out


def op_inttoptr(m, op, ops, cta, mask):
    return np.asarray(ops[0]).astype(np.int64)


def op_llvm_bitcast(m, op, ops, cta, mask):
    return ops[0]  # i32 <-> vector<2xf16>: the same 32 bits


def op_noop(m, op, ops, cta, mask):
    return None


def _arith(fn):
    def f(m, op, ops, cta, mask):
        t = _typed(op)
        out = fn(*[np.asarray(v) for v in ops])
        if t == "bf16":
            return bf16_round(np.asarray(out, np.float32))
        return np.asarray(out).astype(NP[t])
    return f


def _maximumf(a, b):
    return np.where(np.isnan(a) | np.isnan(b), np.nan, np.maximum(a, b))


SIMPLE = {
    "arith.constant": lambda m, op, ops, cta, mask: m.constant(op),
    "vector.load": op_vector_load, "vector.store": op_vector_store,
    "vector.extract": op_vector_extract,
    "vector.from_elements": op_vector_from_elements,
    "arith.addf": _arith(np.add), "arith.subf": _arith(np.subtract),
    "arith.mulf": _arith(np.multiply), "arith.divf": _arith(np.divide),
    "arith.negf": _arith(np.negative), "arith.maximumf": _arith(_maximumf),
    "arith.minimumf": _arith(lambda a, b: np.where(
        np.isnan(a) | np.isnan(b), np.nan, np.minimum(a, b))),
    "math.sqrt": _arith(np.sqrt), "math.absf": _arith(np.abs),
    "arith.addi": _arith(np.add), "arith.subi": _arith(np.subtract),
    "arith.muli": _arith(np.multiply), "arith.andi": _arith(np.bitwise_and),
    "arith.ori": _arith(np.bitwise_or), "arith.xori": _arith(np.bitwise_xor),
    "arith.minui": _arith(np.minimum), "arith.maxui": _arith(np.maximum),
    "arith.minsi": _arith(np.minimum), "arith.maxsi": _arith(np.maximum),
    "arith.divui": op_divui, "arith.remui": op_remui,
    "arith.cmpi": op_cmpi, "arith.cmpf": op_cmpf,
    "arith.extf": op_cast_float, "arith.truncf": op_cast_float,
    "arith.index_cast": op_index_cast, "arith.index_castui": op_index_cast,
    "arith.trunci": op_trunci, "arith.extui": op_extui,
    "arith.extsi": op_extsi,
    "arith.bitcast": op_bitcast, "arith.shrui": op_shrui,
    "arith.shli": op_shli, "arith.select": op_select,
    "memref.load": op_load, "memref.store": op_store,
    "memref.extract_aligned_pointer_as_index": op_extract_ptr,
    "gpu.dynamic_shared_memory": op_dynamic_shared,
    "memref.view": op_kernel_view,
    "gpu.barrier": op_barrier, "gpu.thread_id": op_gpu_id("thread_id"),
    "gpu.block_id": op_gpu_id("block_id"),
    "gpu.grid_dim": op_gpu_id("grid_dim"), "gpu.shuffle": op_shuffle,
    "llvm.intr.fma": op_fma, "llvm.fence": op_noop,
    "llvm.atomicrmw": op_atomicrmw, "llvm.inttoptr": op_inttoptr,
    "llvm.addrspacecast": op_inttoptr, "llvm.bitcast": op_llvm_bitcast,
    "llvm.extractvalue": op_extractvalue,
    "nvvm.cluster.arrive": op_cluster_arrive, "nvvm.mapa": op_mapa,
    "llvm.inline_asm": op_inline_asm,
    "nvvm.cp.async.shared.global": op_cp_async,
    "nvvm.cp.async.commit.group": op_commit,
    "nvvm.cp.async.wait.group": op_wait,
    "nvvm.ldmatrix": op_ldmatrix, "nvvm.mma.sync": op_mma,
    "llvm.mlir.zero": op_zero, "llvm.mlir.undef": op_undef, "nvvm.wgmma.fence.aligned": op_noop,
    "nvvm.fence.proxy": op_noop, "nvvm.wgmma.mma_async": op_wgmma,
    "nvvm.wgmma.commit.group.sync.aligned": op_wgmma_commit,
    "nvvm.wgmma.wait.group.sync.aligned": op_wgmma_wait,
    "nvvm.convert.float.to.tf32": op_cvt_tf32,
    "nvvm.mbarrier.init": op_mbarrier_init,
    "nvvm.fence.mbarrier.init": op_noop,
    "nvvm.mbarrier.arrive.expect_tx": op_mbarrier_arrive_expect_tx,
    "nvvm.cp.async.bulk.tensor.shared.cluster.global": op_tma_load,
    "nvvm.mbarrier.arrive": op_mbarrier_arrive,
    "nvvm.setmaxregister": op_setmaxregister,
    "nvvm.barrier": op_named_barrier,
    "nvvm.cp.async.bulk.prefetch": op_bulk_prefetch,
}

# Ops after which the CTA's other thread groups (and CTAs) get to run: a
# plain arrival (a consumer releasing a stage), so that a waiting producer
# refills it at once, as early as the hardware could (the producer then
# runs until it waits again).
SYNC_POINTS = {"nvvm.mbarrier.arrive"}


# --- command line -------------------------------------------------------------

def lower(path, entry, mainloop, nora_opt, allow_tf32=False, fuse=True,
          ring_stages=0, stage_tokens=0, row_exchange="workspace"):
    cmd = [nora_opt, path, "--nora-decompose"] + \
        (["--nora-fuse-wgrad-epilogue"] if fuse else []) + [
           "--nora-fused-step-to-gpu=mainloop=" + mainloop +
           " row-exchange=" + row_exchange +
           (" allow-tf32=1" if allow_tf32 else "") +
           (" ring-stages=%d" % ring_stages if ring_stages else "") +
           (" stage-tokens=%d" % stage_tokens if stage_tokens else ""),
           "--canonicalize",
           "--cse", "--mlir-print-op-generic"]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if res.returncode != 0:
        if "cannot be lowered" in res.stderr:
            raise NotGpuStep(res.stderr.strip().splitlines()[0])
        raise SimError("nora-opt failed:\n" + res.stderr.rstrip())
    return res.stdout


def simulate(text, entry, inputs, max_grid=None, counters=None):
    """Runs @entry of the generic IR `text` on `inputs` (numpy arrays for
    tensors, floats for scalars, already in the argument's element type:
    bf16 as rounded float32). Returns the results as float32 arrays; a
    `counters` dict gets what the kernels did that no result shows
    ("prefetches": the L2 prefetch lines issued)."""
    module = Parser(text).op()
    machine = Machine(module)
    machine.max_grid = max_grid
    if entry not in machine.funcs:
        raise SimError("no function @%s" % entry)
    func = machine.funcs[entry]
    block = func.regions[0][0]
    args = []
    for t, value in zip(block.arg_types, inputs):
        t2 = t.replace(" ", "")
        if t2.startswith("tensor<"):
            m = re.match(r"tensor<((?:\d+x)*)(\w+)>", t2)
            dims = [int(d) for d in m.group(1).split("x") if d]
            elem = m.group(2)
            arr = np.asarray(value)
            if list(arr.shape) != dims:
                raise SimError("argument of type %s got shape %s"
                               % (t2, arr.shape))
            base = machine.glob.alloc(int(np.prod(dims)) * SIZE[elem])
            ref = MemRef(machine.glob, base, dims, elem)
            flat = ref.typed()
            if arr.dtype == np.uint16 and elem in ("bf16", "f16"):
                flat[:] = arr.ravel().view(flat.dtype)  # raw bits
            elif elem == "bf16":
                flat[:] = (bf16_round(arr.astype(np.float32)).ravel()
                           .view(np.uint32) >> 16).astype(np.uint16)
            else:
                flat[:] = arr.astype(np.float32).astype(NP[elem]).ravel()
            args.append(ref)
        else:
            args.append(np.float32(value))
    results = machine.run_host(entry, args)
    if counters is not None:
        counters["prefetches"] = machine.prefetches
    out = []
    for r in results:
        if not isinstance(r, MemRef):
            out.append(r)  # a scalar (the i64 count of a guarded step)
            continue
        v = r.typed()
        if r.elem == "bf16":
            v = (v.astype(np.uint32) << 16).view(np.float32)
        out.append(np.asarray(v, np.float32).reshape(r.dims).copy())
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("file")
    p.add_argument("--entry", required=True)
    p.add_argument("--input", action="append", default=[])
    p.add_argument("--output", action="append", default=[])
    p.add_argument("--mainloop", default="auto", choices=MAINLOOPS)
    p.add_argument("--no-fuse", action="store_true",
                   help="do not fuse weight gradients into their steps "
                        "(the gradient kernel, then the step's)")
    p.add_argument("--allow-tf32", action="store_true",
                   help="f32 inputs on tf32 tensor cores (nora-opt's "
                        "allow-tf32)")
    p.add_argument("--ring-stages", type=int, default=0,
                   help="a warp-specialized mainloop (wgmma-ws, "
                        "wgmma-pingpong, wgmma-tall, wgmma-wide): the TMA "
                        "ring's stages")
    p.add_argument("--stage-tokens", type=int, default=0,
                   help="a warp-specialized mainloop: the tokens of a "
                        "ring stage")
    p.add_argument("--row-exchange", default="workspace",
                   choices=ROW_EXCHANGES,
                   help="how a row block's CTAs sum its statistics "
                        "(nora-opt's row-exchange)")
    p.add_argument("--grid", type=int, default=None,
                   help="at most N CTAs for persistent kernels (default: "
                        "one a tile)")
    p.add_argument("--nora-opt", default=None)
    opts = p.parse_args(argv)
    try:
        nora_opt = opts.nora_opt or os.environ.get("NORA_OPT") or "nora-opt"
        text = lower(opts.file, opts.entry, opts.mainloop, nora_opt,
                     opts.allow_tf32, not opts.no_fuse, opts.ring_stages,
                     opts.stage_tokens, opts.row_exchange)
        inputs = []
        for spec in opts.input:
            if spec.startswith("@"):
                inputs.append(np.load(spec[1:]))
            else:
                inputs.append(float(spec))
        results = simulate(text, opts.entry, inputs, opts.grid)
        if len(results) != len(opts.output):
            raise SimError("@%s returns %d results but %d --output were "
                           "given" % (opts.entry, len(results),
                                      len(opts.output)))
        temps = []
        for spec, r in zip(opts.output, results):
            if not spec.startswith("@"):
                raise SimError("pass outputs as @file.npy")
            temp = spec[1:] + ".tmp%d" % os.getpid()
            with open(temp, "wb") as f:
                np.save(f, r)
            temps.append((temp, spec[1:]))
        for temp, path in temps:
            os.replace(temp, path)
    except NotGpuStep as e:
        print("gpusim: not a GPU step: %s" % e, file=sys.stderr)
        return 2
    except SimError as e:
        print("gpusim: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
