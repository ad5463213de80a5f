/* ui_routing.c — the Routing pane: a heatmap of MoE layers (rows) by routed experts (columns).
 * Three views: the share of the current generation's tokens each expert received; the experts
 * and weights of the token under the Reasoning pane's cursor; and during training, each
 * expert's load with the balancing bias.  Many experts on a narrow pane are grouped, several
 * to a column.  Draws from the screen model only. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ui.h"

static const char explain[] =
    "Which experts the router picked. Each row is one MoE layer (L1 is the first layer with "
    "routed experts; the dense layers before it have none) and each column one routed "
    "expert. For a generation a cell shows the share of its tokens sent to that expert: "
    "taller and hotter means busier, and an even row means the work is spread well. With a "
    "token selected in the Reasoning pane the row shows that token's top-K experts, the "
    "height being the gate weight. During training ('t' switches) the rows show each "
    "expert's load in the step and, below, the balancing bias: DeepSeek-V3 adds this bias to "
    "the router's scores for choosing only, raising it for underloaded experts (+) and "
    "lowering it for overloaded ones (-) after every step, so the load evens out without an "
    "auxiliary loss.\n\n"
    "With a token under the cursor the top lines show what the token inspector kept: the "
    "token's probability, the entropy of the distribution it was drawn from, the MTP module's "
    "guess for the next token, and the alternatives with their probabilities (keys 1-5 in the "
    "Reasoning pane branch with them). The microscope's tables show here too, 't' cycling "
    "through them: the logit lens ('l': for each layer, the three tokens its residual stream "
    "would predict and the probability of the token actually written), activation patching "
    "(:patch CLEAN | CORRUPT: layers down, prompt positions across; the heat is how much of "
    "the clean answer's log-probability returns when that layer's residual at that position "
    "comes from the clean prompt), and a comparison (:compare DIR: per layer, the share of "
    "tokens whose experts changed between the two checkpoints). During GRPO the training "
    "view also shows each layer's router flips: the share of completion tokens whose experts "
    "in the training forward differ from the ones the sampler chose (a low-precision "
    "rollout_dtype causes them; routing_replay removes them). ui.experts{tasks = ...} shows "
    "expert analytics: per layer the load, its MaxVio (max load / mean load - 1) and a heatmap "
    "of where one class of token goes (digits, operators, English or Spanish words, tags, "
    "whitespace); 'n' steps through the classes.";

/* Experts shown: the highest expert id seen + 1. */
static int experts_seen(const ui_model *m)
{
    int e = 0;
    for (int l = 0; l < m->n_moe; l++)
        for (int x = 0; x < m->ncount_e; x++)
            if (m->counts[(size_t)l * m->ncount_e + x] && x + 1 > e)
                e = x + 1;
    for (size_t i = 0; i < m->nroute && m->route_e; i++)
        if (m->route_e[i] + 1 > e)
            e = m->route_e[i] + 1;
    return e;
}

/* Draws one heat row of E values (vmax scales) from column x0 with `per` experts a column. */
static void heat_row(WINDOW *w, int y, int x0, int cols, const double *v, int E, int per,
                     double vmax)
{
    for (int c = 0; c * per < E && x0 + c < x0 + cols; c++) {
        double s = 0;
        int any = 0;
        for (int k = 0; k < per && c * per + k < E; k++) {
            double x = v[c * per + k];
            if (x >= 0) {
                s = x > s ? x : s;
                any = 1;
            }
        }
        double lvl = vmax > 0 ? s / vmax : 0;
        if (!any || lvl <= 0)
            ui_put(w, y, x0 + c, 1, ui_attr(R_DIM), ui_utf8 ? "·" : ".");
        else
            ui_put(w, y, x0 + c, 1, ui_heat_attr(lvl), ui_level_glyph(lvl));
    }
}

/* The column ruler: every 4th expert number, when it fits. */
static void ruler(WINDOW *w, int y, int x0, int cols, int E, int per)
{
    for (int c = 0; c * per < E && c < cols; c += 4) {
        char n[12];
        snprintf(n, sizeof n, "%d", c * per);
        if (c + (int)strlen(n) <= cols)
            ui_put(w, y, x0 + c, (int)strlen(n), ui_attr(R_DIM), n);
    }
}

static void draw_generation_rows(WINDOW *w, const ui_model *m, int y0, int h, int cols, int E,
                                 int label);

/* A token's text as the tables show it: newlines and tabs visible. */
static void shown_text(char *buf, size_t n, const char *s)
{
    if (!strcmp(s, "\n"))
        snprintf(buf, n, "\\n");
    else if (!strcmp(s, " "))
        snprintf(buf, n, "␣");
    else
        snprintf(buf, n, "%s", s);
    if (!ui_utf8 && !strcmp(buf, "␣"))
        snprintf(buf, n, "' '");
}

/* The cursor token's inspector lines: probability, entropy, MTP's guess, alternatives.
 * Returns the rows used. */
static int draw_inspector(WINDOW *w, const ui_model *m, int cols)
{
    const ui_token *t = &m->tok[m->cursor];
    char line[512], tx[32];
    shown_text(tx, sizeof tx, t->text);
    int n = snprintf(line, sizeof line, "'%s' p %.3f", tx, exp(t->logprob));
    if (!isnan(t->entropy))
        n += snprintf(line + n, sizeof line - n, " · entropy %.2f nats", t->entropy);
    if (t->mtp_id >= 0) {
        shown_text(tx, sizeof tx, t->mtp_text);
        snprintf(line + n, sizeof line - n, " · MTP next '%s' %.2f", tx, t->mtp_p);
    }
    ui_put(w, 0, 0, cols, ui_attr(R_TEXT), line);
    int x = 0;
    if (!t->n_top) {
        ui_put(w, 1, 0, cols, ui_attr(R_DIM), "(no alternatives recorded: top_n = 0)");
        return 2;
    }
    for (int j = 0; j < t->n_top && x < cols; j++) {
        shown_text(tx, sizeof tx, t->top_text[j]);
        char c[48];
        snprintf(c, sizeof c, "%d '%s' %.2f  ", j + 1, tx, t->top_p[j]);
        x += ui_put(w, 1, x, cols - x, t->top_id[j] == t->id ? ui_attr(R_ANSWER)
                                                            : ui_attr(R_DIM), c);
    }
    return 2;
}

/* The logit lens table: per site, the three likeliest tokens and p of the token written. */
static void draw_lens(WINDOW *w, const ui_model *m, int h, int cols)
{
    const ev *v = m->view[EV_VIEW_LENS];
    char line[256];
    int tok = v->ints[0];
    char tx[32] = "?";
    if (tok >= 0 && tok < m->ntok)
        shown_text(tx, sizeof tx, m->tok[tok].text);
    snprintf(line, sizeof line, "token %d '%s' · top 3 per layer · last: p('%s')", tok + 1, tx,
             tx);
    ui_put(w, 0, 0, cols, ui_attr(R_TITLE), line);
    int skip = m->scroll[UI_ROUTING] > 0 ? m->scroll[UI_ROUTING] : 0;
    for (int r = skip, y = 1; r < v->rows && y < h; r++, y++) {
        const char *name = r < v->nlabels && v->labels[r] ? v->labels[r] : "";
        int x = ui_put(w, y, 0, 9, ui_attr(R_DIM), name);
        x = 9 > x ? 9 : x;
        for (int k = 0; k < 3 && x < cols; k++) { /* text in 4 columns, then p */
            int li = v->rows + r * 3 + k;
            shown_text(tx, sizeof tx, li < v->nlabels && v->labels[li] ? v->labels[li] : "");
            char c[16];
            float p = v->vals[r * 4 + k];
            attr_t a = k == 0 ? ui_heat_attr(p) : ui_attr(R_TEXT);
            ui_put(w, y, x, cols - x < 4 ? cols - x : 4, a, tx);
            snprintf(c, sizeof c, "%.2f", p);
            if (x + 5 < cols)
                ui_put(w, y, x + 5, cols - x - 5, a, c);
            x += 11;
        }
        float pn = v->vals[r * 4 + 3];
        if (!isnan(pn) && x + 4 < cols) {
            snprintf(line, sizeof line, "%.3f", pn);
            ui_put(w, y, x + 1, cols - x - 1, ui_heat_attr(pn), line);
        }
    }
}

/* The patching map: sites down, prompt positions across, heat = share restored. */
static void draw_patch(WINDOW *w, const ui_model *m, int h, int cols)
{
    const ev *v = m->view[EV_VIEW_PATCH];
    int S = v->rows, P = v->cols, label = 8;
    char line[256];
    snprintf(line, sizeof line, "lp clean %.2f, corrupt %.2f · heat: share back",
             v->nums[0], v->nums[1]);
    ui_put(w, 0, 0, cols, ui_attr(R_TITLE), line);
    /* the prompt's characters across (special tokens as '·'), the changed ones marked */
    int x0 = label, avail = cols - label, first = P > avail ? P - avail : 0;
    for (int p = first, x = x0; p < P && x < cols && h > 1; p++, x++) {
        const char *a = S + p < v->nlabels ? v->labels[S + p] : NULL;
        const char *b = S + P + p < v->nlabels ? v->labels[S + P + p] : NULL;
        int changed = a && b && strcmp(a, b);
        char c[8];
        snprintf(c, sizeof c, "%s", a && strlen(a) == 1 && a[0] > ' ' ? a : (ui_utf8 ? "·" : "."));
        ui_put(w, 1, x, 1, changed ? ui_attr(R_SELECTED) : ui_attr(R_DIM), c);
    }
    for (int i = 0, y = 2; i < S && y < h; i++, y++) {
        ui_put(w, y, 0, label - 1, ui_attr(R_DIM), i < v->nlabels ? v->labels[i] : "");
        for (int p = first, x = x0; p < P && x < cols; p++, x++) {
            float s = v->vals[i * P + p];
            double lvl = isnan(s) ? 0 : s < 0 ? 0 : s > 1 ? 1 : s;
            if (lvl < 0.05)
                ui_put(w, y, x, 1, ui_attr(R_DIM), ui_utf8 ? "·" : ".");
            else
                ui_put(w, y, x, 1, ui_heat_attr(lvl), ui_level_glyph(lvl));
        }
    }
}

/* Expert analytics: one token class's share of each MoE layer's routed slots per expert. */
static void draw_experts(WINDOW *w, const ui_model *m, int h, int cols)
{
    const ev *v = m->view[EV_VIEW_EXPERTS];
    int NC = v->ints[0], nm = v->ints[1], E = v->cols, label = 12;
    int cl = m->experts_class % NC;
    const char *cname = v->labels[cl] ? v->labels[cl] : "";
    const char *ntok = v->labels[NC + cl] ? v->labels[NC + cl] : "?";
    char line[160];
    snprintf(line, sizeof line, "%s: %s tokens · n: next class", cname, ntok);
    ui_put(w, 0, 0, cols, ui_attr(R_TITLE), line);
    int avail = cols - label;
    if (avail < 1)
        return;
    int per = (E + avail - 1) / avail;
    double vals[4096];
    for (int j = 0, y = 1; j < nm && y < h; j++, y++) {
        const char *lab = v->labels[2 * NC + 2 * j];
        const char *mv = v->labels[2 * NC + 2 * j + 1];
        snprintf(line, sizeof line, "%s %s", lab ? lab : "", cl == 0 && mv ? mv : "");
        ui_put(w, y, 0, label - 1, ui_attr(R_DIM), line);
        double vmax = 0;
        for (int e = 0; e < E && e < 4096; e++) {
            vals[e] = v->vals[((size_t)cl * nm + j) * E + e];
            vmax = vals[e] > vmax ? vals[e] : vmax;
        }
        heat_row(w, y, label, avail, vals, E < 4096 ? E : 4096, per, vmax);
    }
}

/* The comparison's routing: per layer, the share of tokens whose expert set changed. */
static void draw_compare_routing(WINDOW *w, const ui_model *m, int h, int cols)
{
    const ev *v = m->view[EV_VIEW_COMPARE];
    char line[256];
    if (v->ints[0] < 0)
        snprintf(line, sizeof line, "same text; experts changed per layer (on A's text):");
    else
        snprintf(line, sizeof line, "texts differ from token %d; experts changed per layer:",
                 v->ints[0] + 1);
    ui_put(w, 0, 0, cols, ui_attr(R_TITLE), line);
    int y = 1;
    for (int l = 0; l < v->cols && y < h; l++) {
        float s = v->vals[l];
        char lab[16];
        snprintf(lab, sizeof lab, "L%d", l);
        ui_put(w, y, 0, 4, ui_attr(R_DIM), lab);
        if (isnan(s)) {
            ui_put(w, y, 4, cols - 4, ui_attr(R_DIM), "dense");
        } else {
            int bw = cols - 12 > 0 ? cols - 12 : 0;
            int used = ui_bar(w, y, 4, s * bw, ui_attr(R_BAR));
            snprintf(lab, sizeof lab, " %.0f%%", 100.0 * s);
            ui_put(w, y, 4 + used, cols - 4 - used, ui_attr(R_TEXT), lab);
        }
        y++;
    }
    if (y < h)
        snprintf(line, sizeof line, "A: %s  B: %s", v->nlabels > 4 ? v->labels[4] : "",
                 v->nlabels > 5 ? v->labels[5] : "");
    if (y < h)
        ui_put(w, y, 0, cols, ui_attr(R_ANSWER), line);
}

static void draw_generation(WINDOW *w, const ui_model *m, int h, int cols)
{
    if (m->n_moe == 0 || m->routed_tokens == 0) {
        ui_draw_text(w, 0, h, 0, ui_attr(R_DIM),
                     m->prompt ? "No routed experts in this generation (a dense model?)."
                               : "Routing fills in as a generation streams: layers down, "
                                 "experts across.");
        return;
    }
    int E = experts_seen(m), label = 4;
    int sel = m->cursor >= 0 && m->cursor < m->ntok;
    int used = sel && h >= 4 ? draw_inspector(w, m, cols) : 0; /* the token inspector's
                                                                  * lines above the heatmap */
    draw_generation_rows(w, m, used, h - used, cols, E, label);
}

/* The heatmap in rows [y0, y0 + h) of w. */
static void draw_generation_rows(WINDOW *w, const ui_model *m, int y0, int h, int cols, int E,
                                 int label)
{
    int sel = m->cursor >= 0 && m->cursor < m->ntok;
    int avail = cols - label;
    if (avail < 1 || E < 1)
        return;
    int per = (E + avail - 1) / avail;
    int ncol = (E + per - 1) / per;
    int y = y0, top = y0;
    if (h >= m->n_moe + 2 && per == 1) {
        ruler(w, y0, label, avail, E, per);
        top = y = y0 + 1;
    }
    const int32_t *te = sel ? ui_model_token_experts(m, m->cursor) : NULL;
    const float *tw = sel ? ui_model_token_weights(m, m->cursor) : NULL;
    double vmax = 0;
    if (!sel)
        for (int i = 0; i < m->n_moe * m->ncount_e; i++)
            vmax = m->counts[i] > vmax ? m->counts[i] : vmax;
    int rows = h - (top - y0); /* the layers first; the legend when a row is left */
    int skip = m->scroll[UI_ROUTING] > 0 ? m->scroll[UI_ROUTING] : 0;
    if (skip > m->n_moe - rows)
        skip = m->n_moe - rows > 0 ? m->n_moe - rows : 0;
    double v[4096];
    if (E > 4096)
        E = 4096;
    for (int l = skip; l < m->n_moe && y < top + rows; l++, y++) {
        char lab[16];
        snprintf(lab, sizeof lab, "L%d", m->moe_layers[l]);
        ui_put(w, y, 0, label - 1, ui_attr(R_DIM), lab);
        double wmax = 0;
        for (int x = 0; x < E; x++)
            v[x] = sel ? -1 : (double)m->counts[(size_t)l * m->ncount_e + x];
        if (sel && te) {
            for (int k = 0; k < m->K; k++) {
                int x = te[l * m->K + k];
                if (x >= 0 && x < E) {
                    v[x] = tw[l * m->K + k];
                    wmax = v[x] > wmax ? v[x] : wmax;
                }
            }
        }
        heat_row(w, y, label, avail, v, E, per, sel ? wmax : vmax);
        /* the selected token's experts and weights, when there is room on the right */
        int right = label + ncol + 2;
        if (sel && te && cols - right >= 8) {
            char list[256] = "";
            size_t n = 0;
            for (int k = 0; k < m->K && n < sizeof list - 16; k++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%se%d %.2f", k ? " " : "",
                                      te[l * m->K + k], tw[l * m->K + k]);
            ui_put(w, y, right, cols - right, ui_attr(R_TEXT), list);
        }
    }
    char legend[160];
    if (sel)
        snprintf(legend, sizeof legend, "token %d: top-%d experts, height = gate weight",
                 m->cursor + 1, m->K);
    else
        snprintf(legend, sizeof legend, "share of %ld token%s; tallest = %.0f%%%s",
                 m->routed_tokens, m->routed_tokens == 1 ? "" : "s",
                 100.0 * vmax / (double)m->routed_tokens, per > 1 ? " (columns grouped)" : "");
    if (y < y0 + h)
        ui_put(w, y < y0 + h - 1 ? y : y0 + h - 1, 0, cols, ui_attr(R_DIM), legend);
}

static void draw_training(WINDOW *w, const ui_model *m, int h, int cols)
{
    int L = m->load_layers, E = m->load_experts, label = 4;
    int avail = cols - label;
    if (avail < 1 || E < 1)
        return;
    int per = (E + avail - 1) / avail;
    int two = m->bias && h >= 2 * L + 1; /* a bias row under each load row */
    double v[4096], vmax = 0;
    if (E > 4096)
        E = 4096;
    for (int i = 0; i < L * m->load_experts; i++)
        vmax = m->load[i] > vmax ? m->load[i] : vmax;
    int y = 0;
    int skip = m->scroll[UI_ROUTING] > 0 ? m->scroll[UI_ROUTING] : 0;
    for (int l = skip; l < L && y < h - 1; l++) {
        char lab[16];
        snprintf(lab, sizeof lab, "L%d", l + 1);
        ui_put(w, y, 0, label - 1, ui_attr(R_DIM), lab);
        for (int x = 0; x < E; x++)
            v[x] = m->load[(size_t)l * m->load_experts + x];
        heat_row(w, y, label, avail, v, E, per, vmax);
        char fk[32];
        snprintf(fk, sizeof fk, "route_flip_%d", l + 1);
        double fl = ui_model_stat(m, fk); /* GRPO's mismatch meter, when the step has it */
        int right = label + (E + per - 1) / per + 1;
        if (!isnan(fl) && cols - right >= 10) {
            char t[32];
            snprintf(t, sizeof t, "flips %.1f%%", 100 * fl);
            ui_put(w, y, right, cols - right, fl > 0 ? ui_attr(R_WRONG) : ui_attr(R_DIM), t);
        }
        y++;
        if (two && y < h - 1) {
            ui_put(w, y, 0, label - 1, ui_attr(R_DIM), " b");
            for (int c = 0; c * per < E && c < avail; c++) {
                double b = m->bias[(size_t)l * m->load_experts + c * per];
                const char *g = b > 0 ? "+" : b < 0 ? "-" : (ui_utf8 ? "·" : ".");
                ui_put(w, y, label + c, 1,
                       b > 0 ? ui_attr(R_RIGHT) : b < 0 ? ui_attr(R_WRONG) : ui_attr(R_DIM), g);
            }
            y++;
        }
    }
    char legend[160];
    snprintf(legend, sizeof legend, "%s step %d: expert load%s; busiest %.0f%%", m->stage,
             m->step, two ? ", bias +/-" : "", 100.0 * vmax);
    ui_put(w, y < h ? y : h - 1, 0, cols, ui_attr(R_DIM), legend);
}

static void draw(WINDOW *w, const ui_model *m, int focused)
{
    (void)focused;
    werase(w);
    int h = getmaxy(w), cols = getmaxx(w);
    if (h < 1 || cols < 1)
        return;
    if (m->explain[UI_ROUTING]) {
        ui_draw_explain(w, "Routing", explain, m->explain[UI_ROUTING] - 1);
        return;
    }
    if (m->routing_view == UI_RV_TRAIN && m->load)
        draw_training(w, m, h, cols);
    else if (m->routing_view == UI_RV_LENS && m->view[EV_VIEW_LENS])
        draw_lens(w, m, h, cols);
    else if (m->routing_view == UI_RV_PATCH && m->view[EV_VIEW_PATCH])
        draw_patch(w, m, h, cols);
    else if (m->routing_view == UI_RV_COMPARE && m->view[EV_VIEW_COMPARE])
        draw_compare_routing(w, m, h, cols);
    else if (m->routing_view == UI_RV_EXPERTS && m->view[EV_VIEW_EXPERTS])
        draw_experts(w, m, h, cols);
    else
        draw_generation(w, m, h, cols);
}

/* Whether view v of the Routing pane has something to show. */
static int has_view(const ui_model *m, int v)
{
    switch (v) {
    case UI_RV_GEN: return 1;
    case UI_RV_TRAIN: return m->load != NULL;
    case UI_RV_LENS: return m->view[EV_VIEW_LENS] != NULL;
    case UI_RV_PATCH: return m->view[EV_VIEW_PATCH] != NULL;
    case UI_RV_COMPARE: return m->view[EV_VIEW_COMPARE] != NULL;
    case UI_RV_EXPERTS: return m->view[EV_VIEW_EXPERTS] != NULL;
    }
    return 0;
}

static void title(const ui_model *m, char *buf, size_t n)
{
    if (m->routing_view == UI_RV_TRAIN && m->load)
        snprintf(buf, n, "Routing · expert load (training)");
    else if (m->routing_view == UI_RV_LENS && m->view[EV_VIEW_LENS])
        snprintf(buf, n, "Logit lens · t: next view");
    else if (m->routing_view == UI_RV_PATCH && m->view[EV_VIEW_PATCH])
        snprintf(buf, n, "Activation patching · t: next view");
    else if (m->routing_view == UI_RV_COMPARE && m->view[EV_VIEW_COMPARE])
        snprintf(buf, n, "Routing · A against B");
    else if (m->routing_view == UI_RV_EXPERTS && m->view[EV_VIEW_EXPERTS])
        snprintf(buf, n, "Experts by token class · t: next view");
    else if (m->cursor >= 0 && m->cursor < m->ntok)
        snprintf(buf, n, "Routing · token %d", m->cursor + 1);
    else
        snprintf(buf, n, "Routing · layer × expert");
}

static int key(ui_model *m, int k)
{
    switch (k) {
    case 't': /* the next view that has something to show */
        for (int i = 1; i <= UI_RV_EXPERTS + 1; i++) {
            int v = (m->routing_view + i) % (UI_RV_EXPERTS + 1);
            if (has_view(m, v)) {
                m->routing_view = v;
                break;
            }
        }
        return 1;
    case UI_KEY_UP:
    case UI_KEY_PGUP:
        m->scroll[UI_ROUTING] = m->scroll[UI_ROUTING] > 0 ? m->scroll[UI_ROUTING] - 1 : 0;
        return 1;
    case UI_KEY_DOWN:
    case UI_KEY_PGDN:
        m->scroll[UI_ROUTING] = (m->scroll[UI_ROUTING] > 0 ? m->scroll[UI_ROUTING] : 0) + 1;
        return 1;
    case 'a':
        m->cursor = -1;
        return 1;
    case 'n': /* the expert analytics' next token class */
        if (m->routing_view != UI_RV_EXPERTS || !m->view[EV_VIEW_EXPERTS])
            return 0;
        m->experts_class = (m->experts_class + 1) % m->view[EV_VIEW_EXPERTS]->ints[0];
        return 1;
    default:
        return 0;
    }
}

static void click(ui_model *m, int y, int x)
{
    (void)m;
    (void)y;
    (void)x;
}

const ui_pane ui_routing_pane = {"Routing", title, draw, key, click, explain};
