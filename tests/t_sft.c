/* t_sft.c — pretraining and cold-start SFT (r1_sft.h): settings, the SFT mask, packing, the
 * data stream's determinism, the held-out set, evaluation on hand-made completions, and exact
 * resume (after a cancel and after a real kill of a child process) compared bit for bit with a
 * run that was never stopped.  Tiny shapes: the tiny preset cut to 2 layers, 4 x 128 tokens. */
#include <config.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "r1_rewards.h"
#include "r1_sft.h"
#include "r1_train.h"
#include "tap.h"
#include "testutil.h"


static r1_sft_settings small_settings(r1_sft_stage stage, const char *tasks)
{
    r1_sft_settings s = r1_sft_defaults(stage);
    r1_sft_parse_tasks(&s, tasks, NULL);
    s.seq_len = 128;
    s.batch = 4;
    s.steps = 8;
    s.opt.warmup = 2;
    s.opt.total = s.steps;
    s.eval_every = 0;
    s.eval_n = 2;
    s.eval_above = 0;
    s.save_every = 3;
    s.seed = 5;
    return s;
}

static r1_model *tiny_model(void)
{
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    c.num_hidden_layers = 2; /* one dense + one MoE layer */
    r1_model *m = NULL;
    r1_model_new(&m, &c, NULL);
    r1_model_init(m, 3);
    return m;
}

/* The metrics lines of a run: loss, loss_main, loss_mtp, grad_norm, lr as doubles, per step. */
typedef struct {
    int n;
    long step[64];
    double v[64][5];
    int has_eval[64];
} curve;

static int read_curve(const char *dir, curve *c)
{
    char p[512];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    memset(c, 0, sizeof *c);
    if (!f)
        return 0;
    char line[65536];
    while (c->n < 64 && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            break;
        static const char *keys[] = {"loss", "loss_main", "loss_mtp", "grad_norm", "lr"};
        c->step[c->n] = (long)json_integer_value(json_object_get(j, "step"));
        for (int k = 0; k < 5; k++)
            c->v[c->n][k] = json_real_value(json_object_get(j, keys[k]));
        c->has_eval[c->n] = json_object_get(j, "eval.accuracy") != NULL;
        c->n++;
        json_decref(j);
    }
    fclose(f);
    return c->n;
}

static int same_curve(const curve *a, const curve *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (a->step[i] != b->step[i] || memcmp(a->v[i], b->v[i], sizeof a->v[i]) != 0)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ settings */

static void test_settings(void)
{
    r1_error err = {0};
    r1_sft_settings s = r1_sft_defaults(R1_SFT_PRETRAIN);
    ok(r1_sft_validate(&s, NULL, &err) == R1_OK, "pretrain defaults validate");
    r1_sft_settings c = r1_sft_defaults(R1_SFT_COLDSTART);
    ok(r1_sft_validate(&c, NULL, &err) == R1_OK, "sft defaults validate");
    ok(c.sft_docs > 0 && c.plain_frac == 0 && c.mix_frac == 0,
       "sft defaults: a finite clean set, no plain or mixed documents");

    ok(r1_sft_parse_tasks(&s, "add:2-4@2.5,mul:3,bool", &err) == R1_OK, "a task list parses");
    ok(s.ntasks == 3 && s.tasks[0].dmin == 2 && s.tasks[0].dmax == 4 &&
           s.tasks[0].weight == 2.5 && s.tasks[1].dmin == 3 && s.tasks[1].dmax == 3 &&
           s.tasks[2].dmin == 1 && s.tasks[2].dmax == r1_task_train_difficulty(s.tasks[2].task),
       "ranges, single difficulties, weights and the default range");
    char buf[256];
    r1_sft_format_tasks(&s, buf, sizeof buf);
    is_str(buf, "add:2-4@2.5,mul:3-3@1,bool:1-3@1", "the list formats back");
    ok(r1_sft_parse_tasks(&s, "add:0-3", &err) == R1_EINVAL, "difficulty 0 is refused");
    like(err.msg, "add:0-3", "naming the entry");
    ok(r1_sft_parse_tasks(&s, "add:1-11", &err) == R1_EINVAL, "a difficulty above the task's");
    ok(r1_sft_parse_tasks(&s, "add@0", &err) == R1_EINVAL, "a zero weight");
    ok(r1_sft_parse_tasks(&s, "nope:1", &err) == R1_ENOTFOUND, "an unknown task");
    ok(r1_sft_parse_tasks(&s, "add,add:2", &err) == R1_EINVAL,
       "a task listed twice with overlapping difficulties");
    ok(strstr(err.msg, "overlapping difficulties (1-3 and 2-2)") != NULL, "... naming both: %s",
       err.msg);
    ok(r1_sft_parse_tasks(&s, "add:1-2x", &err) == R1_EINVAL, "trailing junk");
    ok(s.ntasks == 3, "failures leave the list as it was");
    ok(r1_sft_parse_tasks(&s, "add:1-3@6,add:4", &err) == R1_OK && s.ntasks == 2 &&
           s.tasks[0].weight == 6 && s.tasks[1].dmin == 4,
       "a task listed twice for different difficulties, weighed apart");

    s.seed = 12345678901234567ull;
    s.opt.lr = 1.2345e-3f;
    s.plain_frac = 0.3;
    snprintf(s.out_dir, sizeof s.out_dir, "some/dir");
    char *j = r1_sft_settings_json(&s);
    r1_sft_settings back;
    memset(&err, 0, sizeof err);
    ok(j && r1_sft_settings_parse(&back, j, &err) == R1_OK, "settings JSON reads back (%s)",
       err.msg);
    char *j2 = r1_sft_settings_json(&back);
    ok(j && j2 && strcmp(j, j2) == 0 && back.seed == s.seed && back.opt.lr == s.opt.lr,
       "identically (u64 seed and float lr exact)");
    free(j);
    free(j2);
    ok(r1_sft_settings_parse(&back, "{\"batch\": \"x\"}", &err) == R1_EFORMAT,
       "a wrongly typed key is refused");
    like(err.msg, "batch", "naming the key");
    s = r1_sft_defaults(R1_SFT_PRETRAIN);
    s.eval_n = R1_SFT_HELDOUT + 1;
    ok(r1_sft_validate(&s, NULL, &err) == R1_EINVAL, "eval_n above the held-out size");
    r1_config cfg;
    r1_config_preset(&cfg, "tiny", NULL);
    s = r1_sft_defaults(R1_SFT_PRETRAIN);
    s.seq_len = cfg.max_position_embeddings + 1;
    ok(r1_sft_validate(&s, &cfg, &err) == R1_EINVAL, "seq_len beyond the model's positions");
    like(err.msg, "max_position_embeddings", "says why");
}

/* ------------------------------------------------------------------ documents */

static int32_t ids[R1_SFT_DOC_MAX], ids2[R1_SFT_DOC_MAX], pids[R1_SFT_DOC_MAX];
static float w[R1_SFT_DOC_MAX], w2[R1_SFT_DOC_MAX];

/* A task listed twice for different difficulties: one evaluation cell per difficulty, in
 * training where either entry trains it, and its documents drawn by the entries' weights. */
static void test_split_task(r1_tokenizer *tok)
{
    r1_sft_settings s = small_settings(R1_SFT_COLDSTART, "add:1-2@9,add:4");
    s.eval_above = 2;
    r1_sft_data *d = NULL;
    r1_error err = {0};
    ok(r1_sft_data_new(&d, &s, tok, &err) == R1_OK, "sft data from add:1-2@9,add:4");
    int n = r1_sft_data_ncells(d), seen[8] = {0}, train[8] = {0}, dup = 0;
    for (int i = 0; i < n; i++) {
        int diff, in;
        r1_sft_data_cell(d, i, NULL, &diff, &in);
        if (diff >= 1 && diff < 8) {
            dup |= seen[diff];
            seen[diff] = 1;
            train[diff] = in;
        }
    }
    ok(n == 6 && !dup && seen[1] && seen[6], "cells add 1..6 once each (%d)", n);
    ok(train[1] && train[2] && !train[3] && train[4] && !train[5] && !train[6],
       "trained: 1, 2 and 4");
    int count[8] = {0};
    for (int64_t pos = 0; pos < 400; pos++) {
        r1_sft_doc info;
        if (r1_sft_data_doc(d, pos, NULL, NULL, &info, &err) == R1_OK && info.difficulty < 8)
            count[info.difficulty]++;
    }
    ok(count[3] == 0 && count[4] > 10 && count[4] < 80 && count[1] + count[2] > 300,
       "documents by weight: d1+d2 %d, d4 %d, d3 %d", count[1] + count[2], count[4], count[3]);
    r1_sft_data_free(d);
}

static void test_sft_mask(r1_tokenizer *tok)
{
    r1_sft_settings s = small_settings(R1_SFT_COLDSTART, "add:1-3,mul:1-2,sort:1,bool:1-2");
    r1_sft_data *d = NULL;
    r1_error err = {0};
    ok(r1_sft_data_new(&d, &s, tok, &err) == R1_OK, "sft data");
    int good = 1, prompt_ok = 1, lang_ok = 1, spaced = 0, bare = 0, canonical = 0;
    for (int64_t pos = 0; pos < 300; pos++) {
        r1_sft_doc info;
        if (r1_sft_data_doc(d, pos, ids, w, &info, &err) != R1_OK) {
            good = 0;
            break;
        }
        int as = info.assistant_start, n = info.n;
        /* weights exactly: 0 on [0, as), 1 on [as, n) */
        for (int i = 0; i < n; i++)
            good &= w[i] == (i >= as ? 1.0f : 0.0f);
        good &= !info.plain && !info.mixed && as > 0 && as < n;
        good &= ids[as - 1] == R1_TOK_THINK && ids[as - 2] == R1_TOK_ASSISTANT;
        good &= ids[n - 1] == R1_TOK_EOS && ids[0] == R1_TOK_BOS;
        /* the masked part is exactly the generation prompt */
        int pn = 0;
        r1_tokenizer_encode_prompt(tok, info.prompt, pids, R1_SFT_DOC_MAX, &pn, NULL);
        prompt_ok &= pn == as && memcmp(pids, ids, sizeof(int32_t) * as) == 0;
        /* the prompt asks for the language the reasoning is in */
        char *text = NULL;
        r1_tokenizer_decode(tok, ids + as, n - as, &text, NULL);
        r1_reward_sample rs = {0};
        rs.completion = text;
        rs.lang = info.lang;
        int asks = strstr(info.prompt, info.lang == R1_LANG_EN ? "English" : "espanol") != NULL;
        lang_ok &= asks || info.lang == R1_LANG_EN; /* English may go unasked */
        lang_ok &= r1_reward_language(&rs, NULL) == 1.0 || r1_reward_language(&rs, NULL) == 0;
        bare += !asks;
        spaced += strstr(info.prompt, " + ") || strstr(info.prompt, " * ") ||
                  strstr(info.prompt, " - ");
        canonical += asks && !strstr(info.prompt, " + ") &&
                     !strstr(info.prompt, " - ") && !strstr(info.prompt, " * ");
        free(text);
    }
    ok(spaced > 5 && bare > 5 && canonical > 150,
       "sft: some questions are posed as people type them: %d spaced, %d without the language "
       "request, %d as the tasks write them", spaced, bare, canonical);
    ok(good, "sft: loss weights are 0 on the prompt and 1 from assistant_start through <|eos|>");
    ok(prompt_ok, "sft: the weight-0 tokens are exactly the generation prompt");
    ok(lang_ok, "sft: the prompt asks for the language of a clean (one-language) reasoning");
    /* the cold-start set repeats after sft_docs documents */
    r1_sft_doc a, b;
    r1_sft_data_doc(d, 7, ids, w, &a, NULL);
    r1_sft_data_doc(d, 7 + s.sft_docs, ids2, w2, &b, NULL);
    ok(a.n == b.n && memcmp(ids, ids2, sizeof(int32_t) * a.n) == 0,
       "sft: document pos and pos + sft_docs are the same (a finite set)");
    r1_sft_data_free(d);
}

static void test_pretrain_docs(r1_tokenizer *tok)
{
    r1_sft_settings s = small_settings(R1_SFT_PRETRAIN, "add:1-3,mul:1-2,linear:1-2");
    s.plain_frac = 0.3;
    s.mix_frac = 0.3;
    r1_sft_data *d = NULL;
    r1_sft_data_new(&d, &s, tok, NULL);
    int weights_ok = 1, nplain = 0, nmixed = 0, plain_ok = 1, both = 0, langs[2] = {0, 0};
    int N = 400;
    for (int64_t pos = 0; pos < N; pos++) {
        r1_sft_doc info;
        r1_sft_data_doc(d, pos, ids, w, &info, NULL);
        weights_ok &= w[0] == 0;
        for (int i = 1; i < info.n; i++)
            weights_ok &= w[i] == 1;
        langs[info.lang]++;
        nplain += info.plain;
        nmixed += info.mixed;
        if (info.plain) {
            for (int i = 1; i < info.n - 1; i++)
                plain_ok &= !r1_tokenizer_is_special(tok, ids[i]);
            plain_ok &= ids[0] == R1_TOK_BOS && ids[info.n - 1] == R1_TOK_EOS;
        }
        if (info.mixed) {
            char *text = NULL;
            r1_tokenizer_decode(tok, ids, info.n, &text, NULL);
            r1_reward_sample rs = {0};
            rs.completion = text;
            rs.think = text;
            rs.lang = R1_LANG_EN;
            double en = r1_reward_language(&rs, NULL);
            rs.lang = R1_LANG_ES;
            double es = r1_reward_language(&rs, NULL);
            both += en < 0.95 && es < 0.95;
            free(text);
        }
    }
    ok(weights_ok, "pretrain: loss on every token but the first");
    ok(nplain > N * 0.2 && nplain < N * 0.4, "pretrain: about 30%% plain-text documents (%d/%d)",
       nplain, N);
    ok(plain_ok, "pretrain: plain documents hold no chat tokens between <|bos|> and <|eos|>");
    ok(nmixed > N * 0.2 && nmixed < N * 0.4, "pretrain: about 30%% mixed documents (%d/%d)",
       nmixed, N);
    ok(both > nmixed / 2, "pretrain: mixed documents hold both languages (%d/%d)", both, nmixed);
    ok(langs[0] > N / 3 && langs[1] > N / 3, "pretrain: both languages asked for (%d en, %d es)",
       langs[0], langs[1]);
    r1_sft_data_free(d);
}

/* Packs and checks the first-fit invariants: rows are whole documents of the window, each
 * used at most once and in stream order within a row, then pads; every document not packed is
 * longer than a row or fits in no row at the end; the batch ends after 8 such misses. */
static void test_packing(r1_tokenizer *tok)
{
    r1_sft_settings s = small_settings(R1_SFT_COLDSTART, "add:2-3,mul:1-2,bool:2-3");
    s.sft_docs = 0;
    s.batch = 6;
    r1_sft_data *d = NULL, *d2 = NULL;
    r1_sft_data_new(&d, &s, tok, NULL);
    r1_sft_data_new(&d2, &s, tok, NULL);
    int B = s.batch, T = s.seq_len;
    int32_t *tk = malloc(sizeof(int32_t) * B * T);
    float *wt = malloc(sizeof(float) * B * T);
    int64_t pos = 0;
    int whole = 1, pads = 1, counted = 1, dropped_ok = 1, misses_ok = 1, accounted = 1;
    long total_dropped = 0, total_long = 0, used_tokens = 0;
    for (int k = 0; k < 10; k++) {
        int64_t p0 = pos;
        long ntok = 0, dropped = 0;
        r1_sft_data_batch(d, &pos, tk, wt, &ntok, &dropped, NULL);
        total_dropped += dropped;
        long nz = 0;
        for (int i = 0; i < B * T; i++)
            nz += wt[i] != 0;
        counted &= nz == ntok;
        int nw = (int)(pos - p0), *used = calloc((size_t)nw, sizeof(int)), fill[8];
        /* walk each row: at every offset, the next unused document of the window that matches */
        for (int b = 0; b < B; b++) {
            int off = 0, last = -1;
            while (off < T && tk[b * T + off] == R1_TOK_BOS) {
                int found = -1;
                for (int i = last + 1; i < nw && found < 0; i++) {
                    r1_sft_doc info;
                    r1_sft_data_doc(d2, p0 + i, ids, w, &info, NULL);
                    if (!used[i] && off + info.n <= T &&
                        !memcmp(tk + b * T + off, ids, sizeof(int32_t) * info.n) &&
                        !memcmp(wt + b * T + off, w, sizeof(float) * info.n)) {
                        found = i;
                        off += info.n;
                    }
                }
                if (found < 0) {
                    whole = 0;
                    break;
                }
                used[found] = 1;
                last = found;
            }
            fill[b] = off;
            used_tokens += off;
            for (int i = off; i < T; i++)
                pads &= tk[b * T + i] == R1_TOK_PAD && wt[b * T + i] == 0;
        }
        int nused = 0, trailing = 0;
        for (int i = 0; i < nw; i++) {
            nused += used[i];
            if (used[i]) {
                trailing = 0;
                continue;
            }
            r1_sft_doc info;
            r1_sft_data_doc(d2, p0 + i, ids, w, &info, NULL);
            if (info.n > T) {
                total_long++;
                continue;
            }
            trailing++;
            for (int b = 0; b < B; b++)
                dropped_ok &= fill[b] + info.n > T; /* no row has room for it */
        }
        misses_ok &= trailing == 8;
        accounted &= nused + dropped == nw;
        free(used);
    }
    ok(whole, "packing: rows are whole documents of the window, each once, in stream order");
    ok(pads, "packing: the rest of a row is <|pad|> with weight 0");
    ok(accounted, "packing: every document looked at is packed or counted as dropped");
    ok(dropped_ok, "packing: a dropped document fits in no row of the finished batch");
    ok(misses_ok, "packing: a batch ends after 8 documents that found no room");
    ok(counted, "packing: ntok counts the non-zero weights");
    ok(total_long > 0, "packing: documents longer than seq_len are dropped, never cut (%ld)",
       total_long);
    double util = (double)used_tokens / (10.0 * B * T);
    /* documents of 60-200 tokens in rows of only 128 */
    ok(util > 0.85, "packing: first fit fills %.1f%% of the rows", 100 * util);
    free(tk), free(wt);
    r1_sft_data_free(d);
    r1_sft_data_free(d2);

    /* seq_len below every document: the packer stops with an error, not a hang */
    s = small_settings(R1_SFT_COLDSTART, "sort:5");
    s.seq_len = 16;
    s.batch = 1;
    r1_sft_data_new(&d, &s, tok, NULL);
    int32_t t16[16];
    float w16[16];
    r1_error err = {0};
    pos = 0;
    ok(r1_sft_data_batch(d, &pos, t16, w16, NULL, NULL, &err) == R1_EINVAL,
       "packing: no document fits seq_len -> R1_EINVAL");
    like(err.msg, "seq_len", "naming seq_len");
    r1_sft_data_free(d);
}

static void test_determinism(r1_tokenizer *tok)
{
    r1_sft_settings s = small_settings(R1_SFT_PRETRAIN, "add:1-3@3,mul:1-2,bool:1");
    r1_sft_data *a = NULL, *b = NULL;
    r1_sft_data_new(&a, &s, tok, NULL);
    r1_sft_data_new(&b, &s, tok, NULL);
    int B = s.batch, T = s.seq_len;
    int32_t *ta = malloc(sizeof(int32_t) * B * T), *tb = malloc(sizeof(int32_t) * B * T);
    float *wa = malloc(sizeof(float) * B * T), *wb = malloc(sizeof(float) * B * T);
    int64_t pa = 0, pb = 0, mid = 0;
    int same = 1;
    for (int k = 0; k < 6; k++) {
        r1_sft_data_batch(a, &pa, ta, wa, NULL, NULL, NULL);
        r1_sft_data_batch(b, &pb, tb, wb, NULL, NULL, NULL);
        same &= pa == pb && !memcmp(ta, tb, sizeof(int32_t) * B * T) &&
                !memcmp(wa, wb, sizeof(float) * B * T);
        if (k == 2)
            mid = pa;
    }
    ok(same, "the same settings give the same batches");
    /* a fresh handle started at a later position gives what the first one gave there */
    r1_sft_data *c = NULL;
    r1_sft_data_new(&c, &s, tok, NULL);
    int64_t pc = mid, pa2 = mid;
    r1_sft_data_batch(c, &pc, tb, wb, NULL, NULL, NULL);
    r1_sft_data_batch(a, &pa2, ta, wa, NULL, NULL, NULL);
    ok(pc == pa2 && !memcmp(ta, tb, sizeof(int32_t) * B * T),
       "the stream is a pure function of (seed, position): a fresh handle resumes it");
    /* reading documents out of order does not change them */
    r1_sft_doc i1, i2;
    r1_sft_data_doc(c, 40, ids, w, &i1, NULL);
    r1_sft_data_doc(c, 3, ids2, w2, NULL, NULL);
    r1_sft_data_doc(c, 40, ids2, w2, &i2, NULL);
    ok(i1.n == i2.n && !memcmp(ids, ids2, sizeof(int32_t) * i1.n), "random access is stable");
    s.seed = 6;
    r1_sft_data *e = NULL;
    r1_sft_data_new(&e, &s, tok, NULL);
    int64_t pe = 0;
    pa = 0;
    r1_sft_data_batch(e, &pe, tb, wb, NULL, NULL, NULL);
    r1_sft_data_batch(c, &pa, ta, wa, NULL, NULL, NULL);
    ok(memcmp(ta, tb, sizeof(int32_t) * B * T) != 0, "another seed gives another stream");
    free(ta), free(tb), free(wa), free(wb);
    r1_sft_data_free(a), r1_sft_data_free(b), r1_sft_data_free(c), r1_sft_data_free(e);
}

static void test_heldout(r1_tokenizer *tok)
{
    r1_sft_settings s = small_settings(R1_SFT_PRETRAIN, "add:2-3,mul:2,linear:2");
    s.eval_above = 1;
    r1_sft_data *d = NULL;
    r1_sft_data_new(&d, &s, tok, NULL);
    int nc = r1_sft_data_ncells(d);
    ok(nc == 2 + 1 + 1 + 3, "cells: the training difficulties plus eval_above each (%d)", nc);
    const r1_task *t;
    int diff, in;
    r1_sft_data_cell(d, 2, &t, &diff, &in);
    ok(!strcmp(r1_task_name(t), "add") && diff == 4 && !in, "add 4 is evaluated, above training");
    /* all held-out English prompts, checked by plain string comparison */
    int nh = nc * R1_SFT_HELDOUT;
    char (*held)[R1_TASK_PROMPT_MAX] = malloc((size_t)nh * R1_TASK_PROMPT_MAX);
    const r1_task **htask = malloc(sizeof *htask * nh);
    uint64_t *hseed = malloc(sizeof *hseed * nh);
    r1_task_sample smp, en;
    int detect = 1, fixed = 1;
    for (int i = 0; i < nc; i++)
        for (int j = 0; j < R1_SFT_HELDOUT; j++) {
            r1_sft_data_heldout(d, i, j, &smp, NULL);
            r1_task_generate(smp.task, smp.seed, smp.difficulty, R1_LANG_EN, &en, NULL);
            int k = i * R1_SFT_HELDOUT + j;
            memcpy(held[k], en.prompt, R1_TASK_PROMPT_MAX);
            htask[k] = smp.task;
            hseed[k] = smp.seed;
            detect &= r1_sft_data_is_heldout(d, smp.task, en.prompt);
            fixed &= (smp.seed >> 63) == 1;
        }
    ok(detect, "every held-out problem is in the exclusion set");
    ok(fixed, "held-out seeds have the top bit set");
    /* another training seed does not change the held-out set */
    r1_sft_settings s2 = s;
    s2.seed = 999;
    r1_sft_data *d2 = NULL;
    r1_sft_data_new(&d2, &s2, tok, NULL);
    r1_sft_data_heldout(d2, 3, 5, &smp, NULL);
    r1_task_sample smp1;
    r1_sft_data_heldout(d, 3, 5, &smp1, NULL);
    ok(!strcmp(smp.prompt, smp1.prompt), "the held-out set does not depend on the training seed");
    r1_sft_data_free(d2);
    int seed_clash = 0, prompt_clash = 0, N = 3000;
    for (int64_t pos = 0; pos < N; pos++) {
        r1_sft_doc info;
        r1_sft_data_doc(d, pos, ids, w, &info, NULL);
        r1_task_generate(info.task, info.task_seed, info.difficulty, R1_LANG_EN, &en, NULL);
        seed_clash += (info.task_seed >> 63) != 0;
        for (int k = 0; k < nh; k++)
            if (htask[k] == info.task && !strcmp(held[k], en.prompt))
                prompt_clash++;
    }
    ok(seed_clash == 0, "no training seed is a held-out seed (%d documents)", N);
    ok(prompt_clash == 0, "no training problem is a held-out problem (%d documents)", N);
    ok(r1_sft_data_heldout_redraws(d) >= 0 && r1_sft_data_heldout_hits(d) == 0,
       "large problem spaces never give up (%ld redraws)", r1_sft_data_heldout_redraws(d));
    free(held), free(htask), free(hseed);
    r1_sft_data_free(d);

    /* a tiny problem space (1-digit sums) redraws around the held-out problems */
    s = small_settings(R1_SFT_PRETRAIN, "add:1");
    r1_sft_data_new(&d, &s, tok, NULL);
    for (int64_t pos = 0; pos < 500; pos++)
        r1_sft_data_doc(d, pos, ids, w, NULL, NULL);
    ok(r1_sft_data_heldout_redraws(d) > 0, "a small space redraws (%ld redraws, %ld kept)",
       r1_sft_data_heldout_redraws(d), r1_sft_data_heldout_hits(d));
    r1_sft_data_free(d);
}

/* Typed questions: typed_frac's share of the documents poses the same problems in typed words
 * (no language request; the held-out check still sees them), 0 leaves every document as it
 * was, and eval_phrasing poses the held-out problems typed. */
static void test_typed(r1_tokenizer *tok)
{
    r1_sft_settings s = small_settings(R1_SFT_COLDSTART, "add:1-3,mul:2,linear:1,chat:1");
    r1_sft_settings t = s;
    t.typed_frac = 0.5;
    t.eval_phrasing = R1_PHRASING_TYPED;
    r1_error err = {0};
    ok(r1_sft_validate(&t, NULL, &err) == R1_OK, "typed_frac 0.5 and eval_phrasing typed are valid");
    r1_sft_settings bad = s;
    bad.typed_frac = 1.5;
    ok(r1_sft_validate(&bad, NULL, &err) != R1_OK && strstr(err.msg, "typed_frac 1.5"),
       "typed_frac 1.5 is refused by name");
    r1_sft_data *a = NULL, *b = NULL;
    r1_sft_data_new(&a, &s, tok, NULL);
    r1_sft_data_new(&b, &t, tok, NULL);
    int typed = 0, same_problem = 1, no_request = 1, N = 400;
    for (int64_t pos = 0; pos < N; pos++) {
        r1_sft_doc da, db;
        r1_sft_data_doc(a, pos, NULL, NULL, &da, NULL);
        r1_sft_data_doc(b, pos, NULL, NULL, &db, NULL);
        same_problem &= da.task == db.task && da.task_seed == db.task_seed &&
                        da.difficulty == db.difficulty && da.lang == db.lang && !da.typed;
        typed += db.typed;
        if (db.typed)
            no_request &= !strstr(db.prompt, "Think in") && !strstr(db.prompt, "Piensa en");
        else
            same_problem &= !strcmp(da.prompt, db.prompt);
    }
    ok(same_problem, "typed_frac poses the same problems (%d documents)", N);
    ok(typed > N * 3 / 10 && typed < N * 7 / 10 && no_request,
       "typed_frac 0.5: %d of %d documents typed, none asks for a language", typed, N);
    r1_task_sample ha, hb;
    r1_sft_data_heldout(a, 1, 3, &ha, NULL);
    r1_sft_data_heldout(b, 1, 3, &hb, NULL);
    ok(!ha.typed && hb.typed && !strcmp(ha.answer, hb.answer) && strcmp(ha.prompt, hb.prompt),
       "eval_phrasing typed: the same held-out problem, typed (\"%s\")", hb.prompt);
    r1_sft_data_free(a);
    r1_sft_data_free(b);
}

/* ------------------------------------------------------------------ evaluation by hand */

static void test_eval_scoring(void)
{
    const r1_task *add, *bl;
    r1_task_find(&add, "add", NULL);
    r1_task_find(&bl, "bool", NULL);
    r1_task_sample a, b;
    r1_task_generate(add, 11, 2, R1_LANG_EN, &a, NULL);
    r1_task_generate(bl, 12, 1, R1_LANG_ES, &b, NULL);
    char right[8192], wrong[512], spanish[8192];
    snprintf(right, sizeof right, "%s</think><answer>%s</answer><|eos|>", a.reasoning, a.answer);
    snprintf(wrong, sizeof wrong, "Add by columns.</think><answer>-1</answer>");
    r1_task_sample a_es;
    r1_task_generate(add, 11, 2, R1_LANG_ES, &a_es, NULL);
    snprintf(spanish, sizeof spanish, "%s</think><answer>%s</answer>", a_es.reasoning, a.answer);
    char bool_ok[8192];
    snprintf(bool_ok, sizeof bool_ok, "%s</think><answer>%s</answer><|eos|>", b.reasoning,
             b.answer);
    r1_sft_eval e;
    r1_sft_eval_reset(&e);
    r1_sft_eval_add(&e, &a, 1, right, 40);          /* right, English as asked */
    r1_sft_eval_add(&e, &a, 1, wrong, 20);          /* wrong answer, well formed */
    r1_sft_eval_add(&e, &a, 1, spanish, 30);        /* right, but in Spanish */
    r1_sft_eval_add(&e, &a, 1, "7+8=15 so 15", 10); /* no tags at all */
    r1_sft_eval_add(&e, &b, 0, bool_ok, 50);        /* above training, right, Spanish as asked */
    r1_sft_eval_finish(&e);
    ok(e.ncells == 2, "two cells");
    const r1_sft_eval_cell *c = &e.cell[0];
    ok(c->task == add && c->difficulty == 2 && c->n == 4 && c->in_training, "add 2 has 4");
    is_float(c->accuracy, 0.5, 1e-12, "add 2 accuracy: 2 right of 4");
    is_float(c->format, 0.75, 1e-12, "add 2 format: 3 well formed of 4");
    is_float(c->length, 25.0, 1e-12, "add 2 mean length (40+20+30+10)/4");
    const char *comps[] = {right, wrong, spanish, "7+8=15 so 15"};
    double lsum = 0, les = 0;
    for (int i = 0; i < 4; i++) {
        r1_reward_sample rs = {0};
        rs.completion = comps[i];
        rs.lang = R1_LANG_EN;
        double v = r1_reward_language(&rs, NULL);
        lsum += v;
        les = i == 2 ? v : les;
    }
    is_float(c->language, lsum / 4, 1e-12, "add 2 language consistency is the mean (%.3f)",
             c->language);
    ok(les < 0.5, "and the Spanish reasoning counts low against English (%.3f)", les);
    is_float(c->think_len, (strlen(a.reasoning) + 15 + strlen(a_es.reasoning) + 12) / 4.0,
             1e-12, "add 2 mean reasoning length in characters");
    is_float(e.cell[1].accuracy, 1.0, 0, "bool 1 accuracy 1");
    is_float(e.cell[1].language, 1.0, 0, "bool 1 in the Spanish the prompt asked for");
    is_float(e.accuracy, 3.0 / 5, 1e-12, "overall accuracy 3/5");
    is_float(e.accuracy_in, 0.5, 1e-12, "in-training accuracy 2/4");
    is_float(e.accuracy_above, 1.0, 0, "above-training accuracy 1/1");
    ok(e.n == 5 && e.n_in == 4 && e.n_above == 1, "counts");
}

/* ------------------------------------------------------------------ training and resume */

static int cancel_at;
static int bad_reports;
static int on_progress(void *user, const r1_step_report *r)
{
    const r1_sft_progress *p = r->sft;
    /* the report names the stage and carries only SFT's statistics */
    bad_reports += strcmp(r->stage, "sft") != 0 || r->step != p->step || r->grpo ||
                   r->distill || r->reject;
    (void)user;
    return p->step == cancel_at;
}

static int kill_at;
static int on_progress_kill(void *user, const r1_step_report *r)
{
    const r1_sft_progress *p = r->sft;
    (void)user;
    if (p->step == kill_at)
        _exit(0); /* a kill: no checkpoint, no cleanup */
    return 0;
}

static int evals_seen;
static int count_eval(void *user, const r1_sft_eval *e)
{
    (void)user;
    evals_seen += e->n > 0;
    return 0;
}

static r1_status train_dir(const char *dir, r1_sft_settings s,
                           int (*cb)(void *, const r1_step_report *),
                           r1_error *err)
{
    snprintf(s.out_dir, sizeof s.out_dir, "%s", dir);
    r1_model *m = tiny_model();
    r1_sft *t = NULL;
    r1_status st = r1_sft_new(&t, m, NULL, &s, err);
    if (st == R1_OK)
        {
        r1_observer o = {.step = cb, .eval = count_eval};
        st = r1_sft_run(t, &o, err);
    }
    r1_sft_free(t);
    r1_model_free(m);
    return st;
}

static r1_status resume_dir(const char *dir, r1_error *err)
{
    r1_sft *t = NULL;
    r1_status st = r1_sft_resume(&t, dir, err);
    if (st == R1_OK)
        st = r1_sft_run(t, NULL, err);
    r1_sft_free(t);
    return st;
}

static int same_params(const char *d1, const char *d2)
{
    r1_model *a = NULL, *b = NULL;
    int same = r1_model_load(&a, d1, NULL) == R1_OK && r1_model_load(&b, d2, NULL) == R1_OK &&
               r1_model_numel(a) == r1_model_numel(b) &&
               !memcmp(r1_model_params(a), r1_model_params(b), 4 * r1_model_numel(a));
    for (int l = 0; same && l < r1_model_nlayers_total(a); l++) {
        float *ba = r1_model_router_bias(a, l), *bb = r1_model_router_bias(b, l);
        if (ba)
            same &= !memcmp(ba, bb, 4 * (size_t)r1_model_config(a)->n_routed_experts);
    }
    r1_model_free(a);
    r1_model_free(b);
    return same;
}

static void test_resume(pid_t killed)
{
    char ref[600], can[600], kil[600], p[700];
    snprintf(ref, sizeof ref, "%s/ref", tu_dir);
    snprintf(can, sizeof can, "%s/canceled", tu_dir);
    snprintf(kil, sizeof kil, "%s/killed", tu_dir);
    r1_sft_settings s = small_settings(R1_SFT_COLDSTART, "add:1@2,bool:1");
    s.eval_every = 4;
    r1_error err = {0};

    evals_seen = 0;
    ok(train_dir(ref, s, NULL, &err) == R1_OK, "an 8-step SFT run (%s)", err.msg);
    is_int(evals_seen, 2, "the observer's eval slot sees the evaluations at steps 4 and 8");
    curve a, b, c;
    read_curve(ref, &a);
    ok(a.n == 8 && a.step[7] == 8, "metrics.jsonl has one line per step");
    ok(a.has_eval[3] && a.has_eval[7] && !a.has_eval[2], "eval lines at steps 4 and 8");
    ok(a.v[0][0] > a.v[7][0], "the loss goes down (%.3f -> %.3f)", a.v[0][0], a.v[7][0]);
    static const char *files[] = {"config.json", "model.safetensors", "tokenizer.json",
                                  "checkpoint/trainer_state.json",
                                  "checkpoint/optimizer.safetensors", "checkpoint/tokenizer.json"};
    int have = 1;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", ref, files[i]);
        have &= access(p, F_OK) == 0;
    }
    ok(have, "the run folder holds the model, tokenizer.json and the checkpoint");

    /* cancel at step 5 from the callback, resume, finish */
    cancel_at = 5;
    ok(train_dir(can, s, on_progress, &err) == R1_ECANCELED, "a callback cancels the run");
    read_curve(can, &b);
    ok(b.n == 5, "after 5 steps");
    is_int(bad_reports, 0, "every step report names the stage and holds SFT's statistics");
    r1_train_state ts;
    r1_model *m = NULL;
    snprintf(p, sizeof p, "%s/checkpoint", can);
    ok(r1_ckpt_load(p, &m, NULL, &ts, NULL, NULL) == R1_OK && ts.step == 5,
       "with a checkpoint of step 5 kept");
    r1_model_free(m);
    ok(resume_dir(can, &err) == R1_OK, "resume finishes it (%s)", err.msg);
    read_curve(can, &b);
    ok(same_curve(&a, &b), "the loss curve after cancel + resume is bit-identical");
    ok(same_params(ref, can), "and so are the final parameters and router biases");

    /* the child was killed at step 5 with its last checkpoint at step 3 */
    int status = 0;
    waitpid(killed, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child process ran and was killed");
    read_curve(kil, &c);
    ok(c.n == 5, "the killed run logged 5 steps (%d)", c.n);
    snprintf(p, sizeof p, "%s/checkpoint", kil);
    m = NULL;
    ok(r1_ckpt_load(p, &m, NULL, &ts, NULL, NULL) == R1_OK && ts.step == 3,
       "its checkpoint is from step 3");
    r1_model_free(m);
    ok(resume_dir(kil, &err) == R1_OK, "resume after the kill (%s)", err.msg);
    read_curve(kil, &c);
    ok(same_curve(&a, &c),
       "steps 4-5 are not duplicated and the loss curve is bit-identical to the unstopped run");
    ok(same_params(ref, kil), "and so are the final parameters");
    ok(resume_dir(kil, &err) == R1_OK, "resuming a finished run does nothing");
    read_curve(kil, &c);
    ok(c.n == 8, "no extra lines");

    /* a folder holding a run is not overwritten */
    m = tiny_model();
    r1_sft *t = NULL;
    snprintf(s.out_dir, sizeof s.out_dir, "%s", ref);
    ok(r1_sft_new(&t, m, NULL, &s, &err) == R1_EINVAL, "a new run refuses a folder with a run");
    like(err.msg, "resume", "and suggests resuming");
    r1_model_free(m);
    ok(r1_sft_resume(&t, tu_dir, &err) == R1_ENOTFOUND, "resume without a checkpoint fails");
    like(err.msg, "trainer_state.json", "naming the missing file");
}

int main(void)
{
    tu_tmpdir("t_sft");
    r1_set_threads(1);
    /* fork the run that gets killed before this process starts any thread */
    r1_sft_settings s = small_settings(R1_SFT_COLDSTART, "add:1@2,bool:1");
    s.eval_every = 4;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char kil[600];
        snprintf(kil, sizeof kil, "%s/killed", tu_dir);
        kill_at = 5;
        train_dir(kil, s, on_progress_kill, NULL);
        _exit(1); /* not reached: the callback exits at step 5 */
    }
    r1_tokenizer *tok = r1_tokenizer_new_builtin();
    test_settings();
    test_sft_mask(tok);
    test_split_task(tok);
    test_pretrain_docs(tok);
    test_packing(tok);
    test_determinism(tok);
    test_heldout(tok);
    test_typed(tok);
    test_eval_scoring();
    test_resume(pid);
    r1_tokenizer_free(tok);
    tu_rm(tu_dir);
    return done_testing();
}
