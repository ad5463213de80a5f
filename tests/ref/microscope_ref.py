#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""microscope_ref.py -- the reasoning microscope of engine/r1_inspect.h in PyTorch, and
tests/data/microscope/.

Run from the top of the source tree with Debian's python (make_fixtures.py also runs it,
after it has rewritten tests/data/tiny_moe/, whose model this fixture uses):

    /usr/bin/python3 tests/ref/microscope_ref.py          # rewrites tests/data/microscope/
    /usr/bin/python3 tests/ref/microscope_ref.py --check  # also compares with the old file

tests/data/microscope/expected.safetensors (metadata "model": "../tiny_moe"), with L the
main model's decoder layers, H heads, V the vocabulary, T = 7, T2 = 10, Tp = 6:

  tokens                I32 [T]          the sequence: row 0 of tests/data/tiny_moe/tokens.txt
  attn.<l>              F32 [H, T, T]    l = 0..L-1: decoder layer l's attention
                                         probabilities (softmax after the causal mask; row t
                                         = query t over keys 0..t, zero above the diagonal)
  attn.<L>              F32 [H, T-1, T-1] the same for the depth-1 MTP layer (index L), as it
                                         runs inside the MTP module on positions 0..T-2
  lens                  F32 [L+1, T, V]  the logit lens: row i is softmax(head(final_norm(r)))
                                         with r the residual stream at site i: i = 0 the
                                         embeddings entering layer 0, i = l+1 the output of
                                         layer l; row L is softmax(logits) of the forward
  mtp_probs             F32 [T-1, V]     softmax of the depth-1 MTP logits; row j reads the
                                         main model's hidden state at j and token j+1 and
                                         predicts token j+2 (r1_inspect_lens at pos = j+1)
  patch.clean_tokens    I32 [T2]         0 5 7 9 11 13 2 4 6 8
  patch.corrupt_tokens  I32 [T2]         the same with token 3 = 10 instead of 9
  patch.lp_clean        F32 [1]          lp(clean)
  patch.lp_corrupt      F32 [1]          lp(corrupt)
  patch.lp              F32 [L+1, Tp]    [i, p]: lp of the corrupt run whose residual at site
                                         i (as for lens; i = L is the final residual, before
                                         the final norm), position p, is replaced by the clean
                                         run's before the following layers run (everything
                                         after that site, at every position, is recomputed,
                                         MoE routing included).  Tp is this tensor's width.
  patch_experts.layer   I32 [1]          the MoE layer whose experts are patched
  patch_experts.lp      F32 [E, Tp]      [e, p]: lp of the corrupt run whose layer output at
                                         position p has routed expert e's part (gate weight
                                         times its output; 0 where not picked) replaced by
                                         the clean run's

where lp(x) = sum over t = Tp..T2-1 of log_softmax(logits[t-1])[x[t]], the log-probability of
the answer (tokens Tp.., the same in both runs) given everything before it.

Everything is computed in float64 on one thread from the F32 weights, stored as F32, so two
runs give identical bytes.  The script also reports the smallest routing margin (biased
score gap between the last kept and the first dropped candidate, see deepseek_ref.route) of
every run, and names the patched runs whose margin is below TIE_MARGIN: a float32 engine
could choose other experts there.
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref as ref  # noqa: E402

MODEL = "tiny_moe"
CLEAN = [0, 5, 7, 9, 11, 13, 2, 4, 6, 8]
CORRUPT = [0, 5, 7, 10, 11, 13, 2, 4, 6, 8]
TP = 6
TIE_MARGIN = 1e-4
EXPERT_LAYER = 1  # the first MoE layer of tiny_moe (first_k_dense_replace = 1)


def read_tokens(folder):
    """Row 0 of folder/tokens.txt (rows separated by ';', ids by spaces)."""
    with open(os.path.join(folder, "tokens.txt")) as f:
        return [int(v) for v in f.read().strip().split(";")[0].split()]


def run(c, p, tokens, site=None, pos=None, repl=None):
    """The main model over tokens (a list, batch 1), optionally with the residual at `site`,
    position `pos` replaced by `repl` [C].  Returns (residuals [L+1, T, C] as seen by the
    following layers, logits [T, V], smallest routing margin)."""
    L = c["num_hidden_layers"]
    routing, res = {}, []
    x = F.embedding(torch.tensor([tokens]), p["model.embed_tokens.weight"])
    for i in range(L + 1):
        if i == site:
            x = x.clone()
            x[0, pos] = repl
        res.append(x[0])
        if i < L:
            x = ref.decoder_layer(c, p, i, x, routing)
    logits = head(c, p, x[0])
    return torch.stack(res), logits, min([m for _, _, m in routing.values()], default=1e300)


def expert_parts(c, p, l, y):
    """Each routed expert's part of MoE layer l's output for its normed input y [T, C]:
    [E, T, C], gate weight times the expert's SwiGLU output where the router picked it, 0
    elsewhere."""
    pre = "model.layers.%d.mlp." % l
    idx, w, _ = ref.route(c, p, pre, y)
    parts = torch.zeros(c["n_routed_experts"], y.shape[0], y.shape[1], dtype=y.dtype)
    for t in range(y.shape[0]):
        for k in range(idx.shape[1]):
            e = int(idx[t, k])
            parts[e, t] = w[t, k] * ref.swiglu(y[t:t + 1], p, pre + "experts.%d." % e)[0]
    return parts


def run_experts(c, p, tokens, layer, e=None, pos=None, repl=None):
    """The main model over tokens with, at MoE layer `layer`, expert e's part of the output
    at position pos replaced by repl [C] (no replacement when e is None).  Returns (the
    experts' parts [E, T, C] of that layer in this run, logits [T, V], smallest routing
    margin)."""
    L, eps = c["num_hidden_layers"], c["rms_norm_eps"]
    routing = {}
    x = F.embedding(torch.tensor([tokens]), p["model.embed_tokens.weight"])
    parts = None
    for i in range(L):
        if i != layer:
            x = ref.decoder_layer(c, p, i, x, routing)
            continue
        pre = "model.layers.%d." % i
        h = x + ref.attention(c, p, pre + "self_attn.",
                              ref.rmsnorm(x, p[pre + "input_layernorm.weight"], eps))
        y = ref.rmsnorm(h, p[pre + "post_attention_layernorm.weight"], eps)
        f, _, _, m = ref.moe(c, p, pre + "mlp.", y)
        routing[i] = (None, None, m)
        parts = expert_parts(c, p, i, y[0])
        if e is not None:
            f = f.clone()
            f[0, pos] = f[0, pos] - parts[e, pos] + repl
        x = h + f
    return parts, head(c, p, x[0]), min(m for _, _, m in routing.values())


def head(c, p, r):
    """head(final_norm(r)): r [..., C] -> logits [..., V]."""
    return ref.linear(ref.rmsnorm(r, p["model.norm.weight"], c["rms_norm_eps"]),
                      ref.head_weight(c, p))


def lp_answer(logits, tokens, tp):
    """sum over t = tp..T-1 of log_softmax(logits[t-1])[tokens[t]]."""
    logp = torch.log_softmax(logits, dim=-1)
    t = torch.arange(tp, len(tokens))
    return logp[t - 1, torch.tensor(tokens)[t]].sum()


def expected(c, p, tokens):
    """(tensor list for write_safetensors, report lines, runs near a tie)."""
    L = c["num_hidden_layers"]
    lines = []

    # attention and the MTP distribution from the reference's own forward
    rec = {}
    with torch.no_grad():
        out = ref.forward(c, p, torch.tensor([tokens]), record=rec)
    ex = [("tokens", torch.tensor(tokens), "I32")]
    for l in range(L + min(1, ref.mtp_depth(c))):            # main layers, MTP depth 1
        ex.append(("attn.%d" % l, rec["model.layers.%d.self_attn." % l][0], "F32"))
    fwd_margin = min(m for _, _, m in out["routing"].values())

    # the logit lens from the residual stream
    res, logits, _ = run(c, p, tokens)
    if not torch.equal(logits, out["logits"][0]):
        raise SystemExit("microscope_ref: the layer loop's logits differ from forward's")
    lens = torch.stack([torch.softmax(head(c, p, r), dim=-1) for r in res])   # [L+1, T, V]
    last = torch.softmax(out["logits"][0], dim=-1)
    if not torch.equal(lens[L], last):
        raise SystemExit("microscope_ref: lens row L is not softmax(logits) (%.3g)"
                         % (lens[L] - last).abs().max().item())
    ex.append(("lens", lens, "F32"))
    ex.append(("mtp_probs", torch.softmax(out["mtp_logits"][0][0], dim=-1), "F32"))
    lines.append("  sequence %s: smallest margin %.4g (MTP layer included)"
                 % (" ".join(map(str, tokens)), fwd_margin))

    # activation patching
    T2 = len(CLEAN)
    if len(CORRUPT) != T2 or CLEAN[TP:] != CORRUPT[TP:] or not 1 <= TP < T2:
        raise SystemExit("microscope_ref: clean and corrupt must share the answer")
    res_c, log_c, m_clean = run(c, p, CLEAN)
    _, log_x, m_corrupt = run(c, p, CORRUPT)
    lp_clean, lp_corrupt = lp_answer(log_c, CLEAN, TP), lp_answer(log_x, CORRUPT, TP)
    grid = torch.zeros(L + 1, TP, dtype=torch.float64)
    margins = torch.zeros(L + 1, TP, dtype=torch.float64)
    for i in range(L + 1):
        for q in range(TP):
            _, lg, m = run(c, p, CORRUPT, i, q, res_c[i, q])
            grid[i, q] = lp_answer(lg, CORRUPT, TP)
            margins[i, q] = m
    ex += [("patch.clean_tokens", torch.tensor(CLEAN), "I32"),
           ("patch.corrupt_tokens", torch.tensor(CORRUPT), "I32"),
           ("patch.lp_clean", lp_clean.reshape(1), "F32"),
           ("patch.lp_corrupt", lp_corrupt.reshape(1), "F32"),
           ("patch.lp", grid, "F32")]
    near = [(i, q, margins[i, q].item()) for i in range(L + 1) for q in range(TP)
            if margins[i, q] < TIE_MARGIN]

    # activation patching of one MoE layer's experts
    layer = EXPERT_LAYER
    parts_c, _, _ = run_experts(c, p, CLEAN, layer)
    E = c["n_routed_experts"]
    egrid = torch.zeros(E, TP, dtype=torch.float64)
    emargin = math.inf
    for e in range(E):
        for q in range(TP):
            _, lg, m = run_experts(c, p, CORRUPT, layer, e, q, parts_c[e, q])
            egrid[e, q] = lp_answer(lg, CORRUPT, TP)
            emargin = min(emargin, m)
            if m < TIE_MARGIN:
                near.append(("expert %d" % e, q, m))
    ex += [("patch_experts.layer", torch.tensor([layer]), "I32"),
           ("patch_experts.lp", egrid, "F32")]
    for e in range(E):
        lines.append("  expert lp[%d] %s" % (e, " ".join("%.6f" % v for v in egrid[e].tolist())))
    lines.append("  expert-patched runs: smallest margin %.4g" % emargin)
    lines.append("  clean margin %.4g  corrupt margin %.4g  patched runs: smallest %.4g"
                 % (m_clean, m_corrupt, margins.min().item()))
    lines.append("  lp_clean %.9f  lp_corrupt %.9f" % (lp_clean.item(), lp_corrupt.item()))
    for i in range(L + 1):
        lines.append("  lp[%d] %s" % (i, " ".join("%.6f" % v for v in grid[i].tolist())))
    lines.append("  margin[i, p] of the patched runs:")
    for i in range(L + 1):
        lines.append("  m[%d] %s" % (i, " ".join("%.4g" % v for v in margins[i].tolist())))
    if m_clean < TIE_MARGIN or m_corrupt < TIE_MARGIN or fwd_margin < TIE_MARGIN:
        near.append(("clean/corrupt/sequence", None, min(m_clean, m_corrupt, fwd_margin)))
    return ex, lines, near


def make_fixture(top, check=False):
    """Writes top/data/microscope/expected.safetensors (top = tests/) and prints a summary.
    With check, the file must read back as written and equal the one it replaces (if any)."""
    torch.set_num_threads(1)
    model = os.path.join(top, "data", MODEL)
    c, p = ref.load_checkpoint(model)
    ex, lines, near = expected(c, p, read_tokens(model))
    folder = os.path.join(top, "data", "microscope")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "expected.safetensors")
    old = None
    if check and os.path.exists(path):
        with open(path, "rb") as f:
            old = f.read()
    ref.write_safetensors(path, ex, {"format": "pt", "model": "../" + MODEL})
    if check:
        ref.check_written(path, ex)
        with open(path, "rb") as f:
            if old is not None and f.read() != old:
                raise SystemExit("microscope_ref: %s changed on regeneration" % path)
    print("%-13s %d tensors  %d bytes" % ("microscope", len(ex), os.path.getsize(path)))
    print("\n".join(lines))
    for i, q, m in near:
        print("  NEAR A TIE (margin %.3g < %g): site %s position %s" % (m, TIE_MARGIN, i, q))


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    make_fixture(top, "--check" in sys.argv[1:])


if __name__ == "__main__":
    main()
