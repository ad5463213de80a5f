/* tasks_internal.h — internal to libr1 (not installed): the task descriptor and the helpers the
 * task files share (bounded text building, random ranges, integer answers).
 *
 * Each tasks_*.c defines one or more `const r1_task` descriptors; tasks.c lists them in the
 * registry and does the argument checks, seeding and verdict plumbing, so that a task only
 * writes texts and compares answers.  Nothing here allocates or fails: a text that does not fit
 * its buffer sets the buffer's overflow flag, which r1_task_generate reports. */
#ifndef R1_TASKS_INTERNAL_H
#define R1_TASKS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "r1_rng.h"
#include "r1_tasks.h"

/* A bounded string builder over caller memory; always NUL-terminated. */
typedef struct {
    char *p;
    size_t cap, n;
    int overflow;
} sbuf;

void sb_init(sbuf *b, char *p, size_t cap);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_putn(sbuf *b, const char *s, size_t n);

/* The phrase for the sample's language. */
#define L(lang, en, es) ((lang) == R1_LANG_ES ? (es) : (en))

/* Where a generator writes. */
typedef struct {
    r1_lang lang; /* EN or ES */
    int typed;    /* 0: the task's own prompt; else a number drawn from the seed for
                   * typed_variant (the problem does not depend on it) */
    sbuf prompt, reasoning, answer;
} task_out;

struct r1_task {
    const char *name;
    const char *summary;
    int max_difficulty;
    int train_difficulty; /* the highest difficulty the built-in model trains on */
    /* Writes the sample for difficulty d (1 .. max) drawing from r. */
    void (*generate)(r1_rng *r, int d, task_out *o);
    /* Judges ans[0, len) (already trimmed) against target; writes what it read into parsed.
     * Returns 1 when right. */
    int (*check)(const char *target, const char *ans, size_t len, sbuf *parsed);
};

extern const r1_task r1_task_def_add, r1_task_def_mul, r1_task_def_linear;
extern const r1_task r1_task_def_countdown, r1_task_def_sort, r1_task_def_bool;
extern const r1_task r1_task_def_chat;

/* The request that ends every prompt of the task's own phrasing: " Think in English." /
 * " Piensa en espanol." */
const char *lang_request(r1_lang lang);

/* A typed prompt (as people type the question: no language request, the question's own words
 * tell the language): which of the generator's n variants, or -1 for the task's own prompt. */
int typed_variant(const task_out *o, int n);

/* Uniform in [lo, hi]; hi - lo < 2^32. */
int64_t rand_range(r1_rng *r, int64_t lo, int64_t hi);

/* Shuffles a[n] in place (Fisher-Yates). */
void shuffle(r1_rng *r, int64_t *a, int n);

/* Strips ASCII whitespace from both ends of s[0, *len). */
void trim(const char **s, size_t *len);

/* An integer read as text, so that no length overflows: sign and significant digits. */
typedef struct {
    int neg;            /* 1 for a negative non-zero value */
    const char *digits; /* the first significant digit (borrowed) */
    size_t n;           /* number of significant digits; 0 means zero */
} int_text;

/* Reads s[0, len) as one integer: optional whitespace, an optional + or - sign, digits, optional
 * whitespace.  Returns 1 on success. */
int int_text_parse(const char *s, size_t len, int_text *out);
int int_text_eq(const int_text *a, const int_text *b);
void sb_int_text(sbuf *b, const int_text *x);

/* The check of tasks whose answer is one integer. */
int check_integer(const char *target, const char *ans, size_t len, sbuf *parsed);

#endif
