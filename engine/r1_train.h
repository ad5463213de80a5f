/* r1_train.h — what every training stage shares: resumable checkpoints and JSONL logs.
 *
 * A checkpoint is a folder: the model as a Hugging Face deepseek_v3 folder (config.json and an
 * F32 model.safetensors, so that resuming is exact and other tools can read it), the AdamW
 * moments in optimizer.safetensors (m.<name>, v.<name>), and trainer_state.json (stage, step,
 * data position, the RNG state, the optimizer settings, and the stage's own settings as JSON).
 * The folder is written under a temporary name and renamed into place, so a crash leaves
 * either the previous checkpoint or the new one, never half of one. */
#ifndef R1_TRAIN_H
#define R1_TRAIN_H

#include "r1_model.h"
#include "r1_optim.h"
#include "r1_rng.h"
#include "r1_tokenizer.h"

typedef struct {
    char stage[16];      /* "pretrain", "sft", "grpo", ... */
    int64_t step;        /* optimizer steps done */
    int64_t data_pos;    /* position in the stage's data stream */
    r1_rng rng;          /* the stage's RNG, saved exactly */
} r1_train_state;

/* Writes the checkpoint folder dir.  settings_json (may be NULL) is stored verbatim under
 * "settings" (must be a JSON object text).  o may be NULL (no optimizer state). */
r1_status r1_ckpt_save(const char *dir, const r1_model *m, r1_adamw *o, const r1_train_state *st,
                       const char *settings_json, r1_error *err);

/* The same, with tok's tokenizer.json written into the folder before it is renamed into place
 * (tok may be NULL), so that the checkpoint is a complete model folder. */
r1_status r1_ckpt_save_tok(const char *dir, const r1_model *m, r1_adamw *o,
                           const r1_train_state *st, const char *settings_json,
                           const r1_tokenizer *tok, r1_error *err);

/* The same, with a second model (GRPO's frozen reference, may be NULL) in dir/reference, also
 * written before the folder is renamed into place. */
r1_status r1_ckpt_save_ref(const char *dir, const r1_model *m, r1_adamw *o,
                           const r1_train_state *st, const char *settings_json,
                           const r1_tokenizer *tok, const r1_model *ref, r1_error *err);

/* Reads a checkpoint folder: *m gets the model (owned by the caller); when o is not NULL, *o
 * gets an optimizer with the saved moments, step count and settings; st (may be NULL) gets the
 * state; *settings_json (may be NULL) gets a malloc'd copy of the stage settings or NULL. */
r1_status r1_ckpt_load(const char *dir, r1_model **m, r1_adamw **o, r1_train_state *st,
                       char **settings_json, r1_error *err);

/* Readies out_dir for a new run.  R1_EINVAL when it holds a checkpoint (a run to resume, or
 * to keep).  A metrics.jsonl without a checkpoint is a run that stopped before its first
 * checkpoint, which nothing can resume: it is removed, so that starting the same command
 * again works. */
r1_status r1_run_folder_fresh(const char *out_dir, r1_error *err);

/* Appends one line (a JSON object text, no newline) to the JSONL file at path, creating it.
 * The line is written with one write(2) call so that concurrent readers never see half. */
r1_status r1_jsonl_append(const char *path, const char *json_line, r1_error *err);

/* Drops the lines of the JSONL file at path whose "step" is above step, or that are not a JSON
 * object with an integer step (a half line written by a killed run), so that a resumed run's
 * metrics read as if it had never stopped.  What stays is whole lines (a kept last line without
 * its newline gets one), rewritten atomically; a missing file is R1_OK. */
r1_status r1_jsonl_trim(const char *path, int64_t step, r1_error *err);

#endif
