/* cmd_generate.c — `r1lab generate`: streams a completion for one prompt.
 *
 *   r1lab generate --model DIR (--prompt TEXT | --tokens "1 2 3") [--max-tokens N]
 *                  [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]
 *                  [--speculative] [--weights fp32|bf16|fp8] [--trace FILE.jsonl]
 *
 * --prompt needs the tokenizer.json of the model folder: the text is posed in the chat format
 * (<|bos|><|user|>TEXT<|assistant|><think>), the completion streams as text and ends at
 * <|eos|>.  --tokens takes token ids and streams ids (to the length limit), for any model.
 * Then a summary line on stderr.  --trace writes one JSON object per generated token with its
 * position, id, text (when there is a tokenizer), log-prob and routing.  --weights bf16 / fp8
 * hold the linear weights as bf16 / as E4M3 with 128x128 block scales while decoding; the
 * summary line reports their memory.  Failures print one line and return 1 (2 for usage
 * errors). */
#include <config.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "r1_generate.h"
#include "r1_tokenizer.h"

typedef struct {
    FILE *trace;
    const char *trace_path;
    const r1_tokenizer *tok; /* text output (--prompt), or NULL: ids */
    int eos;                 /* not printed in text output */
    int failed;
} stream_ctx;

static int on_token(void *user, const r1_token_event *ev)
{
    stream_ctx *s = user;
    char text[32];
    const char *t = s->tok ? r1_tokenizer_token(s->tok, ev->token) : NULL;
    if (s->tok && ev->token != s->eos) {
        fputs(t ? t : "?", stdout);
    } else if (!s->tok) {
        snprintf(text, sizeof text, "%d", (int)ev->token);
        printf("%s%s", ev->index ? " " : "", text);
    }
    fflush(stdout);
    if (!t) {
        snprintf(text, sizeof text, "%d", (int)ev->token);
        t = text;
    }
    if (s->trace) {
        json_t *o = json_object(), *routing = json_array();
        json_object_set_new(o, "pos", json_integer(ev->pos));
        json_object_set_new(o, "token", json_integer(ev->token));
        json_object_set_new(o, "text", json_string(t));
        json_object_set_new(o, "logprob", json_real(ev->logprob_model));
        json_object_set_new(o, "logprob_sampling", json_real(ev->logprob));
        json_object_set_new(o, "drafted", json_boolean(ev->drafted));
        for (int j = 0; j < ev->n_moe; j++) {
            json_t *r = json_object(), *e = json_array(), *w = json_array();
            for (int k = 0; k < ev->K; k++) {
                json_array_append_new(e, json_integer(ev->experts[j * ev->K + k]));
                json_array_append_new(w, json_real(ev->weights[j * ev->K + k]));
            }
            json_object_set_new(r, "layer", json_integer(ev->moe_layers[j]));
            json_object_set_new(r, "experts", e);
            json_object_set_new(r, "weights", w);
            json_array_append_new(routing, r);
        }
        json_object_set_new(o, "routing", routing);
        if (json_dumpf(o, s->trace, JSON_COMPACT | JSON_REAL_PRECISION(7)) != 0 ||
            fputc('\n', s->trace) == EOF)
            s->failed = 1;
        json_decref(o);
    }
    return 0;
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || !*v || *end || x < lo || x > hi) {
        fprintf(stderr, "r1lab generate: %s expects an integer in %ld..%ld, got '%s'\n", opt,
                lo, hi, v);
        return 0;
    }
    *out = x;
    return 1;
}

static int parse_float(const char *opt, const char *v, double lo, double hi, float *out)
{
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "r1lab generate: %s expects a number in %g..%g, got '%s'\n", opt, lo,
                hi, v);
        return 0;
    }
    *out = (float)x;
    return 1;
}

/* Parses --tokens "1 2 3" (spaces or commas) into *ids (malloc'd, *n of them); a message
 * and -1 on bad input. */
static int parse_ids(const char *tokens, int32_t **out, int *nout)
{
    int32_t *ids = NULL;
    int n = 0, cap = 0;
    for (const char *p = tokens; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 0x7fffffffL) {
            fprintf(stderr, "r1lab generate: --tokens: expected a token id at '%.12s'\n", p);
            free(ids);
            return -1;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            int32_t *nid = realloc(ids, sizeof(int32_t) * cap);
            if (!nid) {
                fprintf(stderr, "r1lab generate: out of memory\n");
                free(ids);
                return -1;
            }
            ids = nid;
        }
        ids[n++] = (int32_t)x;
        p = end;
    }
    *out = ids;
    *nout = n;
    return 0;
}

/* The tokenizer.json of the model folder dir, checked against the model's vocabulary. */
static r1_status load_tokenizer(r1_tokenizer **tok, const char *dir, const r1_model *m,
                                r1_error *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (access(path, F_OK) != 0)
        return r1_error_set(err, R1_EINVAL,
                            "%s: not found: --prompt needs the model folder's tokenizer; "
                            "give token ids with --tokens instead",
                            path);
    r1_status st = r1_tokenizer_load(tok, path, err);
    if (st != R1_OK)
        return st;
    return r1_tokenizer_check_vocab(*tok, r1_model_config(m)->vocab_size, path, err);
}

/* Encodes the prompt in the chat format into *ids (malloc'd, *n ids). */
static r1_status encode(const r1_tokenizer *tok, const char *prompt, int32_t **ids, int *n,
                        r1_error *err)
{
    int cap = (int)strlen(prompt) + 8;
    if (!(*ids = malloc(sizeof(int32_t) * (size_t)cap)))
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r1_error e = {0};
    r1_status st = r1_tokenizer_encode_prompt(tok, prompt, *ids, cap, n, &e);
    if (st != R1_OK)
        r1_error_set(err, st, "--prompt: %s", e.msg + (strncmp(e.msg, "prompt: ", 8) ? 0 : 8));
    return st;
}

int cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *tokens = NULL, *trace = NULL, *weights = "fp32";
    r1_gen_cfg cfg = r1_gen_defaults();
    long v;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--speculative")) {
            cfg.speculative = 1;
            continue;
        }
        if (!val) {
            fprintf(stderr, "r1lab generate: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model"))
            model = val;
        else if (!strcmp(a, "--prompt"))
            prompt = val;
        else if (!strcmp(a, "--tokens"))
            tokens = val;
        else if (!strcmp(a, "--trace"))
            trace = val;
        else if (!strcmp(a, "--weights"))
            weights = val;
        else if (!strcmp(a, "--max-tokens")) {
            if (!parse_int(a, val, 1, 1 << 20, &v))
                return 2;
            cfg.max_tokens = (int)v;
        } else if (!strcmp(a, "--top-k")) {
            if (!parse_int(a, val, 0, 1 << 20, &v))
                return 2;
            cfg.top_k = (int)v;
        } else if (!strcmp(a, "--seed")) {
            if (!parse_int(a, val, 0, 0x7fffffffL, &v))
                return 2;
            cfg.seed = (uint64_t)v;
        } else if (!strcmp(a, "--temperature")) {
            if (!parse_float(a, val, 0, 100, &cfg.temperature))
                return 2;
        } else if (!strcmp(a, "--top-p")) {
            if (!parse_float(a, val, 0, 1, &cfg.top_p))
                return 2;
        } else if (!strcmp(a, "--min-p")) {
            if (!parse_float(a, val, 0, 1, &cfg.min_p))
                return 2;
        } else {
            fprintf(stderr, "r1lab generate: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (!model || (!prompt == !tokens)) {
        fprintf(stderr, "usage: r1lab generate --model DIR (--prompt TEXT | --tokens \"1 2 3\") "
                        "[--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] "
                        "[--speculative] [--weights fp32|bf16|fp8] [--trace FILE.jsonl]\n");
        return 2;
    }
    if (strcmp(weights, "fp32") != 0 && strcmp(weights, "bf16") != 0 &&
        strcmp(weights, "fp8") != 0) {
        fprintf(stderr, "r1lab generate: --weights expects fp32, bf16 or fp8, got '%s'\n",
                weights);
        return 2;
    }
    cfg.bf16 = !strcmp(weights, "bf16");
    cfg.fp8 = !strcmp(weights, "fp8");
    int32_t *ids = NULL;
    int n = 0;
    if (tokens && parse_ids(tokens, &ids, &n) != 0)
        return 2;
    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    r1_gen_result *res = NULL;
    stream_ctx s = {NULL, trace, NULL, -1, 0};
    int32_t eos = -1;
    int rc = 1;
    if (r1_model_load(&m, model, &err) != R1_OK)
        goto out;
    if (*r1_model_notice(m))
        fprintf(stderr, "r1lab: notice: %s\n", r1_model_notice(m));
    if (prompt) {
        if (load_tokenizer(&tok, model, m, &err) != R1_OK ||
            encode(tok, prompt, &ids, &n, &err) != R1_OK)
            goto out;
        s.tok = tok;
        s.eos = eos = r1_tokenizer_special_id(tok, R1_TOK_EOS);
        cfg.stop_ids = &eos;
        cfg.n_stop_ids = 1;
    }
    if (trace && !(s.trace = fopen(trace, "w"))) {
        r1_error_set(&err, R1_EIO, "%s: cannot write: %s", trace, strerror(errno));
        goto out;
    }
    const int32_t *pp = ids;
    r1_observer o = {.token = on_token, .user = &s};
    r1_status st = r1_generate(m, &pp, &n, 1, &cfg, &o, &res, &err);
    printf("\n");
    if (st != R1_OK && st != R1_ECANCELED)
        goto out;
    if (s.trace && (fclose(s.trace) != 0 || s.failed)) {
        s.trace = NULL;
        r1_error_set(&err, R1_EIO, "%s: write failed", trace);
        goto out;
    }
    s.trace = NULL;
    fprintf(stderr, "%d tokens in %.3f s (%.1f tokens/s)", res->row[0].n, res->seconds,
            res->row[0].n / (res->seconds > 0 ? res->seconds : 1));
    if (cfg.speculative)
        fprintf(stderr, ", MTP drafts accepted %ld/%ld (%.0f%%)", res->accepted, res->drafted,
                res->drafted ? 100.0 * res->accepted / res->drafted : 0.0);
    if (res->weight_bytes)
        fprintf(stderr, ", %s weights %.2f MiB (%.2f MiB as fp32)", weights,
                res->weight_bytes / 1048576.0, res->weight_bytes_fp32 / 1048576.0);
    fprintf(stderr, "\n");
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "r1lab: %s\n", err.msg);
    if (s.trace)
        fclose(s.trace);
    r1_gen_result_free(res);
    r1_tokenizer_free(tok);
    r1_model_free(m);
    free(ids);
    return rc;
}
