/* t_determinism.c — the thread count changes how fast, never what: training steps and decoding
 * on 1 thread and on 2 give bit-identical weights, expert loads and logits, and a second fresh
 * run repeats the first to the bit.  The products here are large enough to be cut into pieces
 * (ops.c: pieces), both by rows (training) and by outputs (decoding one token through the
 * dense MLP, on the gemv path), so that the cut's independence from the thread count is what
 * is checked. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "r1_generate.h"
#include "r1_model.h"
#include "r1_optim.h"
#include "r1_rng.h"
#include "tap.h"

enum { B = 4, T = 64, STEPS = 3, PREFILL = 8, DECODE = 4 };

typedef struct {
    float *params, *logits;
    float load[64];
    size_t numel, nlogits;
} run_out;

static void run(int threads, run_out *o)
{
    r1_set_threads(threads);
    r1_config c;
    r1_config_preset(&c, "small", NULL);
    c.num_hidden_layers = 2; /* one dense layer (1408 wide) and one MoE layer */
    r1_model *m;
    r1_error err = {0};
    if (r1_model_new(&m, &c, &err) != R1_OK)
        { diag("small model: %s", err.msg); exit(1); };
    r1_model_init(m, 7);
    r1_adamw_cfg oc = r1_adamw_defaults();
    oc.lr = 1e-3f;
    oc.warmup = 1;
    oc.total = STEPS;
    r1_adamw *opt;
    r1_adamw_new(&opt, m, &oc, NULL);
    r1_rng r;
    r1_rng_seed(&r, 11);
    int32_t tok[B * T];
    r1_fwd_opts fo = r1_fwd_defaults();
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < B * T; i++)
            tok[i] = 3 + (int32_t)r1_rng_below(&r, (uint64_t)c.vocab_size - 3);
        r1_model_zero_grad(m);
        r1_model_forward(m, tok, B, T, &fo, NULL, NULL);
        r1_model_backward(m, NULL);
        r1_adamw_step(opt, m, NULL);
        r1_model_balance_update(m, 1e-3f);
    }
    o->numel = r1_model_numel(m);
    o->params = malloc(sizeof(float) * o->numel);
    memcpy(o->params, r1_model_params(m), sizeof(float) * o->numel);
    memset(o->load, 0, sizeof o->load);
    r1_model_expert_load(m, 1, o->load);

    /* decoding: a prefill, then one token at a time */
    r1_decoder *d;
    if (r1_decoder_new(&d, m, 1, PREFILL + DECODE, &err) != R1_OK)
        { diag("decoder: %s", err.msg); exit(1); };
    int V = c.vocab_size, row = 0;
    o->nlogits = (size_t)(PREFILL + DECODE) * V;
    o->logits = calloc(o->nlogits, sizeof(float));
    r1_decoder_step(d, &row, 1, tok, PREFILL, o->logits, &err);
    for (int i = 0; i < DECODE; i++)
        r1_decoder_step(d, &row, 1, tok + PREFILL + i, 1, o->logits + (size_t)(PREFILL + i) * V,
                        &err);
    r1_decoder_free(d);
    r1_adamw_free(opt);
    r1_model_free(m);
}

static int same(const run_out *a, const run_out *b, const char *what)
{
    int p = a->numel == b->numel && !memcmp(a->params, b->params, sizeof(float) * a->numel);
    ok(p, "%s: the weights after %d training steps are bit-identical", what, STEPS);
    ok(!memcmp(a->load, b->load, sizeof a->load), "%s: the expert loads are identical", what);
    int l = a->nlogits == b->nlogits && !memcmp(a->logits, b->logits, sizeof(float) * a->nlogits);
    ok(l, "%s: the decoder's logits (prefill and single tokens) are bit-identical", what);
    return p && l;
}

int main(void)
{
    plan(6);
    run_out one, two, again;
    run(1, &one);
    run(2, &two);
    run(2, &again);
    same(&one, &two, "1 thread against 2");
    same(&two, &again, "two fresh runs on 2 threads");
    r1_set_threads(0);
    free(one.params), free(one.logits), free(two.params), free(two.logits);
    free(again.params), free(again.logits);
    return done_testing();
}
