/* cmd_train.c — `r1lab train`: pretraining and cold-start SFT from the command line.
 *
 *   r1lab train --stage pretrain|sft --model DIR|tiny|small --out DIR [--steps N]
 *               [--tasks add:1-3@4,mul:1-2,...] [--seed S] [--batch B] [--seq-len T]
 *               [--lr X] [--min-lr X] [--warmup N] [--eval-every N] [--eval-n N]
 *               [--eval-above N] [--ckpt-every N] [--sft-docs N] [--plain F] [--mix F]
 *               [--mtp-lambda X] [--gamma X] [--threads N] [--log-every N]
 *   r1lab train --out DIR --resume [--threads N] [--log-every N]
 *
 * `--model tiny|small` starts from a random init (seed --seed) with the built-in tokenizer;
 * `--model DIR` loads a model folder (and its tokenizer.json when there is one).  The engine
 * (r1_sft.h) writes OUT/metrics.jsonl, OUT/checkpoint/ and the model into OUT; this file parses
 * options, prints progress lines (step, loss, tokens/s, ETA) and evaluation tables on stdout,
 * and turns Ctrl-C into r1_interrupt(): the run stops after the current step with a checkpoint,
 * and `--resume` continues it exactly.  Returns 0, 1 on failure, 2 on usage errors, 130 when
 * interrupted. */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "r1_sft.h"

static void on_sigint(int sig)
{
    (void)sig;
    r1_interrupt(); /* async-signal-safe; a second Ctrl-C kills (SA_RESETHAND) */
}

static const char usage_text[] =
    "usage: r1lab train --stage pretrain|sft --model DIR|tiny|small --out DIR [--steps N]\n"
    "                   [--tasks add:1-3@4,mul:1-2,...] [--seed S] [--batch B] [--seq-len T]\n"
    "                   [--lr X] [--min-lr X] [--warmup N] [--eval-every N] [--eval-n N]\n"
    "                   [--eval-above N] [--ckpt-every N] [--sft-docs N] [--plain F] [--mix F]\n"
    "                   [--mtp-lambda X] [--gamma X] [--threads N] [--log-every N]\n"
    "       r1lab train --out DIR --resume [--threads N] [--log-every N]\n";

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || !*v || *end || x < lo || x > hi) {
        fprintf(stderr, "r1lab train: %s expects an integer in %ld..%ld, got '%s'\n", opt, lo,
                hi, v);
        return 0;
    }
    *out = x;
    return 1;
}

static int parse_double(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "r1lab train: %s expects a number in %g..%g, got '%s'\n", opt, lo, hi, v);
        return 0;
    }
    *out = x;
    return 1;
}

static void hms(double s, char *buf, size_t cap)
{
    long t = s > 0 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static void print_eval(const r1_sft_eval *e, int64_t step)
{
    printf("eval after step %lld (%.1f s): accuracy %.3f (training difficulties %.3f, above "
           "%.3f)  format %.3f  language %.3f  length %.1f\n",
           (long long)step, e->seconds, e->accuracy, e->accuracy_in, e->accuracy_above,
           e->format, e->language, e->length);
    printf("  %-10s %3s %5s %4s %7s %7s %7s %7s %7s\n", "task", "d", "train", "n", "acc",
           "format", "lang", "length", "think");
    for (int i = 0; i < e->ncells; i++) {
        const r1_sft_eval_cell *c = &e->cell[i];
        printf("  %-10s %3d %5s %4d %7.3f %7.3f %7.3f %7.1f %7.1f\n", r1_task_name(c->task),
               c->difficulty, c->in_training ? "yes" : "no", c->n, c->accuracy, c->format,
               c->language, c->length, c->think_len);
    }
    fflush(stdout);
}

typedef struct {
    int log_every;
} progress_ctx;

static int on_progress(const r1_sft_progress *p, void *user)
{
    progress_ctx *c = user;
    if (p->step == 1 || p->step == p->steps || p->step % c->log_every == 0 || p->eval) {
        char el[32], eta[32];
        hms(p->elapsed, el, sizeof el);
        hms(p->eta, eta, sizeof eta);
        printf("%s step %lld/%lld  loss %.4f (main %.4f, mtp %.4f)  lr %.2e  gnorm %.3f  "
               "%.0f tok/s  elapsed %s  ETA %s%s\n",
               p->stage, (long long)p->step, (long long)p->steps, p->loss, p->loss_main,
               p->loss_mtp, p->lr, p->grad_norm, p->tokens_per_s, el, eta,
               p->checkpointed ? "  [checkpoint]" : "");
        fflush(stdout);
    }
    if (p->eval)
        print_eval(p->eval, p->step);
    return 0;
}

/* Options that set training settings; refused with --resume, which reuses the saved ones. */
static int apply_option(r1_sft_settings *s, const char *a, const char *val, int *handled)
{
    long v;
    double x;
    *handled = 1;
    if (!strcmp(a, "--steps")) {
        if (!parse_long(a, val, 1, 100000000, &v))
            return 0;
        s->steps = (int)v;
    } else if (!strcmp(a, "--tasks")) {
        r1_error err = {0};
        if (r1_sft_parse_tasks(s, val, &err) != R1_OK) {
            fprintf(stderr, "r1lab train: --tasks: %s\n", err.msg);
            return 0;
        }
    } else if (!strcmp(a, "--seed")) {
        if (!parse_long(a, val, 0, 0x7fffffffL, &v))
            return 0;
        s->seed = (uint64_t)v;
    } else if (!strcmp(a, "--batch")) {
        if (!parse_long(a, val, 1, 4096, &v))
            return 0;
        s->batch = (int)v;
    } else if (!strcmp(a, "--seq-len")) {
        if (!parse_long(a, val, 16, 65536, &v))
            return 0;
        s->seq_len = (int)v;
    } else if (!strcmp(a, "--warmup")) {
        if (!parse_long(a, val, 0, 100000000, &v))
            return 0;
        s->opt.warmup = (int)v;
    } else if (!strcmp(a, "--eval-every")) {
        if (!parse_long(a, val, 0, 100000000, &v))
            return 0;
        s->eval_every = (int)v;
    } else if (!strcmp(a, "--eval-n")) {
        if (!parse_long(a, val, 1, R1_SFT_HELDOUT, &v))
            return 0;
        s->eval_n = (int)v;
    } else if (!strcmp(a, "--eval-above")) {
        if (!parse_long(a, val, 0, 100, &v))
            return 0;
        s->eval_above = (int)v;
    } else if (!strcmp(a, "--ckpt-every")) {
        if (!parse_long(a, val, 0, 100000000, &v))
            return 0;
        s->ckpt_every = (int)v;
    } else if (!strcmp(a, "--sft-docs")) {
        if (!parse_long(a, val, 0, 100000000, &v))
            return 0;
        s->sft_docs = (int)v;
    } else if (!strcmp(a, "--lr")) {
        if (!parse_double(a, val, 1e-8, 0.999, &x))
            return 0;
        s->opt.lr = (float)x;
    } else if (!strcmp(a, "--min-lr")) {
        if (!parse_double(a, val, 0, 0.999, &x))
            return 0;
        s->opt.min_lr = (float)x;
    } else if (!strcmp(a, "--plain")) {
        if (!parse_double(a, val, 0, 1, &x))
            return 0;
        s->plain_frac = x;
    } else if (!strcmp(a, "--mix")) {
        if (!parse_double(a, val, 0, 1, &x))
            return 0;
        s->mix_frac = x;
    } else if (!strcmp(a, "--mtp-lambda")) {
        if (!parse_double(a, val, 0, 100, &x))
            return 0;
        s->mtp_lambda = (float)x;
    } else if (!strcmp(a, "--gamma")) {
        if (!parse_double(a, val, 0, 1, &x))
            return 0;
        s->balance_gamma = (float)x;
    } else {
        *handled = 0;
    }
    return 1;
}

/* The starting model: a preset with a random init, or a folder. */
static r1_status open_model(const char *spec, uint64_t seed, r1_model **m, r1_tokenizer **tok,
                            r1_error *err)
{
    *m = NULL;
    *tok = NULL;
    r1_status st;
    if (!strcmp(spec, "tiny") || !strcmp(spec, "small")) {
        r1_config c;
        if ((st = r1_config_preset(&c, spec, err)) != R1_OK ||
            (st = r1_model_new(m, &c, err)) != R1_OK)
            return st;
        r1_model_init(*m, seed);
        return R1_OK; /* the built-in tokenizer */
    }
    if ((st = r1_model_load(m, spec, err)) != R1_OK)
        return st;
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/tokenizer.json", spec);
    if (stat(p, &sb) == 0 && (st = r1_tokenizer_load(tok, p, err)) != R1_OK) {
        r1_model_free(*m);
        *m = NULL;
    }
    return st;
}

int cmd_train(int argc, char **argv)
{
    const char *stage = NULL, *model = NULL, *out = NULL;
    int resume = 0, setting_given = 0, min_lr_given = 0;
    long threads = -1, log_every = 0;
    r1_sft_settings s = r1_sft_defaults(R1_SFT_PRETRAIN);
    /* the stage decides the defaults, so find it first */
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--stage"))
            stage = argv[i + 1];
    if (stage) {
        r1_error err = {0};
        r1_sft_stage sg;
        if (r1_sft_stage_parse(&sg, stage, &err) != R1_OK) {
            fprintf(stderr, "r1lab train: --stage: %s\n", err.msg);
            return 2;
        }
        s = r1_sft_defaults(sg);
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--resume")) {
            resume = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!val) {
            fprintf(stderr, "r1lab train: %s needs a value\n%s", a, usage_text);
            return 2;
        }
        i++;
        int handled;
        if (!strcmp(a, "--stage"))
            continue;
        if (!strcmp(a, "--model"))
            model = val;
        else if (!strcmp(a, "--out"))
            out = val;
        else if (!strcmp(a, "--threads")) {
            if (!parse_long(a, val, 0, 1024, &threads))
                return 2;
        } else if (!strcmp(a, "--log-every")) {
            if (!parse_long(a, val, 1, 100000000, &log_every))
                return 2;
        } else if (!apply_option(&s, a, val, &handled)) {
            return 2;
        } else if (!handled) {
            fprintf(stderr, "r1lab train: unknown option '%s'\n%s", a, usage_text);
            return 2;
        } else {
            setting_given = 1;
            min_lr_given |= !strcmp(a, "--min-lr");
            if (!strcmp(a, "--lr") && !min_lr_given)
                s.opt.min_lr = s.opt.lr / 10;
        }
    }
    if (!out || (resume && (stage || model || setting_given)) || (!resume && (!stage || !model))) {
        if (resume && (stage || model || setting_given))
            fprintf(stderr, "r1lab train: --resume continues with the checkpoint's own model and "
                            "settings; give only --out (and --threads, --log-every)\n");
        fputs(usage_text, stderr);
        return 2;
    }
    if (threads >= 0)
        r1_set_threads((int)threads);
    if (strlen(out) >= sizeof s.out_dir - 64) {
        fprintf(stderr, "r1lab train: --out is too long\n");
        return 2;
    }
    snprintf(s.out_dir, sizeof s.out_dir, "%s", out);
    s.opt.total = s.steps;

    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    r1_sft *t = NULL;
    r1_status st;
    if (resume) {
        st = r1_sft_resume(&t, out, &err);
    } else {
        st = r1_sft_validate(&s, NULL, &err);
        if (st == R1_OK)
            st = open_model(model, s.seed, &m, &tok, &err);
        if (st == R1_OK)
            st = r1_sft_new(&t, m, tok, &s, &err);
    }
    if (st != R1_OK) {
        fprintf(stderr, "r1lab train: %s\n", err.msg);
        r1_tokenizer_free(tok);
        r1_model_free(m);
        return 1;
    }
    const r1_sft_settings *rs = r1_sft_get_settings(t);
    char tasks[1024];
    r1_sft_format_tasks(rs, tasks, sizeof tasks);
    printf("%s %s: %d steps of %d x %d tokens, tasks %s, seed %llu, lr %.2e -> %.2e "
           "(warmup %d), %d thread%s\n",
           resume ? "resuming" : "training", r1_sft_stage_name(rs->stage), rs->steps, rs->batch,
           rs->seq_len, tasks, (unsigned long long)rs->seed, rs->opt.lr, rs->opt.min_lr,
           rs->opt.warmup, r1_threads(), r1_threads() == 1 ? "" : "s");
    if (resume)
        printf("from step %lld (data position %lld)\n", (long long)r1_sft_step_count(t),
               (long long)r1_sft_data_pos(t));
    fflush(stdout);

    progress_ctx pc = {(int)(log_every ? log_every : rs->steps >= 50 ? rs->steps / 50 : 1)};
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    r1_interrupt_clear();
    st = r1_sft_run(t, on_progress, &pc, &err);
    sigaction(SIGINT, &old, NULL);
    int rc = 0;
    if (st == R1_ECANCELED) {
        printf("interrupted: %s; continue with: r1lab train --out %s --resume\n", err.msg, out);
        rc = 130;
    } else if (st != R1_OK) {
        fprintf(stderr, "r1lab train: %s\n", err.msg);
        rc = 1;
    } else {
        printf("done: %lld steps; model in %s (r1lab generate --model %s), metrics in "
               "%s/metrics.jsonl\n",
               (long long)r1_sft_step_count(t), out, out, out);
    }
    r1_sft_free(t);
    r1_tokenizer_free(tok);
    r1_model_free(m);
    return rc;
}
