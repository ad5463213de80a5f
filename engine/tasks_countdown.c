/* tasks_countdown.c — the countdown task: reach a target from 3 to 5 numbers with + - * /.
 *
 * The generator builds a solution first: it takes the numbers in a random order and combines
 * them one at a time with a random operation (x op n, and also n - x and n / x), keeping every
 * intermediate value a positive integer (exact division only), then asks for the final value.
 * The worked solution replays those steps ("Try 25-5=20", "Then 20*4=80", ...) and the target
 * answer is the expression with the fewest parentheses, e.g. "(25-5)*4+3".
 *
 * The verifier parses an answer expression (numbers, + - * /, parentheses; no unary minus),
 * optionally followed by "= N", and evaluates it with exact rationals over int64 with overflow
 * checks.  The given numbers and the value to reach come from the target expression, which
 * uses each given number exactly once.  Wrong: a number not given or used more often than
 * given, division by zero, an overflow, nesting deeper than 64, any other character.
 *
 * Ownership and errors: none of their own; see tasks_internal.h. */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tasks_internal.h"

#define MAX_NUMBERS 8  /* the most numbers an expression may hold to be judged */
#define MAX_DEPTH 64   /* parentheses nesting the parser accepts */
#define MAX_TARGET 999 /* targets stay below a thousand, as on the television show */

static const struct {
    int count, max;
} sizes[6] = {{3, 10}, {3, 25}, {4, 25}, {4, 50}, {5, 50}, {5, 100}};

/* ------------------------------------------------------------------ generating */

typedef struct {
    char text[R1_TASK_ANSWER_MAX];
    int prec; /* 3: a number, 2: a product or quotient at the top, 1: a sum or difference */
} expr;

/* l op r with the parentheses the precedence needs: the left operand of * and / when it is a
 * sum; the right operand of - when it is a sum, of / when it is not a number. */
static void combine(expr *out, const expr *l, char op, const expr *r)
{
    int mul = op == '*' || op == '/';
    int lp = mul && l->prec == 1;
    int rp =
        (op == '-' && r->prec == 1) || (op == '*' && r->prec == 1) || (op == '/' && r->prec < 3);
    sbuf b;
    sb_init(&b, out->text, sizeof out->text);
    sb_printf(&b, "%s%s%s%c%s%s%s", lp ? "(" : "", l->text, lp ? ")" : "", op, rp ? "(" : "",
              r->text, rp ? ")" : "");
    out->prec = mul ? 2 : 1;
}

/* A candidate step: x op y, or y op x when flip; v is its value. */
typedef struct {
    char op;
    int flip;
    int64_t v;
} step;

/* One attempt at a chain; 0 when it wandered out of range (the caller draws again). */
static int try_chain(r1_rng *r, const int64_t *nums, int n, task_out *o, int64_t *value)
{
    expr acc = {.prec = 3};
    snprintf(acc.text, sizeof acc.text, "%lld", (long long)nums[0]);
    int64_t x = nums[0];
    char steps[5][64];
    for (int i = 1; i < n; i++) {
        int64_t y = nums[i];
        /* the candidates: x+y, x*y, x-y, y-x, x/y, y/x, positive and exact */
        step c[6];
        int nc = 0;
        c[nc++] = (step){'+', 0, x + y};
        if (x > 1 && y > 1)
            c[nc++] = (step){'*', 0, x * y};
        if (x > y)
            c[nc++] = (step){'-', 0, x - y};
        if (y > x)
            c[nc++] = (step){'-', 1, y - x};
        if (y > 1 && x % y == 0)
            c[nc++] = (step){'/', 0, x / y};
        if (x > 1 && y % x == 0 && y != x)
            c[nc++] = (step){'/', 1, y / x};
        int k = (int)r1_rng_below(r, (uint32_t)nc);
        int64_t a = c[k].flip ? y : x, b = c[k].flip ? x : y;
        snprintf(steps[i - 1], sizeof steps[i - 1], "%lld%c%lld=%lld", (long long)a, c[k].op,
                 (long long)b, (long long)c[k].v);
        expr num = {.prec = 3};
        snprintf(num.text, sizeof num.text, "%lld", (long long)y);
        expr next;
        if (c[k].flip)
            combine(&next, &num, c[k].op, &acc);
        else
            combine(&next, &acc, c[k].op, &num);
        acc = next;
        x = c[k].v;
        if (x > 100000)
            return 0;
    }
    if (x < 1 || x > MAX_TARGET)
        return 0;
    for (int i = 0; i < n; i++)
        if (nums[i] == x)
            return 0; /* a target among the numbers needs no arithmetic */
    r1_lang g = o->lang;
    for (int i = 0; i < n - 1; i++)
        sb_printf(&o->reasoning, "%s %s%s", i ? L(g, "Then", "Luego") : L(g, "Try", "Pruebo"),
                  steps[i], i < n - 2 ? "\n" : "");
    sb_printf(&o->reasoning, ", %s", L(g, "the target.", "el objetivo."));
    sb_printf(&o->answer, "%s", acc.text);
    *value = x;
    return 1;
}

static void countdown_generate(r1_rng *r, int d, task_out *o)
{
    int n = sizes[d - 1].count, max = sizes[d - 1].max;
    int64_t nums[5], shown[5], target = 0;
    /* An attempt succeeds far more often than not (a chain of sums alone is in range), so this
     * ends after a few draws; try_chain writes nothing when it fails. */
    do {
        for (int i = 0; i < n; i++)
            nums[i] = rand_range(r, 1, max);
    } while (!try_chain(r, nums, n, o, &target));
    memcpy(shown, nums, sizeof shown);
    shuffle(r, shown, n);
    r1_lang g = o->lang;
    int v = typed_variant(o, 3);
    if (v < 0) {
        sb_printf(&o->prompt, "%s ", L(g, "Use the numbers", "Usa los numeros"));
        for (int i = 0; i < n; i++)
            sb_printf(&o->prompt, "%lld%s", (long long)shown[i], i + 1 < n ? ", " : "");
        sb_printf(&o->prompt, " %s %lld %s%s", L(g, "to make", "para obtener"), (long long)target,
                  L(g, "with + - * /, each at most once.",
                    "con + - * /, cada uno una vez como mucho."),
                  lang_request(g));
        return;
    }
    /* as people type it: "make 10 from 5, 1 and 4 (+ - * /, each once at most)" */
    static const char *const en[] = {"make %lld from ", "using ", "how do I get %lld with "};
    static const char *const es[] = {"obten %lld con ", "usando ", "como consigo %lld con "};
    sb_printf(&o->prompt, L(g, en[v], es[v]), (long long)target);
    for (int i = 0; i < n; i++)
        sb_printf(&o->prompt, "%lld%s", (long long)shown[i],
                  i + 2 < n ? ", " : i + 1 < n ? L(g, " and ", " y ") : "");
    if (v == 1)
        sb_printf(&o->prompt, L(g, ", make %lld", ", consigue %lld"), (long long)target);
    sb_printf(&o->prompt, "%s", L(g, " (+ - * /, each number once at most)",
                                  " (+ - * /, cada numero una vez como mucho)"));
}

/* ------------------------------------------------------------------ exact evaluation */

typedef struct {
    int64_t num, den; /* den > 0, reduced */
} rat;

static int64_t gcd64(int64_t a, int64_t b)
{
    if (a < 0)
        a = -a;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a ? a : 1;
}

static int rat_make(rat *out, int64_t num, int64_t den)
{
    /* INT64_MIN has no negation: an overflow like any other (only huge numbers, never the
     * given ones, get there) */
    if (den == 0 || num == INT64_MIN || den == INT64_MIN)
        return 0;
    if (den < 0) {
        num = -num;
        den = -den;
    }
    int64_t g = gcd64(num, den);
    out->num = num / g;
    out->den = den / g;
    return 1;
}

/* a op b exactly; 0 on division by zero or overflow. */
static int rat_apply(rat *out, rat a, char op, rat b)
{
    int64_t p, q, s;
    switch (op) {
    case '+':
    case '-':
        if (__builtin_mul_overflow(a.num, b.den, &p) || __builtin_mul_overflow(b.num, a.den, &q) ||
            __builtin_mul_overflow(a.den, b.den, &s))
            return 0;
        if (op == '+' ? __builtin_add_overflow(p, q, &p) : __builtin_sub_overflow(p, q, &p))
            return 0;
        return rat_make(out, p, s);
    case '*':
        if (__builtin_mul_overflow(a.num, b.num, &p) || __builtin_mul_overflow(a.den, b.den, &s))
            return 0;
        return rat_make(out, p, s);
    case '/':
        if (b.num == 0)
            return 0;
        if (__builtin_mul_overflow(a.num, b.den, &p) || __builtin_mul_overflow(a.den, b.num, &s))
            return 0;
        return rat_make(out, p, s);
    }
    return 0;
}

typedef struct {
    const char *s;
    size_t i, len;
    int depth;
    int64_t used[MAX_NUMBERS];
    int nused;
} parser;

static void skip_ws(parser *p)
{
    while (p->i < p->len && isspace((unsigned char)p->s[p->i]))
        p->i++;
}

static int parse_sum(parser *p, rat *out);

static int parse_atom(parser *p, rat *out)
{
    skip_ws(p);
    if (p->i < p->len && p->s[p->i] == '(') {
        if (++p->depth > MAX_DEPTH)
            return 0;
        p->i++;
        if (!parse_sum(p, out))
            return 0;
        skip_ws(p);
        if (p->i >= p->len || p->s[p->i] != ')')
            return 0;
        p->i++;
        p->depth--;
        return 1;
    }
    if (p->i >= p->len || !isdigit((unsigned char)p->s[p->i]))
        return 0;
    int64_t v = 0;
    while (p->i < p->len && isdigit((unsigned char)p->s[p->i])) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, p->s[p->i] - '0', &v))
            return 0; /* longer than int64: certainly not a given number */
        p->i++;
    }
    if (p->nused == MAX_NUMBERS)
        return 0;
    p->used[p->nused++] = v;
    out->num = v;
    out->den = 1;
    return 1;
}

static int parse_product(parser *p, rat *out)
{
    if (!parse_atom(p, out))
        return 0;
    for (;;) {
        skip_ws(p);
        if (p->i >= p->len || (p->s[p->i] != '*' && p->s[p->i] != '/'))
            return 1;
        char op = p->s[p->i++];
        rat r;
        if (!parse_atom(p, &r) || !rat_apply(out, *out, op, r))
            return 0;
    }
}

static int parse_sum(parser *p, rat *out)
{
    if (!parse_product(p, out))
        return 0;
    for (;;) {
        skip_ws(p);
        if (p->i >= p->len || (p->s[p->i] != '+' && p->s[p->i] != '-'))
            return 1;
        char op = p->s[p->i++];
        rat r;
        if (!parse_product(p, &r) || !rat_apply(out, *out, op, r))
            return 0;
    }
}

/* Evaluates a whole expression s[0, len), optionally followed by "= N" (N must then equal the
 * value).  Returns 1 when it parsed and evaluated. */
static int evaluate(const char *s, size_t len, parser *p, rat *value)
{
    memset(p, 0, sizeof *p);
    p->s = s;
    p->len = len;
    if (!parse_sum(p, value))
        return 0;
    skip_ws(p);
    if (p->i < len && s[p->i] == '=') {
        /* "= N" must state the expression's value */
        int_text n, v;
        char buf[24];
        if (value->den != 1 || !int_text_parse(s + p->i + 1, len - p->i - 1, &n))
            return 0;
        snprintf(buf, sizeof buf, "%lld", (long long)value->num);
        if (!int_text_parse(buf, strlen(buf), &v) || !int_text_eq(&n, &v))
            return 0;
        p->i = len;
    }
    return p->i == len;
}

static int countdown_check(const char *target, const char *ans, size_t len, sbuf *parsed)
{
    for (size_t i = 0; i < len; i++) /* what was read, without spaces */
        if (!isspace((unsigned char)ans[i]))
            sb_putn(parsed, ans + i, 1);
    parser want, got;
    rat goal, v;
    if (!evaluate(target, strlen(target), &want, &goal) || !evaluate(ans, len, &got, &v))
        return 0;
    if (v.num != goal.num || v.den != goal.den)
        return 0;
    /* each number of the answer takes one unused copy of a given number */
    int taken[MAX_NUMBERS] = {0};
    for (int i = 0; i < got.nused; i++) {
        int found = 0;
        for (int k = 0; k < want.nused && !found; k++)
            if (!taken[k] && want.used[k] == got.used[i])
                taken[k] = found = 1;
        if (!found)
            return 0;
    }
    return 1;
}

const r1_task r1_task_def_countdown = {
    .name = "countdown",
    .summary = "reach a target from 3 to 5 numbers with + - * / (difficulty 1..6)",
    .max_difficulty = 6,
    .train_difficulty = 3,
    .generate = countdown_generate,
    .check = countdown_check,
};
