/* settings.c — the settings tables' machinery (see r1_settings.h): finding a setting by name
 * with a suggestion for a typo, setting it from a number, a boolean or a text with its range
 * checked, writing it back, JSON both ways and the command line's help.  The tables themselves
 * live beside their stages (sft_settings.c, grpo_run.c, reject.c, distill.c, sft_eval.c) and
 * are listed in settings_tables.c, above them all.
 *
 * Errors: R1_EINVAL / R1_EFORMAT with a message naming the key; nothing allocates except
 * r1_settings_json. */
#include <config.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_settings.h"

/* key and name are the same words, '-' and '_' alike. */
static int same(const char *key, const char *name)
{
    for (; *key && *name; key++, name++)
        if (*key != *name && !((*key == '-' || *key == '_') && (*name == '-' || *name == '_')))
            return 0;
    return *key == *name;
}

int r1_settings_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 9;
    int d[42][42];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            char x = a[i - 1] == '-' ? '_' : a[i - 1], y = b[j - 1] == '-' ? '_' : b[j - 1];
            int v = d[i - 1][j - 1] + (x != y);
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb] < 9 ? d[la][lb] : 9;
}

const char *r1_settings_suggest(const r1_settings_table *t, const char *key)
{
    const char *best = NULL;
    int bd = 3;
    size_t kl = strlen(key);
    for (int i = 0; i < t->n; i++) {
        const char *name = t->v[i].name;
        int d = r1_settings_distance(key, name);
        if (kl >= 3 && strlen(name) > kl && !strncmp(name, key, kl) && d > 1)
            d = 2; /* a prefix: "eval" -> "eval_every" */
        if (d < bd) {
            bd = d;
            best = name;
        }
    }
    return best;
}

const r1_setting *r1_settings_find(const r1_settings_table *t, const char *key, int *old,
                                   const char *where, r1_error *err)
{
    if (old)
        *old = 0;
    for (int i = 0; i < t->n; i++)
        if (same(key, t->v[i].name))
            return &t->v[i];
    for (int i = 0; i < t->n; i++)
        if (t->v[i].old_name && same(key, t->v[i].old_name)) {
            if (old)
                *old = 1;
            return &t->v[i];
        }
    const char *s = r1_settings_suggest(t, key);
    if (s)
        r1_error_set(err, R1_EINVAL, "unknown option '%s' for %s (did you mean '%s'?)", key,
                     where, s);
    else
        r1_error_set(err, R1_EINVAL, "unknown option '%s' for %s", key, where);
    return NULL;
}

static r1_status range_error(const r1_setting *e, const char *where, const char *got,
                             r1_error *err)
{
    const char *sep = where && *where ? ": " : "";
    if (!where)
        where = "";
    switch (e->type) {
    case R1_SET_INT:
        return r1_error_set(err, R1_EINVAL, "%s%s%s expects an integer in %.0f..%.0f, got %s",
                            where, sep, e->name, e->lo, e->hi, got);
    case R1_SET_FLOAT:
    case R1_SET_DOUBLE:
        return r1_error_set(err, R1_EINVAL, "%s%s%s expects a number in %g..%g, got %s", where,
                            sep, e->name, e->lo, e->hi, got);
    case R1_SET_BOOL:
        return r1_error_set(err, R1_EINVAL, "%s%s%s expects true or false, got %s", where, sep,
                            e->name, got);
    case R1_SET_SEED:
        return r1_error_set(err, R1_EINVAL, "%s%s%s expects an integer >= 0, got %s", where,
                            sep, e->name, got);
    case R1_SET_CHOICE:
        return r1_error_set(err, R1_EINVAL, "%s%s%s expects one of %.*s, got %s", where, sep,
                            e->name, (int)strcspn(e->choices, ";"), e->choices, got);
    default:
        return r1_error_set(err, R1_EINVAL, "%s%s%s: bad value %s", where, sep, e->name, got);
    }
}

r1_status r1_settings_set_number(const r1_setting *e, void *s, double v, const char *where,
                                 r1_error *err)
{
    char got[64];
    snprintf(got, sizeof got, "%.17g", v);
    char *p = (char *)s + e->off;
    switch (e->type) {
    case R1_SET_INT:
        if (!(v >= e->lo && v <= e->hi) || v != floor(v))
            return range_error(e, where, got, err);
        *(int *)p = (int)v;
        return R1_OK;
    case R1_SET_FLOAT:
    case R1_SET_DOUBLE:
        if (!(v >= e->lo && v <= e->hi) || !isfinite(v))
            return range_error(e, where, got, err);
        if (e->type == R1_SET_FLOAT)
            *(float *)p = (float)v;
        else
            *(double *)p = v;
        return R1_OK;
    case R1_SET_BOOL:
        if (v != 0 && v != 1)
            return range_error(e, where, got, err);
        *(int *)p = (int)v;
        return R1_OK;
    case R1_SET_SEED:
        if (!(v >= 0 && v < 9.2e18) || v != floor(v))
            return range_error(e, where, got, err);
        *(uint64_t *)p = (uint64_t)v;
        return R1_OK;
    default:
        snprintf(got, sizeof got, "a number");
        return range_error(e, where, got, err);
    }
}

r1_status r1_settings_set_bool(const r1_setting *e, void *s, int v, const char *where,
                               r1_error *err)
{
    if (e->type != R1_SET_BOOL)
        return range_error(e, where, v ? "true" : "false", err);
    *(int *)((char *)s + e->off) = v != 0;
    return R1_OK;
}

r1_status r1_settings_set_text(const r1_setting *e, void *s, const char *text,
                               const char *where, r1_error *err)
{
    char got[80];
    snprintf(got, sizeof got, "'%.60s'", text);
    switch (e->type) {
    case R1_SET_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes"))
            return r1_settings_set_bool(e, s, 1, where, err);
        if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no"))
            return r1_settings_set_bool(e, s, 0, where, err);
        return range_error(e, where, got, err);
    case R1_SET_SEED: {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(text, &end, 10);
        if (!*text || *end || errno || text[0] == '-' || x >= (1ull << 63))
            return range_error(e, where, got, err);
        *(uint64_t *)((char *)s + e->off) = x;
        return R1_OK;
    }
    case R1_SET_CHOICE: {
        /* the choices, then after a ';' older spellings of the first ones, in their order */
        size_t n = strlen(text);
        int k = 0;
        for (const char *c = e->choices; *c; k++) {
            size_t l = strcspn(c, "|;");
            if (l == n && !strncmp(c, text, n)) {
                *(int *)((char *)s + e->off) = k;
                return R1_OK;
            }
            if (c[l] == ';')
                k = -1;
            c += l + (c[l] != 0);
        }
        return range_error(e, where, got, err);
    }
    case R1_SET_TEXT: {
        r1_error e2 = {0};
        r1_status st = e->parse(s, text, &e2);
        size_t nl = strlen(e->name);
        int named = !strncmp(e2.msg, e->name, nl) && e2.msg[nl] == ':'; /* "tasks: ..." */
        if (st != R1_OK)
            r1_error_set(err, st, "%s%s%s%s%s", where ? where : "", where && *where ? ": " : "",
                         named ? "" : e->name, named ? "" : ": ", e2.msg);
        return st;
    }
    default: {
        char *end;
        double v = strtod(text, &end);
        if (!*text || *end)
            return range_error(e, where, got, err);
        return r1_settings_set_number(e, s, v, where, err);
    }
    }
}

int r1_settings_number(const r1_setting *e, const void *s, double *v)
{
    const char *p = (const char *)s + e->off;
    switch (e->type) {
    case R1_SET_INT: *v = *(const int *)p; return 1;
    case R1_SET_FLOAT: *v = *(const float *)p; return 1;
    case R1_SET_DOUBLE: *v = *(const double *)p; return 1;
    case R1_SET_SEED: *v = (double)*(const uint64_t *)p; return 1;
    default: return 0;
    }
}

void r1_settings_format(const r1_setting *e, const void *s, char *buf, size_t cap)
{
    const char *p = (const char *)s + e->off;
    switch (e->type) {
    case R1_SET_INT: snprintf(buf, cap, "%d", *(const int *)p); break;
    case R1_SET_FLOAT: snprintf(buf, cap, "%.9g", *(const float *)p); break;
    case R1_SET_DOUBLE: snprintf(buf, cap, "%.17g", *(const double *)p); break;
    case R1_SET_BOOL: snprintf(buf, cap, "%s", *(const int *)p ? "true" : "false"); break;
    case R1_SET_SEED: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case R1_SET_CHOICE: {
        int k = *(const int *)p;
        const char *c = e->choices;
        while (k-- > 0 && *c) {
            c += strcspn(c, "|");
            c += *c == '|';
        }
        snprintf(buf, cap, "%.*s", (int)strcspn(c, "|;"), c);
        break;
    }
    case R1_SET_TEXT: e->format(s, buf, cap); break;
    }
}

char *r1_settings_json(const r1_settings_table *t, const void *s)
{
    json_t *j = json_object();
    for (int i = 0; j && i < t->n; i++) {
        const r1_setting *e = &t->v[i];
        const char *p = (const char *)s + e->off;
        char buf[1024];
        json_t *v;
        switch (e->type) {
        case R1_SET_INT: v = json_integer(*(const int *)p); break;
        case R1_SET_FLOAT: v = json_real(*(const float *)p); break;
        case R1_SET_DOUBLE: v = json_real(*(const double *)p); break;
        case R1_SET_BOOL: v = json_boolean(*(const int *)p); break;
        default: /* seeds as decimal strings: JSON numbers are doubles */
            r1_settings_format(e, s, buf, sizeof buf);
            v = json_string(buf);
            break;
        }
        json_object_set_new(j, e->name, v);
    }
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    return text;
}

r1_status r1_settings_parse_json(const r1_settings_table *t, void *s, const char *text,
                                 const char *const *extra, const char *where, r1_error *err)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return r1_error_set(err, R1_EFORMAT, "%s: not a JSON object (%s)", where,
                            j ? "another type" : je.text);
    }
    r1_status st = R1_OK;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        int skip = 0;
        for (int i = 0; extra && extra[i]; i++)
            skip |= !strcmp(extra[i], key);
        if (skip)
            continue;
        const r1_setting *e = r1_settings_find(t, key, NULL, where, err);
        if (!e) {
            st = R1_EINVAL;
            break;
        }
        if (json_is_number(v))
            st = r1_settings_set_number(e, s, json_number_value(v), where, err);
        else if (json_is_boolean(v))
            st = r1_settings_set_bool(e, s, json_is_true(v), where, err);
        else if (json_is_string(v) && (e->type == R1_SET_INT || e->type == R1_SET_FLOAT ||
                                       e->type == R1_SET_DOUBLE || e->type == R1_SET_BOOL))
            st = r1_error_set(err, R1_EFORMAT, "%s: \"%s\" should be %s, not a string", where,
                              key, e->type == R1_SET_BOOL ? "true or false" : "a number");
        else if (json_is_string(v))
            st = r1_settings_set_text(e, s, json_string_value(v), where, err);
        else
            st = r1_error_set(err, R1_EFORMAT, "%s: \"%s\" should be a number, a boolean or "
                              "a string", where, key);
        if (st != R1_OK)
            break;
    }
    json_decref(j);
    return st;
}

size_t r1_settings_help(const r1_settings_table *t, const void *d, char *buf, size_t cap)
{
    size_t k = 0;
    if (cap)
        buf[0] = 0;
    for (int i = 0; i < t->n; i++) {
        const r1_setting *e = &t->v[i];
        char opt[48], val[256], range[96] = "";
        snprintf(opt, sizeof opt, "--%s", e->name);
        for (char *c = opt; *c; c++)
            if (*c == '_')
                *c = '-';
        r1_settings_format(e, d, val, sizeof val);
        if (e->type == R1_SET_INT || e->type == R1_SET_FLOAT || e->type == R1_SET_DOUBLE)
            snprintf(range, sizeof range, "%g..%g; ", e->lo, e->hi);
        else if (e->type == R1_SET_CHOICE)
            snprintf(range, sizeof range, "%.*s; ", (int)strcspn(e->choices, ";"), e->choices);
        int w = snprintf(k < cap ? buf + k : NULL, k < cap ? cap - k : 0,
                         "  %-18s %s (%sdefault %s)\n", opt, e->help, range, val);
        if (w > 0)
            k += (size_t)w;
    }
    return k;
}
