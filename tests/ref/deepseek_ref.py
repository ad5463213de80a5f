# SPDX-License-Identifier: GPL-3.0-or-later
"""deepseek_ref.py -- an independent PyTorch reference of the r1lab model (HF deepseek_v3).

What it is: the model of DESIGN.md "The model", written as plain functions over a dict of
tensors keyed by Hugging Face names, so that autograd gives the gradients the C engine's
hand-written backward pass must reproduce.  It is the oracle behind tests/data/*; it is
not used by `make check` (only the files it produced are).

Conventions followed (they are the places where the public sources differ; see DESIGN.md):
  * RoPE on interleaved pairs (2i, 2i+1), in place; softmax scale (dn + dr)^-0.5.
  * kv_a_proj_with_mqa -> [c_kv | k_pe]; kv_b_proj per head [k_nope | v]; q per head
    [q_nope | q_pe]; one k_pe per token shared by every head.
  * Router: sigmoid scores; the bias only steers selection; a group scores the sum of its
    two best biased scores; groups outside the best topk_group are masked to -inf (the
    official code; HF masks to 0); weights are the unbiased scores, optionally normalised
    (no epsilon), times routed_scaling_factor.  Selection is not differentiated.
  * MTP depth k at layer index L+k-1; input eh_proj(concat[enorm(embed(tok)), hnorm(prev)]),
    the embedding part first; the head and the embedding are the main model's (the copies
    in the checkpoint are written, never trained separately).
  * Loss = mean main CE + (lambda / D) * sum over depths of the mean MTP CE.

Ownership and errors: every function returns new tensors and never mutates its inputs
(except `init_params`, which fills the dict it returns).  Bad configs raise ValueError;
a malformed safetensors file raises ValueError naming the file.

Also here: a minimal safetensors writer and reader (the format is 8 bytes of little-endian
header length N, N bytes of JSON header, then the raw little-endian data), written from the
format description so that no package beyond torch is needed.
"""

import json
import math
import os
import struct
import sys
from array import array

import torch
import torch.nn.functional as F

MTP_LAMBDA = 0.3

# ------------------------------------------------------------------ configuration


def make_config(**over):
    """A complete HF deepseek_v3 config dict: the keys r1lab reads, defaults of the tiny
    fixture, overridden by `over` (unknown keys raise ValueError so typos fail loudly)."""
    c = {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "vocab_size": 40,
        "hidden_size": 32,
        "intermediate_size": 48,
        "moe_intermediate_size": 16,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "first_k_dense_replace": 1,
        "q_lora_rank": 16,
        "kv_lora_rank": 16,
        "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 4,
        "v_head_dim": 8,
        "n_routed_experts": 8,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "n_group": 4,
        "topk_group": 2,
        "norm_topk_prob": True,
        "routed_scaling_factor": 2.5,
        "num_nextn_predict_layers": 1,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 64,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
        "topk_method": "noaux_tc",
        "scoring_func": "sigmoid",
        "moe_layer_freq": 1,
        "rope_scaling": None,
        "attention_bias": False,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "initializer_range": 0.15,
        "torch_dtype": "float32",
    }
    for k, v in over.items():
        if k not in c:
            raise ValueError("make_config: unknown key %r" % k)
        c[k] = v
    if "num_attention_heads" in over and "num_key_value_heads" not in over:
        c["num_key_value_heads"] = c["num_attention_heads"]
    check_config(c)
    return c


def check_config(c):
    """Raises ValueError when c asks for something this reference does not implement."""
    need = {"hidden_act": "silu", "scoring_func": "sigmoid", "topk_method": "noaux_tc",
            "rope_scaling": None, "attention_bias": False, "moe_layer_freq": 1}
    for k, v in need.items():
        if c.get(k, v) != v:
            raise ValueError("config: %s must be %r, got %r" % (k, v, c.get(k)))
    if c["num_key_value_heads"] != c["num_attention_heads"]:
        raise ValueError("config: num_key_value_heads must equal num_attention_heads")
    if c["qk_rope_head_dim"] % 2:
        raise ValueError("config: qk_rope_head_dim must be even")
    E = c["n_routed_experts"]
    if E is not None:
        if E % c["n_group"] or c["topk_group"] > c["n_group"]:
            raise ValueError("config: n_routed_experts / n_group / topk_group do not fit")
        if c["num_experts_per_tok"] > E // c["n_group"] * c["topk_group"]:
            raise ValueError("config: num_experts_per_tok exceeds the experts of topk_group")


def is_moe(c, l):
    """True when layer l (MTP layers are l >= num_hidden_layers) is a MoE layer."""
    return c["n_routed_experts"] is not None and l >= c["first_k_dense_replace"]


def mtp_depth(c):
    return c.get("num_nextn_predict_layers") or 0


# ------------------------------------------------------------------ parameters


def param_specs(c):
    """Ordered list of (HF name, shape, kind) of every distinct parameter, kind one of
    'embed', 'linear', 'norm', 'bias'.  The MTP copies of the embedding and the head are
    not listed: they are the same parameters (see checkpoint_tensors)."""
    V, C, L, D = c["vocab_size"], c["hidden_size"], c["num_hidden_layers"], mtp_depth(c)
    H, dn, dr, dv = (c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"],
                     c["v_head_dim"])
    qr, kvr = c["q_lora_rank"], c["kv_lora_rank"]
    out = [("model.embed_tokens.weight", (V, C), "embed")]
    for l in range(L + D):
        p = "model.layers.%d." % l
        if l >= L:
            out += [(p + "enorm.weight", (C,), "norm"), (p + "hnorm.weight", (C,), "norm"),
                    (p + "eh_proj.weight", (C, 2 * C), "linear")]
        out.append((p + "input_layernorm.weight", (C,), "norm"))
        a = p + "self_attn."
        if qr:
            out += [(a + "q_a_proj.weight", (qr, C), "linear"),
                    (a + "q_a_layernorm.weight", (qr,), "norm"),
                    (a + "q_b_proj.weight", (H * (dn + dr), qr), "linear")]
        else:
            out.append((a + "q_proj.weight", (H * (dn + dr), C), "linear"))
        out += [(a + "kv_a_proj_with_mqa.weight", (kvr + dr, C), "linear"),
                (a + "kv_a_layernorm.weight", (kvr,), "norm"),
                (a + "kv_b_proj.weight", (H * (dn + dv), kvr), "linear"),
                (a + "o_proj.weight", (C, H * dv), "linear"),
                (p + "post_attention_layernorm.weight", (C,), "norm")]
        m = p + "mlp."
        if is_moe(c, l):
            E, Ie, S = c["n_routed_experts"], c["moe_intermediate_size"], c["n_shared_experts"]
            out += [(m + "gate.weight", (E, C), "linear"),
                    (m + "gate.e_score_correction_bias", (E,), "bias")]
            for e in range(E):
                out += swiglu_specs(m + "experts.%d." % e, C, Ie)
            if S:
                out += swiglu_specs(m + "shared_experts.", C, Ie * S)
        else:
            out += swiglu_specs(m, C, c["intermediate_size"])
        if l >= L:
            out.append((p + "shared_head.norm.weight", (C,), "norm"))
    out.append(("model.norm.weight", (C,), "norm"))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", (V, C), "linear"))
    return out


def swiglu_specs(prefix, C, I):
    return [(prefix + "gate_proj.weight", (I, C), "linear"),
            (prefix + "up_proj.weight", (I, C), "linear"),
            (prefix + "down_proj.weight", (C, I), "linear")]


def trainable_names(c):
    """Names of the parameters that get gradients: everything but the router biases."""
    return [n for n, _, kind in param_specs(c) if kind != "bias"]


def main_names(c):
    """trainable_names without the MTP layers': what a loss of the main model alone uses."""
    L = c["num_hidden_layers"]
    mtp = tuple("model.layers.%d." % l for l in range(L, L + mtp_depth(c)))
    return [n for n in trainable_names(c) if not n.startswith(mtp)]


def check_written(path, ex):
    """Reads path back and asserts it holds exactly ex's (name, tensor, dtype) list, as F32
    or I32, in that order."""
    got, _ = read_safetensors(path)
    assert list(got) == [n for n, _, _ in ex], path
    for n, t, dt in ex:
        want = t.detach().to(torch.int32 if dt == "I32" else torch.float32)
        assert torch.equal(got[n], want), n


def init_params(c, seed, dtype=torch.float64, linear_std=None, embed_std=0.5,
                round_to_f32=True):
    """Seeded random parameters: linear ~ N(0, linear_std) (default initializer_range),
    norm weights 1 + 0.1 N(0,1), router bias U(-0.1, 0.1), embedding N(0, embed_std).
    With round_to_f32 the values are rounded to float32 first, so that a computation in
    float64 sees exactly what an F32 checkpoint holds.  Returns {name: tensor}."""
    g = torch.Generator().manual_seed(seed)
    std = c["initializer_range"] if linear_std is None else linear_std
    p = {}
    for name, shape, kind in param_specs(c):
        if kind == "embed":
            t = torch.randn(shape, generator=g, dtype=torch.float64) * embed_std
        elif kind == "linear":
            t = torch.randn(shape, generator=g, dtype=torch.float64) * std
        elif kind == "norm":
            t = 1.0 + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
        else:
            t = (torch.rand(shape, generator=g, dtype=torch.float64) * 2.0 - 1.0) * 0.1
        if round_to_f32:
            t = t.to(torch.float32)
        p[name] = t.to(dtype)
    return p


def head_weight(c, p):
    return p["model.embed_tokens.weight"] if c["tie_word_embeddings"] else p["lm_head.weight"]


# ------------------------------------------------------------------ building blocks


def rmsnorm(x, w, eps):
    """x / sqrt(mean(x^2) + eps) * w over the last axis."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def linear(x, w):
    """y = x W^T with W [out, in]."""
    return x.matmul(w.t())


def swiglu(x, p, prefix):
    """down(silu(gate(x)) * up(x))."""
    g = linear(x, p[prefix + "gate_proj.weight"])
    u = linear(x, p[prefix + "up_proj.weight"])
    return linear(F.silu(g) * u, p[prefix + "down_proj.weight"])


def rope_tables(T, dr, theta, dtype):
    """cos, sin [T, dr/2]: angle(pos, i) = pos * theta^(-2i/dr), computed in float64."""
    i = torch.arange(dr // 2, dtype=torch.float64)
    inv_freq = torch.pow(torch.tensor(float(theta), dtype=torch.float64), -2.0 * i / dr)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def rope_interleaved(x, cos, sin):
    """Rotates the pairs (x[2i], x[2i+1]) of the last axis in place (interleaved layout);
    x [..., T, dr], cos/sin [T, dr/2]."""
    xp = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    a, b = xp[..., 0], xp[..., 1]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


def attention(c, p, prefix, x, record=None):
    """MLA self-attention, causal, positions 0..T-1.  x [B, T, C] -> [B, T, C].  With a dict
    `record`, also stores record[prefix] = the softmax probabilities [B, H, T, T] (detached;
    zero above the diagonal); the output is the same either way."""
    B, T, _ = x.shape
    H, dn, dr, dv = (c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"],
                     c["v_head_dim"])
    kvr, eps = c["kv_lora_rank"], c["rms_norm_eps"]
    if c["q_lora_rank"]:
        qa = rmsnorm(linear(x, p[prefix + "q_a_proj.weight"]),
                     p[prefix + "q_a_layernorm.weight"], eps)
        q = linear(qa, p[prefix + "q_b_proj.weight"])
    else:
        q = linear(x, p[prefix + "q_proj.weight"])
    q = q.view(B, T, H, dn + dr).transpose(1, 2)                  # [B, H, T, dn+dr]
    q_nope, q_pe = q.split([dn, dr], dim=-1)
    kva = linear(x, p[prefix + "kv_a_proj_with_mqa.weight"])      # [B, T, kvr+dr]
    c_kv, k_pe = kva.split([kvr, dr], dim=-1)
    kv = linear(rmsnorm(c_kv, p[prefix + "kv_a_layernorm.weight"], eps),
                p[prefix + "kv_b_proj.weight"])
    kv = kv.view(B, T, H, dn + dv).transpose(1, 2)                # [B, H, T, dn+dv]
    k_nope, v = kv.split([dn, dv], dim=-1)
    cos, sin = rope_tables(T, dr, c["rope_theta"], x.dtype)
    q_pe = rope_interleaved(q_pe, cos, sin)
    k_pe = rope_interleaved(k_pe, cos, sin)[:, None].expand(B, H, T, dr)  # shared by heads
    query = torch.cat((q_nope, q_pe), dim=-1)
    key = torch.cat((k_nope, k_pe), dim=-1)
    scores = query.matmul(key.transpose(-1, -2)) * (dn + dr) ** -0.5   # [B, H, T, T]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    if record is not None:
        record[prefix] = probs.detach()
    out = probs.matmul(v).transpose(1, 2).reshape(B, T, H * dv)
    return linear(out, p[prefix + "o_proj.weight"])


def route(c, p, prefix, x):
    """Router of one MoE layer.  x [N, C].  Returns (idx [N, K] ascending, weights [N, K],
    margin): `margin` is the smallest gap, over tokens, between the last kept and the first
    dropped candidate (groups, then experts) -- how far the selection is from a tie."""
    E, K = c["n_routed_experts"], c["num_experts_per_tok"]
    G, TG = c["n_group"], c["topk_group"]
    N = x.shape[0]
    s = torch.sigmoid(linear(x, p[prefix + "gate.weight"]))       # [N, E]
    margin = math.inf
    with torch.no_grad():
        b = s.detach() + p[prefix + "gate.e_score_correction_bias"]
        per = E // G
        gs = b.view(N, G, per).topk(min(2, per), dim=-1).values.sum(-1)   # [N, G]
        if TG < G:
            srt = gs.sort(dim=-1, descending=True).values
            margin = min(margin, (srt[:, TG - 1] - srt[:, TG]).min().item())
        keep = torch.zeros(N, G, dtype=torch.bool)
        keep.scatter_(1, gs.topk(TG, dim=-1).indices, True)
        keep = keep[:, :, None].expand(N, G, per).reshape(N, E)
        bm = b.masked_fill(~keep, float("-inf"))
        if K < E:
            srt = bm.sort(dim=-1, descending=True).values
            gap = srt[:, K - 1] - srt[:, K]          # inf when the next one is masked
            margin = min(margin, gap.min().item())
        idx = bm.topk(K, dim=-1).indices.sort(dim=-1).values
    w = s.gather(1, idx)
    if c["norm_topk_prob"]:
        w = w / w.sum(-1, keepdim=True)
    w = w * c["routed_scaling_factor"]
    return idx, w, margin


def moe(c, p, prefix, x):
    """DeepSeekMoE: x [B, T, C] -> (y [B, T, C], idx [B, T, K], w [B, T, K], margin).
    Tokens are grouped per expert (index_select / index_add) rather than running every
    expert on every token."""
    B, T, C = x.shape
    K, E = c["num_experts_per_tok"], c["n_routed_experts"]
    xf = x.reshape(B * T, C)
    idx, w, margin = route(c, p, prefix, xf)
    flat_e = idx.reshape(-1)
    order = torch.argsort(flat_e, stable=True)
    rows = torch.arange(B * T).repeat_interleave(K)[order]
    wts = w.reshape(-1)[order]
    counts = torch.bincount(flat_e, minlength=E).tolist()
    y = torch.zeros_like(xf)
    start = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        r = rows[start:start + n]
        ye = swiglu(xf.index_select(0, r), p, prefix + "experts.%d." % e)
        # .to: under torch.autocast the expert's output is bf16 (a no-op in fp32 and fp64)
        y.index_add_(0, r, (ye * wts[start:start + n, None]).to(y.dtype))
        start += n
    if c["n_shared_experts"]:
        y = y + swiglu(xf, p, prefix + "shared_experts.")
    return y.view(B, T, C), idx.view(B, T, K), w.view(B, T, K), margin


def decoder_layer(c, p, l, x, routing, record=None):
    """One pre-norm decoder layer (index l) over x [B, T, C]; MoE layers record their
    routing in routing[l] = (idx, weights, margin); `record`: see attention."""
    pre, eps = "model.layers.%d." % l, c["rms_norm_eps"]
    h = x + attention(c, p, pre + "self_attn.", rmsnorm(x, p[pre + "input_layernorm.weight"], eps),
                      record)
    y = rmsnorm(h, p[pre + "post_attention_layernorm.weight"], eps)
    if is_moe(c, l):
        f, idx, w, margin = moe(c, p, pre + "mlp.", y)
        routing[l] = (idx, w, margin)
    else:
        f = swiglu(y, p, pre + "mlp.")
    return h + f


# ------------------------------------------------------------------ the model


def forward(c, p, tokens, mtp_lambda=MTP_LAMBDA, record=None):
    """Full forward pass.  tokens [B, T] int64.  Returns a dict:
    logits [B, T, V]; mtp_logits: list over depths k of [B, T-k, V]; loss_main, loss_mtp,
    loss (scalars); routing: {layer: (idx [B, len, K], weights [B, len, K], margin)}.
    With a dict `record`, every layer's attention probabilities go there, keyed by
    "model.layers.<l>.self_attn." ([B, H, len, len]; MTP layers included)."""
    B, T = tokens.shape
    L, D, eps = c["num_hidden_layers"], mtp_depth(c), c["rms_norm_eps"]
    if T > c["max_position_embeddings"]:
        raise ValueError("forward: T=%d exceeds max_position_embeddings" % T)
    V = c["vocab_size"]
    emb = p["model.embed_tokens.weight"]
    head = head_weight(c, p)
    routing = {}
    x = F.embedding(tokens, emb)
    for l in range(L):
        x = decoder_layer(c, p, l, x, routing, record)
    hf = rmsnorm(x, p["model.norm.weight"], eps)
    logits = linear(hf, head)
    loss_main = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))
    mtp_logits, mtp_ce = [], []
    prev = hf
    for k in range(1, D + 1):
        l, Tk = L + k - 1, T - k
        pre = "model.layers.%d." % l
        e = rmsnorm(F.embedding(tokens[:, k:], emb), p[pre + "enorm.weight"], eps)
        h = rmsnorm(prev[:, :Tk], p[pre + "hnorm.weight"], eps)
        xk = linear(torch.cat((e, h), dim=-1), p[pre + "eh_proj.weight"])   # embedding first
        xk = decoder_layer(c, p, l, xk, routing, record)
        hk = rmsnorm(xk, p[pre + "shared_head.norm.weight"], eps)
        lk = linear(hk, head)                                   # [B, T-k, V]; row i -> t[i+k+1]
        mtp_logits.append(lk)
        mtp_ce.append(F.cross_entropy(lk[:, :Tk - 1].reshape(-1, V),
                                      tokens[:, k + 1:].reshape(-1)))
        prev = hk
    if D:
        loss_mtp = (mtp_lambda / D) * torch.stack(mtp_ce).sum()
    else:
        loss_mtp = torch.zeros((), dtype=logits.dtype)
    return {"logits": logits, "mtp_logits": mtp_logits, "loss_main": loss_main,
            "loss_mtp": loss_mtp, "loss": loss_main + loss_mtp, "routing": routing}


def gradients(c, p, tokens, mtp_lambda=MTP_LAMBDA):
    """(forward dict, {name: d loss / d param}) for every trainable parameter."""
    names = trainable_names(c)
    q = dict(p)
    for n in names:
        q[n] = p[n].detach().clone().requires_grad_(True)
    out = forward(c, q, tokens, mtp_lambda)
    g = torch.autograd.grad(out["loss"], [q[n] for n in names], allow_unused=True)
    grads = {}
    for n, gi in zip(names, g):
        grads[n] = torch.zeros_like(p[n]) if gi is None else gi
    return out, grads


# ------------------------------------------------------------------ safetensors

_DT = {
    "F64": (torch.float64, "d", 8),
    "F32": (torch.float32, "f", 4),
    "I64": (torch.int64, "q", 8),
    "I32": (torch.int32, "i", 4),
}
_DT_OF = {v[0]: k for k, v in _DT.items()}


def _tensor_bytes(t, dtype_name):
    tt, code, _ = _DT[dtype_name]
    a = array(code, t.detach().to(tt).reshape(-1).tolist())
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors (a list of (name, tensor, dtype name) or a dict name -> tensor stored
    in its own dtype) to path: temporary file, then rename.  Header keys keep the given
    order; the header is padded with spaces to a multiple of 8 bytes."""
    items = tensors.items() if isinstance(tensors, dict) else tensors
    header, blobs, off = {}, [], 0
    for item in items:
        name, t = item[0], item[1]
        dn = item[2] if len(item) > 2 else _DT_OF[t.dtype]
        raw = _tensor_bytes(t, dn)
        header[name] = {"dtype": dn, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * (-len(hj) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_safetensors(path):
    """Reads a safetensors file: returns ({name: tensor}, metadata dict).  Supports F64, F32,
    I64, I32, BF16 and F16 (the last two are widened to float32)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: too short for a safetensors header" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("%s: header length %d exceeds the file" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        if not 0 <= b <= e <= len(data):
            raise ValueError("%s: tensor %s: data_offsets out of range" % (path, name))
        shape, dt = h["shape"], h["dtype"]
        raw = bytearray(data[b:e])
        if dt in _DT:
            tt, code, size = _DT[dt]
            a = array(code)
            a.frombytes(bytes(raw))
            if sys.byteorder != "little":
                a.byteswap()
            t = torch.tensor(a.tolist(), dtype=tt)
        elif dt in ("BF16", "F16"):
            u = array("H")
            u.frombytes(bytes(raw))
            if sys.byteorder != "little":
                u.byteswap()
            if dt == "BF16":
                w = torch.tensor([v << 16 for v in u], dtype=torch.int64).to(torch.int32)
                t = w.view(torch.float32)
            else:
                t = torch.tensor(u.tolist(), dtype=torch.int64).to(torch.int16).view(
                    torch.float16).to(torch.float32)
        else:
            raise ValueError("%s: tensor %s: unsupported dtype %s" % (path, name, dt))
        if t.numel() != math.prod(shape):
            raise ValueError("%s: tensor %s: %d values for shape %s"
                             % (path, name, t.numel(), shape))
        out[name] = t.reshape(shape)
    return out, meta


# ------------------------------------------------------------------ checkpoints


def checkpoint_tensors(c, p):
    """The (name, tensor) list of model.safetensors: every parameter, plus at each MTP
    layer the copies embed_tokens.weight and shared_head.head.weight, as DeepSeek ships."""
    L, D = c["num_hidden_layers"], mtp_depth(c)
    out = []
    for name, _, _ in param_specs(c):
        out.append((name, p[name]))
        for k in range(1, D + 1):
            pre = "model.layers.%d." % (L + k - 1)
            if name == pre + "shared_head.norm.weight":
                out.append((pre + "embed_tokens.weight", p["model.embed_tokens.weight"]))
                out.append((pre + "shared_head.head.weight", head_weight(c, p)))
    return out


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def save_checkpoint(folder, c, p):
    """Writes a HF folder: config.json + model.safetensors (F32, with the MTP copies)."""
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "config.json"), c)
    write_safetensors(os.path.join(folder, "model.safetensors"),
                      [(n, t, "F32") for n, t in checkpoint_tensors(c, p)])


def load_checkpoint(folder, dtype=torch.float64):
    """Reads a HF folder back: (config, params).  The MTP copies must equal the shared
    parameters they stand for; a mismatch raises ValueError."""
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    check_config(c)
    t, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    p = {}
    for name, shape, _ in param_specs(c):
        if name not in t or tuple(t[name].shape) != tuple(shape):
            raise ValueError("%s: tensor %s missing or not of shape %s" % (folder, name, shape))
        p[name] = t[name].to(dtype)
    for name, ref in checkpoint_tensors(c, p):
        if name not in p and name in t and not torch.equal(t[name].to(dtype), ref):
            raise ValueError("%s: copy %s differs from the shared parameter" % (folder, name))
    return c, p
