/* ui_output.c — the Output/notebook pane.  The output view is the REPL's log: echoed input,
 * what Lua printed, errors with their tracebacks; it follows the end unless scrolled up.  The
 * notebook view shows the open notebook: prose, each cell's code with its state (queued,
 * running, ok, error) and its output.  Completion candidates from Tab show over its last
 * rows.  Draws from the screen model only. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb.h"
#include "ui.h"

static const char explain[] =
    "The output view is the REPL's log: each line you enter (after the prompt), what it "
    "printed, its value, or the error with its traceback. The notebook view ('n' switches) "
    "shows the open notebook: Markdown prose and Lua cells, each with its state and the "
    "output of its last run, which :save writes back into the file. In the notebook view j/k "
    "move between cells, Enter runs the current cell and 'c' copies it into the input line to "
    "edit (Enter there runs the edited cell). Up/Down/PgUp/PgDn scroll either view.";

static attr_t role_attr(int role)
{
    switch (role) {
    case OUT_ECHO: return ui_attr(R_PROMPT);
    case OUT_ERROR: return ui_attr(R_ERROR);
    case OUT_INFO: return ui_attr(R_TITLE);
    case OUT_DIM: return ui_attr(R_DIM);
    default: return ui_attr(R_TEXT);
    }
}

/* ------------------------------------------------------------------ the output view */

typedef struct {
    const char *base;
    int *off, *len, n, cap;
} segs;

static void seg_fn(const char *line, int len, void *u)
{
    segs *s = u;
    if (s->n == s->cap)
        return;
    s->off[s->n] = (int)(line - s->base);
    s->len[s->n++] = len;
}

/* Draws the log's wrapped rows, newest at the bottom, `skip` rows up from the end. */
static void draw_log(WINDOW *w, const ui_model *m, int h, int cols, int skip)
{
    enum { MAXSEG = 512 };
    int off[MAXSEG], len[MAXSEG];
    int row = h - 1 + skip;
    for (int i = m->nlines - (m->partial ? 0 : 1); i >= 0 && row >= 0; i--) {
        const char *text;
        int role;
        if (i == m->nlines) {
            text = m->partial;
            role = m->partial_role;
        } else {
            const ui_line *l = ui_model_line(m, i);
            text = l->text;
            role = l->role;
        }
        segs s = {text, off, len, 0, MAXSEG};
        ui_wrap(text, cols, seg_fn, &s);
        for (int k = s.n - 1; k >= 0 && row >= 0; k--, row--) {
            if (row >= h)
                continue;
            char buf[2048];
            int n = len[k] < (int)sizeof buf - 1 ? len[k] : (int)sizeof buf - 1;
            memcpy(buf, text + off[k], (size_t)n);
            buf[n] = '\0';
            ui_put(w, row, 0, cols, role_attr(role), buf);
        }
    }
}

/* ------------------------------------------------------------------ the notebook view */

typedef void (*row_fn)(const char *prefix, attr_t pa, const char *s, int len, attr_t a,
                       int cell, int header, void *u);

typedef struct {
    const char *prefix;
    attr_t pa, a;
    int cell, header;
    row_fn fn;
    void *u;
} emit_ctx;

static void emit_line(const char *line, int len, void *u)
{
    emit_ctx *e = u;
    e->fn(e->prefix, e->pa, line, len, e->a, e->cell, e->header, e->u);
}

/* Emits each line of text (wrapped) with a prefix. */
static void emit_text(const char *text, int cols, const char *prefix, attr_t pa, attr_t a,
                      int cell, row_fn fn, void *u)
{
    int pw = ui_width(prefix, -1);
    emit_ctx e = {prefix, pa, a, cell, 0, fn, u};
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *line = malloc(n + 1);
        if (!line)
            return;
        memcpy(line, p, n);
        line[n] = '\0';
        e.a = a;
        if (!*prefix && line[0] == '#') /* Markdown headings */
            e.a = ui_attr(R_TITLE) | A_BOLD;
        ui_wrap(line, cols - pw > 1 ? cols - pw : 1, emit_line, &e);
        free(line);
        p = nl ? nl + 1 : NULL;
    }
}

static const char *state_name(nb_state s)
{
    switch (s) {
    case NB_QUEUED: return "queued";
    case NB_RUNNING: return "running …";
    case NB_OK: return "ok";
    case NB_ERROR: return "error";
    case NB_CANCELLED: return "cancelled";
    default: return "";
    }
}

/* Walks the rows of the notebook view at width cols. */
static void nb_rows(const ui_model *m, int cols, row_fn fn, void *u)
{
    const nb_notebook *nb = m->nb;
    for (int i = 0; i < nb->ncells; i++) {
        const nb_cell *c = &nb->cells[i];
        emit_text(c->prose, cols, "", 0, ui_attr(R_TEXT), i, fn, u);
        char head[64];
        snprintf(head, sizeof head, "[%d] %s", i + 1, state_name(c->state));
        attr_t ha = i == m->nb_cur ? ui_attr(R_SELECTED)
                    : c->state == NB_ERROR ? ui_attr(R_WRONG)
                    : c->state == NB_OK ? ui_attr(R_RIGHT) : ui_attr(R_DIM);
        fn("", 0, head, (int)strlen(head), ha, i, 1, u);
        emit_text(c->src, cols, "  ", 0, ui_attr(R_CODE), i, fn, u);
        if (c->out_open && c->output && *c->output)
            emit_text(c->output, cols, ui_utf8 ? "  │ " : "  | ", ui_attr(R_DIM),
                      c->state == NB_ERROR ? ui_attr(R_ERROR) : ui_attr(R_TEXT), i, fn, u);
    }
    emit_text(nb->tail, cols, "", 0, ui_attr(R_TEXT), nb->ncells, fn, u);
}

typedef struct {
    int n;             /* rows so far */
    int want, header;  /* the row of cell want's header */
    int end;           /* the last row of cell want */
    int find_row, found_cell;
} count_ctx;

static void count_fn(const char *prefix, attr_t pa, const char *s, int len, attr_t a, int cell,
                     int header, void *u)
{
    (void)prefix, (void)pa, (void)s, (void)len, (void)a;
    count_ctx *c = u;
    if (cell == c->want && header)
        c->header = c->n;
    if (cell == c->want)
        c->end = c->n;
    if (c->n == c->find_row)
        c->found_cell = cell;
    c->n++;
}

/* The first row shown. */
static int nb_first(const ui_model *m, int cols, int h, int *total)
{
    count_ctx c = {0, m->nb_cur, 0, 0, -1, -1};
    nb_rows(m, cols, count_fn, &c);
    *total = c.n;
    if (m->nb_scroll >= 0)
        return m->nb_scroll < c.n ? m->nb_scroll : (c.n > 0 ? c.n - 1 : 0);
    int first = c.header > 0 ? c.header - 1 : 0;
    int running = m->nb_cur >= 0 && m->nb_cur < m->nb->ncells &&
                  m->nb->cells[m->nb_cur].state == NB_RUNNING;
    if (c.end - first >= h) /* too long: a running cell shows its newest output */
        first = running ? c.end - h + 1 : c.header;
    return first;
}

typedef struct {
    WINDOW *w;
    int first, h, row, cols;
} draw_ctx;

static void draw_fn(const char *prefix, attr_t pa, const char *s, int len, attr_t a, int cell,
                    int header, void *u)
{
    (void)cell, (void)header;
    draw_ctx *d = u;
    int r = d->row++ - d->first;
    if (r < 0 || r >= d->h)
        return;
    int x = ui_put(d->w, r, 0, d->cols, pa, prefix);
    char buf[2048];
    int n = len < (int)sizeof buf - 1 ? len : (int)sizeof buf - 1;
    memcpy(buf, s, (size_t)n);
    buf[n] = '\0';
    ui_put(d->w, r, x, d->cols - x, a, buf);
}

/* ------------------------------------------------------------------ the pane */

static int match_rows(const ui_model *m, int h, int cols)
{
    if (!m->matches || h < 3)
        return 0;
    int len = 0;
    for (int i = 0; i < m->nmatches; i++)
        len += (int)strlen(m->matches[i]) + 2;
    int rows = len / (cols > 1 ? cols : 1) + 1;
    return rows > 3 ? 3 : rows;
}

static void draw_matches(WINDOW *w, const ui_model *m, int y, int rows, int cols)
{
    int x = 0, r = 0;
    for (int i = 0; i < m->nmatches && r < rows; i++) {
        int l = ui_width(m->matches[i], -1);
        if (x > 0 && x + l > cols) {
            r++;
            x = 0;
            if (r == rows)
                break;
        }
        x += ui_put(w, y + r, x, cols - x, ui_attr(R_SELECTED), m->matches[i]);
        x += ui_put(w, y + r, x, cols - x, ui_attr(R_TEXT), "  ");
    }
}

static void draw(WINDOW *w, const ui_model *m, int focused)
{
    (void)focused;
    werase(w);
    int h = getmaxy(w), cols = getmaxx(w);
    if (h < 1 || cols < 1)
        return;
    if (m->explain[UI_OUTPUT]) {
        ui_draw_explain(w, "Output/notebook", explain);
        return;
    }
    int mr = match_rows(m, h, cols), oh = h - mr;
    if (m->nb_view && m->nb) {
        int total;
        draw_ctx d = {w, nb_first(m, cols, oh, &total), oh, 0, cols};
        nb_rows(m, cols, draw_fn, &d);
    } else {
        draw_log(w, m, oh, cols, m->scroll[UI_OUTPUT] > 0 ? m->scroll[UI_OUTPUT] : 0);
    }
    if (mr) {
        wattrset(w, ui_attr(R_TEXT));
        for (int r = oh; r < h; r++) {
            wmove(w, r, 0);
            wclrtoeol(w);
        }
        draw_matches(w, m, oh, mr, cols);
    }
}

static void title(const ui_model *m, char *buf, size_t n)
{
    if (m->nb_view && m->nb) {
        const char *p = m->nb->path ? strrchr(m->nb->path, '/') : NULL;
        p = p ? p + 1 : m->nb->path ? m->nb->path : "(new)";
        snprintf(buf, n, "Notebook · %s%s · cell %d/%d", p, m->nb->dirty ? " *" : "",
                 m->nb->ncells ? m->nb_cur + 1 : 0, m->nb->ncells);
    } else if (m->nb) {
        snprintf(buf, n, "Output · n: notebook");
    } else {
        snprintf(buf, n, "Output");
    }
}

static int key(ui_model *m, int k)
{
    int h = m->pane_h[UI_OUTPUT] > 1 ? m->pane_h[UI_OUTPUT] : 2;
    int cols = m->pane_w[UI_OUTPUT] > 0 ? m->pane_w[UI_OUTPUT] : 1;
    if (k == 'n' && m->nb) {
        m->nb_view = !m->nb_view;
        return 1;
    }
    if (m->nb_view && m->nb) {
        int total, first = nb_first(m, cols, h, &total);
        switch (k) {
        case 'j':
        case ']':
            if (m->nb_cur < m->nb->ncells - 1)
                m->nb_cur++;
            m->nb_scroll = -1;
            return 1;
        case 'k':
        case '[':
            if (m->nb_cur > 0)
                m->nb_cur--;
            m->nb_scroll = -1;
            return 1;
        case UI_KEY_ENTER:
        case 'r':
            m->request = UI_REQ_RUN_CELL;
            return 1;
        case 'c':
            m->request = UI_REQ_EDIT_CELL;
            return 1;
        case UI_KEY_UP:
        case UI_KEY_DOWN:
        case UI_KEY_PGUP:
        case UI_KEY_PGDN: {
            int d = (k == UI_KEY_UP || k == UI_KEY_DOWN) ? 1 : h - 1;
            first += (k == UI_KEY_UP || k == UI_KEY_PGUP) ? -d : d;
            m->nb_scroll = first < 0 ? 0 : first >= total ? total - 1 : first;
            return 1;
        }
        case UI_KEY_HOME:
            m->nb_scroll = 0;
            return 1;
        case UI_KEY_END:
            m->nb_scroll = total > h ? total - h : 0;
            return 1;
        default:
            return 0;
        }
    }
    int *s = &m->scroll[UI_OUTPUT];
    int cur = *s > 0 ? *s : 0;
    switch (k) {
    case UI_KEY_UP: cur += 1; break;
    case UI_KEY_DOWN: cur -= 1; break;
    case UI_KEY_PGUP: cur += h - 1; break;
    case UI_KEY_PGDN: cur -= h - 1; break;
    case UI_KEY_HOME: cur = m->nlines * 4; break;
    case UI_KEY_END: cur = 0; break;
    default: return 0;
    }
    *s = cur > 0 ? cur : -1;
    return 1;
}

static void click(ui_model *m, int y, int x)
{
    (void)x;
    if (!(m->nb_view && m->nb))
        return;
    int h = m->pane_h[UI_OUTPUT], cols = m->pane_w[UI_OUTPUT], total;
    int first = nb_first(m, cols, h, &total);
    count_ctx c = {0, -1, 0, 0, first + y, -1};
    nb_rows(m, cols, count_fn, &c);
    if (c.found_cell >= 0 && c.found_cell < m->nb->ncells) {
        m->nb_cur = c.found_cell;
        m->nb_scroll = first;
    }
}

const ui_pane ui_output_pane = {"Output", title, draw, key, click, explain};

const ui_pane *ui_pane_get(int id)
{
    static const ui_pane *const panes[UI_NPANES] = {&ui_reasoning_pane, &ui_answer_pane,
                                                     &ui_routing_pane, &ui_grpo_pane,
                                                     &ui_output_pane};
    return id >= 0 && id < UI_NPANES ? panes[id] : NULL;
}
