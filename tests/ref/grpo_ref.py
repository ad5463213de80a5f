#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""grpo_ref.py -- the GRPO objective of engine/r1_grpo.h in PyTorch, and tests/data/grpo/.

Run from the top of the source tree with Debian's python (make_fixtures.py also runs it,
after it has rewritten tests/data/tiny_moe/, which this fixture borrows):

    /usr/bin/python3 tests/ref/grpo_ref.py          # rewrites tests/data/grpo/
    /usr/bin/python3 tests/ref/grpo_ref.py --check  # also re-reads and compares it

What it computes, from the maths in r1_grpo.h and DESIGN.md (not from grpo.c), on the
tiny_moe model in float64 (autograd for the gradients):
  lp_t      log pi_theta(y_t | y_<t) of every completion token, sequence after sequence
  A_i       (r_i - mean r) / (std r + 1e-4) within each group of G (std with n - 1, as TRL
            and the DeepSeekMath code); without std scaling (Dr. GRPO) r_i - mean r
  rho_t     exp(lp_t - lp_old_t)
  s_t       min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A)
  k3_t      pi_ref/pi_theta - log(pi_ref/pi_theta) - 1
  J         aggregation of s_t - beta k3_t:
              seq    (GRPO)      1/nseq sum_i 1/L_i sum_t
              token  (DAPO)      1/ntok sum_i sum_t
              const  (Dr. GRPO)  1/(nseq max_new) sum_i sum_t
  J_scale   the same aggregation of |s_t - beta k3_t|: the size of what J sums, the scale
            for judging J's error (J itself can be near 0 by cancellation)
  kl        mean k3 over completion tokens (0 when beta = 0: there is no reference then)
  clip_frac share of tokens where the clipped branch wins strictly (its gradient is 0)
  entropy   mean over completion tokens of the policy's entropy
  mtp       with mtp_lambda > 0 (the "mtp" case): the MTP loss on the sampled completions,
            the mean over depths k of depth k's cross-entropy summed over the completion tokens
            it predicts (row i of depth k predicts token i + k + 1), over the batch's
            completion tokens; the loss is then -J + mtp_lambda * mtp
  grad      d(loss)/d(param) for every trainable parameter the loss uses (the MTP layers only
            when mtp_lambda > 0)

Each sequence is run on its own (batch 1, no padding); the C engine packs micro-batches, so
agreement also says its padding changes nothing.  The fixture holds the inputs and the
expected outputs of each case; the model weights stay in tests/data/tiny_moe/ and are named
by reference ("model": "../tiny_moe" in grpo.json).  Files:

  grpo.json  model folder, prompts P, group G, the seed used, and the cases: name, agg,
             beta, eps_low, eps_high, max_new, std_scale, micro (what r1_grpo_cfg needs) and
             grads (whether the case stores its gradient)
  expected.safetensors
    tokens I32 [sum lens] (sequences one after another: prompt, then completion);
    plens, lens I32 [nseq]; rewards F32 [P, G]; adv, adv_noscale F32 [nseq];
    lp, lp_old, lp_ref F32 [ntok]; then per case <name>.objective, <name>.objective_scale,
    <name>.kl, <name>.clip_frac, <name>.entropy, <name>.mtp F32 [1] and, when grads,
    <name>.grad.<param> F32.  Without the MTP loss the MTP layers' parameters have no
    <name>.grad entry: the objective does not use them, so their gradient is zero.

Old and reference log-probs are the current ones moved by seeded offsets, stored as F32, and
the computation uses exactly those F32 values, as well as eps and beta rounded to float32 (the
engine keeps them as float).  Offsets and tokens are drawn until every routing decision wins
by MIN_MARGIN and every rho is at least RHO_MARGIN away from a clip boundary, so a float32
engine must route and clip exactly the same tokens.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_ref as ref  # noqa: E402

MODEL = "tiny_moe"
P, G = 3, 4
PLENS = [3, 2, 4]                                    # per prompt, BOS included
CLENS = [[5, 2, 7, 3], [1, 4, 6, 4], [3, 6, 2, 5]]   # per completion, within each group
REWARDS = [[1.0, 0.0, 0.5, 1.0],
           [0.25, 0.25, 0.25, 0.25],                 # zero variance: A = 0, only the KL acts
           [0.0, 1.0, 0.0, 0.0]]
MIN_MARGIN = 1e-3
RHO_MARGIN = 2e-3
SEED = 4242

# name, agg, beta, eps_low, eps_high, max_new, std_scale, micro, grads, mtp_lambda, family.  A
# full gradient is ~180 kB; const_kl keeps only its scalars so that the fixture stays near 1 MB
# (the constant weight and the KL term each have their gradient checked in other cases), and
# the family's cases keep the gradient of the output head and the final norm only ("head"):
# what they change is the gradient at the logits, which those two tensors read whole.
#
# family: the options of the GRPO family (r1_grpo.h), each as TRL's GRPOConfig names it:
#   loss                       "cispo": sg(min(rho, eps_high)) A lp on every token, token mean
#   importance_sampling_level  "sequence" (GSPO): rho_i = exp(mean_t(lp - lp_old)) for all of
#                              completion i's tokens, clipped once
#   top_entropy_quantile       rho: the policy term keeps the tokens of each completion whose
#                              entropy is >= its (1 - rho) quantile (torch.quantile, linear)
#   entropy_coef               + coef x entropy per token, aggregated as the rest
#   off_policy_mask_threshold  delta: a completion with A < 0 and mean(lp_samp - lp) > delta
#                              leaves the policy term (DeepSeek-V3.2)
#   use_bias_correction_kl     the k3 term times rho (the token's, or the sequence's)
CASES = [
    ("seq_kl",   "seq",   0.1, 0.2, 0.2,  8, 1, 5,  True,  0.0, {}),  # GRPO as in DeepSeekMath
    ("seq",      "seq",   0.0, 0.2, 0.2,  8, 1, 12, False, 0.0, {}),
    ("token_kl", "token", 0.1, 0.2, 0.28, 8, 1, 5,  True,  0.0, {}),
    ("token",    "token", 0.0, 0.2, 0.28, 8, 1, 1,  True,  0.0, {}),  # DAPO: clip-higher, no KL
    ("const_kl", "const", 0.1, 0.2, 0.2,  9, 0, 5,  False, 0.0, {}),
    ("const",    "const", 0.0, 0.2, 0.2,  8, 0, 7,  True,  0.0, {}),  # Dr. GRPO: no std, no KL
    ("mtp",      "seq",   0.1, 0.2, 0.2,  8, 1, 5,  True,  0.3, {}),  # + the MTP loss
    ("gspo",     "seq",   0.0, 0.04, 0.04, 8, 1, 5, "head", 0.0,
     {"importance_sampling_level": "sequence"}),
    ("gspo_bckl", "token", 0.1, 0.05, 0.05, 8, 1, 4, "head", 0.0,
     {"importance_sampling_level": "sequence", "use_bias_correction_kl": True}),
    ("cispo",    "token", 0.0, 0.2, 1.2,  8, 1, 5,  "head", 0.0, {"loss": "cispo"}),
    ("cispo_seq", "token", 0.1, 0.2, 1.1, 8, 1, 3,  "head", 0.0,
     {"loss": "cispo", "importance_sampling_level": "sequence"}),
    ("entropy",  "seq",   0.1, 0.2, 0.2,  8, 1, 5,  "head", 0.0,
     {"top_entropy_quantile": 0.5, "entropy_coef": 0.05}),
    ("opm_bckl", "token", 0.1, 0.2, 0.28, 8, 1, 5,  "head", 0.0,
     {"off_policy_mask_threshold": 0.25, "use_bias_correction_kl": True}),
]
CASE_KEYS = ("name", "agg", "beta", "eps_low", "eps_high", "max_new", "std_scale", "micro",
             "grads", "mtp_lambda")
HEAD = ("lm_head.weight", "model.norm.weight")
# GDPO's advantages (multi_objective_aggregation = "normalize_then_sum"): two rewards per
# completion with these weights; one group where the first reward is constant
REWARDS2 = [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.5]],
            [[1.0, 0.2], [1.0, 0.9], [1.0, 0.4], [1.0, 0.4]],
            [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]]
WEIGHTS2 = [1.0, 0.5]
OPM_MARGIN = 1e-3    # no completion's mean log(p_samp / p) within this of the threshold
ENT_MARGIN = 1e-5    # no token's entropy within this of its completion's quantile (but its own)


def f32(x):
    """x rounded to float32, as a Python float (how the engine sees a float setting)."""
    return torch.tensor(x, dtype=torch.float32).item()


def advantages(rewards, std_scale):
    """rewards [P, G] -> advantages [P*G] (float64)."""
    r = torch.tensor(rewards, dtype=torch.float64)
    a = r - r.mean(dim=1, keepdim=True)
    if std_scale:
        a = a / (r.std(dim=1, unbiased=True, keepdim=True) + 1e-4)
    return a.reshape(-1)


def policy(c, p, seqs, plens):
    """Runs each sequence alone.  Returns (lp [ntok], entropy [ntok], smallest routing margin
    over the MoE layers, the MTP loss's sum: over depths k of (1/D) times depth
    k's cross-entropy summed over the completion tokens it predicts), in sequence order,
    differentiable w.r.t. p."""
    lps, ents, margin, mtp = [], [], float("inf"), 0
    D = ref.mtp_depth(c)
    for s, pl in zip(seqs, plens):
        tok = torch.tensor([s], dtype=torch.int64)
        out = ref.forward(c, p, tok)
        for l, (_, _, m) in out["routing"].items():   # the MTP layers' too: the mtp case
            margin = min(margin, m)
        logp = torch.log_softmax(out["logits"][0], dim=-1)          # [T, V]; row t predicts t+1
        rows = logp[pl - 1:len(s) - 1]
        lps.append(rows.gather(1, tok[0, pl:, None])[:, 0])
        ents.append(-(rows.exp() * rows).sum(-1))
        for k in range(1, D + 1):   # row i of depth k predicts token i + k + 1
            lk = torch.log_softmax(out["mtp_logits"][k - 1][0], dim=-1)
            first = max(pl - k - 1, 0)
            rows_k = lk[first:len(s) - k - 1]
            mtp = mtp - rows_k.gather(1, tok[0, first + k + 1:, None]).sum() / D
    return torch.cat(lps), torch.cat(ents), margin, mtp


def family(case):
    """The case's family options, with their defaults."""
    x = {"loss": "grpo", "importance_sampling_level": "token", "top_entropy_quantile": 1.0,
         "entropy_coef": 0.0, "off_policy_mask_threshold": 0.0, "use_bias_correction_kl": False}
    x.update(case[10])
    return x


def objective(case, lp, lp_old, lp_ref, lp_samp, ent, adv_tok, seq_of_tok, lens_c, nseq):
    """J, J_scale, kl, clip_frac, entropy kept, completions masked for one case (see the module
    docstring and CASES); lp and ent differentiable."""
    _, agg, beta, el, eh, max_new = case[:6]
    beta, el, eh = f32(beta), f32(el), f32(eh)
    x = family(case)
    ecoef, teq = f32(x["entropy_coef"]), f32(x["top_entropy_quantile"])
    delta = f32(x["off_policy_mask_threshold"])
    ntok = lp.numel()
    per_all, clipped_all, kept, masked = [], [], 0, 0
    for i in range(nseq):
        idx = (seq_of_tok == i).nonzero()[:, 0]
        L = idx.numel()
        lpi, oldi, A = lp[idx], lp_old[idx], adv_tok[idx]
        logw = lpi - oldi
        if x["importance_sampling_level"] == "sequence":
            logw = logw.mean().expand(L)
        rho = torch.exp(logw)
        if x["loss"] == "cispo":
            w = rho.clamp(max=eh).detach()
            pol = w * A * lpi
            clipped = (rho > eh).double()
        else:
            cl = rho.clamp(1 - el, 1 + eh)
            pol = torch.minimum(rho * A, cl * A)
            clipped = (cl * A < rho * A).double()
        keep = torch.ones(L, dtype=torch.float64)
        if teq < 1:
            thr = torch.quantile(ent[idx].detach(), 1 - teq)
            keep = (ent[idx].detach() >= thr).double()
        kept += int(keep.sum().item())
        if delta > 0 and A[0] < 0:
            if (lp_samp[idx] - lpi.detach()).mean() > delta:
                keep = keep * 0
                masked += 1
        per = pol * keep
        if beta > 0:
            k3 = torch.exp(lp_ref[idx] - lpi) - (lp_ref[idx] - lpi) - 1
            if x["use_bias_correction_kl"]:
                k3 = k3 * rho
            per = per - beta * k3
        per = per + ecoef * ent[idx]
        per_all.append(per)
        clipped_all.append(clipped)
    per = torch.cat(per_all)
    clipped = torch.cat(clipped_all)
    if beta > 0:
        k3 = torch.exp(lp_ref - lp) - (lp_ref - lp) - 1
    else:
        k3 = torch.zeros_like(lp)
    if agg == "seq":
        w = 1.0 / (nseq * lens_c[seq_of_tok])
    elif agg == "token":
        w = torch.full_like(lp, 1.0 / ntok)
    elif agg == "const":
        w = torch.full_like(lp, 1.0 / (nseq * max_new))
    else:
        raise ValueError("objective: unknown aggregation %r" % agg)
    J = (w * per).sum()
    return (J, (w * per.abs()).sum().detach(), k3.mean().detach(), clipped.mean(),
            kept / ntok, masked / nseq)


def ratios(case, lp, lp_old, seq_of_tok):
    """The case's importance ratios, one per token (a completion's repeated at sequence
    level)."""
    lr = lp - lp_old
    if family(case)["importance_sampling_level"] == "sequence":
        n = int(seq_of_tok.max()) + 1
        means = torch.stack([lr[seq_of_tok == i].mean() for i in range(n)])
        lr = means[seq_of_tok]
    return torch.exp(lr)


def bounds(case):
    """Where a ratio changes branch: the clip range's ends, or CISPO's cap."""
    if family(case)["loss"] == "cispo":
        return [f32(case[4])]
    return [1 - f32(case[3]), 1 + f32(case[4])]


def rho_margin(lp, lp_old, seq_of_tok):
    """Smallest distance of any ratio from any of its case's branch points."""
    return min((ratios(c, lp, lp_old, seq_of_tok) - b).abs().min().item()
               for c in CASES for b in bounds(c))


def opm_margin(lp, lp_samp, seq_of_tok):
    """Smallest distance of a completion's mean log(p_samp / p) from any threshold."""
    n = int(seq_of_tok.max()) + 1
    ds = [family(c)["off_policy_mask_threshold"] for c in CASES]
    m = [(lp_samp[seq_of_tok == i] - lp[seq_of_tok == i]).mean().item() for i in range(n)]
    return min(abs(v - f32(d)) for v in m for d in ds if d > 0)


def ent_margin(ent, seq_of_tok):
    """Smallest distance of a token's entropy from its completion's quantile, over the cases'
    quantiles, leaving out a token that is the quantile itself (it is kept on both sides)."""
    n = int(seq_of_tok.max()) + 1
    qs = [family(c)["top_entropy_quantile"] for c in CASES]
    best = float("inf")
    for q in (f32(v) for v in qs if v < 1):
        for i in range(n):
            e = ent[seq_of_tok == i]
            thr = torch.quantile(e, 1 - q)
            d = (e - thr).abs()
            d = d[d > 0]
            if d.numel():
                best = min(best, d.min().item())
    return best


def draw_batch(c, p):
    """Tokens and offsets for the first seed from SEED on whose routing, clipping, masking and
    entropy margins are comfortable.  Returns (seqs, plens, lp_old, lp_ref, lp_samp, seed used,
    margins)."""
    V = c["vocab_size"]
    plens = [PLENS[i] for i in range(P) for _ in range(G)]
    sot = torch.arange(P * G).repeat_interleave(torch.tensor([n for r in CLENS for n in r]))
    for s in range(SEED, SEED + 400):
        g = torch.Generator().manual_seed(s)
        seqs = []
        for i in range(P):
            body = torch.randint(2, V, (PLENS[i] - 1,), generator=g).tolist()
            prompt = [c["bos_token_id"]] + body
            for j in range(G):
                seqs.append(prompt + torch.randint(2, V, (CLENS[i][j],), generator=g).tolist())
        with torch.no_grad():
            lp, ent, margin, _ = policy(c, p, seqs, plens)
        if margin < MIN_MARGIN:
            continue
        d_old = (torch.rand(lp.shape, generator=g, dtype=torch.float64) - 0.5) * 0.9
        d_ref = (torch.rand(lp.shape, generator=g, dtype=torch.float64) - 0.5) * 1.0
        d_samp = (torch.rand(lp.shape, generator=g, dtype=torch.float64) - 0.3) * 1.2
        lp_old = (lp + d_old).float().double()
        lp_ref = (lp + d_ref).float().double()
        lp_samp = (lp + d_samp).float().double()
        rm = rho_margin(lp, lp_old, sot)
        om = opm_margin(lp, lp_samp, sot)
        em = ent_margin(ent, sot)
        if rm < RHO_MARGIN or om < OPM_MARGIN or em < ENT_MARGIN:
            continue
        return seqs, plens, lp_old, lp_ref, lp_samp, s, (margin, rm, om, em)
    raise SystemExit("grpo_ref: no seed in [%d, %d) gives margins %g / %g / %g / %g"
                     % (SEED, SEED + 400, MIN_MARGIN, RHO_MARGIN, OPM_MARGIN, ENT_MARGIN))


def check_coverage(lp, lp_old, lp_samp, adv_tok, seq_of_tok):
    """The batch must exercise every branch: both clip sides and both unclipped sides of the
    min, CISPO's cap on both sides, and the off-policy mask both ways."""
    for c in CASES:
        rho = ratios(c, lp, lp_old, seq_of_tok)
        if family(c)["loss"] == "cispo":
            cap = f32(c[4])
            want = {"rho above the cap": (rho > cap).any(), "rho below it": (rho < cap).any()}
        else:
            el, eh = f32(c[3]), f32(c[4])
            want = {"A>0 clipped above": ((adv_tok > 0) & (rho > 1 + eh)).any(),
                    "A<0 clipped below": ((adv_tok < 0) & (rho < 1 - el)).any(),
                    "A>0 below 1-eps (unclipped)": ((adv_tok > 0) & (rho < 1 - el)).any(),
                    "A<0 above 1+eps (unclipped)": ((adv_tok < 0) & (rho > 1 + eh)).any()}
        d = f32(family(c)["off_policy_mask_threshold"])
        if d > 0:
            n = int(seq_of_tok.max()) + 1
            neg = [i for i in range(n) if adv_tok[seq_of_tok == i][0] < 0]
            kl = [(lp_samp[seq_of_tok == i] - lp[seq_of_tok == i]).mean().item() for i in neg]
            want["A<0 masked"] = any(v > d for v in kl)
            want["A<0 kept"] = any(v <= d for v in kl)
        for what, hit in want.items():
            if not hit:
                raise SystemExit("grpo_ref: case %s: no token with %s" % (c[0], what))


def gdpo_advantages():
    """multi_objective_aggregation = "normalize_then_sum" on REWARDS2: every reward normalised
    within its group (std with n - 1, + 1e-4), summed with WEIGHTS2, then the whole batch
    normalised the same way (float64)."""
    r = torch.tensor(REWARDS2, dtype=torch.float64)           # [P, G, K]
    z = (r - r.mean(dim=1, keepdim=True)) / (r.std(dim=1, unbiased=True, keepdim=True) + 1e-4)
    a = (z * torch.tensor(WEIGHTS2, dtype=torch.float64)).sum(-1).reshape(-1)
    return (a - a.mean()) / (a.std(unbiased=True) + 1e-4)


def make_fixture(top, check=False):
    """Writes top/data/grpo/ (top = tests/) and prints one line per case."""
    torch.set_num_threads(1)
    c, p0 = ref.load_checkpoint(os.path.join(top, "data", MODEL))
    seqs, plens, lp_old, lp_ref, lp_samp, used, margins = draw_batch(c, p0)
    nseq = len(seqs)
    lens = [len(s) for s in seqs]
    lens_c = torch.tensor([n - pl for n, pl in zip(lens, plens)], dtype=torch.float64)
    seq_of_tok = torch.arange(nseq).repeat_interleave(lens_c.long())
    adv = {1: advantages(REWARDS, 1).float().double(), 0: advantages(REWARDS, 0).float().double()}
    check_coverage(policy(c, p0, seqs, plens)[0].detach(), lp_old, lp_samp, adv[1][seq_of_tok],
                   seq_of_tok)

    names = ref.trainable_names(c)
    used_names = ref.main_names(c)
    q = dict(p0)
    for n in names:
        q[n] = p0[n].detach().clone().requires_grad_(True)
    lp, ent, _, mtp_sum = policy(c, q, seqs, plens)
    mtp_ce = mtp_sum / lp.numel()

    f, i = "F32", "I32"
    ex = [("tokens", torch.tensor([t for s in seqs for t in s]), i),
          ("plens", torch.tensor(plens), i), ("lens", torch.tensor(lens), i),
          ("rewards", torch.tensor(REWARDS), f), ("adv", adv[1], f), ("adv_noscale", adv[0], f),
          ("lp", lp, f), ("lp_old", lp_old, f), ("lp_ref", lp_ref, f), ("lp_samp", lp_samp, f),
          ("rewards2", torch.tensor(REWARDS2), f), ("weights2", torch.tensor(WEIGHTS2), f),
          ("adv_gdpo", gdpo_advantages(), f)]
    lines = []
    for case in CASES:
        name, std_scale = case[0], case[6]
        J, scale, kl, clip, kept, masked = objective(
            case, lp, lp_old, lp_ref, lp_samp, ent, adv[std_scale][seq_of_tok], seq_of_tok,
            lens_c, nseq)
        lam = f32(case[9])
        loss = -J + lam * mtp_ce if lam > 0 else -J
        grads = torch.autograd.grad(loss, [q[n] for n in names], retain_graph=True,
                                    allow_unused=True)
        gd = dict(zip(names, grads))
        for n in names:
            if lam == 0 and n not in used_names and gd[n] is not None and gd[n].abs().max() > 0:
                raise SystemExit("grpo_ref: %s has a gradient; the MTP layers must not" % n)
        ex += [(name + ".objective", J.reshape(1), f),
               (name + ".objective_scale", scale.reshape(1), f), (name + ".kl", kl.reshape(1), f),
               (name + ".clip_frac", clip.reshape(1), f),
               (name + ".entropy", ent.mean().reshape(1), f),
               (name + ".mtp", (mtp_ce if lam > 0 else torch.zeros(())).reshape(1), f),
               (name + ".entropy_kept", torch.tensor([kept]), f),
               (name + ".masked", torch.tensor([masked]), f)]
        if case[8] == "head":
            ex += [(name + ".grad." + n, gd[n], f) for n in HEAD]
        elif case[8]:
            ex += [(name + ".grad." + n, gd[n], f) for n in (names if lam > 0 else used_names)]
        lines.append("  %-9s J % .9f  J_scale %.6f  kl %.6f  clip %.4f  kept %.3f  masked %.3f"
                     % (name, J.item(), scale.item(), kl.item(), clip.item(), kept, masked))

    folder = os.path.join(top, "data", "grpo")
    os.makedirs(folder, exist_ok=True)
    meta = {"model": "../" + MODEL, "prompts": P, "group": G, "seed": used,
            "cases": [dict(zip(CASE_KEYS, cs[:10]), **family(cs)) for cs in CASES]}
    ref.write_json(os.path.join(folder, "grpo.json"), meta)
    path = os.path.join(folder, "expected.safetensors")
    ref.write_safetensors(path, ex)
    if check:
        ref.check_written(path, ex)
        with open(os.path.join(folder, "grpo.json")) as fh:
            assert json.load(fh) == meta
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in os.listdir(folder))
    print("%-13s seed %d  margins: routing %.4g  rho %.4g  off-policy %.4g  entropy %.4g  "
          "%d sequences  %d tokens  %d bytes" % (("grpo", used) + margins + (nseq, lp.numel(),
                                                                           size)))
    print("\n".join(lines))


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    make_fixture(top, "--check" in sys.argv[1:])


if __name__ == "__main__":
    main()
