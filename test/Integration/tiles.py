# Shapes at the tile edges of the GPU kernel's two mainloops: the tensor-core
# one (bf16/f16, 128 x 128 tiles, 16-token stages in a 4-stage ring) and the
# exact-f32 one (64 x 64). Partial row blocks and column tiles, a token
# count that is no multiple of 16, one token, exact cover (no range
# predicates), more column tiles than a small grid has CTAs (the two-phase
# path under gpu-run.test's --max-ctas), and a ring that wraps around many
# times. On the CPU they check the fused lowering at the same shapes.
#
# RUN: %python %s %t

import harness
from harness import NORA_CHAIN, Case, chain_data, nora_attrs

WGRAD = ("wgrad",)


def cases():
    out = []

    def step(name, kind, M, N, T, act, seed, **data_args):
        d = chain_data(seed, M, N, T, **data_args)
        out.append(Case(name, ("wgrad", kind), ["w1", "m1"], d, act=act))

    # 3 x 2 tiles of 128, the last ones partial; 40 tokens = 2.5 stages.
    step("nora_bf16_264x200_T40", "nora_step", 264, 200, 40, "bf16", 401)
    # 2 x 2 tiles exactly: no range predicates in the epilogue.
    step("rmnp_bf16_256x256_T48", "rmnp_step", 256, 256, 48, "bf16", 402)
    # One 8 x 8 block, one token (the ring's prologue mostly empty).
    step("nora_bf16_8x8_T1", "nora_step", 8, 8, 1, "bf16", 403)
    # 13 token blocks: the 4-stage ring wraps around three times.
    step("rmnp_bf16_128x384_T200", "rmnp_step", 128, 384, 200, "bf16", 404)
    # 2 x 8 whole tiles of 128 (mainloop=wgmma-pingpong takes whole tiles
    # only): with ping-pong each CTA's two consumer warpgroups are workers,
    # so on 4 to 7 CTAs a row block's 8 column tiles are in flight at once
    # (one phase) though there are fewer CTAs than column tiles; on 1 to 3,
    # two phases.
    step("nora_bf16_256x1024_T80", "nora_step", 256, 1024, 80, "bf16", 407)
    # The exact-f32 mainloop: 3 x 2 tiles of 64, partial.
    step("nora_f32_130x70_T17", "nora_step", 130, 70, 17, "f32", 405)
    # An odd column count (3 column tiles of 64): in two phases on 1 and 2
    # CTAs, whose streaming pass takes a column at a time (4 and 2 where
    # the column count allows).
    step("nora_f32_70x131_T9", "nora_step", 70, 131, 9, "f32", 408)
    # 131 column tiles of 128 in one row block: on a small grid the
    # streaming pass sums a row's 131 slots in two chunks with the wgmma
    # mainloops (their partials' buffer holds 128 slots of one statistic).
    step("rmnp_bf16_8x16648_T16", "rmnp_step", 8, 16648, 16, "bf16", 409)

    # 9 column tiles of 128 (17 of 64) in 2 row blocks, with an accumulator,
    # a gradient scale and Nesterov: on 3 CTAs the kernel runs in two phases.
    M, N, T = 136, 1032, 24
    d = chain_data(406, M, N, T, acc=True, lr=0.05, wd=0.01)
    attrs = nora_attrs(M, N)
    attrs["wgrad_scale"] = 0.5
    out.append(Case("nora_chain_f16_136x1032_acc", WGRAD + NORA_CHAIN,
                    ["w1", "m1"], d, act="f16", attrs=attrs))
    return out


if __name__ == "__main__":
    harness.main(cases)
