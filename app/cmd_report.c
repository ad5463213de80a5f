/* cmd_report.c — r1lab report RUN_DIR [-o FILE.html] [--csv]: a run folder as something to
 * look at.  The HTML page is one self-contained file (inline SVG and CSS, nothing fetched,
 * no script): every metric of metrics.jsonl as a line plot against the step (a metric that is
 * an array, such as MaxVio per MoE layer, as one line per element), the last evaluation's
 * table, the expert load per MoE layer as a heatmap when the run logged it, and a sample of
 * GRPO groups (groups.jsonl) with their completions, rewards and advantages.  --csv writes
 * the metrics as CSV instead, with a `step` column and one column per number (an array's
 * elements as KEY[1], KEY[2], ...), which spreadsheets and trackers import. */
#include <config.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd.h"
#include "nb.h"

#define MAX_SERIES 512

/* One plotted quantity: a scalar key, or element `elem` (0-based) of an array key. */
typedef struct {
    char key[96];
    int elem;  /* -1: a scalar */
    int group; /* index of the first series of the same key (a plot holds a key's elements) */
} series;

typedef struct {
    json_t **rows;
    int n;
    series s[MAX_SERIES];
    int ns;
} run;

static int skip_key(const char *k)
{
    return !strcmp(k, "step") || !strcmp(k, "stage") || !strcmp(k, "expert_load");
}

static int find_series(const run *r, const char *k, int elem)
{
    for (int i = 0; i < r->ns; i++)
        if (r->s[i].elem == elem && !strcmp(r->s[i].key, k))
            return i;
    return -1;
}

static void add_series(run *r, const char *k, int elem)
{
    if (r->ns >= MAX_SERIES || find_series(r, k, elem) >= 0 || strlen(k) >= sizeof r->s[0].key)
        return;
    series *s = &r->s[r->ns];
    snprintf(s->key, sizeof s->key, "%s", k);
    s->elem = elem;
    s->group = elem > 0 ? find_series(r, k, 0) : r->ns;
    if (s->group < 0)
        s->group = r->ns;
    r->ns++;
}

/* Reads RUN/metrics.jsonl; the series in the order their keys first appear. */
static int load_run(run *r, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "r1lab report: %s: %s (expected a run folder with metrics.jsonl)\n",
                path, strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!json_is_object(o)) {
            fprintf(stderr, "r1lab report: %s:%d: not a JSON object (%s)\n", path, lineno,
                    o ? "another JSON value" : je.text);
            json_decref(o);
            free(line);
            fclose(f);
            return 0;
        }
        json_t **grown = realloc(r->rows, sizeof *grown * (r->n + 1));
        if (!grown) {
            json_decref(o);
            break;
        }
        r->rows = grown;
        r->rows[r->n++] = o;
        const char *k;
        json_t *v;
        json_object_foreach (o, k, v) {
            if (skip_key(k))
                continue;
            if (json_is_number(v) || json_is_null(v))
                add_series(r, k, -1);
            else if (json_is_array(v))
                for (size_t i = 0; i < json_array_size(v); i++)
                    if (json_is_number(json_array_get(v, i)))
                        add_series(r, k, (int)i);
        }
    }
    free(line);
    fclose(f);
    if (r->n == 0)
        fprintf(stderr, "r1lab report: %s: no steps yet\n", path);
    return r->n > 0;
}

static double value_of(const json_t *row, const series *s)
{
    const json_t *v = json_object_get(row, s->key);
    if (s->elem >= 0)
        v = json_array_get(v, (size_t)s->elem);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static double step_of(const json_t *row, int i)
{
    const json_t *v = json_object_get(row, "step");
    return json_is_number(v) ? json_number_value(v) : i + 1;
}

/* ------------------------------------------------------------------ CSV */

static void csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

static void write_csv(FILE *f, const run *r)
{
    fputs("step", f);
    for (int i = 0; i < r->ns; i++) {
        char name[128];
        if (r->s[i].elem >= 0)
            snprintf(name, sizeof name, "%s[%d]", r->s[i].key, r->s[i].elem + 1);
        else
            snprintf(name, sizeof name, "%s", r->s[i].key);
        fputc(',', f);
        csv_field(f, name);
    }
    fputc('\n', f);
    for (int j = 0; j < r->n; j++) {
        fprintf(f, "%.0f", step_of(r->rows[j], j));
        for (int i = 0; i < r->ns; i++) {
            double v = value_of(r->rows[j], &r->s[i]);
            if (isfinite(v))
                fprintf(f, ",%.9g", v);
            else
                fputc(',', f);
        }
        fputc('\n', f);
    }
}

/* ------------------------------------------------------------------ HTML */

static void html_text(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
}

static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

/* One plot: series g and the later elements of the same key, against the step. */
static void plot(FILE *f, const run *r, int g)
{
    enum { W = 340, H = 190, L = 60, R = 10, T = 24, B = 30 };
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int lines = 0;
    for (int i = g; i < r->ns; i++) {
        if (r->s[i].group != g)
            continue;
        lines++;
        for (int j = 0; j < r->n; j++) {
            double v = value_of(r->rows[j], &r->s[i]), x = step_of(r->rows[j], j);
            if (!isfinite(v))
                continue;
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, v), y1 = fmax(y1, v);
        }
    }
    if (!isfinite(y0))
        return; /* nothing but nulls */
    if (y1 - y0 <= 1e-12 * fmax(fabs(y0), 1e-300)) { /* a constant: a band around it */
        double pad = y0 != 0 ? fabs(y0) * 0.1 : 0.5;
        y0 -= pad, y1 += pad;
    }
    if (x1 - x0 < 1e-12)
        x0 -= 0.5, x1 += 0.5;
    fprintf(f, "<figure><svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\"><title>",
            W, H, W, H);
    html_text(f, r->s[g].key);
    fprintf(f, "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>", L,
            T, W - L - R, H - T - B);
    fprintf(f, "<text x=\"%d\" y=\"16\" class=\"name\">", L);
    html_text(f, r->s[g].key);
    fprintf(f, "</text><text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%.3g</text>"
               "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%.3g</text>",
            L - 4, T + 8, y1, L - 4, H - B, y0);
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"tick\">%.0f</text><text x=\"%d\" y=\"%d\" "
               "class=\"tick\" text-anchor=\"end\">step %.0f</text>",
            L, H - B + 14, x0, W - R, H - B + 14, x1);
    int c = 0;
    for (int i = g; i < r->ns; i++) {
        if (r->s[i].group != g)
            continue;
        fprintf(f, "<polyline class=\"line\" stroke=\"%s\" points=\"", colours[c % 10]);
        for (int j = 0; j < r->n; j++) {
            double v = value_of(r->rows[j], &r->s[i]), x = step_of(r->rows[j], j);
            if (isfinite(v))
                fprintf(f, "%.1f,%.1f ", L + (x - x0) / (x1 - x0) * (W - L - R),
                        H - B - (v - y0) / (y1 - y0) * (H - T - B));
        }
        fputs("\"/>", f);
        if (lines > 1) /* the element's legend: L1, L2, ... (MoE layers, in order) */
            fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"legend\" fill=\"%s\">%d</text>",
                    W - R - 12 * (lines - c), T + 12, colours[c % 10], r->s[i].elem + 1);
        c++;
    }
    fputs("</svg></figure>\n", f);
}

/* The last step that carries an evaluation, as a table of its cells. */
static void eval_table(FILE *f, const run *r)
{
    const json_t *row = NULL;
    for (int j = r->n - 1; j >= 0 && !row; j--)
        if (json_object_get(r->rows[j], "eval.accuracy"))
            row = r->rows[j];
    if (!row)
        return;
    fprintf(f, "<h2>Evaluation at step %.0f</h2>\n<p>accuracy %.3f, format %.3f, language "
               "%.3f (held-out problems, greedy)</p>\n<table><tr><th>task</th><th>difficulty"
               "</th><th>accuracy</th><th>format</th><th>language</th><th>reasoning (chars)"
               "</th></tr>\n",
            json_number_value(json_object_get(row, "step")),
            json_number_value(json_object_get(row, "eval.accuracy")),
            json_number_value(json_object_get(row, "eval.format")),
            json_number_value(json_object_get(row, "eval.language")));
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)row, k, v) {
        char task[64];
        int d, used = 0; /* %n is reached only when the whole key matched */
        if (sscanf(k, "eval.%63[^.].%d.accuracy%n", task, &d, &used) != 2 || !used || k[used])
            continue;
        char key[128];
        double x[4];
        static const char *const col[] = {"format", "language", "think_len"};
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "eval.%s.%d.%s", task, d, col[i]);
            x[i] = json_number_value(json_object_get(row, key));
        }
        fputs("<tr><td>", f);
        html_text(f, task);
        fprintf(f, "</td><td>%d</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.0f</td></tr>\n",
                d, json_number_value(v), x[0], x[1], x[2]);
    }
    fputs("</table>\n", f);
}

/* The last step's expert load ([MoE layer][expert] shares), as a heatmap. */
static void load_heatmap(FILE *f, const run *r)
{
    const json_t *load = NULL;
    double step = 0;
    for (int j = r->n - 1; j >= 0 && !load; j--)
        if (json_is_array(json_object_get(r->rows[j], "expert_load"))) {
            load = json_object_get(r->rows[j], "expert_load");
            step = step_of(r->rows[j], j);
        }
    size_t nl = json_array_size(load), E = nl ? json_array_size(json_array_get(load, 0)) : 0;
    if (!nl || !E)
        return;
    enum { CELL = 18, LAB = 40 };
    fprintf(f, "<h2>Expert load at step %.0f</h2>\n<p>The share of each MoE layer's routed "
               "slots each expert received (1/%zu is even).</p>\n<svg class=\"heat\" "
               "xmlns=\"http://www.w3.org/2000/svg\" width=\"%zu\" height=\"%zu\">",
            step, E, LAB + E * CELL + 10, nl * CELL + 24);
    for (size_t l = 0; l < nl; l++) {
        const json_t *row = json_array_get(load, l);
        fprintf(f, "<text x=\"0\" y=\"%zu\" class=\"tick\">L%zu</text>", l * CELL + 13, l + 1);
        for (size_t e = 0; e < E; e++) {
            double v = json_number_value(json_array_get(row, e)) * E / 2; /* 2x even: hottest */
            int t = (int)(255 * fmin(fmax(v, 0), 1));
            fprintf(f, "<rect x=\"%zu\" y=\"%zu\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,"
                       "%d)\"><title>layer %zu expert %zu: %.3f</title></rect>",
                    LAB + e * CELL, l * CELL, CELL - 1, CELL - 1, 255, 255 - t, 255 - t * 3 / 4,
                    l + 1, e, json_number_value(json_array_get(row, e)));
        }
    }
    fprintf(f, "<text x=\"%d\" y=\"%zu\" class=\"tick\">expert 0 .. %zu</text></svg>\n", LAB,
            nl * CELL + 16, E - 1);
}

/* A sample of GRPO groups: the last `keep` lines of RUN/groups.jsonl. */
static void groups(FILE *f, const char *dir, int keep)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/groups.jsonl", dir);
    FILE *g = fopen(path, "r");
    if (!g)
        return;
    char *line = NULL, **last = calloc(keep, sizeof *last);
    size_t cap = 0;
    int n = 0;
    while (last && getline(&line, &cap, g) > 0) {
        free(last[n % keep]);
        last[n % keep] = strdup(line);
        n++;
    }
    fclose(g);
    free(line);
    if (n)
        fputs("<h2>GRPO groups</h2>\n", f);
    for (int i = n > keep ? n - keep : 0; last && i < n; i++) {
        json_t *o = json_loads(last[i % keep], 0, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            continue;
        }
        fprintf(f, "<section class=\"group\"><h3>step %lld · ",
                (long long)json_integer_value(json_object_get(o, "step")));
        html_text(f, json_string_value(json_object_get(o, "prompt")) ?: "");
        fputs("</h3><table><tr><th>completion</th><th>rewards</th><th>total</th>"
              "<th>advantage</th></tr>\n", f);
        json_t *cs = json_object_get(o, "completions"), *c;
        size_t k;
        json_array_foreach (cs, k, c) {
            fputs("<tr><td><pre>", f);
            html_text(f, json_string_value(json_object_get(c, "text")) ?: "");
            fputs("</pre></td><td>", f);
            const char *rk;
            json_t *rv;
            json_object_foreach (json_object_get(c, "rewards"), rk, rv) {
                html_text(f, rk);
                fprintf(f, " %.3g<br>", json_number_value(rv));
            }
            double adv = json_number_value(json_object_get(c, "advantage"));
            fprintf(f, "</td><td>%.3g</td><td class=\"%s\">%+.3f</td></tr>\n",
                    json_number_value(json_object_get(c, "total")), adv >= 0 ? "pos" : "neg",
                    adv);
        }
        fputs("</table></section>\n", f);
        json_decref(o);
    }
    for (int i = 0; last && i < keep; i++)
        free(last[i]);
    free(last);
}

static void write_html(FILE *f, const run *r, const char *dir)
{
    const json_t *first = r->rows[0];
    const char *stage = json_string_value(json_object_get(first, "stage"));
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>r1lab "
          "report: ", f);
    html_text(f, dir);
    fputs("</title>\n<style>body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}"
          "h1{font-size:20px}h2{font-size:17px;margin-top:28px}figure{display:inline-block;"
          "margin:4px}.frame{fill:#fafafa;stroke:#ccc}.line{fill:none;stroke-width:1.6}"
          ".name{font-size:12px;font-weight:600}.tick,.legend{font-size:10px;fill:#555}"
          "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;"
          "text-align:right;vertical-align:top}td pre{text-align:left;white-space:pre-wrap;"
          "margin:0;max-width:640px}.pos{color:#1a7f37}.neg{color:#c62828}</style>\n"
          "</head><body>\n<h1>r1lab run: ", f);
    html_text(f, dir);
    fprintf(f, "</h1>\n<p>stage %s · %d steps logged (steps %.0f to %.0f)</p>\n<h2>Metrics"
               "</h2>\n<div class=\"plots\">\n",
            stage ? stage : "?", r->n, step_of(r->rows[0], 0), step_of(r->rows[r->n - 1],
                                                                        r->n - 1));
    for (int i = 0; i < r->ns; i++)
        if (r->s[i].group == i && strncmp(r->s[i].key, "eval.", 5) != 0)
            plot(f, r, i);
    fputs("</div>\n", f);
    eval_table(f, r);
    load_heatmap(f, r);
    groups(f, dir, 4);
    fputs("<p class=\"tick\">Made by r1lab report from metrics.jsonl" , f);
    fputs(" (and groups.jsonl when present).</p>\n</body></html>\n", f);
}

int cmd_report(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    int csv = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--csv"))
            csv = 1;
        else if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) && i + 1 < argc)
            out = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "r1lab report: unknown option '%s' (r1lab report --help)\n",
                    argv[i]);
            return 2;
        } else if (!dir)
            dir = argv[i];
        else {
            fprintf(stderr, "r1lab report: one run folder, got '%s' and '%s'\n", dir, argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "r1lab report: expected a run folder (r1lab report --help)\n");
        return 2;
    }
    run r = {0};
    int rc = 1;
    if (load_run(&r, dir)) {
        char def[4200];
        snprintf(def, sizeof def, "%s/%s", dir, csv ? "metrics.csv" : "report.html");
        const char *path = out ? out : def;
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        if (m) {
            if (csv)
                write_csv(m, &r);
            else
                write_html(m, &r, dir);
            fclose(m);
            char err[600];
            if (!strcmp(path, "-")) {
                rc = fwrite(text, 1, len, stdout) == len ? 0 : 1;
            } else if (nb_write_atomic(path, text, len, 0644, err, sizeof err) == 0) {
                fprintf(stderr, "r1lab report: wrote %s (%d steps, %d series)\n", path, r.n,
                        r.ns);
                rc = 0;
            } else {
                fprintf(stderr, "r1lab report: %s\n", err);
            }
            free(text);
        }
    }
    for (int j = 0; j < r.n; j++)
        json_decref(r.rows[j]);
    free(r.rows);
    return rc;
}
