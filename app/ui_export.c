/* ui_export.c — a pane as an SVG picture for slides (:export FILE.svg): the Routing pane's
 * current view as a heatmap (the generation's expert shares per MoE layer, the training
 * step's load with the balancing bias, or a microscope table), the GRPO pane's history plots
 * with its group (prompt, completions, rewards, advantages), or the Reasoning pane's text.
 * Drawn from the screen model, like the panes, but with vector shapes instead of cells. */
#include <config.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ui.h"

static void esc(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++)
        switch (s[i]) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\n': fputs("\u23ce", f); break;
        default: fputc(s[i], f);
        }
}

static void head(FILE *f, int w, int h, const char *title)
{
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"10\" y=\"18\" font-size=\"14\" font-weight=\"bold\">",
            w, h, w, h);
    esc(f, title, strlen(title));
    fputs("</text>\n", f);
}

/* rows x cols values as cells (white .. red, scaled to vmax per row when per_row), with row
 * labels; from y0 */
static void heat(FILE *f, const double *v, int rows, int cols, int per_row, int y0,
                 char (*label)[16])
{
    enum { CELL = 16, LAB = 44 };
    double vmax = 0;
    for (int i = 0; i < rows * cols; i++)
        vmax = fmax(vmax, v[i]);
    for (int r = 0; r < rows; r++) {
        double rmax = 0;
        for (int c = 0; c < cols; c++)
            rmax = fmax(rmax, v[r * cols + c]);
        double scale = per_row ? rmax : vmax;
        fprintf(f, "<text x=\"10\" y=\"%d\">%s</text>", y0 + r * CELL + 12, label[r]);
        for (int c = 0; c < cols; c++) {
            double x = scale > 0 ? v[r * cols + c] / scale : 0;
            int t = (int)(255 * fmin(fmax(x, 0), 1));
            fprintf(f, "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                       "fill=\"rgb(255,%d,%d)\"><title>%s, column %d: %.4g</title></rect>",
                    LAB + c * CELL, y0 + r * CELL, CELL - 1, CELL - 1, 255 - t, 255 - t * 3 / 4,
                    label[r], c, v[r * cols + c]);
        }
        fputc('\n', f);
    }
}

static int export_routing(FILE *f, const ui_model *m, char *err, size_t n)
{
    static double v[64 * 256];
    static char lab[64][16];
    int rows = 0, cols = 0, per_row = 1;
    const char *title = "";
    if (m->routing_view == UI_RV_TRAIN && m->load && m->load_layers > 0) {
        rows = m->load_layers < 64 ? m->load_layers : 64;
        cols = m->load_experts < 256 ? m->load_experts : 256;
        for (int r = 0; r < rows; r++) {
            snprintf(lab[r], sizeof lab[r], "L%d", r + 1);
            for (int c = 0; c < cols; c++)
                v[r * cols + c] = m->load[(size_t)r * m->load_experts + c];
        }
        title = "Expert load in the training step (share of each MoE layer's tokens)";
    } else if (m->routing_view == UI_RV_GEN && m->counts && m->n_moe > 0) {
        rows = m->n_moe < 64 ? m->n_moe : 64;
        cols = m->ncount_e < 256 ? m->ncount_e : 256;
        for (int r = 0; r < rows; r++) {
            snprintf(lab[r], sizeof lab[r], "L%d", m->moe_layers[r]);
            for (int c = 0; c < cols; c++)
                v[r * cols + c] = m->counts[(size_t)r * m->ncount_e + c];
        }
        title = "Routing: tokens of the generation per expert (MoE layer by expert)";
    } else {
        static const int views[] = {0, 0, EV_VIEW_LENS, EV_VIEW_PATCH, EV_VIEW_COMPARE,
                                    EV_VIEW_EXPERTS};
        const ev *e = m->routing_view >= UI_RV_LENS && m->routing_view <= UI_RV_EXPERTS
                          ? m->view[views[m->routing_view]]
                          : NULL;
        if (e && e->vals && e->rows > 0 && e->cols > 0) {
            rows = e->rows < 64 ? e->rows : 64;
            cols = e->cols < 256 ? e->cols : 256;
            for (int r = 0; r < rows; r++) {
                snprintf(lab[r], sizeof lab[r], "%d", r);
                for (int c = 0; c < cols; c++)
                    v[r * cols + c] = e->vals[(size_t)r * e->cols + c];
            }
            per_row = 0;
            title = m->routing_view == UI_RV_LENS    ? "Logit lens"
                    : m->routing_view == UI_RV_PATCH ? "Activation patching (layer by position)"
                    : m->routing_view == UI_RV_COMPARE
                        ? "Comparison: experts changed per layer"
                        : "Expert analytics (class rows by expert)";
        }
    }
    if (!rows) {
        snprintf(err, n, "the Routing pane shows nothing to export yet");
        return -1;
    }
    head(f, 44 + cols * 16 + 20, 30 + rows * 16 + 20, title);
    heat(f, v, rows, cols, per_row, 30, lab);
    fputs("</svg>\n", f);
    return 0;
}

static int export_grpo(FILE *f, const ui_model *m, char *err, size_t n)
{
    static const char *const names[H_NSERIES] = {"reward", "accuracy", "kl", "length",
                                                 "router flips", "log-prob mismatch"};
    int plots = 0;
    for (int s = 0; s < H_NSERIES; s++)
        plots += m->hist[s].n > 0;
    int ncomp = m->group ? m->group->n : 0;
    if (!plots && !ncomp) {
        snprintf(err, n, "the GRPO pane shows nothing to export yet");
        return -1;
    }
    enum { PW = 260, PH = 120 };
    int W = 3 * (PW + 10) + 10, H = 30 + ((plots + 2) / 3) * (PH + 26) + 40 + 16 * (ncomp + 2);
    head(f, W, H, "GRPO");
    int k = 0;
    for (int s = 0; s < H_NSERIES; s++) {
        const ui_series *hs = &m->hist[s];
        if (!hs->n)
            continue;
        int x0 = 10 + (k % 3) * (PW + 10), y0 = 40 + (k / 3) * (PH + 26);
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < hs->n; i++)
            if (isfinite(hs->v[i]))
                lo = fmin(lo, hs->v[i]), hi = fmax(hi, hs->v[i]);
        if (!(hi > lo))
            lo -= 0.5, hi += 0.5;
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text><text x=\"%d\" "
                   "y=\"%d\" text-anchor=\"end\" fill=\"#555\">%.3g .. %.3g</text>"
                   "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
                   "stroke=\"#ccc\"/><polyline class=\"hist\" fill=\"none\" stroke=\"#1f77b4\" "
                   "stroke-width=\"1.5\" points=\"",
                x0, y0 - 4, names[s], x0 + PW, y0 - 4, lo, hi, x0, y0, PW, PH);
        for (int i = 0; i < hs->n; i++)
            if (isfinite(hs->v[i]))
                fprintf(f, "%.1f,%.1f ", x0 + (hs->n > 1 ? (double)i / (hs->n - 1) : 0.5) * PW,
                        y0 + PH - (hs->v[i] - lo) / (hi - lo) * PH);
        fputs("\"/>\n", f);
        k++;
    }
    if (ncomp) {
        const ev *g = m->group;
        int y = 40 + ((plots + 2) / 3) * (PH + 26) + 10;
        fprintf(f, "<text x=\"10\" y=\"%d\" font-weight=\"bold\">step %d: ", y, m->group_step);
        esc(f, g->text ? g->text : "", 200);
        fputs("</text>\n", f);
        for (int i = 0; i < ncomp; i++) {
            const ev_completion *c = &g->completions[i];
            y += 16;
            fprintf(f, "<text x=\"10\" y=\"%d\" class=\"completion\"><tspan fill=\"%s\">%+.2f"
                       "</tspan> total %.2f  ",
                    y, c->advantage >= 0 ? "#1a7f37" : "#c62828", c->advantage, c->total);
            esc(f, c->text ? c->text : "", 140);
            fputs("</text>\n", f);
        }
    }
    fputs("</svg>\n", f);
    return 0;
}

static int export_reasoning(FILE *f, const ui_model *m, char *err, size_t n)
{
    if (!m->ntok) {
        snprintf(err, n, "the Reasoning pane shows nothing to export yet");
        return -1;
    }
    enum { COLS = 100 };
    int lines = 1, col = 0;
    for (int i = 0; i < m->ntok; i++) {
        int w = (int)strlen(m->tok[i].text);
        if (!strcmp(m->tok[i].text, "\n") || col + w > COLS)
            lines++, col = 0;
        col += w;
    }
    head(f, 10 + COLS * 7, 40 + lines * 15, m->prompt ? m->prompt : "Reasoning");
    fputs("<text x=\"10\" y=\"44\" font-family=\"monospace\" font-size=\"12\" "
          "xml:space=\"preserve\"><tspan x=\"10\" dy=\"0\">", f);
    col = 0;
    for (int i = 0; i < m->ntok; i++) {
        const char *t = m->tok[i].text;
        int w = (int)strlen(t);
        if (!strcmp(t, "\n") || col + w > COLS) {
            fputs("</tspan><tspan x=\"10\" dy=\"15\">", f);
            col = 0;
            if (!strcmp(t, "\n"))
                continue;
        }
        esc(f, t, strlen(t));
        col += w;
    }
    fputs("</tspan></text>\n</svg>\n", f);
    return 0;
}

int ui_export_svg(const ui_model *m, int pane, FILE *f, char *err, size_t n)
{
    switch (pane) {
    case UI_ROUTING: return export_routing(f, m, err, n);
    case UI_GRPO: return export_grpo(f, m, err, n);
    case UI_REASONING: return export_reasoning(f, m, err, n);
    default:
        snprintf(err, n, "only the Routing, GRPO and Reasoning panes export as pictures");
        return -1;
    }
}
