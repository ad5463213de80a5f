/* ui_answer.c — the Answer pane: the <answer> part of the current generation, and once the
 * generation ends, whether it is right or wrong when the prompt came from a task with a
 * verifier.  Text after </answer> shows dimmed.  Draws from the screen model only. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

static const char explain[] =
    "The final answer: the text the model wrote between <answer> and </answer>. When the "
    "question came from a task (addition, countdown, ...), the task's verifier checks it when "
    "the generation ends and the pane shows right or wrong; that check is the accuracy reward "
    "GRPO trains on. Anything the model writes after </answer> shows dimmed. Up/Down scroll a "
    "long answer.\n\n"
    "After a branch (keys 1-5 or b in the Reasoning pane) the pane also lists the reasoning "
    "tree: every branch with the token it forced and where, its answer, and right or wrong "
    "when the question came from a task. Up/Down select a branch, Enter shows it, u goes to "
    "the parent, [ and ] to the previous and next sibling.";

/* The text of the tokens of a part, concatenated (ids when tokens have no text). */
static char *part_text(const ui_model *m, int part)
{
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < m->ntok; i++) {
        const ui_token *t = &m->tok[i];
        if (t->part != part || t->reasoning)
            continue;
        char buf[32];
        const char *x = t->text;
        if (!x[0]) {
            snprintf(buf, sizeof buf, "%d ", (int)t->id);
            x = buf;
        }
        size_t l = strlen(x);
        if (n + l + 1 > cap) {
            while (n + l + 1 > cap)
                cap *= 2;
            char *p = realloc(s, cap);
            if (!p)
                break;
            s = p;
        }
        memcpy(s + n, x, l + 1);
        n += l;
    }
    return s;
}

/* Drops the <answer> and </answer> tags from s in place. */
static void strip_tags(char *s)
{
    static const char *const tags[] = {"<answer>", "</answer>", "<|eos|>"};
    for (size_t t = 0; t < sizeof tags / sizeof *tags; t++) {
        char *p;
        size_t l = strlen(tags[t]);
        while ((p = strstr(s, tags[t])))
            memmove(p, p + l, strlen(p + l) + 1);
    }
}

/* The reasoning tree in rows [y0, y0+h): one line per branch, the selected one highlighted
 * and the one shown marked. */
static void draw_tree(WINDOW *w, const ui_model *m, const ev *tr, int y0, int h, int cols)
{
    ui_put(w, y0, 0, cols, ui_attr(R_TITLE), "branches (Enter shows one):");
    int first = m->tree_sel >= h - 1 ? m->tree_sel - (h - 2) : 0;
    for (int r = first, y = y0 + 1; r < tr->rows && y < y0 + h; r++, y++) {
        const float *v = tr->vals + r * tr->cols;
        int id = (int)v[0], depth = (int)v[2], verdict = (int)v[3], at = (int)v[4];
        const char *ans = 2 * r < tr->nlabels && tr->labels[2 * r] ? tr->labels[2 * r] : "";
        const char *forced =
            2 * r + 1 < tr->nlabels && tr->labels[2 * r + 1] ? tr->labels[2 * r + 1] : "";
        char line[256], f[48] = "";
        if (at > 0)
            snprintf(f, sizeof f, " '%s'@%d", strcmp(forced, "\n") ? forced : "\\n", at);
        snprintf(line, sizeof line, "%s%*s#%d%s → %s", id == tr->ints[0] ? "▶ " : "  ",
                 2 * depth, "", id, f, *ans ? ans : "(no answer)");
        if (!ui_utf8)
            snprintf(line, sizeof line, "%s%*s#%d%s -> %s", id == tr->ints[0] ? "> " : "  ",
                     2 * depth, "", id, f, *ans ? ans : "(no answer)");
        attr_t a = r == m->tree_sel ? ui_attr(R_SELECTED) : ui_attr(R_TEXT);
        int x = ui_put(w, y, 0, cols, a, line);
        if (verdict >= 0 && x + 2 < cols)
            ui_put(w, y, x + 1, cols - x - 1, verdict ? ui_attr(R_RIGHT) : ui_attr(R_WRONG),
                   verdict ? (ui_utf8 ? "✓" : "right") : (ui_utf8 ? "✗" : "wrong"));
    }
}

static void draw(WINDOW *w, const ui_model *m, int focused)
{
    (void)focused;
    werase(w);
    int h = getmaxy(w), cols = getmaxx(w);
    if (h < 1 || cols < 1)
        return;
    if (m->explain[UI_ANSWER]) {
        ui_draw_explain(w, "Answer", explain, m->explain[UI_ANSWER] - 1);
        return;
    }
    char *ans = part_text(m, 2), *after = part_text(m, 3);
    if (ans)
        strip_tags(ans);
    if (after) /* the end-of-sequence token is the normal end, not text the model wrote */
        strip_tags(after);
    int y = 0, x = 0;
    if (m->gen_done && m->verdict >= 0) {
        const char *mark = m->verdict ? (ui_utf8 ? "✓ right " : "[right] ")
                                      : (ui_utf8 ? "✗ wrong " : "[wrong] ");
        x = ui_put(w, 0, 0, cols, (m->verdict ? ui_attr(R_RIGHT) : ui_attr(R_WRONG)) | A_BOLD,
                   mark);
    }
    if (ans && *ans) {
        /* the first line after the verdict mark, the rest wrapped below */
        int fit = ui_fit(ans, cols - x);
        const char *nl = memchr(ans, '\n', (size_t)fit);
        if (nl)
            fit = (int)(nl - ans);
        char first[512];
        snprintf(first, sizeof first, "%.*s", fit < 511 ? fit : 511, ans);
        ui_put(w, 0, x, cols - x, ui_attr(R_ANSWER), first);
        const char *rest = ans + fit + (nl ? 1 : 0);
        int skip = m->scroll[UI_ANSWER] > 0 ? m->scroll[UI_ANSWER] : 0;
        if (*rest && h > 1)
            y = 1 + ui_draw_text(w, 1, h - 1, skip, ui_attr(R_ANSWER), rest);
        else
            y = 1;
    } else if (m->gen_done || m->gen_active) {
        ui_put(w, 0, x, cols - x, ui_attr(R_DIM),
               m->gen_active ? "(thinking …)" : "(no <answer> in this completion)");
        y = 1;
    } else if (!m->prompt) {
        ui_draw_text(w, 0, h, 0, ui_attr(R_DIM), "The final answer shows here.");
    }
    const ev *tr = m->view[EV_VIEW_TREE];
    int tree_rows = tr ? (tr->rows + 1 < h - 1 ? tr->rows + 1 : h - 1) : 0;
    if (after && after[strspn(after, " \n")] && y < h - tree_rows)
        ui_draw_text(w, y, h - y - tree_rows, 0, ui_attr(R_DIM), after);
    free(ans);
    free(after);
    if (tr && tree_rows > 0)
        draw_tree(w, m, tr, h - tree_rows, tree_rows, cols);
}

static void title(const ui_model *m, char *buf, size_t n)
{
    if (m->gen_done && m->verdict == 1)
        snprintf(buf, n, "Answer · right");
    else if (m->gen_done && m->verdict == 0)
        snprintf(buf, n, "Answer · wrong");
    else
        snprintf(buf, n, "Answer");
}

/* The tree's row of node id, or -1. */
static int tree_row(const ev *tr, int id)
{
    for (int r = 0; r < tr->rows; r++)
        if ((int)tr->vals[r * tr->cols] == id)
            return r;
    return -1;
}

/* Walking the tree: Up/Down, Enter, u (parent), [ and ] (siblings).  1 when used. */
static int tree_key(ui_model *m, int k)
{
    const ev *tr = m->view[EV_VIEW_TREE];
    if (!tr || tr->rows < 1)
        return 0;
    int sel = m->tree_sel < tr->rows ? m->tree_sel : 0;
    const float *v = tr->vals + sel * tr->cols;
    switch (k) {
    case UI_KEY_UP:
        m->tree_sel = sel > 0 ? sel - 1 : 0;
        return 1;
    case UI_KEY_DOWN:
        m->tree_sel = sel + 1 < tr->rows ? sel + 1 : sel;
        return 1;
    case UI_KEY_ENTER:
    case '\n':
        m->request = UI_REQ_TREE_SHOW;
        m->req_arg[0] = (int)v[0];
        return 1;
    case 'u': {
        int r = tree_row(tr, (int)v[1]);
        if (r >= 0)
            m->tree_sel = r;
        return 1;
    }
    case '[':
    case ']': { /* the previous / next row with the same parent */
        int d = k == '[' ? -1 : 1;
        for (int r = sel + d; r >= 0 && r < tr->rows; r += d)
            if ((int)tr->vals[r * tr->cols + 1] == (int)v[1]) {
                m->tree_sel = r;
                break;
            }
        return 1;
    }
    }
    return 0;
}

static int key(ui_model *m, int k)
{
    if (tree_key(m, k))
        return 1;
    int *s = &m->scroll[UI_ANSWER];
    if (k == UI_KEY_UP || k == UI_KEY_PGUP)
        *s = *s > 0 ? *s - 1 : 0;
    else if (k == UI_KEY_DOWN || k == UI_KEY_PGDN)
        *s = *s < 0 ? 1 : *s + 1;
    else if (k == UI_KEY_HOME)
        *s = 0;
    else
        return 0;
    return 1;
}

static void click(ui_model *m, int y, int x)
{
    (void)m;
    (void)y;
    (void)x;
}

const ui_pane ui_answer_pane = {"Answer", title, draw, key, click, explain};
