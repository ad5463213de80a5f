#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""check_grad.py -- checks deepseek_ref's autograd gradients against finite differences.

    /usr/bin/python3 tests/ref/check_grad.py

A one-off sanity check of the oracle itself (not part of `make check`): the loss of a very
small float64 model (MoE with group-limited routing, q_lora, MTP depth 2) goes through
torch.autograd.gradcheck over every trainable parameter at once; the three fixture configs
then go through gradcheck's fast mode (random directional derivatives).  Routing is a
piecewise-constant choice; the seeds are drawn so that no token is near a tie, so the
finite differences never cross a routing boundary.  Exit status 1 when a check fails.
"""

import os
import sys

import torch
from torch.autograd import gradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref as ref  # noqa: E402
import make_fixtures as mf  # noqa: E402


def loss_fn(c, p, tokens, names):
    def f(*ts):
        q = dict(p)
        q.update(zip(names, ts))
        return ref.forward(c, q, tokens)["loss"]
    return f


def run(label, c, seed, fast):
    p, tokens, used, margin = mf.draw(c, seed)
    names = ref.trainable_names(c)
    ins = tuple(p[n].clone().requires_grad_(True) for n in names)
    n = sum(t.numel() for t in ins)
    ok = gradcheck(loss_fn(c, p, tokens, names), ins, eps=1e-6, atol=1e-7, rtol=1e-5,
                   fast_mode=fast, raise_exception=False)
    print("%-13s %s %6d parameters (seed %d, margin %.3g): %s"
          % (label, "fast" if fast else "full", n, used, margin, "ok" if ok else "FAILED"))
    return ok


def main():
    torch.set_num_threads(1)
    micro = ref.make_config(vocab_size=11, hidden_size=8, intermediate_size=12,
                            moe_intermediate_size=4, num_hidden_layers=2, num_attention_heads=2,
                            q_lora_rank=4, kv_lora_rank=4, qk_nope_head_dim=2,
                            qk_rope_head_dim=4, v_head_dim=3, n_routed_experts=4,
                            n_group=2, topk_group=1, num_experts_per_tok=2,
                            num_nextn_predict_layers=2, max_position_embeddings=16)
    ok = run("micro", micro, 11, fast=False)
    for name, seed, over in mf.FIXTURES:
        ok = run(name, ref.make_config(**over), seed, fast=True) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
