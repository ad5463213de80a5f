/* r1_grpo_run.h — GRPO as a whole run, like pretraining and SFT (r1_sft.h): prompts drawn
 * from the tasks, the built-in rewards (and the caller's own through a hook), the steps, a
 * metrics line per step, checkpoints every save_every steps, exact resume, Ctrl-C after the
 * current step, and the early stop when every group scores the same.  r1_grpo.h is the step
 * underneath; the Lua binding (r1.grpo) and the command line (r1lab train --stage grpo) are
 * thin front ends over this file.
 *
 * Prompts.  Prompt number i (a counter the checkpoint keeps) is task entry i mod ntasks, with
 * task seed 0x5eed0000 + seed * 1000003 + i; an entry with a difficulty range draws the
 * difficulty from that seed.  Training seeds stay below 2^63, so they never meet the held-out
 * set's (r1_sft.h).
 *
 * Files.  paths.metrics gets one JSON object per step, named as TRL's GRPOTrainer names the
 * same measures (README.md, "Metrics"): stage "grpo", step, reward, reward_std,
 * rewards/NAME/mean and /std per reward, frac_reward_zero_std, completions/mean_length,
 * /min_length, /max_length, /clipped_ratio, kl, entropy, clip_ratio/region_mean, grad_norm,
 * learning_rate, sampling/sampling_logp_difference/mean; then r1lab's own: mtp_loss,
 * entropy_kept and off_policy_masked (when those options are on), route_flip,
 * route_flip_mean, maxvio, maxvio_mean, t_sample, t_score, t_train, tokens_per_s,
 * gen_tokens_per_s, groups, elapsed (non-finite numbers are written as null).
 * paths.checkpoint is the resumable checkpoint (r1_grpo_save, with these settings and the
 * tokenizer), written every save_every steps, at the end, and when the run is interrupted or
 * stops early.  paths.model (may be NULL) receives the latest policy as a plain model folder at
 * the same moments.  The command line sets all three from one run folder: OUT/metrics.jsonl, OUT/checkpoint, OUT.
 *
 * Ownership: r1_grpo_run_new borrows the model and tokenizer (they must outlive the run);
 * r1_grpo_run_resume_dir creates both and the run owns them.  Nothing prints.  Errors:
 * R1_EINVAL naming the setting; file errors naming the file; R1_ECANCELED when r1_interrupt()
 * or a hook stopped the run (after its checkpoint). */
#ifndef R1_GRPO_RUN_H
#define R1_GRPO_RUN_H

#include "r1_grpo.h"
#include "r1_observer.h"
#include "r1_rewards.h"
#include "r1_settings.h"
#include "r1_tasks.h"
#include "r1_tokenizer.h"

#define R1_GRPO_MAX_TASKS 16
#define R1_GRPO_PATH_MAX 1024

#define R1_GRPO_MAX_SEQUENCES 16384 /* group x prompts: completions per step */

typedef struct {
    r1_grpo_cfg cfg;  /* the step's settings; cfg.reward_names / weights: the rewards */
    int steps;        /* steps of this run (a resumed run counts on to it) */
    int ntasks;
    const r1_task *tasks[R1_GRPO_MAX_TASKS];
    int dmin[R1_GRPO_MAX_TASKS], dmax[R1_GRPO_MAX_TASKS]; /* 0: the run's difficulty */
    int difficulty;   /* for entries without one (0: each task's training difficulty) */
    int lang;         /* 0 auto, 1 en, 2 es: the language the prompts ask for */
    double typed_frac; /* share of prompts phrased as people type them (R1_PHRASING_TYPED),
                        * drawn from each prompt's seed (0) */
    int save_every;   /* checkpoint every N steps (0: at the end and on a stop) */
    int overlong_max, overlong_cache; /* the "overlong" reward's L_max (0: max_new) and
                                       * L_cache (0: L_max / 4) */
    int eval_n;       /* the command line: held-out problems per task and difficulty it
                       * evaluates before and after the run (0: none); r1.grpo ignores it */
} r1_grpo_settings;

/* GRPO's defaults (r1_grpo_defaults for the step), task "add", 10 steps, accuracy + format. */
r1_grpo_settings r1_grpo_settings_defaults(void);

/* GRPO's settings table: every key of r1_grpo_settings and its r1_grpo_cfg. */
const r1_settings_table *r1_grpo_settings_table(void);

/* Replaces the tasks with spec, "NAME[:D|:DMIN-DMAX],..." (the entries r1.grpo's tasks list
 * takes, comma-separated).  R1_EINVAL / R1_ENOTFOUND naming the entry. */
r1_status r1_grpo_parse_tasks(r1_grpo_settings *s, const char *spec, r1_error *err);

/* Replaces the rewards with spec, "NAME[@WEIGHT],..." of built-in rewards (r1_reward_find);
 * "overlong" may carry its lengths, "overlong:max=L:cache=C[@WEIGHT]". */
r1_status r1_grpo_parse_rewards(r1_grpo_settings *s, const char *spec, r1_error *err);

/* Checks the settings and resolves every task entry's difficulty.  R1_EINVAL naming the
 * setting. */
r1_status r1_grpo_settings_validate(r1_grpo_settings *s, r1_error *err);

typedef struct {
    const char *metrics;    /* JSONL appended per step, or NULL */
    const char *checkpoint; /* checkpoint folder, or NULL */
    const char *model;      /* plain model folder, or NULL */
} r1_grpo_paths;

/* What the caller may add: its own rewards.  Every pointer handed to the hook is borrowed for
 * the call.  A non-zero return stops the run (R1_ECANCELED). */
typedef struct {
    /* reward k (cfg.reward_names[k]) of one completion of prompt number index, for the
     * rewards marked custom */
    int (*reward)(void *user, int k, int64_t index, const r1_reward_sample *s,
                  const r1_task_sample *t, double *out);
    void *user;
} r1_grpo_hooks;

typedef struct r1_grpo_run r1_grpo_run;

/* A run of settings s (validated here) on policy m with tokenizer tok.  custom[k] (NULL: none)
 * marks rewards the hook computes; the others are found among the built-ins.  resume (may be
 * NULL) is a checkpoint to continue from: the policy, optimizer, step, prompt counter and RNG
 * are read from it into m.  *out owned by the caller. */
r1_status r1_grpo_run_new(r1_grpo_run **out, r1_model *m, const r1_tokenizer *tok,
                          const r1_grpo_settings *s, const int *custom, const char *resume,
                          const r1_grpo_paths *paths, r1_error *err);

/* Reopens the run in folder dir (dir/checkpoint with its settings, model and tokenizer; the
 * metrics after its step dropped), paths set from dir as above.  The run owns the model. */
r1_status r1_grpo_run_resume_dir(r1_grpo_run **out, const char *dir, r1_error *err);

/* Runs up to settings.steps (counted from step 0 of the run, so a resumed run does the rest);
 * *last (may be NULL) gets the last step's stats (zeroed when no step ran).  R1_OK when the
 * steps are done or the run stopped early (r1_grpo_run_stopped says why); R1_ECANCELED when
 * interrupted or a hook failed; the checkpoint is written in every case but a failure.  o (may
 * be NULL) sees every group and step; its step returning non-zero stops the run after that
 * step's checkpoint (R1_OK, r1_grpo_run_stopped "stopped by the observer ..."). */
r1_status r1_grpo_run_go(r1_grpo_run *r, const r1_grpo_hooks *h, const r1_observer *o,
                         r1_grpo_stats *last, r1_error *err);

/* Data parallelism (r1_grpo_set_comm, r1_comm.h): every rank runs the same run on its share
 * of each step's prompts; rank 0 alone writes the metrics, groups, checkpoints and model; all
 * ranks stop after the same step. */
r1_status r1_grpo_run_set_comm(r1_grpo_run *r, const r1_comm *c, r1_error *err);

/* Why the run ended before its steps ("every group scored equal rewards ...", "stopped by
 * the observer after step N"), or NULL. */
const char *r1_grpo_run_stopped(const r1_grpo_run *r);
int64_t r1_grpo_run_step(const r1_grpo_run *r);
const r1_grpo_settings *r1_grpo_run_settings(const r1_grpo_run *r); /* borrowed */
r1_model *r1_grpo_run_model(r1_grpo_run *r);                        /* borrowed */
const r1_tokenizer *r1_grpo_run_tokenizer(const r1_grpo_run *r);    /* borrowed */
double r1_grpo_run_elapsed(const r1_grpo_run *r);
void r1_grpo_run_free(r1_grpo_run *r);

#endif
