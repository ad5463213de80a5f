#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""torch_decode.py -- PyTorch decode throughput (KV cache, greedy) on an r1lab preset.

    /usr/bin/python3 tests/bench/torch_decode.py --preset tiny --batch 16 --prompt 16 \
        --new 128 --threads 2 [--dtype float32|bfloat16]

The model is the reference of tests/ref/deepseek_ref.py (presets from torch_train.py),
float32, random weights with a fixed seed (linear layers and embedding ~ N(0, 0.02), like
initializer_range), everything under torch.inference_mode().  With --dtype bfloat16 the
weights are converted to bf16 and the arithmetic runs in bf16 as PyTorch does on the CPU;
like the Hugging Face code, RMSNorm, the router (its weight and bias stay float32) and the
attention softmax are computed in float32 and cast back.

The cache is the common Hugging Face-style one, NOT r1lab's MLA latent cache: every layer
keeps, per head, the full keys and values *after* kv_b_proj, i.e. plain multi-head K/V:
K [B, H, prompt+new, qk_nope_head_dim + qk_rope_head_dim] = [k_nope | k_pe (RoPE applied,
the one rope key of a token copied into every head)] and V [B, H, prompt+new, v_head_dim].
The buffers are allocated once for prompt+new positions and written in place at the
current position (a static cache, so no torch.cat per step); a step's queries attend over
positions 0..pos of them.  All rows of the batch share the same positions.

Decoding: the B random prompts (`--prompt` tokens each) are prefilled in one forward, then
`--new` steps feed one token per row (the argmax of the previous logits, greedy) and
attend over the cache.  The head is evaluated only at the last position.  MoE per step:
the B tokens are routed (sigmoid, bias for selection, group-limited top-k, normalised and
scaled weights -- the reference's rule, without its tie-margin bookkeeping) and the
experts run grouped per expert with index_select / index_add, as torch_train.py does.  The
MTP module is not used.

Before timing, a correctness check runs on the reference's small default config (6 tokens,
2 rows, float32): the cached path's logits -- prefilled with 1, 3 or 6 tokens, then fed the
remaining tokens one by one -- must equal deepseek_ref.forward's at every position (max abs
difference < 1e-4), otherwise the script aborts with a message (exit status 1).

OMP_WAIT_POLICY defaults to PASSIVE here (see the comment at the imports): otherwise
torch's OpenMP threads and OpenBLAS's threads spin against each other on a 2-core machine.

Timing: one warm-up run, then one timed run of prefill + `--new` decode steps.  Prints
exactly one line:
    torch decode tokens/s=<B*new/seconds> ms_per_step=<1000*seconds/new>
(seconds include the prefill, so tokens/s = B * 1000 / ms_per_step).  Without torch it
prints `torch: not available` and exits 0.
"""

import argparse
import os
import sys
import time

# Debian's torch runs its own ops on libgomp threads and its matmuls on the pthread OpenBLAS;
# with both pools spin-waiting on 2 cores, the small GEMMs of a decode step ran 3-7x slower
# at --threads 2 (tiny, batch 16: ~30-60 ms/step against ~9 with passive waiting or with 1
# thread), which would flatter r1lab.  Set before torch loads libgomp; an explicit setting
# in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch: not available")
    sys.exit(0)

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _here)
sys.path.insert(0, os.path.join(_here, "..", "ref"))
import deepseek_ref as ref  # noqa: E402
from torch_train import PRESETS  # noqa: E402

CHECK_TOL = 1e-4

# ------------------------------------------------------------------ blocks


def rmsnorm(x, w, eps):
    """RMSNorm; in float32 exactly the reference's, otherwise computed in float32 and cast
    back before the weight (the Hugging Face DeepseekV3RMSNorm)."""
    if x.dtype == torch.float32:
        return ref.rmsnorm(x, w, eps)
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


class KVCache:
    """Per-layer MHA-style cache: k[l] [B, H, Tmax, dn+dr], v[l] [B, H, Tmax, dv]."""

    def __init__(self, c, B, Tmax, dtype):
        H, dn, dr, dv = (c["num_attention_heads"], c["qk_nope_head_dim"],
                         c["qk_rope_head_dim"], c["v_head_dim"])
        L = c["num_hidden_layers"]
        self.k = [torch.empty(B, H, Tmax, dn + dr, dtype=dtype) for _ in range(L)]
        self.v = [torch.empty(B, H, Tmax, dv, dtype=dtype) for _ in range(L)]
        self.Tmax = Tmax


class Rope:
    """cos / sin tables for positions 0..Tmax-1, built once (same values as the
    reference's rope_tables)."""

    def __init__(self, c, Tmax, dtype):
        self.cos, self.sin = ref.rope_tables(Tmax, c["qk_rope_head_dim"], c["rope_theta"], dtype)


def attention_cached(c, p, l, x, cache, rope, pos0):
    """MLA attention of layer l for x [B, T, C] at positions pos0..pos0+T-1: computes the
    new tokens' per-head K/V, stores them in the cache, attends over positions 0..pos0+T-1
    (causal inside the new block).  Conventions as the reference: interleaved RoPE,
    [c_kv | k_pe], per head [k_nope | v] and [q_nope | q_pe], scale (dn+dr)^-0.5."""
    B, T, _ = x.shape
    H, dn, dr, dv = (c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"],
                     c["v_head_dim"])
    kvr, eps = c["kv_lora_rank"], c["rms_norm_eps"]
    a = "model.layers.%d.self_attn." % l
    end = pos0 + T
    if end > cache.Tmax:
        raise ValueError("attention_cached: position %d beyond the cache (%d)" % (end, cache.Tmax))
    if c["q_lora_rank"]:
        qa = rmsnorm(ref.linear(x, p[a + "q_a_proj.weight"]), p[a + "q_a_layernorm.weight"], eps)
        q = ref.linear(qa, p[a + "q_b_proj.weight"])
    else:
        q = ref.linear(x, p[a + "q_proj.weight"])
    q = q.view(B, T, H, dn + dr).transpose(1, 2)                  # [B, H, T, dn+dr]
    q_nope, q_pe = q.split([dn, dr], dim=-1)
    kva = ref.linear(x, p[a + "kv_a_proj_with_mqa.weight"])       # [B, T, kvr+dr]
    c_kv, k_pe = kva.split([kvr, dr], dim=-1)
    kv = ref.linear(rmsnorm(c_kv, p[a + "kv_a_layernorm.weight"], eps), p[a + "kv_b_proj.weight"])
    kv = kv.view(B, T, H, dn + dv).transpose(1, 2)                # [B, H, T, dn+dv]
    k_nope, v = kv.split([dn, dv], dim=-1)
    cos, sin = rope.cos[pos0:end], rope.sin[pos0:end]
    q_pe = ref.rope_interleaved(q_pe, cos, sin)
    k_pe = ref.rope_interleaved(k_pe, cos, sin)                   # [B, T, dr]
    K, V = cache.k[l], cache.v[l]
    K[:, :, pos0:end, :dn] = k_nope
    K[:, :, pos0:end, dn:] = k_pe[:, None]                        # one rope key for all heads
    V[:, :, pos0:end] = v
    query = torch.cat((q_nope, q_pe), dim=-1)
    scores = query.matmul(K[:, :, :end].transpose(-1, -2)) * (dn + dr) ** -0.5  # [B,H,T,end]
    if T > 1:
        future = torch.arange(end)[None, :] > (pos0 + torch.arange(T))[:, None]
        scores = scores.masked_fill(future, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1).to(x.dtype)
    out = probs.matmul(V[:, :, :end]).transpose(1, 2).reshape(B, T, H * dv)
    return ref.linear(out, p[a + "o_proj.weight"])


def route(c, p, m, x):
    """Router (the reference's rule, float32): x [N, C] -> (idx [N, K], weights [N, K])."""
    E, K, G, TG = (c["n_routed_experts"], c["num_experts_per_tok"], c["n_group"],
                   c["topk_group"])
    N, per = x.shape[0], E // G
    s = torch.sigmoid(ref.linear(x.float(), p[m + "gate.weight"]))    # [N, E]
    b = s + p[m + "gate.e_score_correction_bias"]                     # selection only
    gs = b.view(N, G, per).topk(min(2, per), dim=-1).values.sum(-1)  # group score: best two
    keep = torch.zeros(N, G, dtype=torch.bool)
    keep.scatter_(1, gs.topk(TG, dim=-1).indices, True)
    bm = b.masked_fill(~keep.repeat_interleave(per, dim=1), float("-inf"))  # official: -inf
    idx = bm.topk(K, dim=-1).indices
    w = s.gather(1, idx)
    if c["norm_topk_prob"]:
        w = w / w.sum(-1, keepdim=True)
    return idx, w * c["routed_scaling_factor"]


def moe(c, p, m, x):
    """DeepSeekMoE over x [B, T, C], experts grouped per expert (index_select/index_add)."""
    B, T, C = x.shape
    K, E = c["num_experts_per_tok"], c["n_routed_experts"]
    xf = x.reshape(B * T, C)
    idx, w = route(c, p, m, xf)
    flat_e = idx.reshape(-1)
    order = torch.argsort(flat_e, stable=True)
    rows = torch.arange(B * T).repeat_interleave(K)[order]
    wts = w.reshape(-1)[order].to(x.dtype)
    counts = torch.bincount(flat_e, minlength=E).tolist()
    y = torch.zeros_like(xf)
    start = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        r = rows[start:start + n]
        ye = ref.swiglu(xf.index_select(0, r), p, m + "experts.%d." % e)
        y.index_add_(0, r, ye * wts[start:start + n, None])
        start += n
    if c["n_shared_experts"]:
        y = y + ref.swiglu(xf, p, m + "shared_experts.")
    return y.view(B, T, C)


def forward_cached(c, p, tokens, cache, rope, pos0, all_logits=False):
    """tokens [B, T] at positions pos0..pos0+T-1 (the cache holds 0..pos0-1).  Returns the
    logits [B, T, V] (all_logits) or [B, 1, V] of the last position."""
    eps = c["rms_norm_eps"]
    x = F.embedding(tokens, p["model.embed_tokens.weight"])
    for l in range(c["num_hidden_layers"]):
        pre = "model.layers.%d." % l
        h = x + attention_cached(c, p, l, rmsnorm(x, p[pre + "input_layernorm.weight"], eps),
                                 cache, rope, pos0)
        y = rmsnorm(h, p[pre + "post_attention_layernorm.weight"], eps)
        f = moe(c, p, pre + "mlp.", y) if ref.is_moe(c, l) else ref.swiglu(y, p, pre + "mlp.")
        x = h + f
    if not all_logits:
        x = x[:, -1:]
    return ref.linear(rmsnorm(x, p["model.norm.weight"], eps), ref.head_weight(c, p))


def generate(c, p, rope, prompt, new, dtype):
    """Greedy decode: prefill prompt [B, P] in one forward, then `new` one-token steps.
    Returns the generated tokens [B, new + 1] (the prefill's prediction first)."""
    B, P = prompt.shape
    cache = KVCache(c, B, P + new, dtype)
    tok = forward_cached(c, p, prompt, cache, rope, 0)[:, -1].argmax(-1, keepdim=True)
    out = [tok]
    for i in range(new):
        tok = forward_cached(c, p, tok, cache, rope, P + i)[:, -1].argmax(-1, keepdim=True)
        out.append(tok)
    return torch.cat(out, dim=1)

# ------------------------------------------------------------------ correctness check


def check():
    """Cached decode == the reference's full forward at every position, float32.  Returns
    an error message, or None."""
    c = ref.make_config()                    # the reference's small default config
    B, T = 2, 6
    L = c["num_hidden_layers"]
    for seed in range(20):                   # a seed whose routing is far from any tie
        p = ref.init_params(c, seed, dtype=torch.float32)
        tokens = torch.randint(0, c["vocab_size"], (B, T),
                               generator=torch.Generator().manual_seed(seed))
        full = ref.forward(c, p, tokens)
        margins = [m for l, (_, _, m) in full["routing"].items() if l < L]
        if min(margins) > 1e-3:
            break
    want = full["logits"]
    rope = Rope(c, T, torch.float32)
    for n0 in (1, 3, T):
        cache = KVCache(c, B, T, torch.float32)
        got = [forward_cached(c, p, tokens[:, :n0], cache, rope, 0, all_logits=True)]
        for t in range(n0, T):
            got.append(forward_cached(c, p, tokens[:, t:t + 1], cache, rope, t, all_logits=True))
        got = torch.cat(got, dim=1)
        err = (got - want).abs().max().item()
        if not err < CHECK_TOL:
            return ("cached decode (prefill %d, then one token per step) differs from "
                    "deepseek_ref.forward: max abs diff %.3g >= %g" % (n0, err, CHECK_TOL))
    return None

# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    a = ap.parse_args()
    if a.batch < 1 or a.prompt < 1 or a.new < 1 or a.threads < 1:
        ap.error("batch, prompt, new and threads must be >= 1")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with torch.inference_mode():
        msg = check()
        if msg:
            print("torch_decode: correctness check failed: " + msg, file=sys.stderr)
            sys.exit(1)

        Tmax = a.prompt + a.new
        c = ref.make_config(max_position_embeddings=max(Tmax, 64), initializer_range=0.02,
                            **PRESETS[a.preset])
        p = ref.init_params(c, 0, dtype=torch.float32, embed_std=0.02, round_to_f32=False)
        dtype = getattr(torch, a.dtype)
        if dtype != torch.float32:
            for n in p:                      # the router stays float32 (as HF computes it)
                if not n.endswith(("mlp.gate.weight", "e_score_correction_bias")):
                    p[n] = p[n].to(dtype)
        rope = Rope(c, Tmax, dtype)
        prompt = torch.randint(0, c["vocab_size"], (a.batch, a.prompt),
                               generator=torch.Generator().manual_seed(1))

        generate(c, p, rope, prompt, a.new, dtype)            # warm-up
        t0 = time.perf_counter()
        generate(c, p, rope, prompt, a.new, dtype)
        dt = time.perf_counter() - t0
    print("torch decode tokens/s=%.1f ms_per_step=%.3f" % (a.batch * a.new / dt,
                                                           1000.0 * dt / a.new))


if __name__ == "__main__":
    main()
