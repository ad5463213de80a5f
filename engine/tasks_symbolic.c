/* tasks_symbolic.c — the tasks that are not arithmetic: sorting a list ("sort") and evaluating
 * a boolean expression ("bool"), with their worked solutions in English and Spanish.
 *
 * sort: the solution takes the smallest remaining number each time and says what is left
 * ("smallest of 45 78 12 is 12"), so each line is one comparison pass over a short list.
 * bool: the expression is a random tree of and / or / not over True and False, printed with the
 * parentheses Python's precedence needs (not > and > or; a right operand of the same operator
 * keeps its parentheses so that the text shows the tree).  The solution reduces the leftmost
 * innermost operation whose operands are values and rewrites what remains, one line per step
 * ("now True and (False or True)"), so that each line is a copy with one small change; the
 * step that leaves a single value is the result line.  (Writing the reduced operation too,
 * "True or True is True, now ...", doubled the length for little gain.)
 *
 * Ownership and errors: none of their own; see tasks_internal.h. */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tasks_internal.h"

/* ------------------------------------------------------------------ sort */

#define SORT_MAX 12

static void print_list(sbuf *b, const int64_t *a, int n, const char *sep)
{
    for (int i = 0; i < n; i++)
        sb_printf(b, "%s%lld", i ? sep : "", (long long)a[i]);
}

static void sort_generate(r1_rng *r, int d, task_out *o)
{
    int n = d + 2;
    int64_t a[SORT_MAX], left[SORT_MAX], sorted[SORT_MAX];
    for (int i = 0; i < n; i++)
        a[i] = rand_range(r, 0, d <= 8 ? 99 : 999);
    r1_lang g = o->lang;
    /* the list goes where the phrase has its "|" */
    static const char *const en[] = {"Sort |", "sort these numbers: |",
                                     "Put | in order from smallest to largest.",
                                     "order | from low to high"};
    static const char *const es[] = {"Ordena |", "ordena estos numeros: |",
                                     "Pon | en orden de menor a mayor.",
                                     "ordena | de menor a mayor"};
    int v = typed_variant(o, 4);
    const char *ph = v < 0 ? L(g, "Sort from smallest to largest: |.", "Ordena de menor a mayor: |.")
                           : L(g, en[v], es[v]);
    size_t cut = strcspn(ph, "|");
    sb_putn(&o->prompt, ph, cut);
    print_list(&o->prompt, a, n, ", ");
    sb_printf(&o->prompt, "%s%s", ph + cut + 1, v < 0 ? lang_request(g) : "");

    sbuf *R = &o->reasoning;
    sb_printf(R, "%s\n", L(g, "Take the smallest each time.", "Tomo el menor cada vez."));
    memcpy(left, a, sizeof a);
    int m = n;
    for (int k = 0; k < n; k++) {
        int best = 0;
        for (int i = 1; i < m; i++)
            if (left[i] < left[best])
                best = i;
        sorted[k] = left[best];
        if (m == 1) {
            sb_printf(R, "%s %lld", L(g, "last is", "el ultimo es"), (long long)left[0]);
            break;
        }
        sb_printf(R, "%s ", L(g, "smallest of", "el menor de"));
        print_list(R, left, m, " ");
        sb_printf(R, " %s %lld\n", L(g, "is", "es"), (long long)left[best]);
        memmove(left + best, left + best + 1, (size_t)(m - best - 1) * sizeof *left);
        m--;
    }
    print_list(&o->answer, sorted, n, ", ");
}

/* Reads the next element of a list ("3, 12 ,45"): separators are one optional comma with
 * whitespace around.  Returns 1 with *x set, 0 at the end, -1 on anything else. */
static int list_next(const char **s, const char *end, int first, int_text *x)
{
    const char *p = *s;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p == end)
        return 0;
    if (!first) {
        if (*p == ',')
            p++;
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p == end)
            return -1; /* a trailing comma */
    }
    const char *q = p;
    if (q < end && (*q == '-' || *q == '+'))
        q++;
    while (q < end && isdigit((unsigned char)*q))
        q++;
    if (!int_text_parse(p, (size_t)(q - p), x))
        return -1;
    *s = q;
    return 1;
}

static int sort_check(const char *target, const char *ans, size_t len, sbuf *parsed)
{
    if (len >= 2 &&
        ((ans[0] == '[' && ans[len - 1] == ']') || (ans[0] == '(' && ans[len - 1] == ')'))) {
        ans++;
        len -= 2;
    }
    const char *a = ans, *aend = ans + len, *t = target, *tend = target + strlen(target);
    int same = 1;
    for (int first = 1;; first = 0) {
        int_text x, y;
        int ka = list_next(&a, aend, first, &x), kt = list_next(&t, tend, first, &y);
        if (ka < 0) { /* unreadable: show the raw text */
            sb_init(parsed, parsed->p, parsed->cap);
            sb_putn(parsed, ans, len);
            return 0;
        }
        if (ka == 0)
            return same && kt == 0;
        if (!first)
            sb_putn(parsed, ", ", 2);
        sb_int_text(parsed, &x);
        same = same && kt == 1 && int_text_eq(&x, &y);
    }
}

const r1_task r1_task_def_sort = {
    .name = "sort",
    .summary = "sort d+2 numbers from smallest to largest (difficulty 1..10)",
    .max_difficulty = 10,
    .train_difficulty = 3,
    .generate = sort_generate,
    .check = sort_check,
};

/* ------------------------------------------------------------------ bool */

enum { B_VAL, B_NOT, B_AND, B_OR };

typedef struct {
    int kind; /* B_* */
    int val;  /* B_VAL: 0 / 1 */
    int l, r; /* children (B_NOT uses l) */
} bnode;

typedef struct {
    bnode n[64];
    int count;
} btree;

static int prec(const bnode *x)
{
    return x->kind == B_OR ? 1 : x->kind == B_AND ? 2 : x->kind == B_NOT ? 3 : 4;
}

static int bnew(btree *t, int kind, int val, int l, int r)
{
    t->n[t->count] = (bnode){kind, val, l, r};
    return t->count++;
}

/* A random tree with k binary operators; nots are sprinkled, never doubled. */
static int bgen(btree *t, r1_rng *r, int k)
{
    int x;
    if (k == 0) {
        x = bnew(t, B_VAL, (int)r1_rng_below(r, 2), -1, -1);
        if (r1_rng_below(r, 4) == 0)
            x = bnew(t, B_NOT, 0, x, -1);
        return x;
    }
    int kl = (int)r1_rng_below(r, (uint32_t)k);
    int kind = r1_rng_below(r, 2) ? B_AND : B_OR;
    int l = bgen(t, r, kl);
    int rr = bgen(t, r, k - 1 - kl);
    x = bnew(t, kind, 0, l, rr);
    if (r1_rng_below(r, 5) == 0)
        x = bnew(t, B_NOT, 0, x, -1);
    return x;
}

static void bprint(sbuf *b, const btree *t, int i)
{
    const bnode *x = &t->n[i];
    if (x->kind == B_VAL) {
        sb_printf(b, "%s", x->val ? "True" : "False");
        return;
    }
    if (x->kind == B_NOT) {
        int paren = prec(&t->n[x->l]) < 3;
        sb_printf(b, "not %s", paren ? "(" : "");
        bprint(b, t, x->l);
        sb_printf(b, "%s", paren ? ")" : "");
        return;
    }
    int lp = prec(&t->n[x->l]) < prec(x), rp = prec(&t->n[x->r]) <= prec(x);
    sb_printf(b, "%s", lp ? "(" : "");
    bprint(b, t, x->l);
    sb_printf(b, "%s %s %s", lp ? ")" : "", x->kind == B_AND ? "and" : "or", rp ? "(" : "");
    bprint(b, t, x->r);
    sb_printf(b, "%s", rp ? ")" : "");
}

/* The first node in post-order whose operands are all values, or -1 when i is a value. */
static int reducible(const btree *t, int i)
{
    const bnode *x = &t->n[i];
    if (x->kind == B_VAL)
        return -1;
    int k = reducible(t, x->l);
    if (k >= 0)
        return k;
    if (x->kind != B_NOT && (k = reducible(t, x->r)) >= 0)
        return k;
    return i;
}

static void bool_generate(r1_rng *r, int d, task_out *o)
{
    btree t = {.count = 0};
    int root = bgen(&t, r, d);
    r1_lang g = o->lang;
    static const char *const en[] = {"Evaluate |", "what is |?", "Is | true or false?",
                                     "evaluate: |"};
    static const char *const es[] = {"Evalua |", "cuanto vale |?", "Es | verdadero o falso?",
                                     "evalua: |"};
    int tv = typed_variant(o, 4);
    const char *ph = tv < 0 ? L(g, "Evaluate: |.", "Evalua: |.") : L(g, en[tv], es[tv]);
    size_t cut = strcspn(ph, "|");
    sb_putn(&o->prompt, ph, cut);
    bprint(&o->prompt, &t, root);
    sb_printf(&o->prompt, "%s%s", ph + cut + 1, tv < 0 ? lang_request(g) : "");

    sbuf *R = &o->reasoning;
    int k;
    while ((k = reducible(&t, root)) >= 0) {
        bnode *x = &t.n[k];
        int v = x->kind == B_NOT   ? !t.n[x->l].val
                : x->kind == B_AND ? t.n[x->l].val && t.n[x->r].val
                                   : t.n[x->l].val || t.n[x->r].val;
        *x = (bnode){B_VAL, v, -1, -1};
        if (k != root) {
            sb_printf(R, "%s ", L(g, "now", "queda"));
            bprint(R, &t, root);
            sb_printf(R, "\n");
        }
    }
    sb_printf(R, "%s: %s", L(g, "Result", "Resultado"), t.n[root].val ? "True" : "False");
    sb_printf(&o->answer, "%s", t.n[root].val ? "True" : "False");
}

static int bool_check(const char *target, const char *ans, size_t len, sbuf *parsed)
{
    int v = -1;
    if (len == 4 && strncasecmp(ans, "true", 4) == 0)
        v = 1;
    else if (len == 5 && strncasecmp(ans, "false", 5) == 0)
        v = 0;
    if (v < 0) {
        sb_putn(parsed, ans, len);
        return 0;
    }
    sb_printf(parsed, "%s", v ? "True" : "False");
    return strcmp(target, v ? "True" : "False") == 0;
}

const r1_task r1_task_def_bool = {
    .name = "bool",
    .summary = "evaluate and / or / not over True and False (difficulty 1..6: operators)",
    /* 7 and 8 operators passed the tiny preset's 1024 positions (1153 and 1516 tokens) */
    .max_difficulty = 6,
    .train_difficulty = 3,
    .generate = bool_generate,
    .check = bool_check,
};
