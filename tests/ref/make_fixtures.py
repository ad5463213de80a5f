#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""make_fixtures.py -- regenerates the reference vectors in tests/data/ from deepseek_ref.py.

Run from the top of the source tree, with Debian's python (it has torch; no other package
is needed):

    /usr/bin/python3 tests/ref/make_fixtures.py          # rewrites tests/data/<fixture>/
    /usr/bin/python3 tests/ref/make_fixtures.py --check  # also re-reads and compares them

Everything is seeded and computed single-threaded in float64 (stored as F32), so running it
twice gives byte-identical files.  Each fixture folder holds:
  config.json         HF deepseek_v3 config
  model.safetensors   F32 weights, HF names, with the MTP copies of embedding and head
  expected.safetensors
    tokens I32 [B,T]; logits F32 [B,T,V]; mtp_logits [B,T-1,V] (depth 1) and
    mtp_logits.k [B,T-k,V] for k >= 2; loss, loss_main, loss_mtp F32 [1]
    (loss = loss_main + loss_mtp, loss_mtp = 0.3/D * sum_k CE_k);
    routing.<l>.experts I32 [B,len,K] (ascending) and routing.<l>.weights F32 [B,len,K]
    for each MoE layer l (MTP layers included);
    grad.<name> F32 for every trainable parameter (the MTP copies' gradients are part of
    model.embed_tokens.weight / lm_head.weight; the router biases have none).

Then it runs grpo_ref.py, whose tests/data/grpo/ (the GRPO objective) uses tiny_moe's
weights, microscope_ref.py, whose tests/data/microscope/ (logit lens, attention weights,
activation patching) does too, and forced_ref.py (tests/data/forced_routing/: routing
replay's forced experts); see those files for their formats.

Weights are drawn so that routing is not near a tie: a seed is accepted only when every
token's selection (groups and experts) wins by at least MIN_MARGIN in biased score, so a
float32 engine must reproduce the same experts.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref as ref  # noqa: E402
import grpo_ref  # noqa: E402
import forced_ref  # noqa: E402
import microscope_ref  # noqa: E402

B, T = 2, 7
MIN_MARGIN = 1e-3

FIXTURES = [
    ("tiny_moe", 101, {}),
    ("tiny_variant", 202, dict(q_lora_rank=None, norm_topk_prob=False, n_group=1, topk_group=1,
                               n_routed_experts=6, n_shared_experts=2, num_experts_per_tok=3,
                               routed_scaling_factor=1.5, num_nextn_predict_layers=2,
                               tie_word_embeddings=True, first_k_dense_replace=0)),
    ("tiny_dense", 303, dict(n_routed_experts=None, num_nextn_predict_layers=0)),
]


def draw(c, seed):
    """Parameters and tokens for a seed; tries seed, seed+1, ... until routing margins are
    comfortable.  Returns (params, tokens, seed used, smallest margin)."""
    for s in range(seed, seed + 100):
        p = ref.init_params(c, s)
        g = torch.Generator().manual_seed(s + 7919)
        tokens = torch.randint(0, c["vocab_size"], (B, T), generator=g)
        with torch.no_grad():
            out = ref.forward(c, p, tokens)
        margin = min([m for _, _, m in out["routing"].values()], default=float("inf"))
        if margin >= MIN_MARGIN:
            return p, tokens, s, margin
    raise SystemExit("make_fixtures: no seed in [%d, %d) routes with margin %g"
                     % (seed, seed + 100, MIN_MARGIN))


def expected_tensors(c, p, tokens):
    out, grads = ref.gradients(c, p, tokens)
    f32, i32 = "F32", "I32"
    ex = [("tokens", tokens, i32), ("logits", out["logits"], f32)]
    for k, lk in enumerate(out["mtp_logits"], start=1):
        ex.append(("mtp_logits" if k == 1 else "mtp_logits.%d" % k, lk, f32))
    for name in ("loss", "loss_main", "loss_mtp"):
        ex.append((name, out[name].reshape(1), f32))
    for l in sorted(out["routing"]):
        idx, w, _ = out["routing"][l]
        ex.append(("routing.%d.experts" % l, idx, i32))
        ex.append(("routing.%d.weights" % l, w, f32))
    for name in ref.trainable_names(c):
        ex.append(("grad." + name, grads[name], f32))
    return out, ex


def check_folder(folder, c, p, ex):
    """Reads the files back and compares them with what was meant to be written."""
    c2, p2 = ref.load_checkpoint(folder)
    assert c2 == c, folder
    for n in p:
        assert torch.equal(p2[n], p[n]), n
    got, _ = ref.read_safetensors(os.path.join(folder, "expected.safetensors"))
    assert list(got) == [n for n, _, _ in ex], folder
    for n, t, dt in ex:
        want = t.detach().to(torch.int32 if dt == "I32" else torch.float32)
        assert torch.equal(got[n], want), n


def main():
    check = "--check" in sys.argv[1:]
    torch.set_num_threads(1)
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name, seed, over in FIXTURES:
        c = ref.make_config(**over)
        p, tokens, used, margin = draw(c, seed)
        out, ex = expected_tensors(c, p, tokens)
        folder = os.path.join(top, "data", name)
        ref.save_checkpoint(folder, c, p)
        ref.write_safetensors(os.path.join(folder, "expected.safetensors"), ex)
        # the same tokens as text, for the command-line test (r1lab forward --tokens)
        with open(os.path.join(folder, "tokens.txt"), "w") as f:
            f.write(";".join(" ".join(str(int(v)) for v in row) for row in tokens.tolist()) + "\n")
        if check:
            check_folder(folder, c, p, ex)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print("%-13s seed %d  margin %.4g  loss %.9f  main %.9f  mtp %.9f  %d bytes"
              % (name, used, margin, out["loss"].item(), out["loss_main"].item(),
                 out["loss_mtp"].item(), size))
    # tests/data/grpo/, microscope/ and forced_routing/ run on tiny_moe's weights: made again whenever they are
    grpo_ref.make_fixture(top, check)
    microscope_ref.make_fixture(top, check)
    forced_ref.make_fixture(top, check)


if __name__ == "__main__":
    main()
