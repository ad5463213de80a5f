/* wb_keys.c — turning the bytes a terminal sends into keys (see wb.h).  The workbench reads
 * the terminal itself (curses' keypad mode is off, as readline needs), so it decodes the few
 * escape sequences it uses: arrows, PgUp/PgDn, Home/End, F1/F2, Shift-Tab and mouse reports
 * (SGR 1006 and the older X10 form).  Any other sequence is one UI_KEY_OTHER whose bytes go
 * to readline unchanged. */
#include <config.h>

#include <string.h>

#include "wb.h"

#define ESC 0x1b

/* A UTF-8 character at b: its code point and length; 0 when incomplete. */
static int utf8(const unsigned char *b, int n, int *cp)
{
    int len = b[0] >= 0xf0 ? 4 : b[0] >= 0xe0 ? 3 : b[0] >= 0xc0 ? 2 : 1;
    if (len == 1) {
        *cp = b[0];
        return 1;
    }
    if (n < len)
        return 0;
    int c = b[0] & (0x3f >> (len - 1));
    for (int i = 1; i < len; i++) {
        if ((b[i] & 0xc0) != 0x80) { /* not UTF-8: the byte alone */
            *cp = b[0];
            return 1;
        }
        c = (c << 6) | (b[i] & 0x3f);
    }
    *cp = c;
    return len;
}

/* Parses up to 3 numbers separated by ';' from b[i..] until a byte outside [0-9;]. */
static int params(const unsigned char *b, int n, int i, int *p, int *np)
{
    *np = 0;
    int cur = -1;
    for (; i < n; i++) {
        if (b[i] >= '0' && b[i] <= '9') {
            cur = (cur < 0 ? 0 : cur) * 10 + (b[i] - '0');
            if (cur > 100000)
                cur = 100000;
        } else if (b[i] == ';') {
            if (*np < 3)
                p[(*np)++] = cur < 0 ? 0 : cur;
            cur = -1;
        } else {
            break;
        }
    }
    if (cur >= 0 && *np < 3)
        p[(*np)++] = cur;
    return i;
}

static int csi(const unsigned char *b, int n, int final, wb_key *k)
{
    if (n < 3)
        return final ? (k->key = UI_KEY_OTHER, k->len = n) : 0;
    int p[3] = {0}, np;
    if (b[2] == '<') { /* SGR mouse: ESC [ < b ; x ; y (M|m) */
        int i = params(b, n, 3, p, &np);
        if (i >= n)
            return final || n > 32 ? (k->key = UI_KEY_OTHER, k->len = n) : 0;
        k->len = i + 1;
        if ((b[i] != 'M' && b[i] != 'm') || np < 3) {
            k->key = UI_KEY_OTHER;
            return k->len;
        }
        k->key = UI_KEY_MOUSE;
        k->mbutton = p[0] & ~(4 | 8 | 16 | 32); /* drop shift/meta/ctrl/motion bits */
        k->mx = p[1] - 1;
        k->my = p[2] - 1;
        k->mpress = b[i] == 'M' && !(p[0] & 32);
        return k->len;
    }
    if (b[2] == 'M') { /* X10 mouse: ESC [ M b x y */
        if (n < 6)
            return final ? (k->key = UI_KEY_OTHER, k->len = n) : 0;
        int bt = b[3] - 32;
        k->key = UI_KEY_MOUSE;
        k->mbutton = (bt & 3) == 3 ? -1 : (bt & ~(4 | 8 | 16 | 32));
        k->mpress = (bt & 3) != 3 && !(bt & 32);
        k->mx = b[4] - 33;
        k->my = b[5] - 33;
        k->len = 6;
        return 6;
    }
    int i = params(b, n, 2, p, &np);
    while (i < n && b[i] >= 0x20 && b[i] <= 0x3f) /* other parameter and intermediate bytes */
        i++;
    if (i >= n)
        return final || n > 32 ? (k->key = UI_KEY_OTHER, k->len = n) : 0;
    k->len = i + 1;
    int plain = np == 0 || (np == 1 && p[0] <= 1);
    switch (b[i]) {
    case 'A': k->key = plain ? UI_KEY_UP : UI_KEY_OTHER; break;
    case 'B': k->key = plain ? UI_KEY_DOWN : UI_KEY_OTHER; break;
    case 'C': k->key = plain ? UI_KEY_RIGHT : UI_KEY_OTHER; break;
    case 'D': k->key = plain ? UI_KEY_LEFT : UI_KEY_OTHER; break;
    case 'H': k->key = plain ? UI_KEY_HOME : UI_KEY_OTHER; break;
    case 'F': k->key = plain ? UI_KEY_END : UI_KEY_OTHER; break;
    case 'Z': k->key = UI_KEY_BTAB; break;
    case 'P': k->key = plain ? UI_KEY_F1 : UI_KEY_OTHER; break;
    case 'Q': k->key = plain ? UI_KEY_F2 : UI_KEY_OTHER; break;
    case '~':
        switch (np ? p[0] : 0) {
        case 1: case 7: k->key = UI_KEY_HOME; break;
        case 4: case 8: k->key = UI_KEY_END; break;
        case 5: k->key = UI_KEY_PGUP; break;
        case 6: k->key = UI_KEY_PGDN; break;
        case 11: k->key = UI_KEY_F1; break;
        case 12: k->key = UI_KEY_F2; break;
        case 200: k->key = UI_KEY_PASTE_BEGIN; break;
        case 201: k->key = UI_KEY_PASTE_END; break;
        default: k->key = UI_KEY_OTHER; break;
        }
        if (np > 1) /* with modifiers: leave it to readline */
            k->key = UI_KEY_OTHER;
        break;
    default: k->key = UI_KEY_OTHER; break;
    }
    return k->len;
}

int wb_key_decode(const unsigned char *b, int n, int final, wb_key *k)
{
    memset(k, 0, sizeof *k);
    if (n <= 0)
        return 0;
    if (b[0] != ESC) {
        int cp, len = utf8(b, n, &cp);
        if (!len) {
            if (!final)
                return 0;
            cp = b[0];
            len = 1;
        }
        k->key = cp == 0x7f ? 0x7f : cp == '\n' ? UI_KEY_ENTER : cp;
        k->len = len;
        return len;
    }
    if (n == 1) {
        if (!final)
            return 0;
        k->key = UI_KEY_ESC;
        k->len = 1;
        return 1;
    }
    if (b[1] == '[')
        return csi(b, n, final, k);
    if (b[1] == 'O') { /* SS3: ESC O x */
        if (n < 3)
            return final ? (k->key = UI_KEY_OTHER, k->len = n) : 0;
        static const struct {
            unsigned char c;
            int key;
        } ss3[] = {{'A', UI_KEY_UP},   {'B', UI_KEY_DOWN}, {'C', UI_KEY_RIGHT},
                   {'D', UI_KEY_LEFT}, {'H', UI_KEY_HOME}, {'F', UI_KEY_END},
                   {'P', UI_KEY_F1},   {'Q', UI_KEY_F2}};
        k->key = UI_KEY_OTHER;
        for (size_t i = 0; i < sizeof ss3 / sizeof *ss3; i++)
            if (b[2] == ss3[i].c)
                k->key = ss3[i].key;
        k->len = 3;
        return 3;
    }
    if (b[1] == ESC) { /* ESC ESC: the first is a lone Esc */
        k->key = UI_KEY_ESC;
        k->len = 1;
        return 1;
    }
    /* Alt + a character: readline's meta keys */
    int cp, len = utf8(b + 1, n - 1, &cp);
    if (!len) {
        if (!final)
            return 0;
        len = 1;
    }
    k->key = UI_KEY_OTHER;
    k->len = 1 + len;
    return k->len;
}
