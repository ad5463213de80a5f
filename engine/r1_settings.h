/* r1_settings.h — one declarative table per training stage: every setting's name, type,
 * default (the stage's defaults function), range and one line of help, read alike by the JSON
 * loader (checkpoints), the Lua binding (r1.pretrain{...}, r1.grpo{...}) and the command line
 * (r1lab train --stage S --name-with-dashes VALUE).  So the three front ends spell a setting
 * the same way (snake_case in Lua and JSON, the same words with dashes on the command line),
 * check it against the same range, and refuse an unknown one with a suggestion:
 *   unknown option 'setps' for r1.grpo (did you mean 'steps'?)
 *
 * A table describes a plain C struct (r1_sft_settings, r1_grpo_settings) by field offsets.  A
 * setting may carry one older spelling (old_name), still accepted: the front end tells the
 * user it is deprecated (the engine never prints; r1_settings_find reports it).
 *
 * Errors: R1_EINVAL naming the key (with the front end's prefix given by the caller) and the
 * expected type or range.  Nothing here allocates; tables are static and immutable. */
#ifndef R1_SETTINGS_H
#define R1_SETTINGS_H

#include <stddef.h>

#include "r1.h"

typedef enum {
    R1_SET_INT,    /* int, integral values in [lo, hi] */
    R1_SET_FLOAT,  /* float in [lo, hi] (finite) */
    R1_SET_DOUBLE, /* double in [lo, hi] (finite) */
    R1_SET_BOOL,   /* int 0/1 ("true"/"false"/"1"/"0" as text) */
    R1_SET_SEED,   /* uint64_t in [0, 2^63) */
    R1_SET_CHOICE, /* int: the index of the text among choices ("seq|token|const") */
    R1_SET_TEXT,   /* a setting with its own parser and writer (a task list) */
} r1_set_type;

typedef struct r1_setting r1_setting;
struct r1_setting {
    const char *name;     /* snake_case */
    r1_set_type type;
    size_t off;           /* of the field in the settings struct */
    double lo, hi;        /* range of numbers */
    const char *choices;  /* R1_SET_CHOICE: the texts, '|'-separated; after a ';' older
                           * spellings of the first ones, in order ("a|b;x|y": x is a) */
    const char *help;     /* one line */
    const char *old_name; /* a deprecated spelling, or NULL */
    /* R1_SET_TEXT: parses text into the struct s / writes its value (NUL-terminated) */
    r1_status (*parse)(void *s, const char *text, r1_error *err);
    void (*format)(const void *s, char *buf, size_t cap);
};

typedef struct {
    const char *stage; /* "pretrain", "sft", "grpo", "reject", "distill", "eval" */
    const r1_setting *v;
    int n;
} r1_settings_table;

/* The table of a stage ("pretrain", "sft", "grpo", "reject", "distill", "eval"), or NULL
 * (no error set). */
const r1_settings_table *r1_settings_table_of(const char *stage);

/* The setting called key (snake_case, or with dashes: "eval-every" finds "eval_every"), or
 * its old_name (then *old = 1).  NULL when none, with R1_EINVAL in err: "unknown option
 * 'KEY' for WHERE (did you mean 'NAME'?)" (the suggestion when one name is close), where
 * WHERE is the caller's name for the front end ("r1.grpo", "r1lab train --stage sft"). */
const r1_setting *r1_settings_find(const r1_settings_table *t, const char *key, int *old,
                                   const char *where, r1_error *err);

/* Edit distance between two names ('-' and '_' alike; insertions, deletions, substitutions,
 * adjacent swaps), capped at 9. */
int r1_settings_distance(const char *a, const char *b);

/* The closest name of t to key (edit distance at most 2, or a prefix), or NULL. */
const char *r1_settings_suggest(const r1_settings_table *t, const char *key);

/* Sets setting e of struct s from a number (Lua, JSON), a boolean, or a text (the command
 * line, Lua strings, JSON strings).  Numbers for CHOICE/TEXT settings and texts that do not
 * parse are refused.  R1_EINVAL "WHERE: NAME expects ..., got ..." (where may be "" ). */
r1_status r1_settings_set_number(const r1_setting *e, void *s, double v, const char *where,
                                 r1_error *err);
r1_status r1_settings_set_bool(const r1_setting *e, void *s, int v, const char *where,
                               r1_error *err);
r1_status r1_settings_set_text(const r1_setting *e, void *s, const char *text,
                               const char *where, r1_error *err);

/* The value of setting e in struct s as text (what set_text reads back; doubles with 17
 * significant digits so that they round-trip). */
void r1_settings_format(const r1_setting *e, const void *s, char *buf, size_t cap);

/* 1 when e's value is a number (INT, FLOAT, DOUBLE, SEED), and that number. */
int r1_settings_number(const r1_setting *e, const void *s, double *v);

/* The settings of struct s as a JSON object text (malloc'd; NULL when out of memory): every
 * setting by name, floats with 17 significant digits, seeds as decimal strings. */
char *r1_settings_json(const r1_settings_table *t, const void *s);

/* Sets the settings of struct s named in the JSON object text json (others keep their
 * values).  Keys in `extra` (a NULL-terminated list; may be NULL) are skipped; any other
 * unknown key is an error, as is a wrong type or a value out of range.  R1_EFORMAT / R1_EINVAL
 * with "WHERE: ..." naming the key. */
r1_status r1_settings_parse_json(const r1_settings_table *t, void *s, const char *json,
                                 const char *const *extra, const char *where, r1_error *err);

/* Writes "  --name VALUE   help (range; default)" lines for every setting of t into buf (the
 * command line's --help); defaults are read from d, a struct holding the stage's defaults.
 * Always NUL-terminated; returns the length it needed. */
size_t r1_settings_help(const r1_settings_table *t, const void *d, char *buf, size_t cap);

#endif
