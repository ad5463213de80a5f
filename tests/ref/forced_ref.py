#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""forced_ref.py -- routing replay's forced routing (r1_model_force_routing) in PyTorch, and
tests/data/forced_routing/.

Run from the top of the source tree with Debian's python (make_fixtures.py also runs it,
after it has rewritten tests/data/tiny_moe/, whose model this fixture uses):

    /usr/bin/python3 tests/ref/forced_ref.py          # rewrites tests/data/forced_routing/
    /usr/bin/python3 tests/ref/forced_ref.py --check  # also re-reads and compares it

What forced routing means (r1_model.h, DESIGN.md's router, not forward.c): every MoE layer
of the main model uses the given K experts of each token instead of its own top-K; the gate
weights are still the router's sigmoid scores at those experts, normalised over the K when
norm_topk_prob and times routed_scaling_factor, so the router's weights get their gradient
through the gates as in an ordinary forward.  The bias plays no part once the experts are
given.

tests/data/forced_routing/expected.safetensors, on tiny_moe in float64 (B = 2, T = 7):

  tokens            I32 [B*T]       two rows of token ids
  forced.<l>        I32 [B*T, K]    for each MoE layer l of the main model: the experts
                                    forced on each token, ascending; drawn at random and
                                    different from the router's own choice at most tokens
  natural.loss_main F32 [1]         the main loss with the router's own choice
  loss_main         F32 [1]         mean next-token cross-entropy over the B*(T-1) targets,
                                    with the forced experts
  logits            F32 [B, T, V]   with the forced experts
  grad.<param>      F32             d loss_main / d param for every trainable parameter of the
                                    main model (the MTP module takes no part)
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref as ref  # noqa: E402

MODEL = "tiny_moe"
B, T = 2, 7
SEED = 777

FORCED = {}   # router prefix -> idx [N, K] (int64), consulted by forced_route


def forced_route(c, p, prefix, x):
    """deepseek_ref.route with the experts taken from FORCED when the prefix is there."""
    if prefix not in FORCED:
        return natural_route(c, p, prefix, x)
    idx = FORCED[prefix]
    s = torch.sigmoid(ref.linear(x, p[prefix + "gate.weight"]))
    w = s.gather(1, idx)
    if c["norm_topk_prob"]:
        w = w / w.sum(-1, keepdim=True)
    return idx, w * c["routed_scaling_factor"], float("inf")


natural_route = ref.route


def draw_forced(c, natural, g):
    """Random ascending expert sets, K of E, per token and MoE layer."""
    E, K = c["n_routed_experts"], c["num_experts_per_tok"]
    out, differ, total = {}, 0, 0
    for l, (idx, _, _) in natural.items():
        if l >= c["num_hidden_layers"]:
            continue
        nat = idx.reshape(-1, K)
        rows = [torch.randperm(E, generator=g)[:K].sort().values for _ in range(nat.shape[0])]
        f = torch.stack(rows)
        differ += (f != nat).any(-1).sum().item()
        total += nat.shape[0]
        out[l] = f
    return out, differ, total


def make_fixture(top, check=False):
    """Writes top/data/forced_routing/ (top = tests/) and prints one line."""
    torch.set_num_threads(1)
    c, p0 = ref.load_checkpoint(os.path.join(top, "data", MODEL))
    g = torch.Generator().manual_seed(SEED)
    V = c["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=g)
    with torch.no_grad():
        nat = ref.forward(c, p0, tokens, mtp_lambda=0.0)
    forced, differ, total = draw_forced(c, nat["routing"], g)
    main_names = ref.main_names(c)
    q = dict(p0)
    for n in main_names:
        q[n] = p0[n].detach().clone().requires_grad_(True)
    FORCED.clear()
    for l, f in forced.items():
        FORCED["model.layers.%d.mlp." % l] = f
    ref.route = forced_route
    try:
        out = ref.forward(c, q, tokens, mtp_lambda=0.0)
    finally:
        ref.route = natural_route
        FORCED.clear()
    for l, f in forced.items():   # the forward used them
        assert torch.equal(out["routing"][l][0].reshape(-1, f.shape[1]), f), l
    grads = torch.autograd.grad(out["loss_main"], [q[n] for n in main_names])
    router = [n for n, gr in zip(main_names, grads) if n.endswith("mlp.gate.weight")
              and gr.abs().max() > 0]
    if not router:
        raise SystemExit("forced_ref: no router weight has a gradient")

    f32, i32 = "F32", "I32"
    ex = [("tokens", tokens.reshape(-1), i32)]
    ex += [("forced.%d" % l, forced[l], i32) for l in sorted(forced)]
    ex += [("natural.loss_main", nat["loss_main"].reshape(1), f32),
           ("loss_main", out["loss_main"].detach().reshape(1), f32),
           ("logits", out["logits"].detach(), f32)]
    ex += [("grad." + n, gr, f32) for n, gr in zip(main_names, grads)]
    folder = os.path.join(top, "data", "forced_routing")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "expected.safetensors")
    ref.write_safetensors(path, ex, {"model": "../" + MODEL})
    if check:
        ref.check_written(path, ex)
    print("%-13s seed %d  %d of %d tokens forced off their own experts  loss %.6f (own %.6f)  "
          "%d routers with gradient  %d bytes"
          % ("forced", SEED, differ, total, out["loss_main"].item(), nat["loss_main"].item(),
             len(router), os.path.getsize(path)))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    make_fixture(os.path.dirname(here), check="--check" in sys.argv[1:])
