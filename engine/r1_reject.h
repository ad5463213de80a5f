/* r1_reject.h — rejection sampling (DeepSeek-R1 stage 3) and the data it makes.
 *
 * Sample k completions per prompt from a model, keep those that are correct, well formed and
 * in the requested language (at most keep_per_prompt per prompt, exact duplicates dropped), mix
 * in non-reasoning samples (a short direct answer with an empty think block, for the easiest
 * problems, which need no reasoning), and write the set as JSONL, one object per sample:
 *   {"prompt": ..., "completion": ..., "task": ..., "difficulty": d, "lang": "en"|"es",
 *    "target": ..., "direct": false, "rewards": {"accuracy": 1, "format": 1, "language": 0.97}}
 * where completion is what the model should write after the generation prompt
 * ("REASONING</think><answer>ANSWER</answer><|eos|>").  The same file trains the student in
 * distillation.  The run keeps its progress beside the file (OUT.part, OUT.part.json, after
 * every generation batch) and renames OUT.part to OUT when done, so a stopped run resumes
 * (r1_reject_resume) and gives the same file as one that never stopped.
 *
 * Ownership: the model and tokenizer are borrowed.  Errors: R1_EINVAL naming the setting,
 * R1_EIO naming the file, R1_ECANCELED from the progress callback or r1_interrupt(). */
#ifndef R1_REJECT_H
#define R1_REJECT_H

#include "r1_generate.h"
#include "r1_observer.h"
#include "r1_settings.h"
#include "r1_tasks.h"
#include "r1_tokenizer.h"

#define R1_REJECT_MAX_TASKS 32
#define R1_REJECT_PATH_MAX 4096

typedef struct {
    int ntasks;
    const r1_task *tasks[R1_REJECT_MAX_TASKS]; /* prompts cycle through these */
    int difficulty[R1_REJECT_MAX_TASKS];
    int prompts;          /* prompts to sample (64) */
    int k;                /* completions per prompt (8) */
    int keep_per_prompt;  /* at most this many kept per prompt (2) */
    float temperature;    /* (0.8) */
    int max_new;          /* (192) */
    double min_language;  /* a kept reasoning has at least this share of requested-language
                           * words (0.9) */
    double direct_share;  /* share of the difficulty-1 prompts that also get a direct,
                           * non-reasoning sample (0.1) */
    uint64_t seed;        /* prompt seeds and sampling (disjoint from the tasks' held-out set) */
    int batch_prompts;    /* prompts per generation batch (8) */
    double typed_frac;    /* share of prompts phrased as people type them (0) */
    char model[R1_REJECT_PATH_MAX]; /* the model's folder, recorded for a resume (not a
                                     * setting; may be empty) */
} r1_reject_cfg;

r1_reject_cfg r1_reject_defaults(void);

typedef struct r1_reject_stats {
    long sampled, correct, well_formed, in_language, kept, duplicates, direct;
    double seconds;
} r1_reject_stats;


/* The settings table (r1_settings.h) of r1_reject_cfg: "reject" for r1lab train --stage
 * reject and r1.reject_sample. */
const r1_settings_table *r1_reject_settings_table(void);

/* Replaces the tasks with spec, "NAME[:D|:LO-HI],..." (a bare NAME: the task's training
 * difficulty; a range: one entry per difficulty).  R1_EINVAL / R1_ENOTFOUND naming it. */
r1_status r1_reject_parse_tasks(r1_reject_cfg *c, const char *spec, r1_error *err);

/* Samples, filters and writes out_jsonl.  st (may be NULL) gets the counts.  The observer's
 * step (o may be NULL) sees every generation batch: step = prompts done of steps = prompts;
 * a non-zero return, or r1_interrupt(), stops after the batch (R1_ECANCELED; the progress
 * kept for r1_reject_resume).  R1_EINVAL when an unfinished run into out_jsonl waits. */
r1_status r1_reject_sample(r1_model *m, const r1_tokenizer *tok, const r1_reject_cfg *cfg,
                           const char *out_jsonl, const r1_observer *o,
                           r1_reject_stats *st, r1_error *err);

/* Data parallelism for the rejection sampling of this process (r1_comm.h; NULL, the default:
 * one process).  Every rank samples its share of each batch's prompts, the completions are
 * gathered on every rank and filtered there alike; rank 0 alone writes out_jsonl and its state,
 * which every rank reads to resume (a shared folder, as for checkpoints).  The file is the one
 * a single process writes: the sampling streams are numbered by the row's place in the batch. */
typedef struct r1_comm r1_comm;
void r1_reject_set_comm(const r1_comm *c);

/* Reads the settings of the unfinished run into out_jsonl (its OUT.part.json) into *cfg, with
 * cfg->model the model's folder when it was recorded.  R1_ENOTFOUND when there is none,
 * R1_EFORMAT naming the file and field when it is damaged. */
r1_status r1_reject_pending(const char *out_jsonl, r1_reject_cfg *cfg, r1_error *err);

/* Continues the unfinished run into out_jsonl with model m (the one it started with): the
 * prompts after the last finished batch, with its settings and counts. */
r1_status r1_reject_resume(r1_model *m, const r1_tokenizer *tok, const char *out_jsonl,
                           const r1_observer *o, r1_reject_stats *st, r1_error *err);

#endif
