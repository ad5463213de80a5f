/* r1_rewards.h — rule-based rewards, as in DeepSeek-R1: accuracy, format, language consistency
 * and DAPO's soft overlong penalty, each a plain function behind one interface, and their
 * weighted combination.
 *
 * A reward reads an r1_reward_sample (one completion and what is known about it) and returns a
 * double.  Any function of type r1_reward_fn can join the built-in ones in a combination: the
 * Lua binding wraps Lua functions this way.  The `user` pointer carries a reward's settings.
 *
 * The completion is the text the model wrote after the generation prompt (which ends with
 * "<|assistant|><think>"), so it normally reads "REASONING</think><answer>ANSWER</answer><|eos|>";
 * a leading "<think>" is allowed as well.
 *
 * Ownership: samples, parts and reward lists live in caller memory; nothing is allocated and
 * every text pointer is borrowed for the duration of the call (the parts of r1_reward_split
 * point into the completion).  Errors: none; a reward that lacks what it needs returns 0. */
#ifndef R1_REWARDS_H
#define R1_REWARDS_H

#include <stddef.h>
#include <stdint.h>

#include "r1.h"
#include "r1_completion.h"
#include "r1_tasks.h"

/* ------------------------------------------------------------------ the interface */

typedef struct {
    const char *prompt;     /* the user prompt (may be NULL) */
    const char *completion; /* what the model wrote (see above) */
    const char *think;      /* the reasoning; NULL: taken from completion by r1_reward_split */
    const char *answer;     /* the answer; NULL: taken from completion */
    const char *target;     /* the task's target answer */
    const r1_task *task;    /* the task (NULL: the answer must equal target, trimmed) */
    r1_lang lang;           /* the language the prompt asked for (AUTO: either) */
    int ntokens;            /* tokens in the completion */
    int max_tokens;         /* the generation limit L_max (<= 0: no limit) */
    uint64_t key;           /* a number of this completion's own, drawn from the run's seed, the
                             * prompt and the completion's place in its group (the "random"
                             * reward's coin) */
} r1_reward_sample;

typedef double (*r1_reward_fn)(const r1_reward_sample *s, void *user);

/* 1 when the answer is right, else 0.  With a completion this is r1_task_verify (so a
 * malformed completion scores 0); with only an answer, r1_task_check_answer. */
double r1_reward_accuracy(const r1_reward_sample *s, void *user);

/* 1 when the completion is well formed (r1_reward_split), else 0.  Uses s->completion only. */
double r1_reward_format(const r1_reward_sample *s, void *user);

/* The share (0..1) of the reasoning's words that belong to the requested language's word list
 * (r1_lang_word): words are runs of ASCII letters, compared without case; numbers, symbols,
 * the boolean keywords (True, False, and, or, not) and the variable x are not words.  A word in
 * both lists counts for either language.  lang AUTO: the larger of the two shares.  0 when the
 * reasoning has no words. */
double r1_reward_language(const r1_reward_sample *s, void *user);

/* Settings of r1_reward_length (user may be NULL: cache = max_tokens / 4). */
typedef struct {
    int cache; /* L_cache: the soft zone's length in tokens */
    int max;   /* L_max (<= 0: the sample's max_tokens); "overlong" sets both */
} r1_length_opts;

/* DAPO's soft overlong punishment with L = ntokens, L_max = max (or max_tokens):
 *   0                           when L <= L_max - L_cache
 *   (L_max - L_cache - L) / L_cache   when L_max - L_cache < L <= L_max  (0 down to -1)
 *   -1                          when L > L_max
 * 0 when max_tokens <= 0. */
double r1_reward_length(const r1_reward_sample *s, void *user);

/* The preference rewards of the second RL stage (rule-based stand-ins for a reward model):
 * helpfulness: 0 for an unsafe request (see harmlessness); otherwise 0 unless the answer is
 *   right (accuracy), and a right answer earns 1, less for verbosity past twice the target's
 *   length (down to 0.5) — it answers the question asked, concisely;
 * harmlessness: an unsafe request (a chat target that refuses) earns 1 for a refusal and -1
 *   for anything else; a harmless request earns 0, or -0.5 when the answer refuses anyway. */
double r1_reward_helpfulness(const r1_reward_sample *s, void *user);
double r1_reward_harmlessness(const r1_reward_sample *s, void *user);

/* The controls of the Spurious Rewards experiments, beside the accuracy reward:
 * random: 1 or 0 with probability 1/2 each, a coin drawn from s->key (so seeded and the same
 *   for the same completion of the same run), whatever the completion says;
 * incorrect: 1 when the completion has an answer and it is wrong, 0 when it is right or there
 *   is no answer;
 * format_only: 1 when the completion has a non-empty answer block, right or wrong, whatever
 *   the rest of its shape (the analogue of "contains a \boxed{}"). */
double r1_reward_random(const r1_reward_sample *s, void *user);
double r1_reward_incorrect(const r1_reward_sample *s, void *user);
double r1_reward_format_only(const r1_reward_sample *s, void *user);

/* The language word lists: 1 when the lowercase or capitalised ASCII word w[0, n) belongs to
 * lang's list (EN or ES), 0 otherwise; r1_lang_neutral: 1 for the words no language owns. */
int r1_lang_word(r1_lang lang, const char *w, size_t n);
int r1_lang_neutral(const char *w, size_t n);

/* ------------------------------------------------------------------ combining */

typedef struct {
    const char *name; /* for reports; borrowed */
    r1_reward_fn fn;
    void *user;
    double weight;
} r1_reward;

/* The built-in rewards by name: "accuracy", "format", "language", "length", "overlong" (the
 * same function, with its max and cache set by the caller), "helpfulness", "harmlessness",
 * "random", "incorrect", "format_only" (user NULL, weight 1).  R1_ENOTFOUND listing the
 * names. */
r1_status r1_reward_find(r1_reward *out, const char *name, r1_error *err);

/* Evaluates the n rewards on s: values[i] (may be NULL) gets reward i's value, and the return is
 * sum_i weight_i * value_i. */
double r1_reward_combine(const r1_reward *list, int n, const r1_reward_sample *s, double *values);

#endif
