/* tasks_util.c — the helpers the task files share (see tasks_internal.h): bounded text
 * building, random ranges and shuffles, integer answers, the language request.  Below the
 * registry (tasks.c) and the tasks (tasks_*.c), which both use it.  Nothing allocates. */
#include <config.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tasks_internal.h"

const char *lang_request(r1_lang lang)
{
    return L(lang, " Think in English.", " Piensa en espanol.");
}

int typed_variant(const task_out *o, int n)
{
    return o->typed > 0 && n > 0 ? (o->typed - 1) % n : -1;
}

void sb_init(sbuf *b, char *p, size_t cap)
{
    b->p = p;
    b->cap = cap;
    b->n = 0;
    b->overflow = 0;
    if (cap)
        p[0] = '\0';
}

void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (!b->cap)
        return;
    size_t room = b->cap - 1 - b->n;
    if (n > room) {
        n = room;
        b->overflow = 1;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k >= sizeof tmp) { /* no piece of a task text is this long */
        b->overflow = 1;
        k = (int)sizeof tmp - 1;
    }
    sb_putn(b, tmp, (size_t)k);
}

int64_t rand_range(r1_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)r1_rng_below(r, (uint32_t)(hi - lo + 1));
}

void shuffle(r1_rng *r, int64_t *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)r1_rng_below(r, (uint32_t)i + 1);
        int64_t x = a[i];
        a[i] = a[j];
        a[j] = x;
    }
}

void trim(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char)(*s)[0])) {
        ++*s;
        --*len;
    }
    while (*len && isspace((unsigned char)(*s)[*len - 1]))
        --*len;
}

int int_text_parse(const char *s, size_t len, int_text *out)
{
    trim(&s, &len);
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == len)
        return 0;
    for (size_t k = i; k < len; k++)
        if (!isdigit((unsigned char)s[k]))
            return 0;
    while (i < len && s[i] == '0')
        i++;
    out->digits = s + i;
    out->n = len - i;
    out->neg = out->n ? neg : 0; /* -0 is 0 */
    return 1;
}

int int_text_eq(const int_text *a, const int_text *b)
{
    return a->neg == b->neg && a->n == b->n && memcmp(a->digits, b->digits, a->n) == 0;
}

void sb_int_text(sbuf *b, const int_text *x)
{
    if (!x->n) {
        sb_putn(b, "0", 1);
        return;
    }
    if (x->neg)
        sb_putn(b, "-", 1);
    sb_putn(b, x->digits, x->n);
}

int check_integer(const char *target, const char *ans, size_t len, sbuf *parsed)
{
    int_text want, got;
    if (!int_text_parse(ans, len, &got)) {
        sb_putn(parsed, ans, len);
        return 0;
    }
    sb_int_text(parsed, &got);
    return int_text_parse(target, strlen(target), &want) && int_text_eq(&want, &got);
}
