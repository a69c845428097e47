"""The GPU steps that the resource check and the GPU benchmark compile: one
function `step_mlir` that writes a Nora or RMNP step (the weight gradient of
y = x @ W^T, then the composite step with the official defaults) and the
benchmark shapes of the GPU issue (bf16, T = 8192 and 2048, (M, N) in
{(4096, 4096), (11008, 4096), (4096, 11008)})."""

BENCH_SHAPES = [(T, M, N) for T in (8192, 2048)
                for (M, N) in ((4096, 4096), (11008, 4096), (4096, 11008))]
# And one whose row block fits a thread-block cluster (16 column tiles of
# 128), where the cluster row exchange can be timed against the workspace's.
BENCH_SHAPES += [(8192, 4096, 2048)]

# The variants of the fused step the benchmark times beside the default
# (mma-sync): the artifact's suffix (NAME-SUFFIX.nora), nora-compile's
# flags, the column's title and whether only sm_90a has it. The default
# without its L2 prefetch of W and M; the opt-in wgmma mainloops, with
# wgmma-ws's ring at 4 stages of 64 tokens (128 KiB, the default), 6 of them
# (192 KiB, the deepest) and 4 of 16 tokens (the ring before, one k16
# wgmma a stage); wgmma-pingpong, the same ring with a tile a consumer
# warpgroup (one's epilogue under the other's wgmmas); and wgmma-tall,
# 256 x 128 CTA tiles (x read once for two row blocks) on a ring of 3
# stages of 64 tokens (144 KiB, the default and the deepest) or 6 of 32;
# wgmma-wide, 128 x 256 CTA tiles (dy read once for two column tiles) on
# the same 3 x 64 ring; and the cluster row exchange (the default
# mainloop, and wgmma-wide on its 5 x 32 ring), where a row block's column
# tiles (wgmma-wide: its CTA tiles of 256 columns) fit one cluster
# (variant_applies).
BENCH_VARIANTS = [
    ("noprefetch", ["--l2-prefetch-tokens=0"], "no L2 prefetch", False),
    ("wgmma", ["--mainloop=wgmma"], "wgmma", True),
    ("wgmma-ws", ["--mainloop=wgmma-ws"], "wgmma-ws 4x64", True),
    ("wgmma-ws6", ["--mainloop=wgmma-ws", "--ring-stages=6"],
     "wgmma-ws 6x64", True),
    ("wgmma-ws-t16", ["--mainloop=wgmma-ws", "--stage-tokens=16"],
     "wgmma-ws 4x16", True),
    ("wgmma-pingpong", ["--mainloop=wgmma-pingpong"], "wgmma-pingpong",
     True),
    ("wgmma-tall", ["--mainloop=wgmma-tall"], "wgmma-tall 3x64", True),
    ("wgmma-tall-t32", ["--mainloop=wgmma-tall", "--ring-stages=6",
                        "--stage-tokens=32"], "wgmma-tall 6x32", True),
    ("wgmma-wide", ["--mainloop=wgmma-wide"], "wgmma-wide 3x64", True),
    ("cluster", ["--row-exchange=cluster"], "cluster exchange", True),
    ("wgmma-wide-cluster", ["--mainloop=wgmma-wide", "--row-exchange=cluster"],
     "wgmma-wide cluster", True),
]
# The columns of a cluster's CTA tiles, for the variants with the cluster
# exchange.
CLUSTER_TILE_COLUMNS = {"cluster": 128, "wgmma-wide-cluster": 256}

# The most CTAs (column tiles of a row block) a cluster exchange takes.
CLUSTER_MAX_CTAS = 16


def cluster_fits(N, tile_columns=128):
    """Whether a row block of N columns in CTA tiles of `tile_columns`
    (128: the tensor-core mainloops, 64: simt, 256: wgmma-wide) fits one
    cluster."""
    return -(-N // tile_columns) <= CLUSTER_MAX_CTAS


def variant_applies(suffix, N):
    """Whether BENCH_VARIANTS' `suffix` compiles for N columns."""
    return suffix not in CLUSTER_TILE_COLUMNS or \
        cluster_fits(N, CLUSTER_TILE_COLUMNS[suffix])


def bench_name(T, M, N, step="nora_step"):
    return "%s_T%d_M%d_N%d" % (step.replace("_step", ""), T, M, N)


def step_mlir(name, T, M, N, act="bf16", step="nora_step", acc=False,
              nonfinite=None):
    """A function @name(dy: T x M, x: T x N, [acc], w, m: M x N f32, lr, wd)
    -> (w_new, m_new): nora.wgrad then nora.<step> with its defaults; with
    `nonfinite` (skip_row or skip_step) the step is guarded and the function
    also returns its count (i64)."""
    g = "tensor<%dx%dxf32>" % (M, N)
    dy, x = "tensor<%dx%dx%s>" % (T, M, act), "tensor<%dx%dx%s>" % (T, N, act)
    acc_arg = ", %%acc: %s" % g if acc else ""
    acc_use = " acc(%%acc : %s)" % g if acc else ""
    guard = ' {nonfinite = "%s"}' % nonfinite if nonfinite else ""
    count, count_type = (", %skipped", ", i64") if nonfinite else ("", "")
    return f"""func.func @{name}(%dy: {dy}, %x: {x}{acc_arg}, %w: {g}, %m: {g},
    %lr: f32, %wd: f32) -> ({g}, {g}{count_type}) {{
  %g = nora.wgrad %dy, %x{acc_use} : {dy}, {x} -> {g}
  %wn, %mn{count} = nora.{step} %g, %w, %m, %lr, %wd{guard} : {g}, {g}, {g}{" -> i64" if nonfinite else ""}
  return %wn, %mn{count} : {g}, {g}{count_type}
}}
"""


def wgrad_mlir(name, T, M, N, act="bf16"):
    """A function @name(dy: T x M, x: T x N) -> g (M x N f32): the weight
    gradient alone (the GPU's wgrad-only kernel)."""
    g = "tensor<%dx%dxf32>" % (M, N)
    dy, x = "tensor<%dx%dx%s>" % (T, M, act), "tensor<%dx%dx%s>" % (T, N, act)
    return f"""func.func @{name}(%dy: {dy}, %x: {x}) -> {g} {{
  %g = nora.wgrad %dy, %x : {dy}, {x} -> {g}
  return %g : {g}
}}
"""


def optim_mlir(name, M, N, step="nora_step"):
    """A function @name(g, w, m: M x N f32, lr, wd) -> (w_new, m_new): the
    optimizer step alone on a given gradient."""
    t = "tensor<%dx%dxf32>" % (M, N)
    return f"""func.func @{name}(%g: {t}, %w: {t}, %m: {t}, %lr: f32, %wd: f32)
    -> ({t}, {t}) {{
  %wn, %mn = nora.{step} %g, %w, %m, %lr, %wd : {t}, {t}, {t}
  return %wn, %mn : {t}, {t}
}}
"""
