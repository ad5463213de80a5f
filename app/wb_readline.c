/* wb_readline.c — GNU readline inside the curses screen, through its callback interface.
 *
 * The traps (STYLE.md) and how this file meets them: readline never touches the terminal —
 * its input comes from a byte queue this file fills (rl_getc_function, with
 * rl_input_available_hook saying whether more is queued), its output stream is /dev/null,
 * its terminal preparation is a no-op (curses owns the tty modes), it catches no signals and
 * leaves LINES/COLUMNS alone; the line is drawn by the workbench (rl_redisplay_function only
 * asks for a frame), completion lists go to the output pane
 * (rl_completion_display_matches_hook), and an accepted line is only queued by the line
 * handler — it is handled after rl_callback_read_char returns.
 *
 * History lives in ~/.local/state/r1lab/history (or $XDG_STATE_HOME/r1lab/history), one entry
 * per line with newlines escaped, written atomically.  Tab completes Lua globals, fields of
 * tables and methods of userdata (the __index table of their metatable), from the worker's
 * state while it is idle. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "nb.h"
#include "wb.h"

static wb *cur; /* readline's callbacks carry no user pointer */

/* ------------------------------------------------------------------ the byte queue */

static unsigned char *q;
static size_t q_head, q_len, q_cap;

static int q_getc(FILE *f)
{
    (void)f;
    if (q_head < q_len)
        return q[q_head++];
    return 0; /* never reached: readline is only called with bytes queued */
}

static int q_available(void)
{
    return q_head < q_len;
}

static void on_line(char *line)
{
    if (!line) {
        cur->eof = 1;
        return;
    }
    char **p = realloc(cur->pending, sizeof *p * (size_t)(cur->npending + 1));
    if (!p) {
        free(line);
        return;
    }
    cur->pending = p;
    cur->pending[cur->npending++] = line; /* handled after rl_callback_read_char returns */
}

static void redisplay(void)
{
    cur->dirty = 1;
}

static void no_prep(int meta)
{
    (void)meta;
}

static void no_deprep(void)
{
}

void wb_rl_feed(wb *w, const char *bytes, int n)
{
    cur = w;
    if (q_len + (size_t)n > q_cap) {
        size_t cap = q_cap ? q_cap : 256;
        while (cap < q_len + (size_t)n)
            cap *= 2;
        unsigned char *p = realloc(q, cap);
        if (!p)
            return;
        q = p;
        q_cap = cap;
    }
    memcpy(q + q_len, bytes, (size_t)n);
    q_len += (size_t)n;
    while (q_head < q_len)
        rl_callback_read_char();
    q_head = q_len = 0;
    w->dirty = 1;
}

/* ------------------------------------------------------------------ the line */

void wb_rl_view(ui_repl_view *v, char *buf, size_t n)
{
    const char *p = rl_display_prompt ? rl_display_prompt : rl_prompt ? rl_prompt : "";
    size_t j = 0;
    for (size_t i = 0; p[i] && j + 1 < n; i++)
        if (p[i] != RL_PROMPT_START_IGNORE && p[i] != RL_PROMPT_END_IGNORE)
            buf[j++] = p[i];
    buf[j] = '\0';
    v->prompt = buf;
    v->line = rl_line_buffer ? rl_line_buffer : "";
    v->point = rl_point;
}

void wb_rl_set_prompt(wb *w, const char *prompt)
{
    snprintf(w->prompt, sizeof w->prompt, "%s", prompt);
    rl_set_prompt(w->prompt);
    w->dirty = 1;
}

void wb_rl_set_line(wb *w, const char *text)
{
    rl_replace_line(text, 0);
    rl_point = rl_end;
    rl_mark = 0;
    w->dirty = 1;
}

int wb_rl_line_empty(void)
{
    return rl_end == 0;
}

int wb_rl_busy(void)
{
    return RL_ISSTATE(RL_STATE_ISEARCH | RL_STATE_NSEARCH | RL_STATE_NUMERICARG |
                      RL_STATE_MULTIKEY | RL_STATE_VIMOTION | RL_STATE_COMPLETING) != 0;
}

/* ------------------------------------------------------------------ history */

static void history_path(wb *w, char *buf, size_t n)
{
    snprintf(buf, n, "%s/history", w->state_dir);
}

static void load_history(wb *w)
{
    char path[1100];
    history_path(w, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        size_t j = 0; /* unescape \n and \\ in place */
        for (ssize_t i = 0; i < len; i++) {
            if (line[i] == '\\' && i + 1 < len) {
                i++;
                line[j++] = line[i] == 'n' ? '\n' : line[i];
            } else {
                line[j++] = line[i];
            }
        }
        line[j] = '\0';
        if (j)
            add_history(line);
    }
    free(line);
    fclose(f);
    using_history();
}

int wb_rl_save_history(wb *w)
{
    char path[1100], err[1200];
    history_path(w, path, sizeof path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    HIST_ENTRY **list = history_list();
    for (int i = 0; list && list[i]; i++) {
        for (const char *s = list[i]->line; ; s++) {
            if (n + 4 > cap) {
                char *p = realloc(buf, cap * 2);
                if (!p) {
                    free(buf);
                    return -1;
                }
                buf = p;
                cap *= 2;
            }
            if (!*s)
                break;
            if (*s == '\n' || *s == '\\') {
                buf[n++] = '\\';
                buf[n++] = *s == '\n' ? 'n' : '\\';
            } else {
                buf[n++] = *s;
            }
        }
        buf[n++] = '\n';
    }
    int rc = nb_write_atomic(path, buf, n, 0600, err, sizeof err);
    free(buf);
    if (rc != 0)
        ui_model_printf(&w->m, OUT_ERROR, "history not saved: %s", err);
    return rc;
}

void wb_rl_add_history(wb *w, const char *entry)
{
    if (!entry || !*entry)
        return;
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && !strcmp(last->line, entry))
        return;
    add_history(entry);
    /* back to the end of the history: otherwise readline takes the next line for an edit of
     * this entry and reverts the entry when the line is accepted */
    using_history();
    static int since_save;
    if (++since_save >= 10) { /* a crash loses at most the last few lines */
        since_save = 0;
        wb_rl_save_history(w);
    }
}

/* ------------------------------------------------------------------ completion */

static char **cands;
static int ncands, capcands;

static void add_cand(const char *s)
{
    for (int i = 0; i < ncands; i++)
        if (!strcmp(cands[i], s))
            return;
    if (ncands == capcands) {
        int cap = capcands ? capcands * 2 : 64;
        char **p = realloc(cands, sizeof *p * cap);
        if (!p)
            return;
        cands = p;
        capcands = cap;
    }
    char *d = strdup(s);
    if (d)
        cands[ncands++] = d;
}

static void clear_cands(void)
{
    for (int i = 0; i < ncands; i++)
        free(cands[i]);
    ncands = 0;
}

static int is_alpha(char c)
{
    return c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z');
}

static int is_name(const char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alpha(s[i]) && !(s[i] >= '0' && s[i] <= '9'))
            return 0;
    return 1;
}

/* Adds the string keys of the table at idx that start with part (functions only when
 * methods is set), each prefixed with pre. */
static void keys_of(lua_State *L, int idx, const char *pre, const char *part, int methods)
{
    idx = lua_absindex(L, idx);
    size_t pl = strlen(part);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t kl;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : NULL;
        if (k && is_name(k, kl) && !strncmp(k, part, pl) && (!methods || lua_isfunction(L, -1))) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s%s", pre, k);
            add_cand(buf);
        }
        lua_pop(L, 1);
    }
}

/* Adds the keys of the value on top and of its metatable's __index table (userdata methods,
 * string methods, classes), following __index chains a few levels. */
static void fields_of(lua_State *L, const char *pre, const char *part, int methods)
{
    int v = lua_gettop(L);
    if (lua_istable(L, v))
        keys_of(L, v, pre, part, methods);
    lua_pushvalue(L, v);
    for (int depth = 0; depth < 4; depth++) {
        if (!lua_getmetatable(L, -1))
            break;
        lua_getfield(L, -1, "__index"); /* a metatable is a plain table: rawget-like */
        if (!lua_istable(L, -1)) {
            lua_pop(L, 2);
            break;
        }
        keys_of(L, -1, pre, part, methods);
        lua_remove(L, -2);
        lua_remove(L, -2);
    }
    lua_settop(L, v);
}

/* Runs under lua_pcall: the candidates for the word (light userdata) on the idle state. */
static int gather(lua_State *L)
{
    const char *text = lua_touserdata(L, 1);
    const char *sep = NULL;
    for (const char *p = text; *p; p++)
        if (*p == '.' || *p == ':')
            sep = p;
    lua_pushglobaltable(L);
    if (!sep) {
        static const char *const kw[] = {"and", "break", "do", "else", "elseif", "end",
                                         "false", "for", "function", "goto", "if", "in",
                                         "local", "nil", "not", "or", "repeat", "return",
                                         "then", "true", "until", "while", NULL};
        for (int i = 0; kw[i]; i++)
            if (!strncmp(kw[i], text, strlen(text)))
                add_cand(kw[i]);
        fields_of(L, "", text, 0);
        return 0;
    }
    /* walk the names before the separator: a.b.c, the value so far at `at` (replaced at
     * each name, so that a long chain such as _G._G._G... keeps the stack at its size) */
    int at = lua_gettop(L);
    for (const char *p = text; p < sep;) {
        const char *e = p;
        while (e < sep && *e != '.' && *e != ':')
            e++;
        if (!is_name(p, (size_t)(e - p)))
            return 0;
        lua_pushlstring(L, p, (size_t)(e - p));
        if (lua_istable(L, at)) {
            lua_rawget(L, at);
        } else { /* a field of a userdata or string: look in its __index table */
            lua_pop(L, 1);
            if (!lua_getmetatable(L, at))
                return 0;
            lua_getfield(L, -1, "__index");
            if (!lua_istable(L, -1))
                return 0;
            lua_pushlstring(L, p, (size_t)(e - p));
            lua_rawget(L, -2);
        }
        if (lua_isnil(L, -1))
            return 0;
        lua_replace(L, at);
        lua_settop(L, at);
        p = *e ? e + 1 : e;
    }
    char pre[512];
    snprintf(pre, sizeof pre, "%.*s", (int)(sep - text + 1), text);
    fields_of(L, pre, sep + 1, *sep == ':');
    return 0;
}

static const char *const commands[] = {":help", ":load ", ":ask ", ":theme ", ":open ", ":save",
                                        ":run", ":runall", ":edit ", ":new ", ":add ", ":demo",
                                        ":clear", ":branch ", ":patch ", ":compare ", ":mpirun ",
                                        ":quit", NULL};

static char *generator(const char *text, int state)
{
    static int i;
    (void)text;
    if (!state)
        i = 0;
    return i < ncands ? strdup(cands[i++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1;
    rl_completion_suppress_append = 1;
    clear_cands();
    const char *line = rl_line_buffer + strspn(rl_line_buffer, " ");
    if (line[0] == ':') {
        if (start <= (int)(line - rl_line_buffer)) {
            for (int i = 0; commands[i]; i++)
                if (!strncmp(commands[i], line, strlen(text)))
                    add_cand(commands[i]);
        } else { /* :open, :load, :save ... take file names */
            rl_attempted_completion_over = 0;
            rl_completion_suppress_append = 0;
            return NULL;
        }
    } else {
        lua_State *L = wb_worker_try_lock(cur->worker);
        if (!L) {
            ui_model_status(&cur->m, "no completion while a job runs");
            cur->status_at = r1_now();
            return NULL;
        }
        int top = lua_gettop(L);
        lua_pushcfunction(L, gather);
        lua_pushlightuserdata(L, (void *)text);
        lua_pcall(L, 1, 0, 0);
        lua_settop(L, top);
        wb_worker_unlock(cur->worker);
    }
    if (ncands == 0)
        return NULL;
    return rl_completion_matches(text, generator);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void show_matches(char **matches, int num, int max)
{
    (void)max;
    ui_model *m = &cur->m;
    for (int i = 0; i < m->nmatches; i++)
        free(m->matches[i]);
    free(m->matches);
    m->matches = NULL;
    m->nmatches = 0;
    int n = num > 200 ? 200 : num;
    char **list = calloc((size_t)n + 1, sizeof *list);
    if (!list)
        return;
    for (int i = 0; i < n; i++)
        list[i] = strdup(matches[i + 1]);
    qsort(list, (size_t)n, sizeof *list, cmp);
    m->matches = list;
    m->nmatches = n;
    cur->dirty = 1;
}

/* ------------------------------------------------------------------ setup */

/* Alt-Enter: a newline inside the line (a multi-line chunk or cell) */
static int ignore_key(int count, int key)
{
    (void)count, (void)key;
    return 0;
}

static int insert_newline(int count, int key)
{
    (void)count;
    (void)key;
    rl_insert_text("\n");
    return 0;
}

void wb_rl_init(wb *w)
{
    cur = w;
    rl_readline_name = "r1lab";
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_getc_function = q_getc;
    rl_input_available_hook = q_available;
    rl_redisplay_function = redisplay;
    rl_prep_term_function = no_prep;
    rl_deprep_term_function = no_deprep;
    rl_outstream = fopen("/dev/null", "w"); /* the bell and anything else readline writes */
    rl_instream = stdin;
    rl_attempted_completion_function = complete;
    rl_completion_display_matches_hook = show_matches;
    rl_completer_word_break_characters = " \t\n\"'`@$><=;|&{(,+-*/%^~#[]";
    rl_basic_word_break_characters = rl_completer_word_break_characters;
    rl_variable_bind("enable-bracketed-paste", "off");
    rl_variable_bind("bell-style", "none");
    rl_bind_keyseq("\033\r", insert_newline);
    /* readline's own bracketed-paste mode reads until the end marker, which this file's
     * queue may not hold (an endless loop): the workbench handles pastes (wb.c), and the
     * markers, should they arrive here, do nothing */
    rl_bind_keyseq("\033[200~", ignore_key);
    rl_bind_keyseq("\033[201~", ignore_key);
    using_history();
    stifle_history(1000);
    load_history(w);
    snprintf(w->prompt, sizeof w->prompt, "r1> ");
    rl_callback_handler_install(w->prompt, on_line);
}

void wb_rl_done(wb *w)
{
    cur = w;
    rl_callback_handler_remove();
    wb_rl_save_history(w);
    clear_history();
    clear_cands();
    free(cands);
    cands = NULL;
    capcands = 0;
    free(q);
    q = NULL;
    q_cap = q_head = q_len = 0;
    if (rl_outstream && rl_outstream != stdout) {
        fclose(rl_outstream);
        rl_outstream = NULL;
    }
}
