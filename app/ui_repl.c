/* ui_repl.c — drawing the input line: the prompt and the line being edited, wrapped over as
 * many rows as the layout gives it, scrolled so that the cursor's row always shows (a pasted
 * line of thousands of characters shows its part around the cursor).  The editing itself is
 * GNU readline's (wb_readline.c); this file only draws what readline holds. */
#include <config.h>

#include <string.h>

#include "ui.h"

typedef void (*cell_fn)(int row, int col, const char *s, int len, int width, int prompt,
                        void *u);

/* Places every character of the prompt and the line; returns the row count and sets the
 * cursor's position. */
static int place(const ui_repl_view *v, int cols, cell_fn fn, void *u, int *crow, int *ccol)
{
    if (cols < 1)
        cols = 1;
    int row = 0, col = 0;
    *crow = *ccol = 0;
    const char *parts[2] = {v->prompt ? v->prompt : "", v->line ? v->line : ""};
    for (int p = 0; p < 2; p++) {
        const char *s = parts[p];
        int n = (int)strlen(s);
        for (int i = 0; i <= n;) {
            if (p == 1 && i == v->point) {
                if (col >= cols) {
                    row++;
                    col = 0;
                }
                *crow = row;
                *ccol = col;
            }
            if (i == n)
                break;
            if (s[i] == '\n') {
                row++;
                col = 0;
                i++;
                continue;
            }
            int len = 1;
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x80 && ui_utf8) {
                len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
                for (int k = 1; k < len; k++)
                    if (i + k >= n) {
                        len = k;
                        break;
                    }
            }
            int wd = ui_width(s + i, len);
            if (col + wd > cols) {
                row++;
                col = 0;
            }
            if (fn)
                fn(row, col, s + i, len, wd, p == 0, u);
            col += wd;
            i += len;
        }
    }
    return row + 1 > *crow + 1 ? row + 1 : *crow + 1;
}

int ui_repl_rows(const ui_repl_view *v, int cols, int max_rows)
{
    int r, c;
    int rows = place(v, cols, NULL, NULL, &r, &c);
    if (rows > max_rows)
        rows = max_rows;
    return rows < 1 ? 1 : rows;
}

typedef struct {
    WINDOW *w;
    int first, h;
} draw_ctx;

static void draw_cell(int row, int col, const char *s, int len, int width, int prompt, void *u)
{
    draw_ctx *d = u;
    int r = row - d->first;
    if (r < 0 || r >= d->h)
        return;
    char buf[8];
    memcpy(buf, s, (size_t)len);
    buf[len] = '\0';
    ui_put(d->w, r, col, width, prompt ? ui_attr(R_PROMPT) | A_BOLD : ui_attr(R_TEXT), buf);
}

void ui_repl_draw(WINDOW *w, const ui_repl_view *v, int focused)
{
    (void)focused;
    werase(w);
    int h = getmaxy(w), cols = getmaxx(w);
    if (h < 1 || cols < 1)
        return;
    int crow, ccol;
    int rows = place(v, cols, NULL, NULL, &crow, &ccol);
    int first = rows - h > 0 ? rows - h : 0;
    if (crow < first)
        first = crow;
    if (crow >= first + h)
        first = crow - h + 1;
    draw_ctx d = {w, first, h};
    place(v, cols, draw_cell, &d, &crow, &ccol);
    wmove(w, crow - first, ccol < cols ? ccol : cols - 1);
}
