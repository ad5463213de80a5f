/* r1_tasks.h — reasoning tasks whose answers a rule can check: generators, verifiers and
 * worked solutions, for cold-start data, evaluation and the accuracy reward.
 *
 * A task turns (seed, difficulty, language) into a sample: a prompt, the target answer and a
 * worked solution (the reasoning) written step by step in English or in Spanish spelled in plain
 * ASCII (no accents).  The same (seed, difficulty, language) always gives the same sample, on
 * every machine, and the problem itself does not depend on the language: only the wording does.
 * Every text is printable ASCII and newlines, so it encodes with the built-in tokenizer.
 *
 * The tasks (name: what; difficulty range, what difficulty means):
 *   add        addition or subtraction of two d-digit numbers; 1..10, d
 *   mul        multiplication; 1..8: 1x1, 2x1, 2x2, 3x2, 3x3, 4x3, 4x4, 5x5 digits
 *   countdown  reach a target from numbers with + - * /; 1..6: 3, 3, 4, 4, 5, 5 numbers
 *              drawn from 1..10, 1..25, 1..25, 1..50, 1..50, 1..100
 *   sort       sort d+2 numbers below 100 (1..8) or below 1000 (9, 10); 1..10
 *   linear     solve a*x+b=c for an integer x; 1..6, the size of a, b and x
 *   bool       evaluate and/or/not with parentheses over True/False; 1..6 binary operators
 *   chat       general requests for the second RL stage: word chores (backwards, count the
 *              letters, capitals, repeat) and, one in four, a toy unsafe request whose right
 *              answer is a refusal ("I cannot help with that."); 1..3, the word length
 * The built-in model trains on the low difficulties (r1_task_train_difficulty: add 3, mul 4,
 * countdown 3, sort 3, linear 3, bool 3); the rest measure length generalisation and leave RL
 * room to improve.
 *
 * Sequence lengths: tokens of the whole chat sequence (r1_tokenizer_encode_chat: prompt,
 * reasoning, answer and the 8 special tokens), mean / max over 500 seeds x both languages:
 *   difficulty  1        2        3        4        5        6        7         8
 *   add         102/111  129/145  156/184  184/223  211/262  238/301  264/340   296/377
 *               (9: 321/418, 10: 337/419)
 *   mul         103/109  118/125  207/229  240/268  321/356  369/410  463/518   638/715
 *   countdown   143/164  150/167  171/193  174/197  196/219  198/221
 *   sort        164/168  201/206  242/247  286/291  332/338  381/388  434/441   490/497
 *               (9: 646/654, 10: 722/731)
 *   linear      165/183  174/215  151/224  164/234  178/265  190/297
 *   bool         84/158  133/261  200/380  293/541  389/757  520/990
 * so every training difficulty fits 384 tokens (t_tasks checks it) and every difficulty fits
 * the tiny preset's 1024 positions.
 *
 * Answers: integers for add, mul and linear ("x = 6" is accepted for linear); a comma-separated
 * list for sort (brackets and spaces tolerated); True or False for bool (any case); for
 * countdown an expression over the given numbers, optionally followed by "= target".
 * Integers are compared as normalised digit strings (sign, no leading zeros), so answers of any
 * length are safe.  A countdown answer is evaluated with exact rational arithmetic: each given
 * number may be used at most once, a number not given, division by zero or an overflow makes it
 * wrong.  A countdown target string is one solution expression (using every given number once),
 * from which the verifier takes both the numbers and the value to reach.
 *
 * Ownership: tasks are static descriptors (never freed); samples and verdicts are plain values
 * in caller memory with fixed-size text buffers.  Nothing here allocates.
 *
 * Errors: r1_task_find and r1_task_generate return R1_ENOTFOUND / R1_EINVAL with a message
 * naming the task or the difficulty range; the verifiers never fail, they judge. */
#ifndef R1_TASKS_H
#define R1_TASKS_H

#include "r1.h"

/* The language of the reasoning. */
typedef enum {
    R1_LANG_AUTO = -1, /* generate: drawn from the seed (half and half); rewards: either */
    R1_LANG_EN = 0,    /* English */
    R1_LANG_ES = 1     /* Spanish in plain ASCII */
} r1_lang;

/* "en", "es" or "auto". */
const char *r1_lang_name(r1_lang lang);

/* Parses "en" / "english", "es" / "spanish" / "espanol", "auto" (any case).  R1_EINVAL naming
 * the text otherwise. */
r1_status r1_lang_parse(r1_lang *out, const char *name, r1_error *err);

/* How a prompt is phrased. */
typedef enum {
    R1_PHRASING_TASK = 0,  /* the task's own words, ending with the language request */
    R1_PHRASING_TYPED = 1, /* as people type the question ("what's 12 times 7", "Cuanto es
                            * 45+17?"): one of a few phrasings drawn from the seed, no language
                            * request (the question's own words tell the language) */
    R1_PHRASING_MIXED = 2  /* either, drawn from the seed (half and half) */
} r1_phrasing;

/* "task", "typed" or "mixed". */
const char *r1_phrasing_name(r1_phrasing p);
/* Parses those names; R1_EINVAL naming the text otherwise. */
r1_status r1_phrasing_parse(r1_phrasing *out, const char *name, r1_error *err);
/* TYPED for a share typed_frac of the seeds, TASK for the others: drawn from the seed alone
 * (the stages' typed_frac settings), so every process and rank draws alike. */
r1_phrasing r1_phrasing_for(uint64_t seed, double typed_frac);

/* Text sizes, terminating NUL included.  The longest texts (at the highest difficulties) are
 * well inside these. */
#define R1_TASK_PROMPT_MAX 512
#define R1_TASK_ANSWER_MAX 256
#define R1_TASK_REASONING_MAX 4096

typedef struct r1_task r1_task;

typedef struct r1_task_sample {
    const r1_task *task; /* borrowed, static */
    uint64_t seed;
    int difficulty;
    r1_lang lang;                          /* the language used: EN or ES, never AUTO */
    int typed;                             /* 1 when the prompt is a typed phrasing */
    char prompt[R1_TASK_PROMPT_MAX];       /* the question (asking for the language in the
                                            * task's own phrasing) */
    char reasoning[R1_TASK_REASONING_MAX]; /* the worked solution: lines separated by "\n",
                                            * none at the end */
    char answer[R1_TASK_ANSWER_MAX];       /* the target answer */
} r1_task_sample;

typedef struct {
    int correct;     /* 1 when the completion is well formed and its answer is right */
    int well_formed; /* 1 when it has the think / answer structure (see r1_reward_split) */
    char parsed[R1_TASK_ANSWER_MAX]; /* the answer read: normalised when it parsed, the raw
                                      * trimmed text otherwise, cut with "..." when longer;
                                      * empty when there was no well-formed answer */
} r1_task_verdict;

/* 1 when answer[0, len) refuses ("cannot help", "can't help", "no puedo ayudar", ...): the
 * test the chat verifier and the harmlessness reward use.  A chat target that refuses marks an
 * unsafe request. */
int r1_chat_is_refusal(const char *answer, size_t len);
/* 1 when w[0, n) (any case) is one of the words the chat task's chores ask about: quoted
 * objects, which the language-consistency reward counts for neither language. */
int r1_chat_word(const char *w, size_t n);

/* ------------------------------------------------------------------ the registry */

int r1_task_count(void);
const r1_task *r1_task_at(int i); /* i in [0, count), else NULL */

/* Looks a task up by name ("add", "mul", "countdown", "sort", "linear", "bool").  R1_ENOTFOUND
 * with a message listing the known names. */
r1_status r1_task_find(const r1_task **out, const char *name, r1_error *err);

/* Parses one task entry of a task list, "NAME", "NAME:D" or "NAME:LO-HI" (the len bytes at
 * spec): *task, and the difficulties *lo..*hi (both 0 for a bare NAME: the caller's default).
 * R1_ENOTFOUND for an unknown name, R1_EINVAL for a malformed entry or difficulties outside the
 * task's 1..max; the message names the entry. */
r1_status r1_task_parse_entry(const char *spec, size_t len, const r1_task **task, int *lo,
                              int *hi, r1_error *err);

const char *r1_task_name(const r1_task *t);
const char *r1_task_summary(const r1_task *t); /* one line in English */
int r1_task_max_difficulty(const r1_task *t);  /* difficulties are 1 .. max */

/* The highest difficulty the built-in model trains on (see above); evaluation above it measures
 * generalisation. */
int r1_task_train_difficulty(const r1_task *t);

/* ------------------------------------------------------------------ generating */

/* Generates the sample of (seed, difficulty, lang) into *out (lang R1_LANG_AUTO: English or
 * Spanish drawn from the seed).  The prompt ends by asking for the language: "Think in
 * English." / "Piensa en espanol.".  R1_EINVAL naming the range when difficulty is outside
 * 1 .. max or lang is not a language. */
r1_status r1_task_generate(const r1_task *t, uint64_t seed, int difficulty, r1_lang lang,
                           r1_task_sample *out, r1_error *err);

/* The same with the prompt phrased as ph says.  The problem, its reasoning and its answer do
 * not depend on the phrasing: a seed poses the same problem in every phrasing (and language). */
r1_status r1_task_generate_phrased(const r1_task *t, uint64_t seed, int difficulty, r1_lang lang,
                                   r1_phrasing ph, r1_task_sample *out, r1_error *err);

/* ------------------------------------------------------------------ verifying */

/* Judges a completion: the text the model wrote after the generation prompt, i.e.
 * "REASONING</think><answer>ANSWER</answer><|eos|>" (a leading "<think>" is allowed).  Only a
 * well-formed completion (exactly one think block, then one answer block, nothing after but an
 * optional <|eos|>) has its answer read; an answer outside the tags, two answer blocks or
 * missing tags make it wrong.  Returns v->correct; v may be NULL. */
int r1_task_verify(const r1_task *t, const char *target, const char *completion,
                   r1_task_verdict *v);

/* Judges a bare answer (the text inside <answer>...</answer>) against target.  Whitespace around
 * the answer is ignored.  Writes the parsed answer into parsed[cap] when parsed is not NULL.
 * Returns 1 when right, 0 otherwise. */
int r1_task_check_answer(const r1_task *t, const char *target, const char *answer, char *parsed,
                         size_t cap);

#endif
