"""gpusim finds the bugs it is meant to find: the mma-sync kernel of
test/Pipelines/gpu-pipeline.mlir runs clean and agrees with nora's float64
reference of the Nora step; then one-line mutations of the kernel IR
must each be caught (a wrong result or a reported race), among them
counters without their departures, which a call leaves non-zero for the
next (and, in the ping-pong kernel, a grid barrier that wraps one late),
and the epilogue's 8-byte column pairs claimed 16-byte aligned or read as
their first element twice.
The same for the
wgmma kernel (96 tokens, so that its TMA ring reuses stages): TMA copies
without the swizzle, an mbarrier wait on the wrong phase or none, an
expect_tx short of the stage's bytes, a ring wait that retires too little,
and no final wait. The warp-specialized wgmma kernel (wgmma-ws): a
producer that does not wait for its consumers' release, a release before
the wgmma retires, no release, a consumer wait on the wrong phase, a first
wgmma that adds to its undefined accumulators, and a consumer barrier over
the whole CTA. The ping-pong kernel (wgmma-pingpong) on 1, 2 and 3 CTAs:
both consumers on the same tiles, an empty barrier that waits for both
consumers' warps, no turn wait, and both consumers on named barrier 1.
The wgmma-tall kernel (256 x 128 CTA tiles) on 1, 2 and 3 CTAs: both
consumers on one row block, both reading the same half of dy's stage,
both on named barrier 1, and an empty barrier of one consumer's warps.
The wgmma-wide kernel (128 x 256 CTA tiles) on 1, 2 and 3 CTAs: both
consumers on one column tile, both reading the same half of x's stage,
no guard on the second tile of an odd pair, both on named barrier 1, and
an empty barrier of one consumer's warps.
The cluster row exchange (mma-sync, row-exchange=cluster) on 6 and 3
CTAs: no cluster wait before the slots are read, every slot read from
rank 0, no cluster barrier before a CTA exits, one slot buffer for
every tile; with wgmma-wide, a producer that does not arrive in its
tiles or arrives without the wait of the tile before, both consumers'
slots in one, every slot read from consumer 0's.
And the tf32 kernel (f32 inputs, allow-tf32), which must
match the reference on tf32-rounded inputs, with its A fragment's middle
registers swapped.

    gpusim_mutations.py NORA_OPT
"""

import functools
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "gpusim"))
import gpusim  # noqa: E402
from nora import reference as ref  # noqa: E402


def main():
    nora_opt = sys.argv[1]
    src = os.path.join(HERE, "..", "..", "Pipelines", "gpu-pipeline.mlir")
    text = gpusim.lower(src, "nora_step", "mma-sync", nora_opt)
    gen = np.random.default_rng(7)
    dy = gen.standard_normal((32, 128)).astype(np.float32)
    x = gen.standard_normal((32, 96)).astype(np.float32)
    w = gen.standard_normal((128, 96)).astype(np.float32)
    m = gen.standard_normal((128, 96)).astype(np.float32)
    lr, wd = 0.1, 0.01
    inputs = [dy, x, w, m, lr, wd]
    # The reference on the bf16-rounded activations.
    g = ref.wgrad(gpusim.bf16_round(dy).astype(np.float64),
                  gpusim.bf16_round(x).astype(np.float64))
    want = list(ref.nora_step(g, w.astype(np.float64),
                              m.astype(np.float64), lr, wd))

    def error(t):
        try:
            w1, m1 = gpusim.simulate(t, "nora_step", inputs)
        except gpusim.SimError as e:
            return "reported: %s" % e
        return max(float(np.abs(w1 - want[0]).max()),
                   float(np.abs(m1 - want[1]).max()))

    clean = error(text)
    print("clean: %s" % clean)
    if not isinstance(clean, float) or clean > 1e-3:
        sys.exit("FAIL: the clean kernel does not match the reference")

    barrier = '"gpu.barrier"() : () -> ()'
    first = text.index(barrier)
    # The L2 prefetch of the tile's W and M lines (96 columns of a 128-wide
    # tile: its last lines are clamped into the matrix).
    # The clamps are the arith.minui ops among the address computation
    # just before each prefetch.
    prefetch = '"prefetch.global.L2 [$0];"'
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if prefetch in line:
            for k in range(max(0, n - 16), n):
                lines[k] = re.sub(r'"arith.minui"\((%[\w#]+), (%[\w#]+)\)',
                                  r'"arith.minui"(\1, \1)', lines[k])
    unclamped = "\n".join(lines)
    mutations = {
        "ldmatrix without .trans": text.replace("mma_layout<col>, num",
                                                "mma_layout<row>, num"),
        "cp.async.wait_group 3": text.replace(
            '"nvvm.cp.async.wait.group"() <{n = 2 : i32}>',
            '"nvvm.cp.async.wait.group"() <{n = 3 : i32}>'),
        "no barrier before the stage is read":
            text[:first] + text[first + len(barrier):],
        "prefetch lines past the matrix": unclamped,
        "no departures": no_departures(text),
        # The epilogue's 8-byte accesses of a thread's column pairs.
        "column pairs claimed 16-byte aligned": text.replace(
            "alignment = 8 : i64", "alignment = 16 : i64"),
        "the first of a column pair twice": text.replace(
            "static_position = array<i64: 1>",
            "static_position = array<i64: 0>"),
    }
    bad = run_mutations(error, text, mutations)

    # The wgmma kernel: the TMA ring's swizzle, mbarriers and transaction
    # bytes, the wgmma waits.
    # 96 tokens: 6 blocks, so the 4-stage ring reuses its stages.
    import tempfile
    sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "scripts"))
    from gpu_steps import step_mlir

    def lower_step(act, mainloop, **options):
        """The 96-token Nora step with `act` dy and x, lowered."""
        with tempfile.NamedTemporaryFile("w", suffix=".mlir",
                                         delete=False) as f:
            f.write(step_mlir("nora_step", 96, 128, 96, act=act))
        try:
            return gpusim.lower(f.name, "nora_step", mainloop, nora_opt,
                                **options)
        finally:
            os.unlink(f.name)

    def check_clean(label, text, rounded):
        """The unmutated kernel matches the reference on `rounded` inputs."""
        g = ref.wgrad(rounded(dy).astype(np.float64),
                      rounded(x).astype(np.float64))
        want[:] = ref.nora_step(g, w.astype(np.float64),
                                m.astype(np.float64), lr, wd)
        clean = error(text)
        print("%s clean: %s" % (label, clean))
        if not isinstance(clean, float) or clean > 1e-3:
            sys.exit("FAIL: the clean %s kernel does not match the reference"
                     % label)

    wtext = lower_step("bf16", "wgmma")
    dy = gen.standard_normal((96, 128)).astype(np.float32)
    x = gen.standard_normal((96, 96)).astype(np.float32)
    inputs[:2] = [dy, x]
    check_clean("wgmma", wtext, gpusim.bf16_round)
    final = '"nvvm.wgmma.wait.group.sync.aligned"() <{group = 0 : i64}> : () -> ()'
    wait = re.search(r'"nvvm.mbarrier.try_wait.parity"\((%[\w#]+), '
                     r'(%[\w#]+), (%[\w#]+)\)[^\n]*\n', wtext)
    one = re.search(r'(%[\w#]+) = "arith.constant"\(\) <\{value = 1 : i32\}>',
                    wtext).group(1)
    wmut = {
        # TMA stores unswizzled 128-byte rows that wgmma reads through
        # Swizzle<3,4,3>.
        "TMA without the swizzle": wtext.replace("swizzle = 128 : i64",
                                                 "swizzle = 0 : i64"),
        # Every stage waits on parity 1: the first use of a stage passes
        # at once, before its copies land.
        "mbarrier wait on the wrong phase": wtext.replace(
            wait.group(0), wait.group(0).replace(wait.group(2), one, 1)),
        "no mbarrier wait": wtext.replace(wait.group(0), ""),
        "expect_tx of half the stage": wtext.replace(
            '<{value = 8192 : i32}>', '<{value = 4096 : i32}>'),
        "wgmma.wait_group 2 in the ring": wtext.replace(
            '"nvvm.wgmma.wait.group.sync.aligned"() <{group = 1 : i64}>',
            '"nvvm.wgmma.wait.group.sync.aligned"() <{group = 2 : i64}>'),
        "no wgmma.wait_group 0 after the ring": wtext.replace(final, "", 1),
    }
    bad += run_mutations(error, wtext, wmut)

    # Warp specialization (wgmma-ws): the producer warpgroup and the
    # consumers on full/empty mbarrier pairs, on 16-token stages (6 blocks,
    # so that the ring reuses its stages).
    stext = lower_step("bf16", "wgmma-ws", stage_tokens=16)
    check_clean("wgmma-ws", stext, gpusim.bf16_round)
    waits = list(re.finditer(r'[^\n]*"nvvm.mbarrier.try_wait.parity"\((%[\w#]+), '
                             r'(%[\w#]+), (%[\w#]+)\)[^\n]*\n', stext))
    consumer = stext.index('"nvvm.setmaxregister"() <{action = '
                           '#nvvm<action increase>')
    producer_wait = waits[0]
    consumer_wait = next(w for w in waits if w.start() > consumer)
    release = re.search(r'[^\n]*"nvvm.mbarrier.arrive"\([^\n]*\n', stext)
    smut = {
        # The producer refills a stage its consumers may still read.
        "producer without the empty wait": stext.replace(
            producer_wait.group(0), "", 1),
        # The consumers release a stage before the wgmma reading it retired.
        "release before the wgmma retires": stext.replace(
            '"nvvm.wgmma.wait.group.sync.aligned"() <{group = 1 : i64}>',
            '"nvvm.wgmma.wait.group.sync.aligned"() <{group = 2 : i64}>'),
        # A stage never released: the producer waits forever.
        "no release in the ring": stext.replace(release.group(0), "", 1),
        # The consumers' first use of each stage passes before its copies.
        "consumer wait on the wrong phase": stext.replace(
            consumer_wait.group(0), consumer_wait.group(0).replace(
                consumer_wait.group(2), one, 1)),
        # The tile's first wgmma adds to the undefined accumulators.
        "first wgmma with scale-d 1": stext.replace(
            "scaleD = #nvvm.wgmma_scale_out<zero>",
            "scaleD = #nvvm.wgmma_scale_out<one>"),
        # A consumer barrier as the whole CTA's (bar.sync 0): the
        # producer warpgroup never reaches it.
        "consumer barrier of the whole CTA": re.sub(
            r'"nvvm.barrier"\([^\n]*-> \(\)',
            '"gpu.barrier"() : () -> ()', stext, count=1),
    }
    bad += run_mutations(error, stext, smut)

    # wgmma-ws's default stages of 64 tokens (2 blocks here, the second
    # half past the 96 tokens): 4 k16 wgmmas a stage, each 2048 bytes on
    # in both operands, whose MN atoms are 8 KiB apart (the descriptors'
    # LBO).
    ltext = lower_step("bf16", "wgmma-ws")
    check_clean("wgmma-ws 64-token", ltext, gpusim.bf16_round)

    def fields(atom_bytes):
        return '<{value = %d : i64}>' % (
            ((atom_bytes >> 4) << 16) | ((1024 >> 4) << 32) | (1 << 62))
    # The k-th wgmma's descriptors: the stage's, k 2048 bytes (128 in the
    # start address field's 16-byte units) on.
    k_steps = ['<{value = %d : i64}>' % (128 * k) for k in (1, 2, 3)]
    if any(ltext.count(k) != 1 for k in k_steps):
        sys.exit("FAIL: expected one constant a k16 step")
    lmut = {
        # Every wgmma of a stage reads its first 16 tokens.
        "the k16 wgmmas at the stage's start": functools.reduce(
            lambda t, k: t.replace(k, '<{value = 0 : i64}>'), k_steps, ltext),
        # The descriptors' LBO of a 16-token stage: B's second MN atom is
        # read from inside the first.
        "LBO of a 16-token stage": ltext.replace(fields(8192),
                                                 fields(2048)),
        "expect_tx of a 16-token stage": ltext.replace(
            '<{value = 32768 : i32}>', '<{value = 8192 : i32}>'),
    }
    bad += run_mutations(error, ltext, lmut)

    def consumer_workers_case(mainloop, M, N, seed, lines):
        """The kernel of a 96-token step of M x N with `mainloop` on
        16-token stages, and its error against the reference on a grid of
        N CTAs (default 1; reported errors as strings). Its clean kernel
        must match on 1, 2 and 3 CTAs and issue `lines` prefetch lines."""
        with tempfile.NamedTemporaryFile("w", suffix=".mlir",
                                         delete=False) as f:
            f.write(step_mlir("nora_step", 96, M, N))
        try:
            text = gpusim.lower(f.name, "nora_step", mainloop, nora_opt,
                                stage_tokens=16)
        finally:
            os.unlink(f.name)
        gen_case = np.random.default_rng(seed)
        case_inputs = [gen_case.standard_normal(s).astype(np.float32)
                       for s in ((96, M), (96, N), (M, N), (M, N))]
        g = ref.wgrad(gpusim.bf16_round(case_inputs[0]).astype(np.float64),
                      gpusim.bf16_round(case_inputs[1]).astype(np.float64))
        case_want = ref.nora_step(g, case_inputs[2].astype(np.float64),
                                  case_inputs[3].astype(np.float64), lr, wd)

        def case_error(t, grid=1, counters=None):
            try:
                w1, m1 = gpusim.simulate(t, "nora_step",
                                         case_inputs + [lr, wd],
                                         max_grid=grid, counters=counters)
            except gpusim.SimError as e:
                return "reported: %s" % e
            return max(float(np.abs(w1 - case_want[0]).max()),
                       float(np.abs(m1 - case_want[1]).max()))

        for grid in (1, 2, 3):
            counters = {}
            clean = case_error(text, grid, counters)
            print("%s clean on %d CTA(s): %s, %d prefetch lines"
                  % (mainloop, grid, clean, counters.get("prefetches", 0)))
            if not isinstance(clean, float) or clean > 1e-3 or \
                    counters.get("prefetches") != lines:
                sys.exit("FAIL: the clean %s kernel does not match the "
                         "reference" % mainloop)
        return text, case_error

    def one_named_barrier(text):
        """Every nvvm.barrier of the kernel on id 1: both consumer
        warpgroups on one named barrier."""
        head = re.search(r'"gpu.func"\(\)[^\n]*\n[^\n]*\n', text)
        one = ('%mut1 = "arith.constant"() <{value = 1 : i32}> : () -> i32\n')
        text = text[:head.end()] + one + text[head.end():]
        return re.sub(r'"nvvm.barrier"\((%[\w#]+), ', '"nvvm.barrier"(%mut1, ',
                      text)

    # Ping-pong (wgmma-pingpong): each consumer warpgroup computes a whole
    # tile and is a worker of its own. At 128 x 384 (3 column tiles) on one
    # CTA, warpgroup 0 takes tiles 0 and 2 and warpgroup 1 tile 1, in two
    # phases (2 workers < 3 column tiles); on 2 CTAs in one phase (4
    # workers), with 2 CTAs fewer than the row block's column tiles.
    # The producer prefetches each tile's 2 x 128 rows of W and M (4 lines
    # of 128 bytes each) once: 3 x 1024 lines.
    ptext, pp_error = consumer_workers_case(
        "wgmma-pingpong", 128, 384, 13, 3 * 1024)
    consumer_split = re.search(
        r'(%[\w#]+) = "arith.muli"\((%[\w#]+), (%[\w#]+)\)[^\n]*\n'
        r'([^\n]*\n)?[^\n]*"arith.addi"\((%[\w#]+), \1\)', ptext)
    # The empty barriers' count (4: one warpgroup's warps), after the full
    # one's (1) at the first stage.
    inits = re.findall(r'[^\n]*"nvvm.mbarrier.init"\((%[\w#]+), (%[\w#]+)\)'
                       r'[^\n]*\n', ptext)
    four = re.search(r'(%[\w#]+) = "arith.constant"\(\) <\{value = 4 : i32\}>'
                     r'[^\n]*\n', ptext)
    empty = next(line for line in re.finditer(
        r'[^\n]*"nvvm.mbarrier.init"\((%[\w#]+), (%[\w#]+)\)[^\n]*\n', ptext)
        if line.group(2) == four.group(1))
    pp_consumer = ptext.index('"nvvm.setmaxregister"() <{action = '
                              '#nvvm<action increase>')
    turn_wait = next(w for w in re.finditer(
        r'[^\n]*"nvvm.mbarrier.try_wait.parity"[^\n]*\n', ptext)
        if w.start() > pp_consumer)
    pmut = {
        # Both warpgroups count as one worker: they take the same tiles.
        "both consumers on the CTA's tiles": ptext.replace(
            consumer_split.group(0),
            consumer_split.group(0).replace(
                '"arith.addi"(%s, %s)' % (consumer_split.group(5),
                                          consumer_split.group(1)),
                '"arith.addi"(%s, %s)' % (consumer_split.group(5),
                                          consumer_split.group(5)))),
        # A stage's empty barrier waits for both warpgroups' warps, but one
        # warpgroup reads it.
        "empty barrier of 8 warps": ptext.replace(
            four.group(0), four.group(0) + four.group(0).replace(
                four.group(1), "%mut8").replace("value = 4", "value = 8"),
            1).replace(empty.group(0), empty.group(0).replace(
                four.group(1), "%mut8"), 1),
        # No turns: consumer 1 waits for its tile's first blocks while
        # consumer 0's uses of their stages are in flight, and the parity
        # wait passes on the phase before.
        "no turn wait": ptext.replace(turn_wait.group(0), "", 1),
        # Both consumers' epilogues on named barrier 1 of 128 threads: the
        # hardware would release a mix of both warpgroups' warps.
        "both consumers on named barrier 1": one_named_barrier(ptext),
        "grid barrier wrapping at 2 workers": wrap_at_twice(ptext),
    }
    bad += run_mutations(pp_error, ptext, pmut)

    # wgmma-tall: 256 x 128 CTA tiles, consumer w on row block 2 p + w of
    # the tile's row pair p, both reading every stage. At 256 x 384 (one
    # row pair, 3 column tiles): two phases on 1 and 2 CTAs, one on 3.
    # The producer prefetches each CTA tile's 2 x 256 rows of W and M (4
    # lines of 128 bytes each) once: 3 x 2048 lines.
    ttext_tall, tall_error = consumer_workers_case(
        "wgmma-tall", 256, 384, 17, 3 * 2048)
    # The defining op of each value, to find the consumer's uses: w is
    # %tid.x / 128 - 1, read by inline PTX where it is used.
    def value_defs(text):
        return dict(re.findall(r'(%[\w#]+) = ("[\w.]+"\([^)]*\)[^\n]*)',
                               text))

    def consumer(defs, v):
        d = defs.get(v, "")
        m = re.match(r'"arith.subi"\((%[\w#]+), (%[\w#]+)\)', d)
        if not m:
            return False
        q = re.match(r'"arith.divui"\((%[\w#]+), ', defs.get(m.group(1), ""))
        return bool(q) and "%tid.x" in defs.get(
            re.match(r'"arith.index_castui"\((%[\w#]+)\)',
                     defs.get(q.group(1), "")).group(1), "") \
            if q and re.match(r'"arith.index_castui"',
                              defs.get(q.group(1), "")) else False

    def times(defs, v, k):
        """v = a * k (k an index constant): the match, or None."""
        m = re.match(r'"arith.muli"\((%[\w#]+), (%[\w#]+)\)', defs.get(v, ""))
        return m if m and "value = %d : index" % k in defs.get(
            m.group(2), "") else None

    def pair_index(text):
        """The addi line of 2 p + w, the consumer's tile of its pair p (a
        row block with wgmma-tall, a column tile with wgmma-wide)."""
        defs = value_defs(text)
        return next(line for line in re.finditer(
            r'[^\n]*(%[\w#]+) = "arith.addi"\((%[\w#]+), (%[\w#]+)\)'
            r'[^\n]*\n', text)
            if times(defs, line.group(2), 2) and
            consumer(defs, line.group(3)))

    zero = '%mut0 = "arith.constant"() <{value = 0 : index}> : () -> index\n'

    def own_tile_zero(text, line):
        """2 p + w (the addi `line`) as 2 p + 0: both consumers on the
        pair's first tile."""
        return text.replace(line.group(0), zero + line.group(0).replace(
            ", %s)" % line.group(3), ", %mut0)"), 1)

    def product_zero(text, vd):
        """The muli `vd` (value, definition) with 0 for its first factor."""
        v, d = vd
        factor = re.match(r'"arith.muli"\((%[\w#]+), ', d).group(1)
        return text.replace("%s = %s" % vd, zero + "%s = %s" % (
            v, d.replace("(%s, " % factor, "(%mut0, ", 1)), 1)

    def empty_of_one_consumer(text):
        """The empty mbarriers' count of 8 warps as 4: a stage released
        after one consumer's warps, refilled while the other reads it."""
        eight = re.search(r'(%[\w#]+) = "arith.constant"\(\) <\{value = 8 : '
                          r'i32\}>[^\n]*\n', text)
        return text.replace(eight.group(0), eight.group(0).replace(
            "value = 8", "value = 4"), 1)

    defs = value_defs(ttext_tall)
    # rb = 2 p + w: the row pair's block of this consumer.
    row_block = pair_index(ttext_tall)
    first_atom = None
    for v, d in defs.items():
        # The first dy atom of consumer w: 2 w.
        doubled = times(defs, v, 2)
        if first_atom is None and doubled and consumer(defs, doubled.group(1)):
            first_atom = (v, d)
    tmut = {
        # Both consumers compute their row pair's first row block.
        "both consumers on row block 2 p": own_tile_zero(ttext_tall,
                                                         row_block),
        # Both consumers read the stage's first 128 rows of dy.
        "both consumers on dy atoms 0 and 1": product_zero(ttext_tall,
                                                           first_atom),
        "both consumers on named barrier 1": one_named_barrier(ttext_tall),
        "empty barrier of 4 warps": empty_of_one_consumer(ttext_tall),
    }
    bad += run_mutations(tall_error, ttext_tall, tmut)

    # wgmma-wide: 128 x 256 CTA tiles, consumer w on column tile 2 q + w of
    # the tile's column pair q, its B at x atoms 2 w and 2 w + 1 of the
    # stage's 4. At 128 x 384 (3 column tiles: the second pair's consumer 1
    # has none): two phases on 1 CTA, one on 2 and 3. The producer
    # prefetches 128 W and M rows of 256 columns (8 lines each) for the
    # first pair, of 128 for the second: 2048 + 1024 lines.
    ttext_wide, wide_error = consumer_workers_case(
        "wgmma-wide", 128, 384, 19, 3 * 1024)
    wdefs = value_defs(ttext_wide)
    column_tile = pair_index(ttext_wide)
    # B's offset of consumer w: w times 2 atoms of 64 columns x 16 tokens.
    b_offset = next((v, d) for v, d in wdefs.items()
                    if times(wdefs, v, 2 * 2048) and
                    consumer(wdefs, times(wdefs, v, 2 * 2048).group(1)))
    # The odd pair's guard: ct < 3.
    three = re.search(r'(%[\w#]+) = "arith.constant"\(\) <\{value = 3 : '
                      r'index\}>[^\n]*\n', ttext_wide)
    guard = re.search(r'"arith.cmpi"\(%s, %s\)' % (
        re.escape(column_tile.group(1)), re.escape(three.group(1))),
        ttext_wide)
    wmut = {
        # Both consumers compute their pair's first column tile.
        "both consumers on column tile 2 q": own_tile_zero(ttext_wide,
                                                           column_tile),
        # Both consumers' wgmmas read x atoms 0 and 1 of the stage.
        "both consumers on x atoms 0 and 1": product_zero(ttext_wide,
                                                          b_offset),
        # The second pair's consumer 1 runs an epilogue on column tile 3,
        # past the matrix.
        "no guard on the odd pair's second tile": ttext_wide.replace(
            guard.group(0), guard.group(0).replace(
                three.group(1), "%mut4"), 1).replace(
            three.group(0), three.group(0) + three.group(0).replace(
                three.group(1), "%mut4").replace("value = 3", "value = 4"),
            1),
        "both consumers on named barrier 1": one_named_barrier(ttext_wide),
        "empty barrier of 4 warps": empty_of_one_consumer(ttext_wide),
    }
    bad += run_mutations(wide_error, ttext_wide, wmut)

    # The L2 prefetch of W and M 2048 tokens before a tile's epilogue: with
    # 2080 tokens it is in the mainloop's loop (at token 32, or 64 with
    # wgmma-ws's 64-token stages); each mainloop's kernel matches the
    # reference and issues each of the tiles' lines once (2 x 128 rows x 4
    # lines a 128 x 128 tile, 2 x 64 x 2 a 64 x 64 one, 1024 either way).
    with tempfile.NamedTemporaryFile("w", suffix=".mlir", delete=False) as f:
        f.write(step_mlir("nora_step", 2080, 128, 96))
    gen_long = np.random.default_rng(11)
    long_inputs = [gen_long.standard_normal(s).astype(np.float32)
                   for s in ((2080, 128), (2080, 96), (128, 96), (128, 96))]
    try:
        for mainloop in ("mma-sync", "simt", "wgmma", "wgmma-ws"):
            ptext = gpusim.lower(f.name, "nora_step", mainloop, nora_opt)
            # bf16 dy and x (simt extends them exactly).
            g = ref.wgrad(gpusim.bf16_round(long_inputs[0]).astype(np.float64),
                          gpusim.bf16_round(long_inputs[1]).astype(np.float64))
            ref_w, ref_m = ref.nora_step(
                g, long_inputs[2].astype(np.float64),
                long_inputs[3].astype(np.float64), lr, wd)
            counters = {}
            w1, m1 = gpusim.simulate(ptext, "nora_step",
                                     long_inputs + [lr, wd],
                                     counters=counters)
            err = max(float(np.abs(w1 - ref_w).max()),
                      float(np.abs(m1 - ref_m).max()))
            print("prefetch in the loop, %s: %d lines, error %.3g"
                  % (mainloop, counters["prefetches"], err))
            if counters["prefetches"] != 1024 or err > 1e-3:
                bad += 1
    finally:
        os.unlink(f.name)

    # The cluster row exchange (row-exchange=cluster): 2 row blocks of 3
    # column tiles, clusters of 3 CTAs; on one cluster (3 CTAs) each CTA
    # has two tiles, and its slot buffers alternate.
    bad += cluster_mutations(nora_opt, gen)

    # The tf32 kernel (allow-tf32) on f32 inputs: its A fragment with
    # registers a1 and a2 swapped (rows g + 8 and columns t + 4 exchanged).
    ttext = lower_step("f32", "auto", allow_tf32=True)
    check_clean("tf32", ttext, ref.tf32_round)
    swapped = re.sub(r'"nvvm.mma.sync"\((%[\w#]+), (%[\w#]+), (%[\w#]+), ',
                     r'"nvvm.mma.sync"(\1, \3, \2, ', ttext)
    bad += run_mutations(error, ttext, {"tf32 A fragment a1/a2 swapped":
                                        swapped})
    sys.exit(1 if bad else 0)


def cluster_case(nora_opt, gen, mainloop, tokens, rows, cols):
    """The Nora step of `tokens` x `rows` x `cols` lowered with `mainloop`
    and the cluster row exchange, and its error against the reference on
    a grid of at most `grid` CTAs (reported errors as strings)."""
    import tempfile
    from gpu_steps import step_mlir
    with tempfile.NamedTemporaryFile("w", suffix=".mlir", delete=False) as f:
        f.write(step_mlir("nora_step", tokens, rows, cols))
    try:
        text = gpusim.lower(f.name, "nora_step", mainloop, nora_opt,
                            row_exchange="cluster")
    finally:
        os.unlink(f.name)
    dy = gen.standard_normal((tokens, rows)).astype(np.float32)
    x = gen.standard_normal((tokens, cols)).astype(np.float32)
    w = gen.standard_normal((rows, cols)).astype(np.float32)
    m = gen.standard_normal((rows, cols)).astype(np.float32)
    lr, wd = 0.1, 0.01
    g = ref.wgrad(gpusim.bf16_round(dy).astype(np.float64),
                  gpusim.bf16_round(x).astype(np.float64))
    want = ref.nora_step(g, w.astype(np.float64), m.astype(np.float64), lr,
                         wd)

    def error(t, grid=None):
        try:
            w1, m1 = gpusim.simulate(t, "nora_step", [dy, x, w, m, lr, wd],
                                     max_grid=grid)
        except gpusim.SimError as e:
            return "reported: %s" % e
        return max(float(np.abs(w1 - want[0]).max()),
                   float(np.abs(m1 - want[1]).max()))
    return text, error


def cluster_mutations(nora_opt, gen):
    """The mma-sync kernel with the cluster row exchange, and four
    mutations: no cluster wait before the slots are read, one slot buffer
    for every tile, no cluster barrier before a CTA exits, and every slot
    read from cluster rank 0 (a wrong W' by lr times the update's error,
    5e-3 here: the clean kernel is within 4e-7 of the reference, and the
    mutations are held to 1e-4). Then the wgmma-wide kernel with it, whose
    producer warpgroup arrives for each tile apart from its consumers: a
    producer that does not arrive in its tiles, or arrives without the
    wait of the tile before, both consumers' slots in one, and every slot
    read from consumer 0's."""
    text, error = cluster_case(nora_opt, gen, "mma-sync", 16, 256, 384)
    bad = 0
    for grid in (None, 3):
        clean = error(text, grid)
        print("cluster clean (grid %s): %s" % (grid or 6, clean))
        if not isinstance(clean, float) or clean > 1e-3:
            bad += 1
    wait = '"nvvm.cluster.wait"() <{aligned}> : () -> ()\n'
    barrier = '"nvvm.cluster.arrive"() <{aligned}> : () -> ()\n'
    last = text.rindex(barrier)
    no_final = text[:last] + re.sub(r'^\s*' + re.escape(wait), '',
                                    text[last + len(barrier):], count=1,
                                    flags=re.M)
    no_final = re.sub(r'\n\s*\n', '\n', no_final)
    bad += run_mutations(error, text, {
        "no cluster wait before the slots are read":
            text.replace(wait, "", 1),
        "every slot read from cluster rank 0": mapa_rank_zero(text),
        "no cluster barrier before a CTA exits": no_final,
    }, tolerance=1e-4)
    bad += run_mutations(functools.partial(error, grid=3), text, {
        "one slot buffer for every tile": one_slot_buffer(text),
    }, tolerance=1e-4)

    # wgmma-wide on 256 x 512: 2 row blocks of 2 CTA tiles, a cluster of 2
    # CTAs that runs both row blocks on 2 CTAs (the producer's lagged wait
    # comes at its second tile).
    wtext, werror = cluster_case(nora_opt, gen, "wgmma-wide", 96, 256, 512)
    for grid in (None, 2):
        clean = werror(wtext, grid)
        print("wgmma-wide cluster clean (grid %s): %s" % (grid or 4, clean))
        if not isinstance(clean, float) or clean > 1e-3:
            bad += 1
    # The producer's region comes first: its in-loop arrival and its
    # lagged wait are the kernel's first.
    store = re.search(r'"memref.store"\(%[\w#]+, %[\w#]+, %[\w#]+, '
                      r'(%[\w#]+), %[\w#]+, %[\w#]+\) <\{nontemporal = '
                      r'false\}> : \(f64, memref<2x2x3x128xf64', wtext)
    kernel = wtext.index('"gpu.func"')
    zero = re.search(r'(%[\w#]+) = "arith.constant"\(\) <\{value = 0 : '
                     r'index\}>', wtext[kernel:]).group(1)
    mapa = wtext.index('"nvvm.mapa"')
    worker = list(re.finditer(r'(%[\w#]+) = "arith.remui"\((%[\w#]+), '
                              r'%[\w#]+\)', wtext[:mapa]))[-1]
    bad += run_mutations(functools.partial(werror, grid=2), wtext, {
        "producer without its tiles' arrivals": wtext.replace(barrier, "", 1),
        "producer arrival without the wait before": wtext.replace(wait, "",
                                                                  1),
        "both consumers' slots in consumer 0's": wtext.replace(
            store.group(0), store.group(0).replace(
                ", %s, " % store.group(1), ", %s, " % zero, 1), 1),
        "every slot read from consumer 0's": wtext.replace(
            worker.group(0), '%s = "arith.subi"(%s, %s) <{overflowFlags = '
            '#arith.overflow<none>}>' % (worker.group(1), worker.group(2),
                                         worker.group(2)), 1),
    }, tolerance=1e-4)
    return bad


def mapa_rank_zero(text):
    """nvvm.mapa to rank 0 (an index constant 0 cast to i32) instead of
    the column tile's rank."""
    rank = re.search(r'"nvvm.mapa"\((%[\w#]+), (%[\w#]+)\)', text).group(2)
    kernel = text.index('"gpu.func"')
    zero = re.search(r'(%[\w#]+) = "arith.constant"\(\) <\{value = 0 : '
                     r'index\}>', text[kernel:]).group(1)
    return re.sub(re.escape(rank) + r' = "arith.index_cast"\((%[\w#]+)\)',
                  rank + ' = "arith.index_cast"(' + zero + ')', text)


def one_slot_buffer(text):
    """The slot buffer of the row threads' stores (the tile's (rb /
    clusters) mod 2) always 0."""
    store = re.search(r'"memref.store"\(%[\w#]+, %[\w#]+, (%[\w#]+), '
                      r'%[\w#]+, %[\w#]+, %[\w#]+\) <\{nontemporal = '
                      r'false\}> : \(f64, memref<2x\d+x\d+x128xf64', text)
    buffer = re.escape(store.group(1))
    return re.sub(buffer + r' = "arith.remui"\((%[\w#]+), %[\w#]+\)',
                  store.group(1) + r' = "arith.subi"(\1, \1) <{overflowFlags = '
                  r'#arith.overflow<none>}>', text, count=1)


def no_departures(text):
    """The counters' departures (the atom.inc after each wait's acquire
    fence) removed: the arrivals stay on the counters after the call."""
    return re.sub(r'("llvm.fence"\(\) <\{ordering = 4 : i64[^\n]*\n)'
                  r'\s*%[\w#]+ = "llvm.atomicrmw"[^\n]*bin_op = 15[^\n]*\n',
                  r'\1', text)


def wrap_at_twice(text):
    """The grid barrier's atom.inc bound 2 workers instead of 2 workers - 1:
    its last departure leaves 2 workers, not 0."""
    shl = {m.group(1) for m in re.finditer(
        r'(%[\w#]+) = "arith.shli"\([^\n]*\(i32, i32\) -> i32', text)}
    for m in re.finditer(r'(%[\w#]+) = "arith.subi"\((%[\w#]+), %[\w#]+\)'
                         r'[^\n]*\(i32, i32\) -> i32', text):
        if m.group(2) in shl:
            return re.sub(r'"llvm.atomicrmw"\((%[\w#]+), ' +
                          re.escape(m.group(1)) + r'\)',
                          r'"llvm.atomicrmw"(\1, ' + m.group(2) + ')', text)
    return text


def run_mutations(error, text, mutations, tolerance=1e-2):
    bad = 0
    for name, mutated in mutations.items():
        if mutated == text:
            sys.exit("FAIL: mutation '%s' did not apply" % name)
        e = error(mutated)
        # NaN counts: a result nobody computed.
        caught = not isinstance(e, float) or not e <= tolerance
        print("%s: %s: %s" % ("caught" if caught else "MISSED", name, e))
        bad += not caught
    return bad


if __name__ == "__main__":
    main()
