/* ui_theme.c — colour themes: themes/NAME.lua returns a table mapping colour roles to colours
 * (see themes/README.md); this file reads it in a private Lua state, checks every field, maps
 * the colours to what the terminal can show (256 colours, 8 colours, or attributes only) and
 * turns each role into a curses attribute.  A missing or bad theme yields a message naming the
 * file and the field, and the built-in default theme. */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "paths.h"
#include "ui.h"

ui_theme ui_cur_theme;

attr_t ui_attr(ui_role r)
{
    return ui_cur_theme.attr[r];
}

attr_t ui_heat_attr(double x)
{
    int n = ui_cur_theme.nheat;
    if (n < 1)
        return ui_cur_theme.attr[R_TEXT];
    int i = (int)(x * n);
    i = i < 0 ? 0 : i >= n ? n - 1 : i;
    return ui_cur_theme.attr[R_HEAT0 + i];
}

/* The fallbacks when no theme file can be read: the same tables as themes/default.lua and
 * themes/mono.lua. */
static const char builtin_default[] =
    "return { name = 'default', text = 'default', dim = 245, think = 117,\n"
    " answer = {fg = 'bright_white', bold = true}, right = {fg = 'green', bold = true},\n"
    " wrong = {fg = 'red', bold = true}, bar = 75, border = 240,\n"
    " focus = {fg = 'yellow', bold = true}, title = {fg = 'bright_white', bold = true},\n"
    " prompt = {fg = 'green', bold = true}, error = 203, selected = {fg = 'black', bg = 220},\n"
    " status = {fg = 252, bg = 236}, code = 180, plot = 81, special = 243, doubt = 214,\n"
    " unsure = {fg = 196, bold = true},\n"
    " heat = {24, 31, 37, 72, 149, 185, 208, 196},\n"
    " bars = {'green', 'cyan', 'magenta', 'yellow', 'blue', 'red'} }\n";
static const char builtin_mono[] =
    "return { name = 'mono', dim = {dim = true}, think = {}, answer = {bold = true},\n"
    " right = {bold = true}, wrong = {reverse = true}, border = {}, focus = {bold = true},\n"
    " title = {bold = true}, prompt = {bold = true}, error = {bold = true},\n"
    " selected = {reverse = true}, status = {reverse = true}, special = {dim = true},\n"
    " doubt = {underline = true}, unsure = {bold = true, underline = true},\n"
    " heat = {{}, {}, {bold = true}, {bold = true}}, bars = {{}, {bold = true}} }\n";

static const char *const role_names[] = {
    [R_TEXT] = "text",         [R_DIM] = "dim",        [R_THINK] = "think",
    [R_ANSWER] = "answer",     [R_RIGHT] = "right",    [R_WRONG] = "wrong",
    [R_BAR] = "bar",           [R_BORDER] = "border",  [R_FOCUS] = "focus",
    [R_TITLE] = "title",       [R_PROMPT] = "prompt",  [R_ERROR] = "error",
    [R_SELECTED] = "selected", [R_STATUS] = "status",  [R_CODE] = "code",
    [R_PLOT] = "plot",         [R_SPECIAL] = "special", [R_DOUBT] = "doubt",
    [R_UNSURE] = "unsure"};
#define NAMED_ROLES (R_UNSURE + 1)

/* A role as the file gives it: colours (-1 terminal default, -2 unset) and attributes. */
typedef struct {
    int fg, bg;
    attr_t attrs;
} spec;

typedef struct {
    spec role[R_NROLES];
    int nheat, nseries;
    int bg; /* the theme's background, -1 the terminal's */
    char name[64];
} raw_theme;

static const struct {
    const char *name;
    int n;
} colour_names[] = {{"default", -1}, {"black", 0},           {"red", 1},
                    {"green", 2},    {"yellow", 3},          {"blue", 4},
                    {"magenta", 5},  {"cyan", 6},            {"white", 7},
                    {"gray", 8},     {"grey", 8},            {"bright_black", 8},
                    {"bright_red", 9}, {"bright_green", 10}, {"bright_yellow", 11},
                    {"bright_blue", 12}, {"bright_magenta", 13}, {"bright_cyan", 14},
                    {"bright_white", 15}};

/* The RGB value of an xterm-256 colour. */
static void xterm_rgb(int c, int rgb[3])
{
    static const int base[16][3] = {{0, 0, 0},       {205, 0, 0},     {0, 205, 0},
                                    {205, 205, 0},   {0, 0, 238},     {205, 0, 205},
                                    {0, 205, 205},   {229, 229, 229}, {127, 127, 127},
                                    {255, 0, 0},     {0, 255, 0},     {255, 255, 0},
                                    {92, 92, 255},   {255, 0, 255},   {0, 255, 255},
                                    {255, 255, 255}};
    static const int level[6] = {0, 95, 135, 175, 215, 255};
    if (c < 16) {
        memcpy(rgb, base[c], sizeof base[c]);
    } else if (c < 232) {
        c -= 16;
        rgb[0] = level[c / 36];
        rgb[1] = level[(c / 6) % 6];
        rgb[2] = level[c % 6];
    } else {
        rgb[0] = rgb[1] = rgb[2] = 8 + 10 * (c - 232);
    }
}

/* The nearest colour to rgb among xterm colours [lo, hi). */
static int nearest(const int rgb[3], int lo, int hi)
{
    int best = lo;
    long bd = -1;
    for (int c = lo; c < hi; c++) {
        int x[3];
        xterm_rgb(c, x);
        long d = 0;
        for (int i = 0; i < 3; i++)
            d += (long)(x[i] - rgb[i]) * (x[i] - rgb[i]);
        if (bd < 0 || d < bd) {
            bd = d;
            best = c;
        }
    }
    return best;
}

/* Parses a colour value at the top of L into *c (-1 default, 0..255).  Returns 0, or -1 with
 * a description of the problem in why. */
static int parse_colour(lua_State *L, int *c, char *why, size_t n)
{
    if (lua_isinteger(L, -1)) {
        lua_Integer v = lua_tointeger(L, -1);
        if (v < -1 || v > 255) {
            snprintf(why, n, "colour number %lld is out of range (0-255)", (long long)v);
            return -1;
        }
        *c = (int)v;
        return 0;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        snprintf(why, n, "expected a colour, got %s", luaL_typename(L, -1));
        return -1;
    }
    const char *s = lua_tostring(L, -1);
    for (size_t i = 0; i < sizeof colour_names / sizeof *colour_names; i++)
        if (!strcmp(s, colour_names[i].name)) {
            *c = colour_names[i].n;
            return 0;
        }
    unsigned r, g, b;
    if (s[0] == '#' && strlen(s) == 7 && sscanf(s + 1, "%2x%2x%2x", &r, &g, &b) == 3) {
        int rgb[3] = {(int)r, (int)g, (int)b};
        *c = nearest(rgb, 16, 256);
        return 0;
    }
    snprintf(why, n,
             "unknown colour '%s' (use a name such as \"cyan\" or \"bright_blue\", a number "
             "0-255, or \"#rrggbb\")",
             s);
    return -1;
}

/* Parses the role value at the top of L: a colour, or a table {fg, bg, bold, dim, underline,
 * reverse, italic}. */
static int parse_spec(lua_State *L, spec *sp, char *why, size_t n)
{
    sp->fg = sp->bg = -2;
    sp->attrs = A_NORMAL;
    if (!lua_istable(L, -1))
        return parse_colour(L, &sp->fg, why, n);
    static const struct {
        const char *k;
        attr_t a;
    } flags[] = {{"bold", A_BOLD},         {"dim", A_DIM},         {"underline", A_UNDERLINE},
                 {"reverse", A_REVERSE}, {"italic", A_ITALIC}};
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (!strcmp(k, "fg") || !strcmp(k, "bg")) {
            char sub[200];
            if (parse_colour(L, k[0] == 'f' ? &sp->fg : &sp->bg, sub, sizeof sub) != 0) {
                snprintf(why, n, "%s: %s", k, sub);
                lua_pop(L, 2);
                return -1;
            }
        } else {
            size_t i = 0;
            while (i < sizeof flags / sizeof *flags && strcmp(flags[i].k, k))
                i++;
            if (i == sizeof flags / sizeof *flags || !lua_isboolean(L, -1)) {
                snprintf(why, n,
                         i == sizeof flags / sizeof *flags
                             ? "unknown key '%s' (fg, bg, bold, dim, underline, reverse, italic)"
                             : "'%s' expects true or false",
                         k);
                lua_pop(L, 2);
                return -1;
            }
            if (lua_toboolean(L, -1))
                sp->attrs |= flags[i].a;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Reads a list of role values (heat or bars) into roles[first ..]. */
static int parse_list(lua_State *L, raw_theme *t, int first, int max, int *count,
                      const char *field, char *err, size_t n)
{
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) < 1) {
        snprintf(err, n, "field '%s': expected a list of colours, got %s", field,
                 luaL_typename(L, -1));
        return -1;
    }
    int len = (int)lua_rawlen(L, -1);
    if (len > max) {
        snprintf(err, n, "field '%s': at most %d colours, got %d", field, max, len);
        return -1;
    }
    for (int i = 0; i < len; i++) {
        lua_rawgeti(L, -1, i + 1);
        char why[256];
        if (parse_spec(L, &t->role[first + i], why, sizeof why) != 0) {
            snprintf(err, n, "field '%s', entry %d: %s", field, i + 1, why);
            lua_pop(L, 1);
            return -1;
        }
        lua_pop(L, 1);
    }
    *count = len;
    return 0;
}

/* What a theme may spend.  A theme is a table of colours (a few hundred instructions, a few
 * kilobytes); it runs on the UI thread, so a file that loops or allocates without end is
 * stopped with a message instead of freezing the workbench (the probe's M6). */
#define THEME_MAX_INSTRUCTIONS 1000000
#define THEME_MAX_BYTES (8u << 20)
#define THEME_FILE_MAX ((long)1 << 20)

/* lua_Alloc counting the bytes in use (*ud) and refusing to go past THEME_MAX_BYTES. */
static void *theme_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    size_t *used = ud, old = ptr ? osize : 0; /* without ptr, osize is a type tag */
    if (nsize == 0) {
        free(ptr);
        *used -= old;
        return NULL;
    }
    if (nsize > old && *used + (nsize - old) > THEME_MAX_BYTES)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        *used = *used - old + nsize;
    return p;
}

/* Called after THEME_MAX_INSTRUCTIONS; from then on at every instruction, so that a pcall in
 * the theme cannot catch the error and go on. */
static void theme_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, theme_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "the theme runs too long (over %d instructions)", THEME_MAX_INSTRUCTIONS);
}

/* Removes t[name] for each name of the NULL-terminated list from the table at the top. */
static void drop_fields(lua_State *L, const char *const *names)
{
    for (; *names; names++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *names);
    }
}

/* Runs a theme chunk (a file when path is set, else the text src) and reads its table into t
 * on top of what t holds.  Returns 0, or -1 with a message (without the file name).  The chunk
 * runs in a state of its own with the base library less its file functions (which can block,
 * on a FIFO or the terminal), string less its patterns (which can backtrack for hours inside
 * one instruction) and math, limited in instructions and memory; only source text is loaded
 * (Lua does not check precompiled chunks, and a damaged one crashes it). */
static int read_theme(raw_theme *t, const char *path, const char *src, char *err, size_t n)
{
    if (path) { /* a theme is a small regular file: not a FIFO to block on, nor /dev/zero */
        struct stat sb;
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            snprintf(err, n, "cannot open: %s", strerror(errno));
            return -1;
        }
        int st = fstat(fd, &sb);
        close(fd);
        if (st != 0 || !S_ISREG(sb.st_mode)) {
            snprintf(err, n, "not a regular file");
            return -1;
        }
        if (sb.st_size > THEME_FILE_MAX) {
            snprintf(err, n, "%lld bytes, more than a theme's limit of %ld",
                     (long long)sb.st_size, THEME_FILE_MAX);
            return -1;
        }
    }
    static const char *const base_drop[] = {"dofile", "loadfile", NULL};
    static const char *const string_drop[] = {"find", "match", "gmatch", "gsub", NULL};
    size_t used = 0;
    lua_State *L = lua_newstate(theme_alloc, &used);
    if (!L) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    drop_fields(L, base_drop);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    drop_fields(L, string_drop);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    lua_settop(L, 0);
    lua_sethook(L, theme_hook, LUA_MASKCOUNT, THEME_MAX_INSTRUCTIONS);
    int st = path ? luaL_loadfilex(L, path, "t") : luaL_loadstring(L, src);
    if (st == LUA_OK)
        st = lua_pcall(L, 0, 1, 0);
    int rc = 0;
    if (st == LUA_ERRMEM) {
        snprintf(err, n, "the theme needs more than %u MB", THEME_MAX_BYTES >> 20);
        rc = -1;
    } else if (st != LUA_OK) {
        snprintf(err, n, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
        rc = -1;
    } else if (!lua_istable(L, -1)) {
        snprintf(err, n, "expected the file to return a table, got %s", luaL_typename(L, -1));
        rc = -1;
    }
    lua_pushnil(L);
    while (rc == 0 && lua_next(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            snprintf(err, n, "field keys must be names, got %s", luaL_typename(L, -2));
            rc = -1;
            break;
        }
        const char *k = lua_tostring(L, -2);
        char why[300];
        if (!strcmp(k, "name")) {
            if (lua_type(L, -1) != LUA_TSTRING) {
                snprintf(err, n, "field 'name': expected a string");
                rc = -1;
            } else {
                snprintf(t->name, sizeof t->name, "%s", lua_tostring(L, -1));
            }
        } else if (!strcmp(k, "background")) {
            if (parse_colour(L, &t->bg, why, sizeof why) != 0) {
                snprintf(err, n, "field 'background': %s", why);
                rc = -1;
            }
        } else if (!strcmp(k, "heat")) {
            rc = parse_list(L, t, R_HEAT0, UI_MAX_HEAT, &t->nheat, k, err, n);
        } else if (!strcmp(k, "bars")) {
            rc = parse_list(L, t, R_SERIES0, UI_MAX_SERIES, &t->nseries, k, err, n);
        } else {
            int r = 0;
            while (r < NAMED_ROLES && strcmp(role_names[r], k))
                r++;
            if (r == NAMED_ROLES) {
                snprintf(err, n,
                         "unknown field '%s' (roles: text, dim, think, answer, right, wrong, bar, "
                         "bars, border, focus, title, prompt, error, selected, status, code, "
                         "plot, special, doubt, unsure, heat, background, name)",
                         k);
                rc = -1;
            } else if (parse_spec(L, &t->role[r], why, sizeof why) != 0) {
                snprintf(err, n, "field '%s': %s", k, why);
                rc = -1;
            }
        }
        lua_pop(L, rc == 0 ? 1 : 2);
    }
    lua_close(L);
    return rc;
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return 0;
    return 1;
}

/* Where theme NAME lives: a path as given, the user's config dir, then the data dir. */
static int readable(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block here */
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

static void find_theme(const char *name, char *path, size_t n)
{
    size_t l = strlen(name);
    if (strchr(name, '/') || (l > 4 && !strcmp(name + l - 4, ".lua")) || !valid_name(name)) {
        snprintf(path, n, "%s", name);
        return;
    }
    const char *cfg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char user[1024] = "";
    if (cfg && *cfg)
        snprintf(user, sizeof user, "%s/r1lab/themes/%s.lua", cfg, name);
    else if (home && *home)
        snprintf(user, sizeof user, "%s/.config/r1lab/themes/%s.lua", home, name);
    if (user[0] && readable(user)) {
        snprintf(path, n, "%s", user);
        return;
    }
    snprintf(path, n, "%s/themes/%s.lua", paths_datadir(), name);
}

/* Turns a file colour into what the terminal shows: c itself (256), the nearest of the 16
 * basic colours folded to 8 with *bright set (8), or nothing (0). */
static int degrade(int c, int colours, int *bright)
{
    *bright = 0;
    if (c < 0 || colours >= 256)
        return c;
    int rgb[3];
    xterm_rgb(c, rgb);
    int b = c < 16 ? c : nearest(rgb, 0, 16);
    if (b >= 8) {
        *bright = 1;
        b -= 8;
    }
    return b;
}

static void finish(ui_theme *out, const raw_theme *t, int colours, const char *file)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", t->name);
    snprintf(out->file, sizeof out->file, "%s", file ? file : "");
    out->colours = colours;
    out->nheat = t->nheat;
    out->nseries = t->nseries;
    /* attr[] holds the attributes now; ui_theme_apply adds the colour pairs, whose numbers
     * go in the fg/bg tables below */
    for (int r = 0; r < R_NROLES; r++)
        out->attr[r] = t->role[r].attrs;
}

/* The colours chosen per role, kept for ui_theme_apply (the theme struct carries attributes
 * only, so that the panes and the tests need no colour state). */
static short role_fg[R_NROLES], role_bg[R_NROLES];
static int role_has_colour[R_NROLES];

static void resolve_colours(ui_theme *out, const raw_theme *t, int colours)
{
    for (int r = 0; r < R_NROLES; r++) {
        const spec *sp = &t->role[r];
        int fg = sp->fg == -2 ? t->role[R_TEXT].fg : sp->fg;
        int bg = sp->bg == -2 ? t->bg : sp->bg;
        if (fg == -2)
            fg = -1;
        role_has_colour[r] = colours > 0;
        int bright = 0, bb;
        fg = degrade(fg, colours, &bright);
        bg = degrade(bg, colours, &bb);
        if (bright && !(sp->attrs & A_DIM))
            out->attr[r] |= A_BOLD;
        role_fg[r] = (short)fg;
        role_bg[r] = (short)bg;
    }
}

static void raw_init(raw_theme *t)
{
    memset(t, 0, sizeof *t);
    for (int r = 0; r < R_NROLES; r++)
        t->role[r].fg = t->role[r].bg = -2;
    t->bg = -1;
}


int ui_theme_load(ui_theme *t, const char *name, int colours, char *err, size_t n)
{
    /* without colours only the attributes of the mono theme can show */
    const char *want = colours == 0 ? "mono" : name;
    raw_theme raw;
    raw_init(&raw);
    char path[1200], why[600];
    int rc = 0;
    err[0] = '\0';
    find_theme(want, path, sizeof path);
    if (!readable(path)) {
        /* the shipped themes are built in too: a missing data dir is no error for them */
        if (strcmp(want, "default") != 0 && strcmp(want, "mono") != 0) {
            snprintf(err, n, "%s: cannot read the theme file (is there a theme called '%s'?); "
                             "using the default theme", path, want);
            rc = -1;
        }
        path[0] = '\0';
    } else if (read_theme(&raw, path, NULL, why, sizeof why) != 0) {
        /* Lua's own messages start with the file name already */
        if (!strncmp(why, path, strlen(path)))
            snprintf(err, n, "%s; using the default theme", why);
        else
            snprintf(err, n, "%s: %s; using the default theme", path, why);
        rc = -1;
        path[0] = '\0';
    } else if (!raw.name[0]) {
        snprintf(raw.name, sizeof raw.name, "%s", want);
    }
    if (!path[0]) {
        raw_init(&raw);
        read_theme(&raw, NULL, colours == 0 || (!strcmp(want, "mono") && rc == 0)
                                   ? builtin_mono : builtin_default, why, sizeof why);
    }
    finish(t, &raw, colours, path);
    resolve_colours(t, &raw, colours);
    return rc;
}

int ui_theme_terminal_colours(void)
{
    const char *nc = getenv("NO_COLOR");
    if ((nc && *nc) || !has_colors())
        return 0;
    return COLORS >= 256 ? 256 : 8;
}

void ui_theme_apply(const ui_theme *t)
{
    ui_cur_theme = *t;
    /* pair 0 in the terminal's own colours (with no colours: nothing is set at all) */
    int have_default = has_colors() && use_default_colors() == OK;
    if (t->colours == 0 || !has_colors())
        return;
    for (int r = 0; r < R_NROLES && r + 1 < COLOR_PAIRS; r++) {
        if (!role_has_colour[r])
            continue;
        short fg = role_fg[r], bg = role_bg[r];
        if (!have_default) {
            if (fg < 0)
                fg = COLOR_WHITE;
            if (bg < 0)
                bg = COLOR_BLACK;
        }
        if (fg >= COLORS)
            fg = COLOR_WHITE;
        if (bg >= COLORS)
            bg = COLOR_BLACK;
        init_pair((short)(r + 1), fg, bg);
        ui_cur_theme.attr[r] |= COLOR_PAIR(r + 1);
    }
}
