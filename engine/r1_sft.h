/* r1_sft.h — the first two stages of the R1 recipe: pretraining and cold-start SFT.
 *
 * One trainer serves both stages; they differ only in their documents and in which tokens the
 * loss sees:
 *   pretrain  next-token + MTP loss (loss = main + lambda * mtp, lambda 0.3) on every token of a
 *             generated corpus that mixes the tasks' worked solutions in both languages: full
 *             chat sequences, plain-text variants ("PROMPT\nREASONING\nAnswer: X", no chat
 *             tokens), and in both kinds some documents whose reasoning switches language line
 *             by line — so the model learns to reason and also learns to mix languages, which
 *             the language-consistency reward later punishes (DESIGN.md).
 *   sft       cold start: a small, clean set of worked solutions in the chat format, the prompt
 *             asking for a language and the reasoning in that language; the loss sees only the
 *             assistant tokens (weight 0 on the prompt, 1 from assistant_start through <|eos|>).
 *
 * The data stream.  Document number `pos` of a run is a pure function of (seed, stage, pos):
 * its task (drawn by the mixture weights), difficulty, language, variant and task seed come
 * from an RNG seeded by hashing those three, nothing else.  The trainer's data position is the
 * number of documents consumed, so a checkpoint that saves it resumes the exact stream.  With
 * sft_docs = N the cold-start set is the first N documents, repeated (position pos uses
 * document pos mod N).
 *
 * Packing.  Whole documents, first fit: taken in stream order, each document goes into the
 * first row of the batch with room for it, so short documents fill the gaps long ones leave; a
 * document that fits no row is dropped (documents are generated: dropping one costs only its
 * generation), and the batch is complete after 8 such documents in a row.  The rest of each row
 * is <|pad|> with loss weight 0; a document longer than seq_len is dropped too.  The batch is
 * still a pure function of its first position, and the position after it is the next batch's.
 * Documents are never cut: a cut would train SFT's masked loss on answers whose question sits in
 * another row, and would start rows mid-document, while generation always starts at position 0
 * with <|bos|>.  Tokens of a later document in a row do attend to the earlier, complete
 * documents (the model has no document mask); that is acceptable because every document opens
 * with <|bos|> right after the previous one's <|eos|>, the documents are independent draws (the
 * earlier ones carry no information about the later one's answer, so the model learns to ignore
 * them), RoPE is relative, and the first document of every row trains exactly the no-context
 * case that generation sees.  The cost is the padding, a few percent of the rows (reported per
 * step as `tokens`, the tokens with a loss weight).
 *
 * The held-out set.  Evaluation sample j of (task, difficulty d) is the task's sample of seed
 * 2^63 | d << 32 | j (language drawn from the seed).  Training task seeds always have the top
 * bit clear, so the seeds are disjoint by construction; in addition the stream skips any
 * training problem equal to one of the first R1_SFT_HELDOUT held-out problems of an evaluated
 * (task, difficulty) (compared as the English prompt, so the language does not hide a copy).
 * Problem spaces too small for that (1-operator boolean expressions, say) give up after a few
 * redraws and take the problem anyway; that is counted as `heldout_hits` of the data.
 * Evaluation covers, per task, difficulties dmin .. dmax + eval_above (capped at the task's
 * maximum): the ones above training measure generalisation and leave RL room.
 *
 * Evaluation: greedy batched generation (stop after <|eos|> or </answer>) of the held-out
 * prompts, then per (task, difficulty) cell: accuracy (the task's verifier), format rate
 * (r1_reward_format), language consistency (r1_reward_language against the language the prompt
 * asked for), mean completion length in tokens and mean reasoning length (characters of the
 * think block, which are its tokens under the character-level tokenizer).
 *
 * The run folder (out_dir, when set):
 *   out_dir/metrics.jsonl   one JSON object per step (keys below), appended
 *   out_dir/checkpoint/     the resumable checkpoint (r1_ckpt_save: model, AdamW moments,
 *                           trainer_state.json with step, data position, RNG and these settings)
 *                           with its tokenizer.json, replaced atomically every save_every steps
 *   out_dir/config.json, model.safetensors, tokenizer.json
 *                           the latest model as a plain HF folder, so that `r1lab generate
 *                           --model out_dir` and the next stage can load it
 * Router biases live in model.safetensors; the expert-load counts are reset by the balancing
 * update after every step, so a checkpoint between steps misses nothing.
 *
 * metrics.jsonl keys (stable):
 *   step (1-based count of optimizer steps), stage ("pretrain" / "sft"), loss (main + lambda *
 *   mtp + balance), loss_main (weighted mean next-token cross-entropy), loss_mtp (mean MTP
 *   cross-entropy, before lambda), lr, grad_norm (before clipping), tokens (tokens with a
 *   non-zero loss weight in the step), tokens_per_s (those tokens per second of the step's
 *   forward, backward and update), data_pos (documents consumed after the step), elapsed (wall
 *   seconds of the run so far, across resumes, evaluation and checkpoints included);
 *   when the step evaluated: eval.accuracy, eval.format, eval.language, eval.length,
 *   eval.think_len (means over every held-out sample), eval.accuracy_in / eval.accuracy_above
 *   (over the training difficulties / the ones above), eval.seconds, and per cell
 *   eval.<task>.<d>.accuracy / .format / .language / .length / .think_len.
 * Losses are written with 17 significant digits, so equal numbers mean bit-identical doubles.
 *
 * Ownership: r1_sft_new borrows the model and the tokenizer (they must outlive the trainer);
 * r1_sft_resume creates both and the trainer owns them.  r1_sft_data handles own their memory.
 * Nothing here prints; progress goes through the callback.  Errors: R1_EINVAL for bad
 * settings (the message names the setting), R1_EIO / R1_ENOTFOUND / R1_EFORMAT from files
 * (naming them), R1_ENOMEM, R1_ECANCELED when the callback or r1_interrupt() stopped a run
 * (after a checkpoint of the last finished step). */
#ifndef R1_SFT_H
#define R1_SFT_H

#include "r1_model.h"
#include "r1_observer.h"
#include "r1_optim.h"
#include "r1_settings.h"
#include "r1_tasks.h"
#include "r1_tokenizer.h"

typedef enum { R1_SFT_PRETRAIN = 0, R1_SFT_COLDSTART = 1 } r1_sft_stage;

/* "pretrain" or "sft". */
const char *r1_sft_stage_name(r1_sft_stage stage);

/* Parses "pretrain" or "sft".  R1_EINVAL naming the text otherwise. */
r1_status r1_sft_stage_parse(r1_sft_stage *out, const char *name, r1_error *err);

#define R1_SFT_MAX_TASKS 16
#define R1_SFT_HELDOUT 64      /* held-out problems per (task, difficulty); eval_n <= this */
#define R1_SFT_PATH_MAX 1024
#define R1_SFT_MAX_BATCH 4096  /* rows per step */
#define R1_SFT_DOC_MAX (R1_TASK_PROMPT_MAX + R1_TASK_REASONING_MAX + R1_TASK_ANSWER_MAX + 64)

/* One entry of the task mixture. */
typedef struct {
    const r1_task *task; /* borrowed, static */
    int dmin, dmax;      /* training difficulties, 1 <= dmin <= dmax <= the task's maximum */
    double weight;       /* mixture weight, > 0 (relative) */
} r1_sft_task;

typedef struct {
    r1_sft_stage stage;
    int ntasks;
    r1_sft_task tasks[R1_SFT_MAX_TASKS];
    int seq_len;         /* T, tokens per row; <= max_position_embeddings */
    int batch;           /* B, rows per step */
    int steps;           /* optimizer steps of the whole run; the cosine ends here */
    r1_adamw_cfg opt;    /* lr, min_lr, warmup, betas, weight decay, clip (total := steps) */
    float mtp_lambda;    /* weight of the MTP loss */
    float balance_gamma; /* auxiliary-loss-free balancing step per update (0: off) */
    float balance_alpha; /* sequence-wise auxiliary balance loss coefficient (0: off) */
    int precision;       /* r1_precision of the training steps' GEMMs (R1_PREC_FP32) */
    uint64_t seed;       /* the data stream */
    double plain_frac;   /* pretrain: share of plain-text documents */
    double mix_frac;     /* pretrain: share of documents whose reasoning mixes languages */
    double typed_frac;   /* share of documents whose question is phrased as people type it
                          * (r1_tasks.h's R1_PHRASING_TYPED; 0, the default) */
    int eval_phrasing;   /* r1_phrasing of the held-out questions (R1_PHRASING_TASK) */
    int sft_docs;        /* sft: size of the cold-start set (0: an endless stream) */
    int eval_every;      /* evaluate every N steps and after the last one (0: never) */
    int eval_n;          /* held-out samples per (task, difficulty), 1..R1_SFT_HELDOUT */
    int eval_above;      /* evaluated difficulties above each task's dmax */
    int save_every;      /* checkpoint every N steps (0: only at the end and on cancel) */
    char out_dir[R1_SFT_PATH_MAX]; /* the run folder ("": nothing is written) */
} r1_sft_settings;

/* The defaults of a stage (the recipe that trains the tiny preset, see README.md):
 * pretrain: tasks "add:1-3@4,mul:1-2,linear:1-2,sort:1-2,bool:1-2,countdown:1", seq_len 256,
 * batch 16, steps 1000, lr 2e-3 -> 2e-4, warmup 50, wd 0.1, clip 1, lambda 0.3, gamma 1e-3,
 * plain 0.25, mix 0.2, eval every 250 with 16 per cell and 2 above, checkpoint every 250;
 * sft: the same tasks, lr 5e-4 -> 5e-5, warmup 20, steps 300, sft_docs 4096, no plain or mixed
 * documents.  The values here are authoritative; the comment is a summary. */
r1_sft_settings r1_sft_defaults(r1_sft_stage stage);

/* Replaces s's task mixture with spec, a comma-separated list of NAME[:D|:DMIN-DMAX][@WEIGHT]
 * ("add:1-3@2,mul:2,bool"); a missing range means 1 .. the task's training difficulty, a
 * missing weight 1.  R1_EINVAL / R1_ENOTFOUND naming the entry; s unchanged on failure. */
r1_status r1_sft_parse_tasks(r1_sft_settings *s, const char *spec, r1_error *err);

/* Writes s's mixture in the syntax above into buf[cap] (always NUL-terminated). */
void r1_sft_format_tasks(const r1_sft_settings *s, char *buf, size_t cap);

/* Checks every setting against the model config c (NULL: no model checks).  R1_EINVAL naming
 * the setting and the expected range. */
r1_status r1_sft_validate(const r1_sft_settings *s, const r1_config *c, r1_error *err);

/* The stage's settings table (r1_settings.h): every setting of r1_sft_settings by name, type,
 * range and help, read by the JSON loader, the Lua binding and the command line. */
const r1_settings_table *r1_sft_settings_table(r1_sft_stage stage);

/* The settings as a JSON object text (malloc'd, the caller frees; NULL when out of memory) and
 * back.  from_json starts from the stage's defaults, so older files with fewer keys load;
 * R1_EFORMAT naming the key for a wrong type, R1_EINVAL for bad values. */
char *r1_sft_settings_json(const r1_sft_settings *s);
r1_status r1_sft_settings_parse(r1_sft_settings *s, const char *json, r1_error *err);

/* ------------------------------------------------------------------ the data stream */

typedef struct r1_sft_data r1_sft_data;

/* What a document is (for tests and reports). */
typedef struct {
    const r1_task *task;
    int difficulty;
    r1_lang lang;         /* the language the prompt asks for */
    uint64_t task_seed;   /* the seed given to the task (top bit clear) */
    int plain;            /* 1: plain-text variant (pretrain only) */
    int mixed;            /* 1: the reasoning mixes the two languages (pretrain only) */
    int typed;            /* 1: the question is phrased as people type it (typed_frac) */
    int n;                /* tokens */
    int assistant_start;  /* chat documents: first assistant token; plain: 0 */
    char prompt[R1_TASK_PROMPT_MAX];
} r1_sft_doc;

/* The data of settings s (validated) for tokenizer tok (borrowed; must outlive the handle):
 * the stream, the packer and the held-out set.  *out owned by the caller. */
r1_status r1_sft_data_new(r1_sft_data **out, const r1_sft_settings *s, const r1_tokenizer *tok,
                          r1_error *err);
void r1_sft_data_free(r1_sft_data *d);

/* Document number pos of the stream: ids[n] and the loss weights w[n] of predicting each token
 * (w[0] = 0; pretrain: 1 on every later token; sft: 1 exactly on [assistant_start, n)).
 * ids and w hold R1_SFT_DOC_MAX entries; info may be NULL. */
r1_status r1_sft_data_doc(r1_sft_data *d, int64_t pos, int32_t *ids, float *w, r1_sft_doc *info,
                          r1_error *err);

/* Packs one batch, tokens[B,T] and weights[B,T] (first fit, see above), from stream position
 * *pos, which advances past every document looked at.  *ntok (may be NULL) gets the number of
 * non-zero weights, *dropped (may be NULL) the number of documents looked at but not packed
 * (longer than T, or no room).  R1_EINVAL when thousands of documents in a row exceed T. */
r1_status r1_sft_data_batch(r1_sft_data *d, int64_t *pos, int32_t *tokens, float *weights,
                            long *ntok, long *dropped, r1_error *err);

/* Redraws caused by held-out problems so far, and draws that gave up and kept one. */
long r1_sft_data_heldout_redraws(const r1_sft_data *d);
long r1_sft_data_heldout_hits(const r1_sft_data *d);

/* The evaluation cells: (task, difficulty) pairs, task by task in mixture order. */
int r1_sft_data_ncells(const r1_sft_data *d);
void r1_sft_data_cell(const r1_sft_data *d, int i, const r1_task **task, int *difficulty,
                      int *in_training);

/* Held-out sample j (0 <= j < R1_SFT_HELDOUT) of cell i. */
r1_status r1_sft_data_heldout(const r1_sft_data *d, int i, int j, r1_task_sample *out,
                              r1_error *err);

/* 1 when (task, English prompt) is one of the excluded held-out problems. */
int r1_sft_data_is_heldout(const r1_sft_data *d, const r1_task *task, const char *en_prompt);

/* ------------------------------------------------------------------ evaluation */

typedef struct {
    const r1_task *task;
    int difficulty;
    int in_training; /* 1: within the training difficulties */
    int n;
    double accuracy, format, language, length, think_len; /* means over the n samples */
} r1_sft_eval_cell;

#define R1_SFT_MAX_CELLS 128
#define R1_SFT_MTP_MAX 8 /* MTP depths whose acceptance the evaluation measures */

typedef struct r1_sft_eval {
    int ncells;
    r1_sft_eval_cell cell[R1_SFT_MAX_CELLS];
    int n;                                                /* samples in all cells */
    double accuracy, format, language, length, think_len; /* over all samples */
    int n_in, n_above;                  /* samples within / above the training difficulties */
    double accuracy_in, accuracy_above; /* their accuracies (0 when none) */
    /* by the language the prompt asks for (index r1_lang: 0 English, 1 Spanish): samples and
     * the means of accuracy, format and language consistency over them */
    int lang_n[2];
    double lang_accuracy[2], lang_format[2], lang_language[2];
    double seconds;
    /* MTP acceptance on the greedy completions (r1_inspect_mtp_accept): per draft position k
     * (1..mtp_depth) the drafts tried and accepted; mtp_depth 0 for a model without MTP */
    int mtp_depth;
    long mtp_tries[R1_SFT_MTP_MAX], mtp_hits[R1_SFT_MTP_MAX];
} r1_sft_eval;

/* Scoring, separate from generation so that it can be checked on hand-made completions:
 * reset, add each (sample, completion, completion tokens), then finish to compute the means.
 * Cells are found (or created) by (task, difficulty); in_training is the caller's flag. */
void r1_sft_eval_reset(r1_sft_eval *e);
void r1_sft_eval_add(r1_sft_eval *e, const r1_task_sample *s, int in_training,
                     const char *completion, int ntokens);
void r1_sft_eval_finish(r1_sft_eval *e);

/* Marks each cell of a finished evaluation in_training when its (task, difficulty) is among the
 * training tasks of s (whatever the evaluation itself was given), and recomputes n_in, n_above,
 * accuracy_in and accuracy_above to match. */
void r1_sft_eval_mark_trained(r1_sft_eval *e, const r1_sft_settings *s);

/* Generates (greedy, batched) n held-out completions per cell of d with model m and scores them
 * into *out.  R1_ECANCELED when r1_interrupt() stopped the generation. */
r1_status r1_sft_evaluate(r1_model *m, const r1_tokenizer *tok, const r1_sft_data *d, int n,
                          r1_sft_eval *out, r1_error *err);
/* The same split over the ranks of comm (r1_comm.h; NULL: one process): each rank generates
 * its share of every cell's problems and the sums are added up, so every rank gets the whole
 * evaluation.  It is one process's up to near-ties: a batch of other rows rounds the products
 * differently in the last bits, which can turn a greedy choice between two tokens whose
 * scores agree to ~1e-6 (a length, rarely an answer). */
typedef struct r1_comm r1_comm;
r1_status r1_sft_evaluate_comm(r1_model *m, const r1_tokenizer *tok, const r1_sft_data *d,
                               int n, const r1_comm *comm, r1_sft_eval *out, r1_error *err);

/* Evaluation as a stage of its own (r1lab eval, r1.evaluate): a model on the held-out set of
 * s's tasks, eval_n per cell and eval_above difficulties above each entry; the cells of
 * `trained` (when has_trained) are marked in_training. */
typedef struct {
    r1_sft_settings s;       /* tasks, eval_n ("n"), eval_above ("above"), seed */
    r1_sft_settings trained; /* the training tasks, when has_trained */
    int has_trained;
} r1_eval_settings;

/* The defaults: the stage's default tasks, 16 per cell, none above, no training tasks. */
r1_eval_settings r1_eval_defaults(void);

/* Its settings table: "eval" (tasks, n, above, seed, trained). */
const r1_settings_table *r1_eval_settings_table(void);

/* Evaluates m (greedy, batched) into *out.  R1_EINVAL naming a setting the model cannot take,
 * R1_ECANCELED when r1_interrupt() stopped it. */
r1_status r1_eval_run(r1_model *m, const r1_tokenizer *tok, const r1_eval_settings *e,
                      r1_sft_eval *out, r1_error *err);
r1_status r1_eval_run_comm(r1_model *m, const r1_tokenizer *tok, const r1_eval_settings *e,
                           const r1_comm *comm, r1_sft_eval *out, r1_error *err);

/* ------------------------------------------------------------------ the trainer */

typedef struct r1_sft r1_sft;

/* What the progress callback sees after every step (pointers borrowed for the call). */
#define R1_SFT_MAX_MOE 64

typedef struct r1_sft_progress {
    const char *stage;
    int64_t step, steps;  /* steps done (this one included), of the run */
    double loss, loss_main, loss_mtp, lr, grad_norm;
    long tokens;          /* weighted tokens of the step */
    double tokens_per_s;  /* training throughput of the step */
    double elapsed, eta;  /* seconds so far / estimated to go */
    int64_t data_pos;
    const r1_sft_eval *eval; /* when this step evaluated, else NULL */
    int checkpointed;        /* 1: a checkpoint was written after this step */
    int n_moe;               /* the main model's MoE layers (at most R1_SFT_MAX_MOE counted) */
    double maxvio[R1_SFT_MAX_MOE]; /* per MoE layer: the step's MaxVio (r1_load_maxvio) */
    double maxvio_mean;
} r1_sft_progress;


/* A trainer for settings s (validated against m's config) on model m with tokenizer tok (NULL:
 * the built-in one).  When s->out_dir is set it is created, and it must not hold a run already
 * (metrics.jsonl or checkpoint/): R1_EINVAL suggesting r1_sft_resume.  Writes nothing else
 * yet.  *out owned by the caller. */
r1_status r1_sft_new(r1_sft **out, r1_model *m, const r1_tokenizer *tok,
                     const r1_sft_settings *s, r1_error *err);

/* Reopens the run in folder out_dir from out_dir/checkpoint: model, optimizer moments and step
 * count, trainer state and settings (out_dir replaces the saved folder name, so a moved run
 * resumes), tokenizer.json.  Lines of out_dir/metrics.jsonl after the checkpoint's step (a run
 * killed between checkpoints wrote them) are dropped, so the file reads as if never stopped.
 * The trainer owns the model and tokenizer.  *out owned by the caller. */
r1_status r1_sft_resume(r1_sft **out, const char *out_dir, r1_error *err);

/* Trains until settings.steps: per step a packed batch, forward with the stage's loss weights,
 * backward, AdamW (warmup + cosine), balancing update, a metrics line; evaluation, checkpoint
 * and model export when due; the observer's step and eval (o may be NULL; a non-zero return
 * stops the run); r1_interrupted() between steps.
 * Ends with a checkpoint and the exported model.  R1_ECANCELED after a checkpoint when stopped.
 * Returns R1_OK at once when the run is already complete. */
r1_status r1_sft_run(r1_sft *t, const r1_observer *o, r1_error *err);

/* Data parallelism (r1_comm.h; NULL: one process): every rank packs the same batch and trains
 * on its share of the rows, normalised as the whole batch; the gradients, the loss and the
 * experts' loads are summed over the ranks, so that every rank takes the same step, the one a
 * single process takes on the whole batch (up to the order of the sums).  Rank 0 alone
 * evaluates and writes the metrics, checkpoints and model; all ranks stop after the same step.
 * R1_EINVAL when the batch has fewer rows than there are ranks. */
r1_status r1_sft_set_comm(r1_sft *t, const r1_comm *c, r1_error *err);

/* Writes out_dir/checkpoint (with tokenizer.json) and the exported model now. */
r1_status r1_sft_checkpoint(r1_sft *t, r1_error *err);

/* Evaluates the current model on the held-out set with n per cell (0: settings.eval_n). */
r1_status r1_sft_eval_now(r1_sft *t, int n, r1_sft_eval *out, r1_error *err);

/* Changes the precision of the steps still to run (a resumed run keeps its own otherwise). */
void r1_sft_set_precision(r1_sft *t, r1_precision p);

r1_model *r1_sft_model(r1_sft *t);                       /* borrowed */
const r1_tokenizer *r1_sft_tokenizer(const r1_sft *t);   /* borrowed */
const r1_sft_settings *r1_sft_get_settings(const r1_sft *t); /* borrowed */
r1_sft_data *r1_sft_get_data(r1_sft *t);                 /* borrowed */
int64_t r1_sft_step_count(const r1_sft *t);              /* steps done */
int64_t r1_sft_data_pos(const r1_sft *t);
void r1_sft_free(r1_sft *t);

#endif
