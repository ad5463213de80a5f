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
    "auxiliary loss.";

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
    int avail = cols - label;
    if (avail < 1 || E < 1)
        return;
    int per = (E + avail - 1) / avail;
    int ncol = (E + per - 1) / per;
    int y = 0, top = 0;
    if (h >= m->n_moe + 2 && per == 1) {
        ruler(w, 0, label, avail, E, per);
        top = y = 1;
    }
    const int32_t *te = sel ? ui_model_token_experts(m, m->cursor) : NULL;
    const float *tw = sel ? ui_model_token_weights(m, m->cursor) : NULL;
    double vmax = 0;
    if (!sel)
        for (int i = 0; i < m->n_moe * m->ncount_e; i++)
            vmax = m->counts[i] > vmax ? m->counts[i] : vmax;
    int rows = h - top; /* the layers first; the legend when a row is left */
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
    if (y < h)
        ui_put(w, y < h - 1 ? y : h - 1, 0, cols, ui_attr(R_DIM), legend);
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
        ui_draw_explain(w, "Routing", explain);
        return;
    }
    if (m->routing_view == 1 && m->load)
        draw_training(w, m, h, cols);
    else
        draw_generation(w, m, h, cols);
}

static void title(const ui_model *m, char *buf, size_t n)
{
    if (m->routing_view == 1 && m->load)
        snprintf(buf, n, "Routing · expert load (training)");
    else if (m->cursor >= 0 && m->cursor < m->ntok)
        snprintf(buf, n, "Routing · token %d", m->cursor + 1);
    else
        snprintf(buf, n, "Routing · layer × expert");
}

static int key(ui_model *m, int k)
{
    switch (k) {
    case 't':
        m->routing_view = m->load ? !m->routing_view : 0;
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
