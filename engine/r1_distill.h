/* r1_distill.h — supervised fine-tuning on a JSONL set of (prompt, completion) records, with an
 * optional teacher for logit distillation: R1's stage 3 (SFT on rejection-sampled data) and the
 * distillation of a teacher's outputs into a small dense student.
 *
 * The data: every line of the file is a JSON object with "prompt" and "completion" strings
 * (what r1_reject_sample writes; other fields are ignored).  A record becomes the chat sequence
 * <|bos|><|user|>PROMPT<|assistant|><think>COMPLETION, and the loss sees the completion's tokens
 * only.  Rows of seq_len take whole records (padding with weight 0 after them); records longer
 * than seq_len are skipped and counted.  The order is a seeded shuffle, reshuffled per epoch.
 *
 * The loss: ce times the mean next-token cross-entropy over completion tokens, plus, when a
 * teacher is given and kd > 0, kd times the mean KL(teacher || student) of the next-token
 * distributions at those tokens (Hinton et al.'s soft targets, temperature 1).  The teacher
 * must share the student's vocabulary; the student's MTP modules are not trained here.
 *
 * Ownership: the models and tokenizer are borrowed.  Errors: R1_EIO / R1_EFORMAT naming the
 * file and line, R1_EINVAL naming the setting, R1_ECANCELED from the callback or
 * r1_interrupt(). */
#ifndef R1_DISTILL_H
#define R1_DISTILL_H

#include "r1_model.h"
#include "r1_observer.h"
#include "r1_optim.h"
#include "r1_settings.h"
#include "r1_tokenizer.h"

typedef struct {
    int seq_len;       /* 256 */
    int batch;         /* 8 */
    int steps;         /* 200 */
    r1_adamw_cfg opt;  /* lr 1e-3 -> 1e-4, warmup 20 */
    float ce;          /* weight of the cross-entropy on the records (1) */
    float kd;          /* weight of the KL to the teacher (0: plain SFT) */
    float balance_gamma;
    int precision;     /* r1_precision of the student's training steps (fp32) */
    uint64_t seed;
    int save_every;    /* checkpoint every N steps in a run folder (50; 0: at the end) */
} r1_distill_cfg;

#define R1_DISTILL_PATH_MAX 4096

r1_distill_cfg r1_distill_defaults(void);

/* The settings table (r1_settings.h) of r1_distill_cfg: "distill" for r1lab train --stage
 * distill, r1.distill and r1.sft{data = ...}. */
const r1_settings_table *r1_distill_settings_table(void);

/* Data parallelism for the distillation runs of this process (r1_comm.h; NULL, the default:
 * one process): every rank packs the same batch and trains its share of the rows (the teacher
 * scores the same rows), normalised as the whole batch; gradients, losses and experts' loads
 * are summed over the ranks, rank 0 writes the run folder, all ranks stop after the same step.
 * Process-wide, as the thread count is. */
typedef struct r1_comm r1_comm;
void r1_distill_set_comm(const r1_comm *c);

typedef struct r1_distill_progress {
    int64_t step, steps;
    double loss, ce, kl, lr, grad_norm, tokens_per_s, elapsed;
    long records, skipped;
} r1_distill_progress;

/* Trains student on the records of jsonl (teacher may be NULL), in memory: nothing is written.
 * The observer's step (o may be NULL) sees every step; a non-zero return, or r1_interrupt(),
 * stops after the step (R1_ECANCELED).  A loss or gradient that is not finite stops the run
 * (R1_EINVAL naming the step).  *last (may be NULL) gets the last step's progress. */
r1_status r1_distill_run(r1_model *student, const r1_tokenizer *tok, const char *jsonl,
                         r1_model *teacher, const r1_distill_cfg *cfg, const r1_observer *o,
                         r1_distill_progress *last, r1_error *err);

/* The same as a resumable run in folder out_dir, which must not hold a run yet (created):
 * metrics.jsonl (a line per step), checkpoint/ (model, optimizer, step, record order and the
 * settings with the data and teacher paths) every cfg->save_every steps, at the end and when
 * stopped, and the student as a model folder beside it.  teacher_dir (may be NULL) is loaded
 * here; cfg->kd < 0 means 0.5 with a teacher, else 0.  A non-finite loss stops the run before
 * anything of that step is applied or saved: the last checkpoint stays as it was. */
r1_status r1_distill_run_dir(r1_model *student, const r1_tokenizer *tok, const char *jsonl,
                             const char *teacher_dir, const r1_distill_cfg *cfg,
                             const char *out_dir, const r1_observer *o,
                             r1_distill_progress *last, r1_error *err);

/* Continues the run in out_dir from its checkpoint: the student, optimizer, step and settings
 * come from it, the records are packed again up to its step (R1_EINVAL when the data file no
 * longer gives the same order), metrics after its step are dropped; the rest of the steps then
 * give the same metrics as a run that never stopped.  *cfg (may be NULL) gets the run's
 * settings.  R1_OK at once when the run is complete. */
r1_status r1_distill_resume(const char *out_dir, r1_distill_cfg *cfg, const r1_observer *o,
                            r1_distill_progress *last, r1_error *err);

#endif
