/* ui_grpo.c — the GRPO pane: the last group of completions of a GRPO step, each as a bar
 * stacked from its reward components with its total and its advantage (Up/Down select one,
 * Enter reads it in full); below, the history of the run — mean reward, accuracy, KL and mean
 * length per step — as braille plots.  Draws from the screen model only. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ui.h"

static const char explain[] =
    "GRPO samples a group of completions for one prompt and scores each with rule-based "
    "rewards (accuracy from the task's verifier, format for the think/answer tags, ...). A "
    "bar is one completion, its coloured segments the reward components, then its total and "
    "its advantage A = (reward - group mean) / group std: completions above the mean (A > 0) "
    "are made more likely, those below less. A group where every completion scores the same "
    "teaches nothing. Up/Down select a completion, Enter reads it. The plots below follow the "
    "run step by step: mean reward, accuracy, KL to the reference model (how far training "
    "has moved the policy) and mean completion length.";

static const char *const series_name[H_NSERIES] = {"reward", "accuracy", "KL",
                                                    "length", "flips",    "lp diff"};

static void draw_reader(WINDOW *w, const ui_model *m, int h, int cols)
{
    const ev_completion *c = &m->group->completions[m->group_sel];
    char head[160];
    snprintf(head, sizeof head, "#%d  total %.2f  A=%+.2f%s  (Esc/Enter: back)", m->group_sel + 1,
             c->total, c->advantage,
             c->correct == 1 ? "  right" : c->correct == 0 ? "  wrong" : "");
    ui_put(w, 0, 0, cols, ui_attr(R_TITLE), head);
    if (h > 1)
        ui_draw_text(w, 1, h - 1, m->reader_scroll, ui_attr(R_TEXT), c->text ? c->text : "");
}

/* The group's bars from row y; returns the next free row. */
static int draw_group(WINDOW *w, const ui_model *m, int y, int h, int cols)
{
    const ev *g = m->group;
    if (g->text && *g->text && y < h) {
        char prompt[512];
        snprintf(prompt, sizeof prompt, "%s", g->text);
        ui_strip_chat(prompt);
        ui_put(w, y, 0, cols, ui_attr(R_DIM), prompt);
        y++;
    }
    double lo = 0, hi = 0;
    for (int i = 0; i < g->n; i++) {
        double t = g->completions[i].total;
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    if (hi - lo < 1e-9)
        hi = lo + 1;
    int label = 4, tail = 16; /* "#12 " ... " 1.00 A=+0.93 ✓" */
    int bw = cols - label - tail;
    if (bw < 4) {
        bw = cols - label - 6;
        tail = 6;
    }
    /* rows for the bars: keep the selected one in view */
    int room = h - y - 1;
    if (room < 1)
        room = 1;
    int first = 0;
    if (m->group_sel >= room)
        first = m->group_sel - room + 1;
    for (int i = first; i < g->n && y < h; i++, y++) {
        const ev_completion *c = &g->completions[i];
        char num[12];
        snprintf(num, sizeof num, "#%d", i + 1);
        ui_put(w, y, 0, label, i == m->group_sel ? ui_attr(R_SELECTED) : ui_attr(R_DIM), num);
        int x = label;
        if (bw > 0) {
            double scale = bw / (hi > -lo ? hi : -lo);
            double pos = 0, neg = 0;
            for (int j = 0; j < c->nrewards && j < 8; j++) {
                if (c->rewards[j] > 0)
                    pos += c->rewards[j];
                else
                    neg -= c->rewards[j];
            }
            if (c->nrewards > 0 && pos > 0 && c->total >= 0) { /* stacked by component */
                double acc = 0;
                for (int j = 0; j < c->nrewards && j < 8; j++) {
                    if (c->rewards[j] <= 0)
                        continue;
                    double share = c->rewards[j] / pos * (c->total > 0 ? c->total : pos);
                    int n = ui_cur_theme.nseries > 0 ? ui_cur_theme.nseries : 1;
                    acc += share * scale;
                    int used = x - label;
                    ui_bar(w, y, x, acc - used, ui_attr(R_SERIES0 + j % n));
                    x = label + (int)acc;
                }
            } else if (c->total != 0) {
                ui_bar(w, y, x, fabs(c->total) * scale,
                       c->total < 0 ? ui_attr(R_WRONG) : ui_attr(R_BAR));
            }
        }
        char info[64];
        const char *mark = c->correct == 1 ? (ui_utf8 ? " ✓" : " +")
                           : c->correct == 0 ? (ui_utf8 ? " ✗" : " x") : "";
        if (tail >= 16)
            snprintf(info, sizeof info, "%5.2f A=%+.2f%s", c->total, c->advantage, mark);
        else
            snprintf(info, sizeof info, "%+.1f", c->advantage);
        int ix = cols - tail + 1;
        ui_put(w, y, ix, tail - 1,
               c->advantage > 0 ? ui_attr(R_RIGHT) : c->advantage < 0 ? ui_attr(R_WRONG)
                                                                       : ui_attr(R_TEXT),
               info);
    }
    /* the legend: reward names in their colours */
    if (y < h && g->nreward_names > 0) {
        int x = 0, n = ui_cur_theme.nseries > 0 ? ui_cur_theme.nseries : 1;
        for (int j = 0; j < g->nreward_names && x < cols; j++) {
            x += ui_put(w, y, x, cols - x, ui_attr(R_SERIES0 + j % n), ui_utf8 ? "■ " : "# ");
            x += ui_put(w, y, x, cols - x, ui_attr(R_DIM), g->reward_names[j]);
            x += ui_put(w, y, x, cols - x, ui_attr(R_DIM), "  ");
        }
        y++;
    }
    return y;
}

/* The history plots in rows [y, h): reward, accuracy, KL, length, and the mismatch meter
 * (router flips, log-prob mismatch) when the run reports it. */
static void draw_history(WINDOW *w, const ui_model *m, int y, int h, int cols)
{
    int rows = h - y;
    if (rows < 2)
        return;
    int shown[H_NSERIES], ns = 0; /* the mismatch meter's plots once a run reports them */
    for (int s = 0; s < H_NSERIES; s++)
        if (s < H_ALWAYS || m->hist[s].n > 0)
            shown[ns++] = s;
    int per_row = cols >= 48 ? 4 : 2;
    int bands = (ns + per_row - 1) / per_row;
    int bh = rows / bands;
    if (bh < 2) { /* room for one band only: the first plots */
        bands = 1;
        bh = rows;
    }
    int pw = (cols - (per_row - 1)) / per_row;
    if (pw < 4)
        return;
    for (int i = 0; i < ns && i / per_row < bands; i++) {
        int s = shown[i];
        int by = y + (i / per_row) * bh, bx = (i % per_row) * (pw + 1);
        const ui_series *hs = &m->hist[s];
        char lab[64];
        if (hs->n > 0)
            snprintf(lab, sizeof lab, "%s %.3g", series_name[s], hs->v[hs->n - 1]);
        else
            snprintf(lab, sizeof lab, "%s -", series_name[s]);
        ui_put(w, by, bx, pw, ui_attr(R_DIM), lab);
        double lo = INFINITY, hi = -INFINITY;
        for (int k = 0; k < hs->n; k++) {
            if (isnan(hs->v[k]))
                continue;
            lo = hs->v[k] < lo ? hs->v[k] : lo;
            hi = hs->v[k] > hi ? hs->v[k] : hi;
        }
        if (s == H_ACCURACY && hs->n > 0) { /* accuracy reads best on a fixed scale */
            lo = 0;
            hi = hi > 1 ? hi : 1;
        }
        if (hs->n > 0)
            ui_plot(w, by + 1, bx, bh - 1, pw, hs->v, hs->n, lo, hi, ui_attr(R_PLOT));
    }
}

static void draw(WINDOW *w, const ui_model *m, int focused)
{
    (void)focused;
    werase(w);
    int h = getmaxy(w), cols = getmaxx(w);
    if (h < 1 || cols < 1)
        return;
    if (m->explain[UI_GRPO]) {
        ui_draw_explain(w, "GRPO", explain, m->explain[UI_GRPO] - 1);
        return;
    }
    if (m->group && m->reader && m->group_sel < m->group->n) {
        draw_reader(w, m, h, cols);
        return;
    }
    if (!m->group && !m->have_step) {
        ui_draw_text(w, 0, h, 0, ui_attr(R_DIM),
                     "GRPO groups and training curves show here: run "
                     "r1.grpo{model=m, task=\"add\", steps=3} (see the welcome notebook).");
        return;
    }
    int y = 0;
    if (m->have_step) {
        char line[256];
        size_t n = (size_t)snprintf(line, sizeof line, "%s step %d", m->stage, m->step);
        if (m->total_steps > 0)
            n += (size_t)snprintf(line + n, sizeof line - n, "/%d", m->total_steps);
        /* the statistics people watch first, then the rest in the order they came */
        static const char *const first[] = {"reward", "accuracy", "kl", "len_mean", "length",
                                            "entropy", "clip_frac", "grad_norm", NULL};
        int used[48] = {0};
        for (int f = 0; first[f]; f++)
            for (int i = 0; i < m->nstats; i++)
                if (!used[i] && !strcmp(m->stats[i].name, first[f]) && n < sizeof line - 24) {
                    used[i] = 1;
                    n += (size_t)snprintf(line + n, sizeof line - n, "  %s %.3g",
                                          m->stats[i].name, m->stats[i].value);
                }
        for (int i = 0; i < m->nstats && n < sizeof line - 24; i++)
            if (!used[i])
                n += (size_t)snprintf(line + n, sizeof line - n, "  %s %.3g", m->stats[i].name,
                                      m->stats[i].value);
        ui_put(w, y++, 0, cols, ui_attr(R_TEXT), line);
    }
    /* the group takes what it needs, the plots the rest (at least 3 rows when there is a
     * history and the pane is tall enough) */
    int hist = m->hist[H_REWARD].n + m->hist[H_ACCURACY].n + m->hist[H_KL].n +
               m->hist[H_LENGTH].n;
    int need = m->group ? m->group->n + 2 : 0;
    int plot_rows = hist ? (h - y - need >= 3 ? h - y - need : (h - y >= 6 ? 3 : 0)) : 0;
    if (m->group)
        y = draw_group(w, m, y, h - plot_rows, cols);
    if (plot_rows)
        draw_history(w, m, h - plot_rows, h, cols);
}

static void title(const ui_model *m, char *buf, size_t n)
{
    if (m->group)
        snprintf(buf, n, "GRPO · group of %d%s", m->group->n, m->reader ? " · reading" : "");
    else if (m->have_step)
        snprintf(buf, n, "GRPO · %s", m->stage);
    else
        snprintf(buf, n, "GRPO group rewards");
}

static int key(ui_model *m, int k)
{
    int n = m->group ? m->group->n : 0;
    if (m->reader) {
        if (k == UI_KEY_ENTER || k == UI_KEY_ESC || k == 'q')
            m->reader = 0;
        else if (k == UI_KEY_UP || k == UI_KEY_PGUP)
            m->reader_scroll = m->reader_scroll > 0 ? m->reader_scroll - 1 : 0;
        else if (k == UI_KEY_DOWN || k == UI_KEY_PGDN)
            m->reader_scroll++;
        else
            return 0;
        return 1;
    }
    switch (k) {
    case UI_KEY_UP:
        if (m->group_sel > 0)
            m->group_sel--;
        return 1;
    case UI_KEY_DOWN:
        if (m->group_sel < n - 1)
            m->group_sel++;
        return 1;
    case UI_KEY_HOME:
        m->group_sel = 0;
        return 1;
    case UI_KEY_END:
        m->group_sel = n > 0 ? n - 1 : 0;
        return 1;
    case UI_KEY_ENTER:
        if (n > 0) {
            m->reader = 1;
            m->reader_scroll = 0;
        }
        return 1;
    default:
        return 0;
    }
}

static void click(ui_model *m, int y, int x)
{
    (void)x;
    if (!m->group || m->reader)
        return;
    int row = y - (m->have_step ? 1 : 0) - (m->group->text && *m->group->text ? 1 : 0);
    if (row >= 0 && row < m->group->n)
        m->group_sel = row;
}

const ui_pane ui_grpo_pane = {"GRPO", title, draw, key, click, explain};
