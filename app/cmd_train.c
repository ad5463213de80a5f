/* cmd_train.c — `r1lab train`: every training stage from the command line, and `r1lab eval`.
 *
 *   r1lab train --stage pretrain|sft|grpo --model DIR|tiny|small --out DIR [--SETTING VALUE ...]
 *   r1lab train --stage reject --model DIR --out FILE.jsonl [--SETTING VALUE ...]
 *   r1lab train --stage distill --model DIR --data FILE.jsonl [--teacher DIR] --out DIR ...
 *   r1lab train --out DIR|FILE.jsonl --resume [--threads N] [--log-every N]
 *   r1lab train --stage STAGE --help          every setting of the stage, its range and default
 *
 * The settings are the stage's settings table (r1_settings.h): `--eval-every 100` sets
 * eval_every, the same name Lua and the checkpoints use; an unknown option is refused with a
 * suggestion, a value out of range with the range.  `--model tiny|small` starts from a random
 * init (seed --seed) with the built-in tokenizer; `--model DIR` loads a model folder (and its
 * tokenizer.json).  The engine (r1_sft.h, r1_grpo_run.h, r1_distill.h) writes
 * OUT/metrics.jsonl, OUT/checkpoint/ and the model into OUT (rejection sampling: FILE.jsonl, its
 * progress in FILE.jsonl.part and .part.json until done); this file parses options, prints progress lines and
 * evaluation tables on stdout, and turns Ctrl-C into r1_interrupt(): the run stops after the
 * current step with a checkpoint, and `--resume` continues it exactly.  Returns 0, 1 on
 * failure, 2 on usage errors, 130 when interrupted. */
#include <config.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd.h"
#include "r1_distill.h"
#include "r1_grpo_run.h"
#include "r1_reject.h"
#include "r1_sft.h"
#include "r1_train.h"
#include "world.h"

static void on_sigint(int sig)
{
    (void)sig;
    r1_interrupt(); /* async-signal-safe; a second Ctrl-C kills (SA_RESETHAND) */
}

static const char usage_text[] =
    "usage: r1lab train --stage pretrain|sft|grpo --model DIR|tiny|small --out DIR\n"
    "                   [--SETTING VALUE ...] [--threads N] [--log-every N]\n"
    "       r1lab train --stage reject --model DIR --out FILE.jsonl [--SETTING VALUE ...]\n"
    "       r1lab train --stage distill --model DIR|tiny|small --data FILE.jsonl\n"
    "                   [--teacher DIR] --out DIR [--SETTING VALUE ...]\n"
    "       r1lab train --out DIR|FILE.jsonl --resume [--threads N] [--log-every N]\n"
    "       r1lab train --stage STAGE --help   (the stage's settings)\n"
    "       r1lab eval --model DIR [--SETTING VALUE ...]   (r1lab eval --help)\n";

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
    char when[48] = "eval";
    if (step >= 0)
        snprintf(when, sizeof when, "eval after step %lld", (long long)step);
    printf("%s (%.1f s): accuracy %.3f (training difficulties %.3f, above "
           "%.3f)  format %.3f  language %.3f  length %.1f\n",
           when, e->seconds, e->accuracy, e->accuracy_in, e->accuracy_above,
           e->format, e->language, e->length);
    for (int l = 0; l < 2; l++)
        if (e->lang_n[l])
            printf("  asked in %s (%d): accuracy %.3f  format %.3f  language %.3f\n",
                   l == R1_LANG_EN ? "English" : "Spanish", e->lang_n[l], e->lang_accuracy[l],
                   e->lang_format[l], e->lang_language[l]);
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

static int on_progress(void *user, const r1_step_report *r)
{
    const r1_sft_progress *p = r->sft;
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
    if (*r1_model_notice(*m))
        fprintf(stderr, "r1lab: notice: %s\n", r1_model_notice(*m));
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/tokenizer.json", spec);
    if (stat(p, &sb) == 0 && (st = r1_tokenizer_load(tok, p, err)) != R1_OK) {
        r1_model_free(*m);
        *m = NULL;
    }
    return st;
}

void cmd_print_machine(void)
{
    r1_machine mc;
    r1_machine_get(&mc);
    printf("on %s (%s); %s; kernels %s; %d thread%s\n", mc.cpu,
           mc.isa[0] ? mc.isa : "no AVX2", mc.blas, mc.kernels, mc.threads,
           mc.threads == 1 ? "" : "s");
}

/* The stage a run folder's checkpoint holds, or "reject" for an unfinished rejection sampling
 * into the file out ("" when unreadable: the resume reports why). */
static void run_stage(const char *out, char *stage, size_t cap, int *threads)
{
    char p[4200];
    snprintf(p, sizeof p, "%s.part.json", out);
    int part = access(p, F_OK) == 0;
    if (!part)
        snprintf(p, sizeof p, "%s/checkpoint/trainer_state.json", out);
    json_t *j = json_load_file(p, 0, NULL);
    json_t *v = j ? json_object_get(j, "stage") : NULL, *t = j ? json_object_get(j, "threads") : NULL;
    snprintf(stage, cap, "%s", part ? "reject" : json_is_string(v) ? json_string_value(v) : "");
    *threads = json_is_integer(t) && json_integer_value(t) > 0 && json_integer_value(t) <= 1024
                   ? (int)json_integer_value(t) : 0;
    json_decref(j);
}

/* on: Ctrl-C becomes r1_interrupt() (a second Ctrl-C kills: SA_RESETHAND); off: the handler
 * before it comes back. */
static struct sigaction old_int;
static void trap_sigint(int on)
{
    if (!on) {
        sigaction(SIGINT, &old_int, NULL);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    r1_interrupt_clear();
}

/* The last line of a run and its exit status: 0 done, 130 interrupted, 1 failed. */
static int report_end(r1_status st, const r1_error *err, const char *out, int64_t steps)
{
    if (st == R1_ECANCELED) {
        printf("interrupted: %s; continue with: r1lab train --out %s --resume\n", err->msg, out);
        return 130;
    }
    if (st != R1_OK) {
        fprintf(stderr, "r1lab train: %s\n", err->msg);
        return 1;
    }
    printf("done: %lld steps; model in %s (r1lab generate --model %s), metrics in "
           "%s/metrics.jsonl\n",
           (long long)steps, out, out, out);
    return 0;
}

/* ------------------------------------------------------------------ pretrain and sft */

static int train_sft(const char *model, const char *out, int resume, r1_sft_settings *s,
                     long log_every)
{
    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    r1_sft *t = NULL;
    r1_status st;
    if (resume) {
        st = r1_sft_resume(&t, out, &err);
    } else {
        st = r1_sft_validate(s, NULL, &err);
        if (st == R1_OK)
            st = open_model(model, s->seed, &m, &tok, &err);
        if (st == R1_OK)
            st = r1_sft_new(&t, m, tok, s, &err);
    }
    if (st == R1_OK) /* under mpirun: data-parallel over the ranks */
        st = r1_sft_set_comm(t, world_comm(), &err);
    if (st != R1_OK) {
        fprintf(stderr, "r1lab train: %s\n", err.msg);
        r1_sft_free(t);
        r1_tokenizer_free(tok);
        r1_model_free(m);
        return 1;
    }
    const r1_sft_settings *rs = r1_sft_get_settings(t);
    char tasks[1024];
    r1_sft_format_tasks(rs, tasks, sizeof tasks);
    printf("%s %s: %d steps of %d x %d tokens, tasks %s, seed %llu, lr %.2e -> %.2e "
           "(warmup %d), %d thread%s",
           resume ? "resuming" : "training", r1_sft_stage_name(rs->stage), rs->steps, rs->batch,
           rs->seq_len, tasks, (unsigned long long)rs->seed, rs->opt.lr, rs->opt.min_lr,
           rs->opt.warmup, r1_threads(), r1_threads() == 1 ? "" : "s");
    if (world_size() > 1)
        printf(" per rank, %d ranks (data-parallel)", world_size());
    printf("\n");
    cmd_print_machine();
    if (resume)
        printf("from step %lld (data position %lld)\n", (long long)r1_sft_step_count(t),
               (long long)r1_sft_data_pos(t));
    fflush(stdout);

    progress_ctx pc = {(int)(log_every ? log_every : rs->steps >= 50 ? rs->steps / 50 : 1)};
    trap_sigint(1);
    r1_observer o = {.step = on_progress, .user = &pc};
    st = r1_sft_run(t, &o, &err);
    trap_sigint(0);
    int rc = report_end(st, &err, out, r1_sft_step_count(t));
    r1_sft_free(t);
    r1_tokenizer_free(tok);
    r1_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ grpo */

typedef struct {
    const r1_grpo_settings *s;
    long log_every;
    double t0;
    int64_t first; /* the step the run (or its resume) started from */
} grpo_ctx;

static int grpo_step(void *user, const r1_step_report *r)
{
    const r1_grpo_stats *st = r->grpo;
    grpo_ctx *c = user;
    const r1_grpo_settings *s = c->s;
    if (st->step == c->first + 1 || st->step == s->steps || st->step % c->log_every == 0) {
        char rw[256] = "";
        size_t k = 0;
        for (int i = 0; i < s->cfg.nrewards && k < sizeof rw; i++) {
            int w = snprintf(rw + k, sizeof rw - k, "%s%s %.3f", i ? ", " : "",
                             s->cfg.reward_names[i], st->reward_mean[i]);
            k += w > 0 ? (size_t)w : 0;
        }
        double el = r1_now() - c->t0;
        double eta = el / (double)(st->step - c->first) * (double)(s->steps - st->step);
        char els[32], etas[32];
        hms(el, els, sizeof els);
        hms(eta, etas, sizeof etas);
        printf("grpo step %lld/%d  reward %.3f (%s)  kl %.4f  len %.1f  gnorm %.3f  "
               "%.0f tok/s  elapsed %s  ETA %s\n",
               (long long)st->step, s->steps, st->total_mean, rw, st->kl, st->len_mean,
               st->grad_norm, st->gen_tokens_per_s, els, etas);
        fflush(stdout);
    }
    return 0;
}

/* Greedy held-out evaluation of the run's tasks (the evaluator of r1_sft.h), printed. */
static int grpo_eval(r1_model *m, const r1_tokenizer *tok, const r1_grpo_settings *g,
                     int64_t step, r1_error *err)
{
    r1_sft_settings s = r1_sft_defaults(R1_SFT_COLDSTART);
    s.ntasks = g->ntasks;
    for (int i = 0; i < g->ntasks; i++)
        s.tasks[i] = (r1_sft_task){g->tasks[i], g->dmin[i], g->dmax[i], 1};
    s.eval_above = 0;
    s.eval_n = g->eval_n;
    r1_sft_data *d = NULL;
    r1_sft_eval e;
    r1_status st = r1_sft_data_new(&d, &s, tok, err);
    if (st == R1_OK)
        st = r1_sft_evaluate(m, tok, d, g->eval_n, &e, err);
    if (st == R1_OK)
        print_eval(&e, step);
    r1_sft_data_free(d);
    return st;
}

static int train_grpo(const char *model, const char *out, int resume, r1_grpo_settings *s,
                      long log_every)
{
    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    r1_grpo_run *run = NULL;
    r1_status st = R1_OK;
    char mp[4200], ck[4200];
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", out);
    snprintf(ck, sizeof ck, "%s/checkpoint", out);
    if (resume) {
        st = r1_grpo_run_resume_dir(&run, out, &err);
    } else {
        st = r1_run_folder_fresh(out, &err);
        if (st == R1_OK)
            st = r1_mkdirs(out, 0777, &err);
        if (st == R1_OK)
            st = r1_grpo_settings_validate(s, &err);
        if (st == R1_OK)
            st = open_model(model, s->cfg.seed, &m, &tok, &err);
        if (st == R1_OK && !tok && !(tok = r1_tokenizer_new_builtin()))
            st = r1_error_set(&err, R1_ENOMEM, "out of memory");
        r1_grpo_paths paths = {mp, ck, out};
        if (st == R1_OK)
            st = r1_grpo_run_new(&run, m, tok, s, NULL, NULL, &paths, &err);
    }
    if (st == R1_OK) /* under mpirun: data-parallel over the ranks */
        st = r1_grpo_run_set_comm(run, world_comm(), &err);
    if (st != R1_OK) {
        fprintf(stderr, "r1lab train: %s\n", err.msg);
        r1_grpo_run_free(run);
        r1_tokenizer_free(tok);
        r1_model_free(m);
        return 1;
    }
    const r1_grpo_settings *rs = r1_grpo_run_settings(run);
    char tasks[512], rewards[512];
    const r1_settings_table *t = r1_grpo_settings_table();
    r1_settings_format(r1_settings_find(t, "tasks", NULL, "", NULL), rs, tasks, sizeof tasks);
    r1_settings_format(r1_settings_find(t, "rewards", NULL, "", NULL), rs, rewards,
                       sizeof rewards);
    printf("%s grpo: %d steps of %d prompts x %d completions (up to %d tokens), tasks %s, "
           "rewards %s, lr %.2e, beta %g, seed %llu, %d thread%s",
           resume ? "resuming" : "training", rs->steps, rs->cfg.prompts, rs->cfg.group,
           rs->cfg.max_new, tasks, rewards, rs->cfg.opt.lr, rs->cfg.beta,
           (unsigned long long)rs->cfg.seed, r1_threads(), r1_threads() == 1 ? "" : "s");
    if (world_size() > 1)
        printf(" per rank, %d ranks (data-parallel)", world_size());
    printf("\n");
    cmd_print_machine();
    if (resume)
        printf("from step %lld\n", (long long)r1_grpo_run_step(run));
    fflush(stdout);
    r1_model *pm = r1_grpo_run_model(run);
    const r1_tokenizer *pt = r1_grpo_run_tokenizer(run);
    int rc = 0;
    int lead = world_rank() == 0; /* rank 0 evaluates; the others wait at the first sum */
    if (lead && !resume && rs->eval_n > 0 && grpo_eval(pm, pt, rs, 0, &err) != R1_OK)
        rc = 1;
    grpo_ctx c = {rs, log_every ? log_every : rs->steps >= 50 ? rs->steps / 50 : 1, r1_now(),
                  r1_grpo_run_step(run)};
    r1_observer o = {.step = grpo_step, .user = &c};
    if (rc == 0) {
        trap_sigint(1);
        st = r1_grpo_run_go(run, NULL, &o, NULL, &err);
        trap_sigint(0);
    }
    if (rc == 0 && st == R1_OK && r1_grpo_run_stopped(run))
        printf("stopped early: %s\n", r1_grpo_run_stopped(run));
    if (lead && rc == 0 && st == R1_OK && rs->eval_n > 0)
        st = grpo_eval(pm, pt, rs, r1_grpo_run_step(run), &err);
    if (rc)
        fprintf(stderr, "r1lab train: %s\n", err.msg);
    else
        rc = report_end(st, &err, out, r1_grpo_run_step(run));
    r1_grpo_run_free(run);
    r1_tokenizer_free(tok);
    r1_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ reject */

static int reject_progress(void *user, const r1_step_report *r)
{
    const r1_reject_stats *st = r->reject;
    int done = (int)r->step, total = (int)r->steps;
    (void)user;
    printf("reject: %d/%d prompts  sampled %ld  correct %ld  well formed %ld  in language %ld  "
           "kept %ld (%ld direct, %ld duplicates dropped)\n",
           done, total, st->sampled, st->correct, st->well_formed, st->in_language, st->kept,
           st->direct, st->duplicates);
    fflush(stdout);
    return 0;
}

static int train_reject(const char *model, const char *out, int resume, r1_reject_cfg *c)
{
    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    r1_status st = R1_OK;
    if (resume) { /* the settings and the model's folder from the run's state */
        st = r1_reject_pending(out, c, &err);
        if (st == R1_OK && !c->model[0])
            st = r1_error_set(&err, R1_EINVAL, "%s.part.json: the run did not record its "
                              "model's folder (started from Lua?); resume it there", out);
        model = c->model;
    } else {
        /* recorded for a resume, absolute so that it works from another folder */
        char *abs = realpath(model, NULL);
        snprintf(c->model, sizeof c->model, "%s", abs ? abs : model);
        free(abs);
    }
    if (st == R1_OK)
        st = open_model(model, c->seed, &m, &tok, &err);
    if (st == R1_OK && !tok)
        st = r1_error_set(&err, R1_EINVAL, "%s: rejection sampling needs the model's "
                          "tokenizer.json", model);
    if (st == R1_OK) {
        char tasks[512];
        r1_settings_format(r1_settings_find(r1_reject_settings_table(), "tasks", NULL, "", NULL),
                           c, tasks, sizeof tasks);
        printf("%s: %d prompts x %d completions (up to %d tokens), tasks %s, "
               "keep %d per prompt, into %s\n", resume ? "resuming rejection sampling"
               : "rejection sampling", c->prompts, c->k, c->max_new, tasks, c->keep_per_prompt,
               out);
        cmd_print_machine();
        fflush(stdout);
        r1_reject_stats rs;
        r1_observer o = {.step = reject_progress};
        trap_sigint(1);
        r1_reject_set_comm(world_comm()); /* under mpirun: the prompts shared over the ranks */
        st = resume ? r1_reject_resume(m, tok, out, &o, &rs, &err)
                    : r1_reject_sample(m, tok, c, out, &o, &rs, &err);
        trap_sigint(0);
        if (st == R1_OK)
            printf("done: kept %ld of %ld completions in %s (%.1f s)\n", rs.kept, rs.sampled,
                   out, rs.seconds);
    }
    int rc = st == R1_OK ? 0 : st == R1_ECANCELED ? 130 : 1;
    if (rc == 130)
        printf("interrupted: %s; continue with: r1lab train --out %s --resume\n", err.msg, out);
    else if (rc)
        fprintf(stderr, "r1lab train: %s\n", err.msg);
    r1_tokenizer_free(tok);
    r1_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ distill */

typedef struct {
    long log_every;
} distill_ctx;

static int distill_step(void *user, const r1_step_report *r)
{
    const r1_distill_progress *p = r->distill;
    distill_ctx *c = user;
    if (p->step == 1 || p->step == p->steps || p->step % c->log_every == 0) {
        char el[32];
        hms(p->elapsed, el, sizeof el);
        printf("distill step %lld/%lld  loss %.4f (ce %.4f, kl %.4f)  lr %.2e  gnorm %.3f  "
               "%.0f tok/s  elapsed %s\n",
               (long long)p->step, (long long)p->steps, p->loss, p->ce, p->kl, p->lr,
               p->grad_norm, p->tokens_per_s, el);
        fflush(stdout);
    }
    return 0;
}

/* A distillation run in folder out (the engine writes metrics, checkpoints and the student);
 * with resume, the run in out continues from its checkpoint. */
static int train_distill(const char *model, const char *teacher_dir, const char *data,
                         const char *out, int resume, r1_distill_cfg *c, long log_every)
{
    r1_distill_set_comm(world_comm()); /* under mpirun: data-parallel over the ranks */
    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    distill_ctx dc = {log_every};
    r1_distill_progress last;
    memset(&last, 0, sizeof last);
    r1_status st = R1_OK;
    r1_observer o = {.step = distill_step, .user = &dc};
    if (resume) {
        printf("resuming distillation in %s\n", out);
        fflush(stdout);
        r1_distill_cfg rc;
        trap_sigint(1);
        dc.log_every = log_every ? log_every : 1;
        st = r1_distill_resume(out, &rc, &o, &last, &err);
        trap_sigint(0);
        return report_end(st, &err, out, last.step);
    }
    dc.log_every = log_every ? log_every : c->steps >= 50 ? c->steps / 50 : 1;
    if (!data)
        st = r1_error_set(&err, R1_EINVAL, "--stage distill needs --data FILE.jsonl (what "
                          "--stage reject writes)");
    if (st == R1_OK)
        st = open_model(model, c->seed, &m, &tok, &err);
    if (st == R1_OK && !tok && !(tok = r1_tokenizer_new_builtin()))
        st = r1_error_set(&err, R1_ENOMEM, "out of memory");
    if (st == R1_OK) {
        printf("distilling into %s: %d steps of %d x %d tokens from %s%s%s, ce %g, kd %g\n", out,
               c->steps, c->batch, c->seq_len, data, teacher_dir ? ", teacher " : "",
               teacher_dir ? teacher_dir : "", c->ce,
               c->kd >= 0 ? c->kd : teacher_dir ? 0.5 : 0.0);
        cmd_print_machine();
        fflush(stdout);
        trap_sigint(1);
        st = r1_distill_run_dir(m, tok, data, teacher_dir, c, out, &o, &last, &err);
        trap_sigint(0);
    }
    int rc = report_end(st, &err, out, last.step);
    r1_tokenizer_free(tok);
    r1_model_free(m);
    return rc;
}

/* ------------------------------------------------------------------ eval */

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL;
    long threads = -1;
    r1_eval_settings es = r1_eval_defaults();
    const r1_settings_table *t = r1_eval_settings_table();
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            char buf[8192];
            r1_settings_help(t, &es, buf, sizeof buf);
            printf("usage: r1lab eval --model DIR [--SETTING VALUE ...] [--threads N]\n\n"
                   "settings (Lua's r1.evaluate takes the same names):\n%s", buf);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || !val) {
            fprintf(stderr, "r1lab eval: %s: expected --OPTION VALUE (r1lab eval --help)\n", a);
            return 2;
        }
        i++;
        r1_error err = {0};
        if (!strcmp(a, "--model")) {
            model = val;
        } else if (!strcmp(a, "--threads")) {
            if (!parse_long(a, val, 0, 1024, &threads))
                return 2;
        } else {
            const r1_setting *e = r1_settings_find(t, a + 2, NULL, "r1lab eval", &err);
            if (!e || r1_settings_set_text(e, &es, val, "", &err) != R1_OK) {
                fprintf(stderr, "r1lab eval: %s%s\n", e ? "--" : "", err.msg);
                return 2;
            }
        }
    }
    if (!model) {
        fprintf(stderr, "usage: r1lab eval --model DIR [--SETTING VALUE ...] (r1lab eval "
                        "--help)\n");
        return 2;
    }
    if (threads >= 0)
        r1_set_threads((int)threads);
    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    r1_sft_eval e;
    r1_status st = open_model(model, 1, &m, &tok, &err);
    if (st == R1_OK && !tok)
        st = r1_error_set(&err, R1_EINVAL, "%s: evaluation needs the model's tokenizer.json",
                          model);
    if (st == R1_OK) {
        trap_sigint(1);
        st = r1_eval_run_comm(m, tok, &es, world_comm(), &e, &err); /* split over ranks */
        trap_sigint(0);
    }
    if (st == R1_OK)
        print_eval(&e, -1);
    else
        fprintf(stderr, "r1lab eval: %s\n", err.msg);
    r1_tokenizer_free(tok);
    r1_model_free(m);
    return st == R1_OK ? 0 : st == R1_ECANCELED ? 130 : 1;
}

/* ------------------------------------------------------------------ options */

/* the stage's settings struct with its defaults, as cmd_train starts from them */
typedef struct {
    r1_sft_settings ss;
    r1_grpo_settings gs;
    r1_reject_cfg rc;
    r1_distill_cfg dc;
} stage_defaults;

static void *defaults_of(stage_defaults *d, const char *stage, const r1_settings_table *table)
{
    d->ss = r1_sft_defaults(stage && !strcmp(stage, "sft") ? R1_SFT_COLDSTART : R1_SFT_PRETRAIN);
    d->gs = r1_grpo_settings_defaults();
    d->rc = r1_reject_defaults();
    d->dc = r1_distill_defaults();
    d->dc.kd = -1; /* not given: 0.5 with a --teacher, else 0 (train_distill) */
    return table == r1_grpo_settings_table()      ? (void *)&d->gs
           : table == r1_reject_settings_table()  ? (void *)&d->rc
           : table == r1_distill_settings_table() ? (void *)&d->dc
                                                  : (void *)&d->ss;
}

void cmd_train_settings_help(FILE *f, const char *stage)
{
    const r1_settings_table *table = r1_settings_table_of(stage);
    if (!table)
        return;
    stage_defaults d;
    char buf[16384];
    r1_settings_help(table, defaults_of(&d, stage, table), buf, sizeof buf);
    fprintf(f, "settings of --stage %s (Lua: the same names with underscores):\n%s",
            table->stage, buf);
}

int cmd_train(int argc, char **argv)
{
    const char *stage = NULL, *model = NULL, *out = NULL, *teacher = NULL, *data = NULL;
    int resume = 0, setting_given = 0, min_lr_given = 0, help = 0;
    long threads = -1, log_every = 0;
    /* the stage decides the settings table and the defaults, so find it first */
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--stage"))
            stage = argv[i + 1];
    const r1_settings_table *table = stage ? r1_settings_table_of(stage) : NULL;
    if (stage && (!table || !strcmp(stage, "eval"))) {
        fprintf(stderr, "r1lab train: --stage expects pretrain, sft, grpo, reject or distill, got "
                        "'%s'%s\n", stage, stage && !strcmp(stage, "eval") ? " (evaluation is "
                        "r1lab eval)" : "");
        return 2;
    }
    int grpo = table == r1_grpo_settings_table(), reject = table == r1_reject_settings_table(),
        distill = table == r1_distill_settings_table();
    stage_defaults sd;
    void *settings = defaults_of(&sd, stage, table); /* the stage's own, filled below */
    char where[64];
    snprintf(where, sizeof where, "r1lab train --stage %s", stage ? stage : "");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--resume")) {
            resume = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "r1lab train: expected an option, got '%s'\n%s", a, usage_text);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "r1lab train: %s needs a value\n%s", a, usage_text);
            return 2;
        }
        i++;
        if (!strcmp(a, "--stage"))
            continue;
        if (!strcmp(a, "--model"))
            model = val;
        else if (!strcmp(a, "--out"))
            out = val;
        else if (distill && !strcmp(a, "--teacher"))
            teacher = val;
        else if (distill && !strcmp(a, "--data"))
            data = val;
        else if (!strcmp(a, "--threads")) {
            if (!parse_long(a, val, 0, 1024, &threads))
                return 2;
        } else if (!strcmp(a, "--log-every")) {
            if (!parse_long(a, val, 1, 100000000, &log_every))
                return 2;
        } else if (!table) {
            fprintf(stderr, "r1lab train: %s: give --stage first (pretrain, sft or grpo), or "
                            "--resume alone\n", a);
            return 2;
        } else {
            r1_error err = {0};
            int old;
            const r1_setting *e = r1_settings_find(table, a + 2, &old, where, &err);
            if (!e) {
                fprintf(stderr, "r1lab train: %s\n", err.msg);
                return 2;
            }
            if (old) {
                char dash[64];
                snprintf(dash, sizeof dash, "%s", e->name);
                for (char *c = dash; *c; c++)
                    *c = *c == '_' ? '-' : *c;
                fprintf(stderr, "r1lab train: %s is deprecated: use --%s\n", a, dash);
            }
            if (r1_settings_set_text(e, settings, val, "", &err) != R1_OK) {
                fprintf(stderr, "r1lab train: --%s\n", err.msg);
                return 2;
            }
            setting_given = 1;
            min_lr_given |= !strcmp(e->name, "min_lr");
            if (!grpo && !reject && !distill && !strcmp(e->name, "lr") && !min_lr_given)
                sd.ss.opt.min_lr = sd.ss.opt.lr / 10; /* the command line's habit since 0.1 */
        }
    }
    if (help) {
        fputs(usage_text, stdout);
        if (table) {
            fputc('\n', stdout);
            cmd_train_settings_help(stdout, stage);
        }
        return 0;
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
    if (strlen(out) >= sizeof sd.ss.out_dir - 64) {
        fprintf(stderr, "r1lab train: --out is too long\n");
        return 2;
    }
    if (resume) {
        char st[32];
        int saved = 0;
        run_stage(out, st, sizeof st, &saved);
        /* the run's own thread count unless told otherwise: for the speed it was given, as
         * results do not depend on it (products are cut by their shape, engine/ops.c) */
        if (saved && threads < 0)
            r1_set_threads(saved);
        grpo = !strcmp(st, "grpo");
        distill = !strcmp(st, "distill");
        reject = !strcmp(st, "reject");
    }
    if (reject)
        return train_reject(model, out, resume, &sd.rc);
    if (distill)
        return train_distill(model, teacher, data, out, resume, &sd.dc, log_every);
    if (grpo)
        return train_grpo(model, out, resume, &sd.gs, log_every);
    snprintf(sd.ss.out_dir, sizeof sd.ss.out_dir, "%s", out);
    sd.ss.opt.total = sd.ss.steps;
    return train_sft(model, out, resume, &sd.ss, log_every);
}
