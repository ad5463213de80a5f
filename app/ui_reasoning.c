/* ui_reasoning.c — the Reasoning pane: the <think> part of the current generation as it
 * streams, word-wrapped and scrollable, with a token cursor (arrow keys or a mouse click)
 * that selects a token for the Routing pane.  Tokens without text (a model without a
 * tokenizer) show as their ids.  Draws from the screen model only. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ui.h"

static const char explain[] =
    "The model's reasoning: the text between <think> and </think> of the current "
    "generation, one token at a time as the worker produces it (a completion outside the "
    "chat format shows here whole). A model without a tokenizer shows token ids instead of "
    "text. Move the token cursor with Left/Right (Up/Down move a "
    "line, Home/End jump) or click a token: the Routing pane then shows which experts each "
    "MoE layer chose for that token and with what weights. 'a' clears the cursor and the "
    "Routing pane goes back to the share of all tokens. PgUp/PgDn scroll; the pane follows "
    "new tokens while the view is at the end.\n\n"
    "The microscope, at the token under the cursor: 'c' colours every token by how sure the "
    "model was (its probability, then its entropy; the theme's doubt and unsure colours); the "
    "Routing pane lists the token's alternatives with their probabilities, the entropy and "
    "what the MTP module predicted next. 'l' shows the logit lens: what the residual stream "
    "after each layer would have predicted at this point. 'w' shows where the model looked "
    "when it chose the token: one layer's attention over the text before it, as heat ('[' and "
    "']' change the layer, 'h' the head; the mean of the heads first). '1'-'5' branch: the "
    "model writes on from here with that alternative instead (the Answer pane lists the "
    "branches of the reasoning tree and judges each answer); 'b' branches with text you "
    "type.";

static int in_pane(const ui_token *t)
{
    return t->reasoning;
}

/* What token t shows: its text, or its id followed by a blank. */
static const char *token_text(const ui_token *t, char *buf, size_t n)
{
    if (t->text[0])
        return t->text;
    snprintf(buf, n, "%d ", (int)t->id);
    return buf;
}

static int is_special(const char *s)
{
    size_t l = strlen(s);
    return l > 2 && s[0] == '<' && s[l - 1] == '>';
}

/* Calls fn for every character the pane shows, in order: token index (-1 for the prompt
 * line), line, column, the character's bytes and width.  Returns the number of lines. */
typedef void (*walk_fn)(int tok, int line, int col, const char *s, int len, int width, void *u);

static int char_len(const char *s, int *width)
{
    int n = 1;
    unsigned char c = (unsigned char)*s;
    if (c >= 0x80 && ui_utf8) {
        n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        for (int i = 1; i < n; i++)
            if (!s[i]) {
                n = i;
                break;
            }
    }
    *width = ui_width(s, n);
    return n;
}

/* Display width of the word that starts at token i (tokens up to one holding a blank). */
static int word_width(const ui_model *m, int i)
{
    int w = 0;
    char buf[32];
    for (; i < m->ntok; i++) {
        if (!in_pane(&m->tok[i]))
            continue;
        const char *s = token_text(&m->tok[i], buf, sizeof buf);
        const char *sp = strpbrk(s, " \n\t");
        w += ui_width(s, sp ? (int)(sp - s) : -1);
        if (sp)
            break;
    }
    return w;
}

static int walk(const ui_model *m, int cols, walk_fn fn, void *u)
{
    if (cols < 1)
        cols = 1;
    int line = 0, col = 0;
    if (m->prompt && *m->prompt) {
        char head[200];
        snprintf(head, sizeof head, "> %s", m->prompt);
        ui_strip_chat(head + 2);
        int l = ui_fit(head, cols);
        if (fn)
            for (int i = 0; i < l;) {
                int wd, n = char_len(head + i, &wd);
                fn(-1, 0, col, head + i, n, wd, u);
                col += wd;
                i += n;
            }
        line = 1;
        col = 0;
    }
    int at_word = 1;
    char buf[32];
    for (int i = 0; i < m->ntok; i++) {
        const ui_token *t = &m->tok[i];
        if (!in_pane(t))
            continue;
        const char *s = token_text(t, buf, sizeof buf);
        if (at_word && col > 0 && s[0] != ' ' && s[0] != '\n') {
            int ww = word_width(m, i);
            if (col + ww > cols && ww <= cols) {
                line++;
                col = 0;
            }
        }
        for (int k = 0; s[k];) {
            if (s[k] == '\n') {
                if (fn)
                    fn(i, line, col, " ", 1, 1, u); /* something to click and highlight */
                line++;
                col = 0;
                k++;
                continue;
            }
            int wd, n = char_len(s + k, &wd);
            if (s[k] == '\t') {
                wd = 1;
            }
            if (col + wd > cols && col > 0) {
                line++;
                col = 0;
                if (s[k] == ' ') { /* a blank at a line break is not shown */
                    k++;
                    continue;
                }
            }
            if (fn)
                fn(i, line, col, s[k] == '\t' ? " " : s + k, s[k] == '\t' ? 1 : n, wd, u);
            col += wd;
            k += n;
        }
        size_t l = strlen(s);
        at_word = l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\n' || s[l - 1] == '\t');
    }
    return col > 0 || line == 0 ? line + 1 : line;
}

typedef struct {
    int want, line, col, found;
    int qline, qcol, hit;
} locate_ctx;

static void locate_fn(int tok, int line, int col, const char *s, int len, int width, void *u)
{
    (void)s;
    (void)len;
    locate_ctx *c = u;
    if (tok == c->want && !c->found) {
        c->found = 1;
        c->line = line;
        c->col = col;
    }
    if (line == c->qline && c->qcol >= col && c->qcol < col + (width ? width : 1) && tok >= 0)
        c->hit = tok;
}

int ui_reasoning_locate(const ui_model *m, int cols, int i, int *line, int *col)
{
    locate_ctx c = {i, -1, -1, 0, -1, -1, -1};
    int n = walk(m, cols, locate_fn, &c);
    *line = c.line;
    *col = c.col;
    return n;
}

int ui_reasoning_token_at(const ui_model *m, int cols, int line, int col)
{
    locate_ctx c = {-2, -1, -1, 0, line, col, -1};
    walk(m, cols, locate_fn, &c);
    return c.hit;
}

/* The first line shown for a pane of h rows. */
static int first_line(const ui_model *m, int lines, int h)
{
    int s = m->scroll[UI_REASONING];
    int last = lines > h ? lines - h : 0;
    if (s < 0 || s > last)
        s = last;
    return s;
}

typedef struct {
    WINDOW *w;
    const ui_model *m;
    int top, h;
    const ev *attn; /* the attention view shown as heat, or NULL */
} draw_ctx;

/* The token inspector's colour of t: by its probability (by = 1) or entropy (by = 2). */
static attr_t sure_attr(const ui_token *t, int by)
{
    if (by == 1) {
        double p = exp(t->logprob);
        return p < 0.5 ? ui_attr(R_UNSURE) : p < 0.9 ? ui_attr(R_DOUBT) : ui_attr(R_THINK);
    }
    if (isnan(t->entropy))
        return ui_attr(R_THINK);
    return t->entropy > 1.5 ? ui_attr(R_UNSURE)
                            : t->entropy > 0.5 ? ui_attr(R_DOUBT) : ui_attr(R_THINK);
}

/* Heat of token i under the attention view a (the query's weights over the generated tokens;
 * the hottest is the largest weight); tokens after the query are dimmed. */
static attr_t attn_attr(const ui_model *m, const ev *a, int i)
{
    (void)m;
    if (i >= a->cols || i >= a->ints[0])
        return ui_attr(R_DIM);
    double mx = 0;
    for (int j = 0; j < a->cols && j < a->ints[0]; j++)
        mx = a->vals[j] > mx ? a->vals[j] : mx;
    double x = mx > 0 ? a->vals[i] / mx : 0;
    return x < 0.02 ? ui_attr(R_DIM) : ui_heat_attr(x);
}

static void draw_fn(int tok, int line, int col, const char *s, int len, int width, void *u)
{
    draw_ctx *c = u;
    int row = line - c->top;
    if (row < 0 || row >= c->h || width == 0)
        return;
    attr_t a = ui_attr(R_THINK);
    if (tok < 0)
        a = ui_attr(R_DIM);
    else if (tok == c->m->cursor)
        a = ui_attr(R_SELECTED);
    else if (c->attn)
        a = attn_attr(c->m, c->attn, tok);
    else if (is_special(c->m->tok[tok].text))
        a = ui_attr(R_SPECIAL);
    else if (c->m->colour_by)
        a = sure_attr(&c->m->tok[tok], c->m->colour_by);
    char buf[8];
    memcpy(buf, s, (size_t)len);
    buf[len] = '\0';
    ui_put(c->w, row, col, width, a, buf);
}

/* The comparison of two checkpoints: each one's text, the first difference marked, and the
 * answers (the Routing pane shows how the routing differs). */
static void draw_compare(WINDOW *w, const ev *v, int h, int cols)
{
    const char *lab[6];
    for (int i = 0; i < 6; i++)
        lab[i] = i < v->nlabels && v->labels[i] ? v->labels[i] : "";
    int y = 0, half = h / 2 > 2 ? h / 2 : 2;
    for (int k = 0; k < 2 && y < h; k++) {
        char head[256];
        snprintf(head, sizeof head, "%s %s", k ? "B" : "A", lab[k]);
        ui_put(w, y++, 0, cols, ui_attr(R_TITLE), head);
        const char *t = lab[2 + k];
        int off = v->ints[1 + k], end = k ? h : half, x = 0;
        /* the text, wrapped by characters, the differing tail from `off` in the doubt role */
        for (int i = 0; t[i] && y < end;) {
            int wd, n = char_len(t + i, &wd);
            if (t[i] == '\n') {
                y++, x = 0, i++;
                continue;
            }
            if (x + wd > cols)
                y++, x = 0;
            if (y >= end)
                break;
            char buf[8];
            snprintf(buf, sizeof buf, "%.*s", n, t + i);
            attr_t a = off >= 0 && i >= off ? ui_attr(i == off ? R_SELECTED : R_DOUBT)
                                            : ui_attr(R_THINK);
            ui_put(w, y, x, wd, a, buf);
            x += wd, i += n;
        }
        y = k ? y : half;
    }
    (void)lab;
}

static void draw(WINDOW *w, const ui_model *m, int focused)
{
    (void)focused;
    werase(w);
    int h = getmaxy(w), cols = getmaxx(w);
    if (h < 1 || cols < 1)
        return;
    if (m->explain[UI_REASONING]) {
        ui_draw_explain(w, "Reasoning", explain, m->explain[UI_REASONING] - 1);
        return;
    }
    if (!m->prompt && m->ntok == 0) {
        ui_draw_text(w, 0, h, 0, ui_attr(R_DIM),
                     "The model's reasoning streams here. Ask with ?QUESTION or :ask, or run "
                     "m:generate(ids). Tab: focus a pane, e: explain it.");
        return;
    }
    if (m->compare_on && m->view[EV_VIEW_COMPARE]) {
        draw_compare(w, m->view[EV_VIEW_COMPARE], h, cols);
        return;
    }
    int lines = walk(m, cols, NULL, NULL);
    const ev *a = m->attn_on ? m->view[EV_VIEW_ATTN] : NULL;
    draw_ctx c = {w, m, first_line(m, lines, h), h, a && a->cols == m->ntok ? a : NULL};
    walk(m, cols, draw_fn, &c);
}

static void title(const ui_model *m, char *buf, size_t n)
{
    int k = 0;
    for (int i = 0; i < m->ntok; i++)
        k += in_pane(&m->tok[i]);
    if (m->cursor >= 0 && m->cursor < m->ntok) {
        char tb[32];
        const char *s = token_text(&m->tok[m->cursor], tb, sizeof tb);
        char show[40];
        snprintf(show, sizeof show, "%s", strcmp(s, "\n") ? s : "\\n");
        char mode[64] = "";
        const ev *a = m->attn_on ? m->view[EV_VIEW_ATTN] : NULL;
        if (a && a->ints[2] >= 0)
            snprintf(mode, sizeof mode, " · attention L%d head %d", a->ints[1], a->ints[2] + 1);
        else if (a)
            snprintf(mode, sizeof mode, " · attention L%d mean of %d heads", a->ints[1],
                     a->ints[3]);
        else if (m->colour_by)
            snprintf(mode, sizeof mode, " · by %s", m->colour_by == 1 ? "probability"
                                                                       : "entropy");
        snprintf(buf, n, "Reasoning · token %d '%s' of %d%s", m->cursor + 1, show, k, mode);
    } else if (m->compare_on && m->view[EV_VIEW_COMPARE]) {
        snprintf(buf, n, "Reasoning · A and B side by side (v: back)");
    } else if (k || m->prompt) {
        snprintf(buf, n, "Reasoning · %d token%s%s%s", k, k == 1 ? "" : "s",
                 m->gen_active ? " …" : "",
                 m->colour_by == 1 ? " · by probability"
                 : m->colour_by == 2 ? " · by entropy" : "");
    } else {
        snprintf(buf, n, "Reasoning");
    }
}

/* The next token shown in the pane from i in direction d, or -1. */
static int step(const ui_model *m, int i, int d)
{
    for (i += d; i >= 0 && i < m->ntok; i += d)
        if (in_pane(&m->tok[i]))
            return i;
    return -1;
}

/* Scrolls so that the cursor's line shows. */
static void follow_cursor(ui_model *m)
{
    int cols = m->pane_w[UI_REASONING], h = m->pane_h[UI_REASONING];
    if (m->cursor < 0 || cols < 1 || h < 1)
        return;
    int line, col;
    int lines = ui_reasoning_locate(m, cols, m->cursor, &line, &col);
    int top = first_line(m, lines, h);
    if (line < top)
        top = line;
    else if (line >= top + h)
        top = line - h + 1;
    m->scroll[UI_REASONING] = top >= (lines > h ? lines - h : 0) ? -1 : top;
}

/* The microscope's keys at the cursor: they ask the workbench to run the Lua call. */
static int microscope_key(ui_model *m, int k)
{
    int i = m->cursor;
    if (i < 0 || i >= m->ntok || !strchr("lwbh[]12345", k) || k == 0) {
        if (k == 'l' || k == 'w' || k == 'b' || (k >= '1' && k <= '5'))
            ui_model_status(m, "move the token cursor to a token first (Left/Right or a click)");
        return k == 'l' || k == 'w' || k == 'b' || (k >= '1' && k <= '5');
    }
    const ev *a = m->view[EV_VIEW_ATTN];
    int layer = a && m->attn_on ? a->ints[1] : -1, head = a && m->attn_on ? a->ints[2] : -1;
    switch (k) {
    case 'l':
        m->request = UI_REQ_LENS;
        m->req_arg[0] = i;
        return 1;
    case 'w':
        m->request = UI_REQ_ATTN;
        m->req_arg[0] = i, m->req_arg[1] = layer, m->req_arg[2] = head;
        return 1;
    case '[':
    case ']':
    case 'h':
        if (!a || !m->attn_on)
            return 0;
        if (k == 'h')
            head = head + 1 >= a->ints[3] ? -1 : head + 1;
        else
            layer = k == '[' ? (layer > 0 ? layer - 1 : a->ints[4]) 
                             : (layer < a->ints[4] ? layer + 1 : 0);
        m->request = UI_REQ_ATTN;
        m->req_arg[0] = i, m->req_arg[1] = layer, m->req_arg[2] = head;
        return 1;
    case 'b':
        m->request = UI_REQ_BRANCH_TEXT;
        m->req_arg[0] = i;
        return 1;
    default: { /* 1-5: the alternative of that rank */
        const ui_token *t = &m->tok[i];
        int r = k - '1';
        if (r >= t->n_top) {
            ui_model_status(m, "token %d has %d alternatives recorded", i + 1, t->n_top);
            return 1;
        }
        m->request = UI_REQ_BRANCH;
        m->req_arg[0] = i, m->req_arg[1] = t->top_id[r];
        return 1;
    }
    }
}

static int key(ui_model *m, int k)
{
    int cols = m->pane_w[UI_REASONING] > 0 ? m->pane_w[UI_REASONING] : 1;
    int h = m->pane_h[UI_REASONING] > 0 ? m->pane_h[UI_REASONING] : 1;
    int lines = walk(m, cols, NULL, NULL);
    int top = first_line(m, lines, h);
    int next;
    switch (k) {
    case UI_KEY_RIGHT:
        next = step(m, m->cursor, +1);
        if (m->cursor < 0)
            next = step(m, -1, +1);
        if (next >= 0)
            m->cursor = next;
        break;
    case UI_KEY_LEFT:
        next = m->cursor < 0 ? step(m, m->ntok, -1) : step(m, m->cursor, -1);
        if (next >= 0)
            m->cursor = next;
        break;
    case UI_KEY_HOME:
        m->cursor = step(m, -1, +1);
        break;
    case UI_KEY_END:
        m->cursor = step(m, m->ntok, -1);
        break;
    case UI_KEY_UP:
    case UI_KEY_DOWN:
        if (m->cursor >= 0) { /* the token nearest the same column one line away */
            int line, col;
            ui_reasoning_locate(m, cols, m->cursor, &line, &col);
            line += k == UI_KEY_UP ? -1 : 1;
            int t = -1;
            for (int c = col; c >= 0 && t < 0; c--)
                t = ui_reasoning_token_at(m, cols, line, c);
            if (t >= 0)
                m->cursor = t;
        } else {
            top += k == UI_KEY_UP ? -1 : 1;
            m->scroll[UI_REASONING] = top < 0 ? 0 : top;
            if (top >= lines - h)
                m->scroll[UI_REASONING] = -1;
            return 1;
        }
        break;
    case UI_KEY_PGUP:
    case UI_KEY_PGDN:
        top += (k == UI_KEY_PGUP ? -1 : 1) * (h > 1 ? h - 1 : 1);
        m->scroll[UI_REASONING] = top < 0 ? 0 : top >= lines - h ? -1 : top;
        return 1;
    case 'a':
        m->cursor = -1;
        m->attn_on = 0;
        return 1;
    case 'c':
        m->colour_by = (m->colour_by + 1) % 3;
        return 1;
    case 'v': /* back from a comparison to the generation */
        m->compare_on = !m->compare_on && m->view[EV_VIEW_COMPARE];
        return 1;
    default:
        return microscope_key(m, k);
    }
    follow_cursor(m);
    return 1;
}

static void click(ui_model *m, int y, int x)
{
    int cols = m->pane_w[UI_REASONING], h = m->pane_h[UI_REASONING];
    if (cols < 1 || h < 1)
        return;
    int lines = walk(m, cols, NULL, NULL);
    int t = ui_reasoning_token_at(m, cols, first_line(m, lines, h) + y, x);
    if (t >= 0)
        m->cursor = t;
}

const ui_pane ui_reasoning_pane = {"Reasoning", title, draw, key, click, explain};
