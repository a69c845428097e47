#!/usr/bin/env python3
"""Trains the same small language model twice, with nora.optim.Nora (AdamW
for the embedding, the head and the vectors, as the official optimizer's
factory does) and with AdamW alone, and plots both loss curves to a PNG.

    python3 examples/train_nora_vs_adamw.py [--steps 300] [--out loss.png]

The data is a synthetic language: sequences from a fixed random bigram
table (each token has 4 likely successors), so the best achievable loss is
known (the table's entropy, drawn as a line). Runs on the CPU in about a
minute; the Nora updates go through nora's compiled step when the library
is built (nora.available()), else through the PyTorch backend.
Needs torch and matplotlib (scripts/setup-python.sh installs both).
"""

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import torch  # noqa: E402

import nora  # noqa: E402
from nora.optim import Nora, param_groups  # noqa: E402

VOCAB, SEQ, BATCH = 64, 32, 32


class TinyLM(torch.nn.Module):
    def __init__(self, d=64, layers=2):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, d)
        self.pos = torch.nn.Parameter(torch.randn(SEQ, d) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(
            d, 4, dim_feedforward=4 * d, dropout=0.0, batch_first=True,
            norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, layers,
                                                  enable_nested_tensor=False)
        self.head = torch.nn.Linear(d, VOCAB)
        self.register_buffer(
            "mask", torch.nn.Transformer.generate_square_subsequent_mask(SEQ))

    def forward(self, tokens):
        h = self.embed(tokens) + self.pos
        return self.head(self.blocks(h, mask=self.mask, is_causal=True))


def bigram_table(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.full((VOCAB, VOCAB), -4.0)
    for t in range(VOCAB):
        nxt = torch.randperm(VOCAB, generator=g)[:4]
        logits[t, nxt] = torch.tensor([2.0, 1.5, 1.0, 0.5])
    probs = logits.softmax(dim=1)
    entropy = -(probs * probs.log()).sum(1).mean().item()
    return probs, entropy


def batch(probs, g):
    tokens = torch.empty(BATCH, SEQ + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, VOCAB, (BATCH,), generator=g)
    for i in range(SEQ):
        tokens[:, i + 1] = torch.multinomial(probs[tokens[:, i]], 1,
                                             generator=g).squeeze(1)
    return tokens[:, :-1], tokens[:, 1:]


def train(make_optimizer, steps, probs, seed=1):
    torch.manual_seed(seed)
    model = TinyLM()
    opt = make_optimizer(model)
    g = torch.Generator().manual_seed(seed + 100)
    losses = []
    start = time.time()
    for step in range(steps):
        x, y = batch(probs, g)
        loss = torch.nn.functional.cross_entropy(
            model(x).reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, time.time() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--out", default="nora_vs_adamw.png")
    opts = p.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    probs, entropy = bigram_table()

    def nora_opt(model):
        return Nora(param_groups(model), lr=0.02, weight_decay=0.1,
                    adamw_lr=3e-3, adamw_weight_decay=0.0)

    def adamw_opt(model):
        return torch.optim.AdamW(model.parameters(), lr=3e-3,
                                 betas=(0.9, 0.95), weight_decay=0.1)

    backend = "compiled nora step" if nora.available() else "PyTorch backend"
    nora_losses, t_nora = train(nora_opt, opts.steps, probs)
    adamw_losses, t_adamw = train(adamw_opt, opts.steps, probs)

    def tail(losses):
        k = max(1, len(losses) // 10)
        return sum(losses[-k:]) / k
    print("steps %d, optimal loss %.3f" % (opts.steps, entropy))
    print("Nora  (%s): final loss %.3f (mean of the last 10%%), %.1f s"
          % (backend, tail(nora_losses), t_nora))
    print("AdamW:        final loss %.3f, %.1f s"
          % (tail(adamw_losses), t_adamw))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(nora_losses, label="nora.optim.Nora (+ AdamW for embedding, "
            "head, vectors)", lw=1.2)
    ax.plot(adamw_losses, label="AdamW", lw=1.2)
    ax.axhline(entropy, color="gray", ls="--", lw=1,
               label="optimal (bigram entropy %.2f)" % entropy)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_ylim(entropy - 0.2, math.log(VOCAB) + 0.3)
    ax.set_title("Tiny causal transformer on a synthetic bigram language")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(opts.out, dpi=120)
    print("wrote", opts.out)


if __name__ == "__main__":
    main()
