#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""torch_train.py -- PyTorch training throughput on an r1lab preset, for side-by-side runs.

    /usr/bin/python3 tests/bench/torch_train.py --preset tiny --batch 16 --seq 128 \
        --steps 3 --threads 2

Builds the preset in float32 with the reference model of tests/ref/deepseek_ref.py (MoE
grouped per expert with index_select / index_add, as the engine does), random tokens, and
runs 2 warm-up steps then N timed steps of forward + backward (loss = main CE + 0.3 MTP CE)
+ torch.optim.AdamW; with --autocast the forward runs under torch.autocast("cpu",
dtype=torch.bfloat16), PyTorch's BF16 mixed precision (oneDNN kernels, AMX where present).  Prints exactly one line:
    torch tokens/s=<float> step_ms=<float>
with tokens/s = batch * seq * steps / timed seconds.  Without torch it prints
`torch: not available` and exits 0, so the bench target works on machines without it.
"""

import argparse
import os
import sys
import time

# As in torch_decode.py: Debian's torch keeps an OpenMP pool beside the OpenBLAS one; with
# both spin-waiting on 2 cores it runs several times slower than it can, which would flatter
# r1lab.  Set before torch loads libgomp; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
except ImportError:
    print("torch: not available")
    sys.exit(0)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import deepseek_ref as ref  # noqa: E402

PRESETS = {
    "tiny": dict(hidden_size=192, num_hidden_layers=6, first_k_dense_replace=1,
                 num_attention_heads=6, q_lora_rank=96, kv_lora_rank=64, qk_nope_head_dim=32,
                 qk_rope_head_dim=16, v_head_dim=32, n_routed_experts=16, n_shared_experts=1,
                 num_experts_per_tok=4, n_group=4, topk_group=2, moe_intermediate_size=64,
                 intermediate_size=512, vocab_size=128, num_nextn_predict_layers=1,
                 norm_topk_prob=True, routed_scaling_factor=2.5, rope_theta=10000.0,
                 rms_norm_eps=1e-6),
    "small": dict(hidden_size=512, num_hidden_layers=8, first_k_dense_replace=1,
                  num_attention_heads=8, q_lora_rank=256, kv_lora_rank=128,
                  qk_nope_head_dim=64, qk_rope_head_dim=32, v_head_dim=64,
                  n_routed_experts=32, n_shared_experts=1, num_experts_per_tok=4, n_group=4,
                  topk_group=2, moe_intermediate_size=128, intermediate_size=1408,
                  vocab_size=512, num_nextn_predict_layers=1, norm_topk_prob=True,
                  routed_scaling_factor=2.5, rope_theta=10000.0, rms_norm_eps=1e-6),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--autocast", action="store_true",
                    help="run the forward under torch.autocast('cpu', dtype=torch.bfloat16)")
    a = ap.parse_args()
    if a.batch < 1 or a.seq < 3 or a.steps < 1 or a.threads < 1:
        ap.error("batch, steps and threads must be >= 1 and seq >= 3")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    c = ref.make_config(max_position_embeddings=max(a.seq, 64), initializer_range=0.02,
                        **PRESETS[a.preset])
    p = ref.init_params(c, 0, dtype=torch.float32, embed_std=0.02, round_to_f32=False)
    names = ref.trainable_names(c)
    for n in names:
        p[n].requires_grad_(True)
    opt = torch.optim.AdamW([p[n] for n in names], lr=1e-3, weight_decay=0.1)
    g = torch.Generator().manual_seed(1)

    def step():
        tokens = torch.randint(0, c["vocab_size"], (a.batch, a.seq), generator=g)
        opt.zero_grad(set_to_none=True)
        if a.autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = ref.forward(c, p, tokens, mtp_lambda=0.3)["loss"]
        else:
            loss = ref.forward(c, p, tokens, mtp_lambda=0.3)["loss"]
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print("torch tokens/s=%.1f step_ms=%.2f" % (a.batch * a.seq * a.steps / dt,
                                               1000.0 * dt / a.steps))


if __name__ == "__main__":
    main()
