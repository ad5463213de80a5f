/* relay.c — training reports as record lines and back (see relay.h). */
#include <config.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

/* ------------------------------------------------------------------ writing */

static FILE *relay_out;

static json_t *number(double v)
{
    return isfinite(v) ? json_real(v) : json_null(); /* JSON has no NaN */
}

static json_t *matrix(const float *x, int rows, int cols)
{
    json_t *m = json_array();
    for (int i = 0; m && i < rows; i++) {
        json_t *r = json_array();
        for (int j = 0; r && j < cols; j++)
            json_array_append_new(r, number(x[(size_t)i * cols + j]));
        json_array_append_new(m, r);
    }
    return m;
}

static void emit(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    if (!text)
        return; /* out of memory: the report is dropped, the run goes on */
    fputs(RELAY_MARK, relay_out);
    fputs(text, relay_out);
    fputc('\n', relay_out);
    fflush(relay_out);
    free(text);
}

static void emit_step(const lua_r1_step *s)
{
    json_t *o = json_object(), *st = json_object();
    if (!o || !st) {
        json_decref(o), json_decref(st);
        return;
    }
    json_object_set_new(o, "ev", json_string("step"));
    json_object_set_new(o, "stage", json_string(s->stage ? s->stage : ""));
    json_object_set_new(o, "step", json_integer(s->step));
    json_object_set_new(o, "total", json_integer(s->total));
    for (int i = 0; i < s->nstats; i++)
        json_object_set_new(st, s->names[i], number(s->values[i]));
    json_object_set_new(o, "stats", st);
    if (s->load && s->load_layers > 0 && s->load_experts > 0) {
        json_object_set_new(o, "load", matrix(s->load, s->load_layers, s->load_experts));
        if (s->bias)
            json_object_set_new(o, "bias", matrix(s->bias, s->load_layers, s->load_experts));
    }
    emit(o);
}

static void emit_group(const lua_r1_group *g)
{
    json_t *o = json_object(), *names = json_array(), *texts = json_array();
    json_t *rw = json_array(), *tot = json_array(), *adv = json_array(), *cor = json_array();
    if (!o || !names || !texts || !rw || !tot || !adv || !cor) {
        json_decref(o), json_decref(names), json_decref(texts), json_decref(rw);
        json_decref(tot), json_decref(adv), json_decref(cor);
        return;
    }
    json_object_set_new(o, "ev", json_string("group"));
    json_object_set_new(o, "step", json_integer(g->step));
    json_object_set_new(o, "prompt", g->prompt ? json_string(g->prompt) : json_null());
    for (int k = 0; k < g->nrewards; k++)
        json_array_append_new(names, json_string(g->names[k]));
    for (int j = 0; j < g->G; j++) {
        json_array_append_new(texts, json_string(g->texts[j] ? g->texts[j] : ""));
        json_t *r = json_array();
        for (int k = 0; r && k < g->nrewards; k++)
            json_array_append_new(r, number(g->rewards[(size_t)j * g->nrewards + k]));
        json_array_append_new(rw, r);
        json_array_append_new(tot, number(g->totals[j]));
        json_array_append_new(adv, number(g->adv[j]));
        json_array_append_new(cor, json_integer(g->correct ? g->correct[j] : -1));
    }
    json_object_set_new(o, "names", names);
    json_object_set_new(o, "texts", texts);
    json_object_set_new(o, "rewards", rw);
    json_object_set_new(o, "totals", tot);
    json_object_set_new(o, "adv", adv);
    json_object_set_new(o, "correct", cor);
    emit(o);
}

static const lua_r1_observer emitter = {NULL, NULL, NULL, emit_step, emit_group};

void relay_emit_start(FILE *out)
{
    relay_out = out;
    lua_r1_set_observer(&emitter);
}

/* ------------------------------------------------------------------ reading */

static double num_of(json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A rows x cols matrix of numbers (a list of equal lists) into a new array, or NULL. */
static float *read_matrix(json_t *m, int *rows, int *cols)
{
    size_t R = json_array_size(m), C = R ? json_array_size(json_array_get(m, 0)) : 0;
    if (!R || !C || R > 4096 || C > 4096)
        return NULL;
    float *x = malloc(sizeof(float) * R * C);
    for (size_t i = 0; x && i < R; i++) {
        json_t *r = json_array_get(m, i);
        if (json_array_size(r) != C) {
            free(x);
            return NULL;
        }
        for (size_t j = 0; j < C; j++)
            x[i * C + j] = (float)num_of(json_array_get(r, j));
    }
    *rows = (int)R, *cols = (int)C;
    return x;
}

static int read_step(json_t *o, const lua_r1_observer *ob)
{
    json_t *st = json_object_get(o, "stats");
    if (!json_is_object(st) || !json_is_integer(json_object_get(o, "step")))
        return -1;
    size_t n = json_object_size(st);
    const char **names = malloc(sizeof(char *) * (n ? n : 1));
    double *values = malloc(sizeof(double) * (n ? n : 1));
    int rc = names && values ? 1 : -1;
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(st, k, v) {
        if (rc < 0)
            break;
        names[i] = k;
        values[i++] = num_of(v);
    }
    int lr = 0, lc = 0, br = 0, bc = 0;
    float *load = read_matrix(json_object_get(o, "load"), &lr, &lc);
    float *bias = load ? read_matrix(json_object_get(o, "bias"), &br, &bc) : NULL;
    if (bias && (br != lr || bc != lc)) {
        free(bias);
        bias = NULL;
    }
    json_t *stage = json_object_get(o, "stage");
    lua_r1_step s = {json_is_string(stage) ? json_string_value(stage) : "",
                     (int)json_integer_value(json_object_get(o, "step")),
                     (int)json_integer_value(json_object_get(o, "total")),
                     (int)i, names, values, load ? lr : 0, load ? lc : 0, load, bias};
    if (rc > 0 && ob && ob->step)
        ob->step(&s);
    free(names), free(values), free(load), free(bias);
    return rc;
}

static int read_group(json_t *o, const lua_r1_observer *ob)
{
    json_t *names = json_object_get(o, "names"), *texts = json_object_get(o, "texts");
    json_t *rw = json_object_get(o, "rewards"), *tot = json_object_get(o, "totals");
    json_t *adv = json_object_get(o, "adv"), *cor = json_object_get(o, "correct");
    size_t G = json_array_size(texts), K = json_array_size(names);
    if (!G || G > 4096 || K > 64 || json_array_size(rw) != G || json_array_size(tot) != G ||
        json_array_size(adv) != G || json_array_size(cor) != G)
        return -1;
    const char **nm = malloc(sizeof(char *) * (K ? K : 1)), **tx = malloc(sizeof(char *) * G);
    double *r = malloc(sizeof(double) * G * (K ? K : 1)), *t = malloc(sizeof(double) * G);
    double *a = malloc(sizeof(double) * G);
    int *c = malloc(sizeof(int) * G);
    int rc = nm && tx && r && t && a && c ? 1 : -1;
    for (size_t k = 0; rc > 0 && k < K; k++)
        nm[k] = json_is_string(json_array_get(names, k))
                    ? json_string_value(json_array_get(names, k)) : "";
    for (size_t j = 0; rc > 0 && j < G; j++) {
        json_t *tj = json_array_get(texts, j), *rj = json_array_get(rw, j);
        if (json_array_size(rj) != K) {
            rc = -1;
            break;
        }
        tx[j] = json_is_string(tj) ? json_string_value(tj) : "";
        for (size_t k = 0; k < K; k++)
            r[j * K + k] = num_of(json_array_get(rj, k));
        t[j] = num_of(json_array_get(tot, j));
        a[j] = num_of(json_array_get(adv, j));
        json_t *cj = json_array_get(cor, j);
        c[j] = json_is_integer(cj) ? (int)json_integer_value(cj) : -1;
    }
    json_t *pr = json_object_get(o, "prompt");
    lua_r1_group g = {(int)json_integer_value(json_object_get(o, "step")),
                      json_is_string(pr) ? json_string_value(pr) : NULL, (int)G, tx, (int)K,
                      nm, r, t, a, c};
    if (rc > 0 && ob && ob->group)
        ob->group(&g);
    free(nm), free(tx), free(r), free(t), free(a), free(c);
    return rc;
}

int relay_line(const char *line, size_t len, const lua_r1_observer *ob)
{
    size_t mk = sizeof RELAY_MARK - 1;
    if (len < mk || memcmp(line, RELAY_MARK, mk) != 0)
        return 0;
    json_t *o = json_loadb(line + mk, len - mk, 0, NULL);
    json_t *ev = json_object_get(o, "ev");
    int rc = -1;
    if (json_is_string(ev) && !strcmp(json_string_value(ev), "step"))
        rc = read_step(o, ob);
    else if (json_is_string(ev) && !strcmp(json_string_value(ev), "group"))
        rc = read_group(o, ob);
    json_decref(o);
    return rc;
}
