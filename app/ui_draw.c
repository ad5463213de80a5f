/* ui_draw.c — drawing helpers the panes share: clipped UTF-8 text, word wrapping, bars, level
 * glyphs and braille plots (see ui.h).  Everything clips to the window it draws into, so a
 * pane of any size, including none, is safe.  Non-UTF-8 locales get ASCII stand-ins. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ui.h"

int ui_utf8;

/* Decodes one character at s (n bytes left): its length in bytes and display width.  Bytes
 * that are not valid UTF-8 (or any byte >= 0x80 outside a UTF-8 locale) count as one '?'. */
static int next_char(const char *s, int n, int *width, int *bad)
{
    unsigned char c = (unsigned char)*s;
    *bad = 0;
    if (c < 0x20 || c == 0x7f) {
        *width = 1;
        *bad = 1;
        return 1;
    }
    if (c < 0x80) {
        *width = 1;
        return 1;
    }
    if (!ui_utf8) {
        *width = 1;
        *bad = 1;
        return 1;
    }
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t wc;
    size_t len = mbrtowc(&wc, s, (size_t)n, &st);
    if (len == (size_t)-1 || len == (size_t)-2 || len == 0) {
        *width = 1;
        *bad = 1;
        return 1;
    }
    int wd = wcwidth(wc);
    if (wd < 0) {
        *width = 1;
        *bad = 1;
    } else {
        *width = wd;
    }
    return (int)len;
}

int ui_width(const char *s, int n)
{
    if (!s)
        return 0;
    if (n < 0)
        n = (int)strlen(s);
    int w = 0;
    for (int i = 0; i < n;) {
        int cw, bad;
        i += next_char(s + i, n - i, &cw, &bad);
        w += cw;
    }
    return w;
}

int ui_fit(const char *s, int cols)
{
    int n = (int)strlen(s), w = 0, i = 0;
    while (i < n) {
        int cw, bad;
        int len = next_char(s + i, n - i, &cw, &bad);
        if (w + cw > cols)
            break;
        w += cw;
        i += len;
    }
    return i;
}

int ui_put(WINDOW *w, int y, int x, int maxw, attr_t a, const char *s)
{
    if (!w || !s || y < 0 || x < 0 || y >= getmaxy(w) || x >= getmaxx(w))
        return 0;
    if (maxw > getmaxx(w) - x)
        maxw = getmaxx(w) - x;
    int n = (int)strlen(s), used = 0;
    wattrset(w, a);
    wmove(w, y, x);
    for (int i = 0; i < n;) {
        int cw, bad;
        int len = next_char(s + i, n - i, &cw, &bad);
        if (used + cw > maxw)
            break;
        if (bad)
            waddch(w, '?');
        else if (cw > 0 || used > 0) /* a combining mark needs a base */
            waddnstr(w, s + i, len);
        used += cw;
        i += len;
    }
    wattrset(w, A_NORMAL);
    return used;
}

int ui_wrap(const char *s, int cols, void (*fn)(const char *line, int len, void *u), void *u)
{
    if (cols < 1)
        cols = 1;
    int lines = 0, n = (int)strlen(s);
    int start = 0;
    while (start <= n) {
        int i = start, w = 0, brk = -1, end = -1, next = -1;
        while (i < n && s[i] != '\n') {
            int cw, bad;
            int len = next_char(s + i, n - i, &cw, &bad);
            if (w + cw > cols) {
                if (brk > start) { /* break after the last blank */
                    end = brk;
                    next = brk + 1;
                } else {
                    end = i > start ? i : i + len;
                    next = end;
                }
                break;
            }
            if (s[i] == ' ')
                brk = i;
            w += cw;
            i += len;
        }
        if (end < 0) { /* the line ends at a newline or the end of s */
            end = i;
            next = i + 1;
        }
        if (fn)
            fn(s + start, end - start, u);
        lines++;
        if (i >= n && end >= n)
            break;
        start = next;
        if (start > n)
            break;
    }
    return lines;
}

typedef struct {
    WINDOW *w;
    int y, h, skip, line;
    attr_t a;
} text_ctx;

static void text_line(const char *line, int len, void *u)
{
    text_ctx *c = u;
    int row = c->line - c->skip;
    c->line++;
    if (row < 0 || row >= c->h)
        return;
    char buf[1024];
    if (len > (int)sizeof buf - 1)
        len = (int)sizeof buf - 1;
    memcpy(buf, line, (size_t)len);
    buf[len] = '\0';
    ui_put(c->w, c->y + row, 0, getmaxx(c->w), c->a, buf);
}

int ui_draw_text(WINDOW *w, int y, int h, int skip, attr_t a, const char *s)
{
    text_ctx c = {w, y, h, skip, 0, a};
    return ui_wrap(s, getmaxx(w), text_line, &c);
}

void ui_draw_explain(WINDOW *w, const char *title, const char *text)
{
    int h = getmaxy(w), wd = getmaxx(w);
    werase(w);
    if (h < 1 || wd < 1)
        return;
    char head[128];
    snprintf(head, sizeof head, "What the %s pane shows", title);
    ui_put(w, 0, 0, wd, ui_attr(R_TITLE) | A_BOLD, head);
    ui_draw_text(w, 1, h - 2 > 0 ? h - 2 : h - 1, 0, ui_attr(R_TEXT), text);
    if (h >= 3)
        ui_put(w, h - 1, 0, wd, ui_attr(R_DIM), "e: back to the pane");
}

static const char *const eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"};

int ui_bar(WINDOW *w, int y, int x, double width, attr_t a)
{
    if (!(width > 0))
        return 0;
    int full = (int)width, frac = (int)((width - full) * 8 + 0.5), used = 0;
    if (frac == 8) {
        full++;
        frac = 0;
    }
    for (int i = 0; i < full; i++)
        used += ui_put(w, y, x + used, 1, a, ui_utf8 ? eighths[8] : "#");
    if (frac)
        used += ui_put(w, y, x + used, 1, a, ui_utf8 ? eighths[frac] : (frac >= 4 ? "+" : ""));
    return used;
}

const char *ui_level_glyph(double x)
{
    static const char *const blocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    static const char *const ascii[] = {" ", ".", ":", "-", "=", "+", "*", "#", "@"};
    if (!(x > 0))
        return " ";
    int i = (int)ceil(x * 8);
    if (i > 8)
        i = 8;
    if (i < 1)
        i = 1;
    return ui_utf8 ? blocks[i] : ascii[i];
}

/* Writes the braille character with dot bits `bits` (U+2800 + bits) as UTF-8 into out. */
static void braille(unsigned bits, char out[4])
{
    unsigned cp = 0x2800 + bits;
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    out[3] = '\0';
}

void ui_plot(WINDOW *w, int y, int x, int h, int wd, const double *v, int n, double lo, double hi,
             attr_t a)
{
    if (h < 1 || wd < 1 || n < 1)
        return;
    if (!(hi > lo)) {
        hi = lo + 1;
        lo = lo - 1;
    }
    int per = ui_utf8 ? 2 : 1, dots = ui_utf8 ? 4 : 1;
    int np = wd * per, first = n > np ? n - np : 0;
    int rows = h * dots;
    unsigned char *cell = calloc((size_t)h * wd, 1);
    if (!cell)
        return;
    static const unsigned bit[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};
    int prev = -1;
    for (int i = first; i < n; i++) {
        if (isnan(v[i])) {
            prev = -1;
            continue;
        }
        double t = (hi - v[i]) / (hi - lo);
        int r = (int)lround(t * (rows - 1));
        r = r < 0 ? 0 : r >= rows ? rows - 1 : r;
        int px = i - first, cx = px / per, sub = px % per;
        int r0 = r, r1 = r;
        if (prev >= 0 && ui_utf8) { /* join to the previous point */
            r0 = prev < r ? prev + 1 : r;
            r1 = prev > r ? prev - 1 : r;
            if (r0 > r1) {
                int tmp = r0;
                r0 = r1;
                r1 = tmp;
            }
            if (r < r0)
                r0 = r;
            if (r > r1)
                r1 = r;
        }
        for (int rr = r0; rr <= r1; rr++)
            cell[(rr / dots) * wd + cx] |= ui_utf8 ? bit[sub][rr % dots] : 1;
        prev = r;
    }
    for (int r = 0; r < h; r++)
        for (int c = 0; c < wd; c++) {
            unsigned b = cell[r * wd + c];
            if (!b)
                continue;
            char g[4];
            if (ui_utf8)
                braille(b, g);
            else
                strcpy(g, "*");
            ui_put(w, y + r, x + c, 1, a, g);
        }
    free(cell);
}
