/* ui_layout.c — where the panes go for a terminal size, and the frame around them (see ui.h).
 *
 * Wide terminals get the layout of DESIGN.md: reasoning over answer on the left, routing over
 * GRPO on the right, the output/notebook pane with the input line across the bottom, and a
 * status line.  Narrow or short terminals stack the panes and drop the least needed ones;
 * tiny terminals (a few rows or columns) keep only the output and the input line, without
 * borders.  Neighbouring boxes share their borders. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "ui.h"

static ui_rect rect(int y, int x, int h, int w)
{
    ui_rect r = {y, x, h, w};
    return r;
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* A box at rows [y, y+h) and columns [x, x+w): interior one cell in. */
static void place(ui_layout *lo, int p, int y, int x, int h, int w)
{
    lo->shown[p] = h >= 3 && w >= 3;
    lo->box[p] = rect(y, x, h, w);
    lo->pane[p] = rect(y + 1, x + 1, h - 2, w - 2);
}

/* The output box: output lines over the input rows, inside one border. */
static void place_output(ui_layout *lo, int y, int h, int cols, int repl_rows)
{
    place(lo, UI_OUTPUT, y, 0, h, cols);
    lo->pane[UI_OUTPUT].h = h - 2 - repl_rows;
    lo->shown[UI_OUTPUT] = lo->pane[UI_OUTPUT].h >= 1 && cols >= 3;
    lo->repl = rect(y + h - 1 - repl_rows, 1, repl_rows, cols - 2);
}

static void stacked(ui_layout *lo, int H, int cols, int repl_rows)
{
    static const int order[] = {UI_OUTPUT, UI_REASONING, UI_ANSWER, UI_ROUTING, UI_GRPO};
    static const int minr[UI_NPANES] = {[UI_REASONING] = 2, [UI_ANSWER] = 1, [UI_ROUTING] = 2,
                                        [UI_GRPO] = 2, [UI_OUTPUT] = 2};
    static const int weight[UI_NPANES] = {[UI_REASONING] = 3, [UI_ANSWER] = 1,
                                          [UI_ROUTING] = 2, [UI_GRPO] = 2, [UI_OUTPUT] = 3};
    int rows[UI_NPANES] = {0}, on[UI_NPANES] = {0};
    int used = 1 + repl_rows; /* the top border and the input rows */
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        int p = order[i];
        int cost = minr[p] + 1;
        if (p != UI_OUTPUT && used + cost > H)
            break;
        on[p] = 1;
        rows[p] = minr[p];
        used += cost;
    }
    if (used > H) /* the output pane takes what is left */
        rows[UI_OUTPUT] = clamp(rows[UI_OUTPUT] - (used - H), 0, H);
    int spare = H - used, wsum = 0, given = 0;
    for (int p = 0; p < UI_NPANES; p++)
        wsum += on[p] ? weight[p] : 0;
    for (int p = 0; p < UI_NPANES && spare > 0; p++) {
        if (!on[p] || p == UI_OUTPUT)
            continue;
        int add = spare * weight[p] / wsum;
        if (p == UI_ANSWER && add > 2)
            add = 2;
        rows[p] += add;
        given += add;
    }
    if (spare > 0)
        rows[UI_OUTPUT] += spare - given;
    int y = 0;
    static const int down[] = {UI_REASONING, UI_ANSWER, UI_ROUTING, UI_GRPO};
    for (size_t i = 0; i < sizeof down / sizeof *down; i++) {
        int p = down[i];
        if (!on[p])
            continue;
        place(lo, p, y, 0, rows[p] + 2, cols);
        y += rows[p] + 1;
    }
    place_output(lo, y, H - y, cols, repl_rows);
}

void ui_layout_compute(ui_layout *lo, int lines, int cols, int zoom, int repl_rows)
{
    memset(lo, 0, sizeof *lo);
    lo->lines = lines;
    lo->cols = cols;
    if (lines < 1 || cols < 1)
        return;
    int H = lines;
    if (lines >= 3) {
        lo->status = rect(lines - 1, 0, 1, cols);
        H = lines - 1;
    }
    repl_rows = clamp(repl_rows, 1, H);
    if (H < 6 || cols < 12) { /* tiny: output and input, no borders */
        lo->repl = rect(H - repl_rows, 0, repl_rows, cols);
        if (H - repl_rows >= 1) {
            lo->shown[UI_OUTPUT] = 1;
            lo->pane[UI_OUTPUT] = lo->box[UI_OUTPUT] = rect(0, 0, H - repl_rows, cols);
        }
        return;
    }
    lo->boxed = 1;
    if (zoom >= 0 && zoom < UI_NPANES && zoom != UI_OUTPUT) {
        place(lo, zoom, 0, 0, H - repl_rows, cols);
        lo->repl = rect(H - repl_rows, 0, repl_rows, cols);
        return;
    }
    if (zoom == UI_OUTPUT) {
        place_output(lo, 0, H, cols, repl_rows);
        return;
    }
    if (cols < 70 || H < 16) {
        stacked(lo, H, cols, repl_rows);
        return;
    }
    int bh = clamp(H * 2 / 5, repl_rows + 5, H - 10); /* the output box */
    int T = H - bh + 1;                               /* the top boxes share a row with it */
    int inner = T - 3;
    int ans = clamp(inner / 4, 1, 4);
    int route = clamp(inner * 2 / 5, 3, inner - 3);
    int lw = cols / 2;
    place(lo, UI_REASONING, 0, 0, inner - ans + 2, lw + 1);
    place(lo, UI_ANSWER, inner - ans + 1, 0, ans + 2, lw + 1);
    place(lo, UI_ROUTING, 0, lw, route + 2, cols - lw);
    place(lo, UI_GRPO, route + 1, lw, inner - route + 2, cols - lw);
    place_output(lo, T - 1, bh, cols, repl_rows);
}

static int inside(ui_rect r, int y, int x)
{
    return y >= r.y && y < r.y + r.h && x >= r.x && x < r.x + r.w;
}

int ui_layout_hit(const ui_layout *lo, int y, int x)
{
    if (lo->repl.h > 0 && inside(lo->repl, y, x))
        return UI_REPL;
    for (int p = 0; p < UI_NPANES; p++)
        if (lo->shown[p] && inside(lo->pane[p], y, x))
            return p;
    for (int p = 0; p < UI_NPANES; p++)
        if (lo->shown[p] && inside(lo->box[p], y, x))
            return p;
    return -1;
}

enum { UP = 1, DOWN = 2, LEFT = 4, RIGHT = 8 };

static void mark_box(unsigned char *g, int cols, int lines, ui_rect b)
{
    int y1 = b.y + b.h - 1, x1 = b.x + b.w - 1;
    for (int x = b.x; x <= x1; x++)
        for (int k = 0; k < 2; k++) {
            int y = k ? y1 : b.y;
            if (y >= 0 && y < lines && x >= 0 && x < cols)
                g[y * cols + x] |= (x > b.x ? LEFT : 0) | (x < x1 ? RIGHT : 0);
        }
    for (int y = b.y; y <= y1; y++)
        for (int k = 0; k < 2; k++) {
            int x = k ? x1 : b.x;
            if (y >= 0 && y < lines && x >= 0 && x < cols)
                g[y * cols + x] |= (y > b.y ? UP : 0) | (y < y1 ? DOWN : 0);
        }
}

static const cchar_t *line_char(unsigned bits)
{
    switch (bits) {
    case DOWN | RIGHT: return WACS_ULCORNER;
    case DOWN | LEFT: return WACS_URCORNER;
    case UP | RIGHT: return WACS_LLCORNER;
    case UP | LEFT: return WACS_LRCORNER;
    case UP | DOWN | RIGHT: return WACS_LTEE;
    case UP | DOWN | LEFT: return WACS_RTEE;
    case DOWN | LEFT | RIGHT: return WACS_TTEE;
    case UP | LEFT | RIGHT: return WACS_BTEE;
    case UP | DOWN | LEFT | RIGHT: return WACS_PLUS;
    default: return (bits & (UP | DOWN)) ? WACS_VLINE : WACS_HLINE;
    }
}

static void put_line_char(WINDOW *w, int y, int x, unsigned bits, attr_t a)
{
    wchar_t wc[CCHARW_MAX + 1] = {0};
    attr_t a0;
    short p0;
    cchar_t c;
    getcchar(line_char(bits), wc, &a0, &p0, NULL);
    setcchar(&c, wc, (a0 & ~A_COLOR) | (a & ~A_COLOR), (short)PAIR_NUMBER(a), NULL);
    mvwadd_wch(w, y, x, &c);
}

void ui_layout_draw_frame(WINDOW *w, const ui_layout *lo, const ui_model *m)
{
    if (!lo->boxed || lo->lines < 1 || lo->cols < 1)
        return;
    unsigned char *g = calloc((size_t)lo->lines * lo->cols, 1);
    if (!g)
        return;
    for (int p = 0; p < UI_NPANES; p++)
        if (lo->box[p].h >= 2 && lo->box[p].w >= 2)
            mark_box(g, lo->cols, lo->lines, lo->box[p]);
    for (int y = 0; y < lo->lines; y++)
        for (int x = 0; x < lo->cols; x++)
            if (g[y * lo->cols + x])
                put_line_char(w, y, x, g[y * lo->cols + x], ui_attr(R_BORDER));
    /* the focused box again, in the focus colour */
    int f = m->focus;
    if (f >= 0 && f < UI_NPANES && lo->box[f].h >= 2) {
        ui_rect b = lo->box[f];
        for (int y = b.y; y < b.y + b.h; y++)
            for (int x = b.x; x < b.x + b.w; x++) {
                int edge = y == b.y || y == b.y + b.h - 1 || x == b.x || x == b.x + b.w - 1;
                if (edge && y < lo->lines && x < lo->cols)
                    put_line_char(w, y, x, g[y * lo->cols + x], ui_attr(R_FOCUS));
            }
    }
    free(g);
    for (int p = 0; p < UI_NPANES; p++) {
        if (lo->box[p].h < 2 || lo->box[p].w < 6)
            continue;
        char t[256], full[300];
        ui_pane_get(p)->title(m, t, sizeof t);
        snprintf(full, sizeof full, " %s ", t);
        ui_put(w, lo->box[p].y, lo->box[p].x + 1, lo->box[p].w - 2,
               (p == f ? ui_attr(R_FOCUS) : ui_attr(R_TITLE)) | A_BOLD, full);
    }
}
