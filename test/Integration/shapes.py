# Shapes that are not multiples of any tile: odd and prime sizes, one row,
# one column, tall 257x3 and wide 3x257, 1x1, T = 1 and odd T; full chains
# from wgrad (f32 and bf16), the RMNP chain and the composite steps.
#
# RUN: %python %s %t --no-fuse
# RUN: %python %s %t

import harness
from harness import NORA_CHAIN, RMNP_CHAIN, Case, chain_data, nora_attrs, \
    rmnp_attrs

WGRAD = ("wgrad",)

# (name, M, N, T)
SHAPES = [
    ("97x61", 97, 61, 37),
    ("1row", 1, 64, 5),
    ("1col", 64, 1, 5),
    ("tall_257x3", 257, 3, 13),
    ("wide_3x257", 3, 257, 13),
    ("1x1", 1, 1, 1),
    ("t1_31x17", 31, 17, 1),
    ("prime_127x131", 127, 131, 63),
    ("odd_300x7", 300, 7, 3),
]


def cases():
    out = []
    for i, (tag, M, N, T) in enumerate(SHAPES):
        d = chain_data(400 + i, M, N, T, acc=(i % 2 == 0), lr=0.1, wd=0.1)
        out.append(Case("nora_chain_" + tag, WGRAD + NORA_CHAIN,
                        ["w1", "m1"], d, attrs=nora_attrs(M, N)))
        out.append(Case("nora_chain_all_" + tag, WGRAD + NORA_CHAIN,
                        ["g", "m1", "u", "v", "d", "w1"], d,
                        attrs=nora_attrs(M, N)))
        out.append(Case("rmnp_chain_" + tag, WGRAD + RMNP_CHAIN,
                        ["d", "w1", "m1"], d, attrs=rmnp_attrs(M, N)))
        out.append(Case("nora_step_" + tag, ("wgrad", "nora_step"),
                        ["w1", "m1"], d))
        if i % 2:
            out.append(Case("rmnp_step_bf16_" + tag, ("wgrad", "rmnp_step"),
                            ["w1", "m1"], d, act="bf16", act_file="bits"))
        else:
            out.append(Case("nora_chain_bf16_" + tag, WGRAD + NORA_CHAIN,
                            ["w1", "m1"], d, act="bf16",
                            attrs=nora_attrs(M, N, nesterov=None)))
    return out


if __name__ == "__main__":
    harness.main(cases)
