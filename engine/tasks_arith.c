/* tasks_arith.c — the arithmetic tasks: addition / subtraction ("add"), multiplication ("mul")
 * and linear equations ("linear"), with their worked solutions in English and Spanish.
 *
 * The solutions are written for a tiny character-level model: one short line per step, the
 * digits of each step written out (column by column with the carry or borrow for add, digit by
 * digit for each partial product of mul, and mul's partial products added by columns), so
 * that no line needs more than one-digit arithmetic and a carry.  All numbers fit in int64 at
 * every difficulty (at most 10-digit sums and 10-digit products).
 *
 * Ownership and errors: none of their own; see tasks_internal.h. */
#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tasks_internal.h"

static int64_t pow10i(int k)
{
    int64_t p = 1;
    while (k-- > 0)
        p *= 10;
    return p;
}

/* A random number of exactly `digits` digits (1 digit: 1..9 when nonzero, else 0..9). */
static int64_t rand_digits(r1_rng *r, int digits, int nonzero)
{
    if (digits == 1)
        return rand_range(r, nonzero ? 1 : 0, 9);
    return rand_range(r, pow10i(digits - 1), pow10i(digits) - 1);
}

/* The number of decimal digits of x >= 0 (1 for 0). */
static int ndigits(int64_t x)
{
    int d = 1;
    while (x >= 10) {
        x /= 10;
        d++;
    }
    return d;
}

static int digit_at(int64_t x, int k)
{
    return (int)(x / pow10i(k) % 10);
}

/* ------------------------------------------------------------------ add */

static void add_columns(int64_t a, int64_t b, int d, task_out *o)
{
    r1_lang g = o->lang;
    sbuf *R = &o->reasoning;
    sb_printf(R, "%s\n",
              L(g, "Add by columns from the right.", "Sumo por columnas desde la derecha."));
    int carry = 0;
    for (int k = 0; k < d; k++) {
        int x = digit_at(a, k), y = digit_at(b, k), s = x + y + carry;
        sb_printf(R, "%d+%d%s=%d, %s %d", x, y, carry ? "+1" : "", s, L(g, "write", "escribo"),
                  k == d - 1 ? s : s % 10);
        if (k < d - 1 && s >= 10)
            sb_printf(R, ", %s 1", L(g, "carry", "llevo"));
        sb_printf(R, "\n");
        carry = s >= 10;
    }
}

static void sub_columns(int64_t a, int64_t b, int d, task_out *o)
{
    r1_lang g = o->lang;
    sbuf *R = &o->reasoning;
    sb_printf(R, "%s\n",
              L(g, "Subtract by columns from the right.", "Resto por columnas desde la derecha."));
    int borrow = 0;
    for (int k = 0; k < d; k++) {
        int x = digit_at(a, k), y = digit_at(b, k), r = x - y - borrow;
        const char *in = borrow ? "-1" : "";
        if (r >= 0) {
            sb_printf(R, "%d-%d%s=%d, %s %d\n", x, y, in, r, L(g, "write", "escribo"), r);
            borrow = 0;
        } else {
            sb_printf(R, "%d-%d%s: %s 1, 1%d-%d%s=%d, %s %d\n", x, y, in, L(g, "borrow", "pido"), x,
                      y, in, r + 10, L(g, "write", "escribo"), r + 10);
            borrow = 1;
        }
    }
}

/* The question, in the task's words or as people type it. */
static void add_prompt(task_out *o, int64_t a, int64_t b, char op)
{
    static const char *const en[] = {"What is %s?", "what's %s", "what is %s?", "Calculate %s.",
                                     "How much is %s?", "what's %s?"};
    static const char *const es[] = {"Cuanto es %s?", "cuanto es %s", "Calcula %s.",
                                     "cuanto da %s?", "Me dices cuanto es %s?", "cuanto es %s?"};
    int v = typed_variant(o, 6);
    char q[64];
    if (v < 0) {
        sb_printf(&o->prompt, "%s %lld%c%lld?%s", L(o->lang, "What is", "Cuanto es"),
                  (long long)a, op, (long long)b, lang_request(o->lang));
        return;
    }
    if (v >= 4) /* in words: "457 plus 389", "45 menos 17" */
        snprintf(q, sizeof q, "%lld %s %lld", (long long)a,
                 op == '+' ? L(o->lang, "plus", "mas") : L(o->lang, "minus", "menos"),
                 (long long)b);
    else
        snprintf(q, sizeof q, "%lld%c%lld", (long long)a, op, (long long)b);
    sb_printf(&o->prompt, L(o->lang, en[v], es[v]), q);
}

static void add_generate(r1_rng *r, int d, task_out *o)
{
    int64_t a = rand_digits(r, d, 0), b = rand_digits(r, d, 0);
    int sub = (int)r1_rng_below(r, 2);
    if (sub && a < b) {
        int64_t t = a;
        a = b;
        b = t;
    }
    char op = sub ? '-' : '+';
    int64_t result = sub ? a - b : a + b;
    add_prompt(o, a, b, op);
    if (sub)
        sub_columns(a, b, d, o);
    else
        add_columns(a, b, d, o);
    sb_printf(&o->reasoning, "%s: %lld", L(o->lang, "Result", "Resultado"), (long long)result);
    sb_printf(&o->answer, "%lld", (long long)result);
}

const r1_task r1_task_def_add = {
    .name = "add",
    .summary = "addition or subtraction of two numbers of d digits (difficulty d)",
    .max_difficulty = 10,
    .train_difficulty = 3,
    .generate = add_generate,
    .check = check_integer,
};

/* ------------------------------------------------------------------ mul */

static const int mul_sizes[8][2] = {{1, 1}, {2, 1}, {2, 2}, {3, 2}, {3, 3}, {4, 3}, {4, 4}, {5, 5}};

/* One partial product a*y, digit by digit: "347*6: 7*6=42, 4*6+4=28, 3*6+2=20, so 2082". */
static int64_t partial_line(int64_t a, int na, int y, task_out *o)
{
    sbuf *R = &o->reasoning;
    sb_printf(R, "%lld*%d: ", (long long)a, y);
    int carry = 0;
    for (int k = 0; k < na; k++) {
        int x = digit_at(a, k), p = x * y + carry;
        if (carry)
            sb_printf(R, "%s%d*%d+%d=%d", k ? ", " : "", x, y, carry, p);
        else
            sb_printf(R, "%s%d*%d=%d", k ? ", " : "", x, y, p);
        carry = p / 10;
    }
    int64_t part = a * y;
    sb_printf(R, ", %s %lld", L(o->lang, "so", "da"), (long long)part);
    return part;
}

static void mul_generate(r1_rng *r, int d, task_out *o)
{
    int na = mul_sizes[d - 1][0], nb = mul_sizes[d - 1][1];
    int64_t a = rand_digits(r, na, 1), b = rand_digits(r, nb, 1);
    r1_lang g = o->lang;
    sbuf *R = &o->reasoning;
    static const char *const en[] = {"What is %lld*%lld?", "what's %lld*%lld",
                                     "Calculate %lld*%lld.", "what's %lld times %lld",
                                     "%lld times %lld?", "Multiply %lld by %lld."};
    static const char *const es[] = {"Cuanto es %lld*%lld?", "cuanto es %lld*%lld",
                                     "Calcula %lld*%lld.", "cuanto es %lld por %lld",
                                     "%lld por %lld?", "Multiplica %lld por %lld."};
    int v = typed_variant(o, 6);
    if (v < 0)
        sb_printf(&o->prompt, "%s %lld*%lld?%s", L(g, "What is", "Cuanto es"), (long long)a,
                  (long long)b, lang_request(g));
    else
        sb_printf(&o->prompt, L(g, en[v], es[v]), (long long)a, (long long)b);
    sb_printf(R, "%s %lld %s %lld.\n", L(g, "Multiply", "Multiplico"), (long long)a,
              L(g, "by each digit of", "por cada cifra de"), (long long)b);
    int64_t parts[8] = {0};
    int np = 0;
    for (int k = 0; k < nb; k++) {
        int y = digit_at(b, k);
        if (y == 0) {
            sb_printf(R, "%lld*0=0\n", (long long)a);
            continue;
        }
        int64_t part = partial_line(a, na, y, o) * pow10i(k);
        if (k > 0)
            sb_printf(R, ", %s %lld", L(g, "shifted", "desplazado"), (long long)part);
        sb_printf(R, "\n");
        parts[np++] = part;
    }
    /* the partial products added in one pass by columns from the right, each column's digits
     * and the carry written out ("Add by columns: 2+0=2, 8+6=14, 2+7+1=10, 0+3+1=4"; the carry
     * can pass 1 with three rows or more), so that no step adds more than a few digits; one
     * line, to keep 2x2 products within pretraining's 256-token rows */
    int64_t sum = 0;
    for (int i = 0; i < np; i++)
        sum += parts[i];
    if (np > 1) {
        sb_printf(R, "%s:", L(g, "Add by columns", "Sumo por columnas"));
        int carry = 0, nd = ndigits(sum);
        for (int k = 0; k < nd; k++) {
            int c = carry;
            sb_printf(R, "%s ", k ? "," : "");
            for (int i = 0; i < np; i++) {
                sb_printf(R, "%s%d", i ? "+" : "", digit_at(parts[i], k));
                c += digit_at(parts[i], k);
            }
            if (carry)
                sb_printf(R, "+%d", carry);
            sb_printf(R, "=%d", c);
            carry = c / 10;
        }
        sb_printf(R, "\n");
    }
    sb_printf(R, "%s: %lld", L(g, "Result", "Resultado"), (long long)sum);
    sb_printf(&o->answer, "%lld", (long long)(a * b));
}

const r1_task r1_task_def_mul = {
    .name = "mul",
    .summary = "multiplication, 1x1 up to 5x5 digits (difficulty 1..8; 4 is 3x2)",
    .max_difficulty = 8,
    .train_difficulty = 4,
    .generate = mul_generate,
    .check = check_integer,
};

/* ------------------------------------------------------------------ linear */

static const struct {
    int amax, xmax, bmax, neg;
} linear_sizes[6] = {
    {5, 9, 9, 0},     {9, 20, 30, 0},     {9, 20, 50, 1},
    {20, 50, 200, 1}, {50, 200, 1000, 1}, {99, 999, 9999, 1},
};

/* A nonzero value with |v| in [lo, hi], negative half the time when neg. */
static int64_t rand_signed(r1_rng *r, int64_t lo, int64_t hi, int neg)
{
    int64_t v = rand_range(r, lo, hi);
    return neg && r1_rng_below(r, 2) ? -v : v;
}

/* c+b or c-b (c >= b >= 0 when sub) by columns from the right on one line, each column's digits
 * with the carry or borrow: "Add by columns: 2+4=6, 4+1=5, 1+0=1" or "Subtract by columns: 2-4:
 * borrow 1, 12-4=8; 4-1-1=2; 1-0=1" (columns apart by ";" there, as a borrow has a comma). */
static void inline_columns(sbuf *R, r1_lang g, int64_t c, int64_t b, int sub)
{
    int64_t big = c > b ? c : b;
    int nd = ndigits(big), in = 0;
    sb_printf(R, "%s:", sub ? L(g, "Subtract by columns", "Resto por columnas")
                            : L(g, "Add by columns", "Sumo por columnas"));
    for (int k = 0; k < nd; k++) {
        int x = digit_at(c, k), y = digit_at(b, k);
        const char *sep = k ? (sub ? ";" : ",") : "";
        if (!sub) {
            int s = x + y + in;
            sb_printf(R, "%s %d+%d%s=%d", sep, x, y, in ? "+1" : "", s);
            in = s >= 10;
            continue;
        }
        int r = x - y - in;
        const char *m = in ? "-1" : "";
        if (r >= 0)
            sb_printf(R, "%s %d-%d%s=%d", sep, x, y, m, r);
        else
            sb_printf(R, "%s %d-%d%s: %s 1, 1%d-%d%s=%d", sep, x, y, m, L(g, "borrow", "pido"), x,
                      y, m, r + 10);
        in = r < 0;
    }
}

static void linear_generate(r1_rng *r, int d, task_out *o)
{
    int amax = linear_sizes[d - 1].amax, xmax = linear_sizes[d - 1].xmax;
    int bmax = linear_sizes[d - 1].bmax, neg = linear_sizes[d - 1].neg;
    int64_t a = rand_signed(r, 2, amax, neg);
    int64_t x = neg ? rand_range(r, -xmax, xmax) : rand_range(r, d == 1 ? 1 : 0, xmax);
    int64_t b = rand_signed(r, 1, bmax, neg);
    int64_t c = a * x + b, ax = c - b;
    r1_lang g = o->lang;
    sbuf *R = &o->reasoning;
    char eq[96];
    snprintf(eq, sizeof eq, "%lld*x%c%lld=%lld", (long long)a, b < 0 ? '-' : '+',
             (long long)(b < 0 ? -b : b), (long long)c);
    static const char *const en[] = {"Solve %s", "solve for x: %s", "Find x: %s",
                                     "what is x if %s?", "solve %s for x"};
    static const char *const es[] = {"Resuelve %s", "resuelve para x: %s", "Halla x: %s",
                                     "cuanto vale x si %s?", "despeja x en %s"};
    int v = typed_variant(o, 5);
    if (v < 0)
        sb_printf(&o->prompt, "%s %s.%s", L(g, "Solve for x:", "Resuelve para x:"), eq,
                  lang_request(g));
    else
        sb_printf(&o->prompt, L(g, en[v], es[v]), eq);
    /* Isolating a*x: with a non-negative c and a*x, a c of two digits or more is reduced by
     * columns on a line of its own, as add does ("Subtract by columns: 2-4: borrow 1, 12-4=8;
     * 4-1-1=2; 1-0=1"), then the result; the one-step "142-14=120" was where the first models
     * went wrong (nearly every miss at difficulty 2) */
    int64_t mb = b < 0 ? -b : b;
    if (b > 0)
        sb_printf(R, "%s %lld %s: ", L(g, "Subtract", "Resto"), (long long)mb,
                  L(g, "from both sides", "en los dos lados"));
    else
        sb_printf(R, "%s %lld %s: ", L(g, "Add", "Sumo"), (long long)mb,
                  L(g, "to both sides", "en los dos lados"));
    sb_printf(R, "%lld*x=%lld%c%lld", (long long)a, (long long)c, b > 0 ? '-' : '+', (long long)mb);
    if ((c >= 10 || mb >= 10) && c >= 0 && ax >= 0) {
        sb_printf(R, "\n");
        inline_columns(R, g, c, mb, b > 0);
        sb_printf(R, "\n%lld*x=%lld\n", (long long)a, (long long)ax);
    } else {
        sb_printf(R, "=%lld\n", (long long)ax);
    }
    sb_printf(R, "%s %lld: x=%lld/%s%lld%s=%lld",
              L(g, "Divide both sides by", "Divido los dos lados entre"), (long long)a,
              (long long)ax, a < 0 ? "(" : "", (long long)a, a < 0 ? ")" : "", (long long)x);
    sb_printf(&o->answer, "%lld", (long long)x);
}

/* Accepts "6", "x=6", "x = 6" (and X). */
static int linear_check(const char *target, const char *ans, size_t len, sbuf *parsed)
{
    if (len && (ans[0] == 'x' || ans[0] == 'X')) {
        size_t i = 1;
        while (i < len && isspace((unsigned char)ans[i]))
            i++;
        if (i < len && ans[i] == '=') {
            ans += i + 1;
            len -= i + 1;
        }
    }
    return check_integer(target, ans, len, parsed);
}

const r1_task r1_task_def_linear = {
    .name = "linear",
    .summary = "solve a*x+b=c for an integer x (difficulty 1..6: the size of a, b, x)",
    .max_difficulty = 6,
    .train_difficulty = 3,
    .generate = linear_generate,
    .check = linear_check,
};
