# bf16 and f16 activations and output gradients for nora.wgrad, passed as
# f32 .npy files (nora-run rounds them to nearest even), as uint16 raw bits,
# and (f16) as float16 files. The reference computes on the rounded values;
# g may differ by 2e-3 of its row norm (SEMANTICS.md), an allowance the
# harness carries through the chain.
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t

import numpy as np

import harness
from harness import NORA_CHAIN, RMNP_CHAIN, Case, chain_data, nora_attrs, \
    randn, rmnp_attrs, rng

WGRAD = ("wgrad",)


def cases():
    out = []
    M, N, T = 96, 80, 64
    d = chain_data(301, M, N, T, lr=0.1, wd=0.1)
    # Values that are not bf16 already, with ties: x * 2^-k spreads the
    # exponents; a few exact halfway values check ties-to-even.
    gen = rng(302)
    d["x"] = d["x"] * np.exp2(gen.integers(-6, 6, size=d["x"].shape)) \
        .astype(np.float32)
    d["dy"][0, :8] = np.float32(1 + 2**-8)          # tie -> 1.0
    d["dy"][1, :8] = np.float32(1 + 3 * 2**-8)      # tie -> 1 + 2^-6

    for act in ("bf16", "f16"):
        files = ("f32", "bits") + (("f16",) if act == "f16" else ())
        for f in files:
            # The same values passed differently give the same bits.
            tag = "%s_%s" % (act, f)
            first = f == "f32"
            out.append(Case("wgrad_" + tag, WGRAD, ["g"], d, act=act,
                            act_file=f,
                            same_as=None if first else "wgrad_%s_f32" % act))
            out.append(Case("nora_chain_" + tag, WGRAD + NORA_CHAIN,
                            ["w1", "m1"], d, act=act, act_file=f,
                            attrs=nora_attrs(M, N),
                            same_as=(None if first
                                     else "nora_chain_%s_f32" % act)))
        out.append(Case("nora_chain_all_" + act, WGRAD + NORA_CHAIN,
                        ["g", "m1", "u", "v", "d", "w1"], d, act=act,
                        attrs=nora_attrs(M, N)))

    # acc and scale with bf16 inputs, raw bits.
    da = chain_data(303, M, N, T, acc=True, lr=0.05, wd=0.0)
    out.append(Case("wgrad_bf16_acc_scale", WGRAD, ["g"], da, act="bf16",
                    act_file="bits", attrs={"wgrad_scale": 0.25}))
    attrs = nora_attrs(M, N, nesterov=None)
    attrs["wgrad_scale"] = 3.0
    out.append(Case("nora_chain_bf16_acc_plain", WGRAD + NORA_CHAIN,
                    ["w1", "m1", "d"], da, act="bf16", attrs=attrs))

    # RMNP chain and the composite steps after a bf16 wgrad.
    out.append(Case("rmnp_chain_bf16", WGRAD + RMNP_CHAIN, ["w1", "m1"], d,
                    act="bf16", attrs=rmnp_attrs(M, N)))
    out.append(Case("nora_step_bf16", ("wgrad", "nora_step"), ["w1", "m1"],
                    d, act="bf16", act_file="bits"))
    out.append(Case("rmnp_step_f16", ("wgrad", "rmnp_step"), ["w1", "m1"],
                    d, act="f16"))

    # Odd sizes with bf16.
    gen = rng(304)
    do = {"dy": randn(gen, (37, 97)), "x": randn(gen, (37, 61)),
          "w": randn(gen, (97, 61)), "m": randn(gen, (97, 61)),
          "lr": 0.1, "wd": 0.1}
    out.append(Case("nora_chain_bf16_97x61", WGRAD + NORA_CHAIN,
                    ["w1", "m1"], do, act="bf16",
                    attrs=nora_attrs(97, 61)))
    return out


if __name__ == "__main__":
    harness.main(cases)
