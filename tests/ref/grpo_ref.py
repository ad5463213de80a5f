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

# name, agg, beta, eps_low, eps_high, max_new, std_scale, micro, grads, mtp_lambda.  A full
# gradient is ~180 kB; const_kl keeps only its scalars so that the fixture stays under 1 MB
# (the constant weight and the KL term each have their gradient checked in other cases).
CASES = [
    ("seq_kl",   "seq",   0.1, 0.2, 0.2,  8, 1, 5,  True,  0.0),  # GRPO as in DeepSeekMath
    ("seq",      "seq",   0.0, 0.2, 0.2,  8, 1, 12, False, 0.0),
    ("token_kl", "token", 0.1, 0.2, 0.28, 8, 1, 5,  True,  0.0),
    ("token",    "token", 0.0, 0.2, 0.28, 8, 1, 1,  True,  0.0),  # DAPO: clip-higher, no KL
    ("const_kl", "const", 0.1, 0.2, 0.2,  9, 0, 5,  False, 0.0),
    ("const",    "const", 0.0, 0.2, 0.2,  8, 0, 7,  True,  0.0),  # Dr. GRPO: no std, no KL
    ("mtp",      "seq",   0.1, 0.2, 0.2,  8, 1, 5,  True,  0.3),  # + the MTP loss
]
CASE_KEYS = ("name", "agg", "beta", "eps_low", "eps_high", "max_new", "std_scale", "micro",
             "grads", "mtp_lambda")


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


def objective(case, lp, lp_old, lp_ref, adv_tok, seq_of_tok, lens_c, nseq):
    """J, J_scale, kl, clip_frac for one case (see the module docstring); lp differentiable."""
    _, agg, beta, el, eh, max_new = case[:6]
    beta, el, eh = f32(beta), f32(el), f32(eh)
    rho = torch.exp(lp - lp_old)
    cl = rho.clamp(1 - el, 1 + eh)
    sur = torch.minimum(rho * adv_tok, cl * adv_tok)
    clipped = (cl * adv_tok < rho * adv_tok).double()
    if beta > 0:
        k3 = torch.exp(lp_ref - lp) - (lp_ref - lp) - 1
    else:
        k3 = torch.zeros_like(lp)
    per = sur - beta * k3
    ntok = lp.numel()
    if agg == "seq":
        w = 1.0 / (nseq * lens_c[seq_of_tok])
    elif agg == "token":
        w = torch.full_like(lp, 1.0 / ntok)
    elif agg == "const":
        w = torch.full_like(lp, 1.0 / (nseq * max_new))
    else:
        raise ValueError("objective: unknown aggregation %r" % agg)
    J = (w * per).sum()
    return J, (w * per.abs()).sum().detach(), k3.mean().detach(), clipped.mean()


def rho_margin(lp, lp_old):
    """Smallest distance of any rho from any clip boundary of any case."""
    rho = torch.exp(lp - lp_old)
    bounds = {1 - f32(c[3]) for c in CASES} | {1 + f32(c[4]) for c in CASES}
    return min((rho - b).abs().min().item() for b in bounds)


def draw_batch(c, p):
    """Tokens and offsets for the first seed from SEED on whose routing and clipping margins
    are comfortable.  Returns (seqs, plens, lp_old, lp_ref, seed used, margins)."""
    V = c["vocab_size"]
    plens = [PLENS[i] for i in range(P) for _ in range(G)]
    for s in range(SEED, SEED + 200):
        g = torch.Generator().manual_seed(s)
        seqs = []
        for i in range(P):
            body = torch.randint(2, V, (PLENS[i] - 1,), generator=g).tolist()
            prompt = [c["bos_token_id"]] + body
            for j in range(G):
                seqs.append(prompt + torch.randint(2, V, (CLENS[i][j],), generator=g).tolist())
        with torch.no_grad():
            lp, _, margin, _ = policy(c, p, seqs, plens)
        if margin < MIN_MARGIN:
            continue
        d_old = (torch.rand(lp.shape, generator=g, dtype=torch.float64) - 0.5) * 0.9
        d_ref = (torch.rand(lp.shape, generator=g, dtype=torch.float64) - 0.5) * 1.0
        lp_old = (lp + d_old).float().double()
        lp_ref = (lp + d_ref).float().double()
        rm = rho_margin(lp, lp_old)
        if rm < RHO_MARGIN:
            continue
        return seqs, plens, lp_old, lp_ref, s, (margin, rm)
    raise SystemExit("grpo_ref: no seed in [%d, %d) gives margins %g / %g"
                     % (SEED, SEED + 200, MIN_MARGIN, RHO_MARGIN))


def check_coverage(lp, lp_old, adv_tok):
    """The batch must exercise both clip sides and both unclipped sides of the min."""
    for c in CASES:
        el, eh = f32(c[3]), f32(c[4])
        rho = torch.exp(lp - lp_old)
        want = {"A>0 clipped above": ((adv_tok > 0) & (rho > 1 + eh)).any(),
                "A<0 clipped below": ((adv_tok < 0) & (rho < 1 - el)).any(),
                "A>0 below 1-eps (unclipped)": ((adv_tok > 0) & (rho < 1 - el)).any(),
                "A<0 above 1+eps (unclipped)": ((adv_tok < 0) & (rho > 1 + eh)).any()}
        for what, hit in want.items():
            if not hit:
                raise SystemExit("grpo_ref: case %s: no token with %s" % (c[0], what))


def make_fixture(top, check=False):
    """Writes top/data/grpo/ (top = tests/) and prints one line per case."""
    torch.set_num_threads(1)
    c, p0 = ref.load_checkpoint(os.path.join(top, "data", MODEL))
    seqs, plens, lp_old, lp_ref, used, (margin, rm) = draw_batch(c, p0)
    nseq = len(seqs)
    lens = [len(s) for s in seqs]
    lens_c = torch.tensor([n - pl for n, pl in zip(lens, plens)], dtype=torch.float64)
    seq_of_tok = torch.arange(nseq).repeat_interleave(lens_c.long())
    adv = {1: advantages(REWARDS, 1).float().double(), 0: advantages(REWARDS, 0).float().double()}
    check_coverage(policy(c, p0, seqs, plens)[0].detach(), lp_old, adv[1][seq_of_tok])

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
          ("lp", lp, f), ("lp_old", lp_old, f), ("lp_ref", lp_ref, f)]
    lines = []
    for case in CASES:
        name, std_scale = case[0], case[6]
        J, scale, kl, clip = objective(case, lp, lp_old, lp_ref, adv[std_scale][seq_of_tok],
                                seq_of_tok, lens_c, nseq)
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
               (name + ".mtp", (mtp_ce if lam > 0 else torch.zeros(())).reshape(1), f)]
        if case[8]:
            ex += [(name + ".grad." + n, gd[n], f) for n in (names if lam > 0 else used_names)]
        lines.append("  %-9s J % .9f  J_scale %.6f  kl %.6f  clip %.4f"
                     % (name, J.item(), scale.item(), kl.item(), clip.item()))

    folder = os.path.join(top, "data", "grpo")
    os.makedirs(folder, exist_ok=True)
    meta = {"model": "../" + MODEL, "prompts": P, "group": G, "seed": used,
            "cases": [dict(zip(CASE_KEYS, cs)) for cs in CASES]}
    ref.write_json(os.path.join(folder, "grpo.json"), meta)
    path = os.path.join(folder, "expected.safetensors")
    ref.write_safetensors(path, ex)
    if check:
        ref.check_written(path, ex)
        with open(os.path.join(folder, "grpo.json")) as fh:
            assert json.load(fh) == meta
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in os.listdir(folder))
    print("%-13s seed %d  margin %.4g  rho margin %.4g  %d sequences  %d tokens  %d bytes"
          % ("grpo", used, margin, rm, nseq, lp.numel(), size))
    print("\n".join(lines))


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    make_fixture(top, "--check" in sys.argv[1:])


if __name__ == "__main__":
    main()
