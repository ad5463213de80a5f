/* wb.c — the workbench's UI thread: it owns the terminal (curses, readline), waits in poll()
 * on the keyboard, the worker's event pipe, the captured stdout/stderr and a signal pipe,
 * applies what arrives to the screen model and draws at most ~30 frames a second, one
 * doupdate() each.  Keys are handled as soon as they arrive, so the screen answers while the
 * worker trains.
 *
 * The terminal is always given back: on quit, SIGTERM and SIGHUP through the normal path, on
 * a crash through a signal handler that calls endwin() before dying, and at exit(). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <readline/readline.h>

#include "events.h"
#include "nb.h"
#include "paths.h"
#include "r1.h"
#include "wb.h"

#if defined(__SANITIZE_ADDRESS__)
#define WB_SANITIZED 1 /* leave crashes and stderr to the sanitizer */
#else
#define WB_SANITIZED 0
#endif

static volatile sig_atomic_t got_winch, got_term, got_int;
static int sig_pipe[2] = {-1, -1};
static wb_worker *sig_worker;
static int curses_on;
static FILE *tty_out;
static SCREEN *screen;
static const char mouse_on[] = "\033[?1000h\033[?1006h", mouse_off[] = "\033[?1006l\033[?1000l";

/* ------------------------------------------------------------------ signals and restoring */

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGWINCH)
        got_winch = 1;
    else if (sig == SIGINT) {
        got_int = 1;
        wb_worker_interrupt(sig_worker);
    } else {
        got_term = 1;
    }
    char c = 1;
    ssize_t r = write(sig_pipe[1], &c, 1);
    (void)r;
    errno = saved;
}

static void restore_terminal(void)
{
    if (!curses_on)
        return;
    curses_on = 0;
    if (tty_out) {
        ssize_t r = write(fileno(tty_out), mouse_off, sizeof mouse_off - 1);
        (void)r;
    }
    endwin();
}

static void on_fatal(int sig)
{
    restore_terminal(); /* not async-signal-safe, but the process is dying anyway */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (!WB_SANITIZED) {
        sa.sa_handler = on_fatal;
        sa.sa_flags = SA_RESETHAND;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        sigaction(SIGFPE, &sa, NULL);
        sigaction(SIGILL, &sa, NULL);
        sigaction(SIGABRT, &sa, NULL);
    }
}

static void reset_signals(void)
{
    int sigs[] = {SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
}

/* ------------------------------------------------------------------ windows and frames */

static WINDOW *make_win(ui_rect r, int leave)
{
    if (r.h < 1 || r.w < 1 || r.y + r.h > LINES || r.x + r.w > COLS)
        return NULL;
    WINDOW *x = newwin(r.h, r.w, r.y, r.x);
    if (x) {
        keypad(x, FALSE); /* the workbench decodes keys itself; readline needs the raw bytes */
        leaveok(x, leave ? TRUE : FALSE);
        wbkgdset(x, ' ' | ui_attr(R_TEXT));
    }
    return x;
}

static void free_wins(wb *w)
{
    for (int p = 0; p < UI_NPANES; p++) {
        if (w->win[p])
            delwin(w->win[p]);
        w->win[p] = NULL;
    }
    if (w->repl)
        delwin(w->repl);
    if (w->status)
        delwin(w->status);
    w->repl = w->status = NULL;
}

static void build_wins(wb *w)
{
    free_wins(w);
    for (int p = 0; p < UI_NPANES; p++)
        if (w->lo.shown[p])
            w->win[p] = make_win(w->lo.pane[p], 1);
    w->repl = make_win(w->lo.repl, 0);
    w->status = make_win(w->lo.status, 1);
    w->built = w->lo;
}

/* A box of h x wd in the middle of the screen, for overlays (deleted by the caller). */
static WINDOW *centered(int h, int wd)
{
    int lines = LINES - (LINES >= 3 ? 1 : 0);
    if (h > lines)
        h = lines;
    if (wd > COLS)
        wd = COLS;
    if (h < 1 || wd < 1)
        return NULL;
    WINDOW *x = newwin(h, wd, (lines - h) / 2, (COLS - wd) / 2);
    if (x) {
        leaveok(x, TRUE);
        wbkgdset(x, ' ' | ui_attr(R_TEXT));
    }
    return x;
}

static void frame(wb *w)
{
    ui_model *m = &w->m;
    char pbuf[256];
    ui_repl_view v;
    wb_rl_view(&v, pbuf, sizeof pbuf);
    int maxr = LINES / 4 < 1 ? 1 : LINES / 4 > 8 ? 8 : LINES / 4;
    int rr = ui_repl_rows(&v, COLS > 2 ? COLS - 2 : 1, maxr);
    ui_layout_compute(&w->lo, LINES, COLS, m->zoom, rr);
    if (memcmp(&w->lo, &w->built, sizeof w->lo) != 0)
        build_wins(w);
    for (int p = 0; p < UI_NPANES; p++) {
        m->pane_h[p] = w->win[p] ? w->lo.pane[p].h : 0;
        m->pane_w[p] = w->win[p] ? w->lo.pane[p].w : 0;
    }
    leaveok(stdscr, TRUE);
    wbkgdset(stdscr, ' ' | ui_attr(R_TEXT));
    werase(stdscr);
    ui_layout_draw_frame(stdscr, &w->lo, m);
    wnoutrefresh(stdscr);
    for (int p = 0; p < UI_NPANES; p++)
        if (w->win[p]) {
            ui_pane_get(p)->draw(w->win[p], m, m->focus == p);
            wnoutrefresh(w->win[p]);
        }
    if (w->status) {
        ui_status_draw(w->status, m);
        wnoutrefresh(w->status);
    }
    int overlay = m->help || m->quit_confirm;
    if (w->repl) { /* last: the cursor stays on the input line */
        ui_repl_draw(w->repl, &v, m->focus == UI_REPL);
        wnoutrefresh(w->repl);
    }
    if (m->help) {
        WINDOW *o = centered(LINES, COLS);
        if (o) {
            ui_help_draw(o, m);
            wnoutrefresh(o);
            delwin(o);
        }
    }
    if (m->quit_confirm) {
        const char *q = w->confirm == WB_CONFIRM_UNSAVED
                            ? "Unsaved notebook changes. Quit? y: quit  s: save and quit  n: stay"
                            : "Quit r1lab? (y/n)";
        WINDOW *o = centered(5, (int)strlen(q) + 6);
        if (o) {
            ui_confirm_draw(o, q);
            wnoutrefresh(o);
            delwin(o);
        }
    }
    static int cursor = -1;
    int want = m->focus == UI_REPL && !overlay && w->repl ? 1 : 0;
    if (want != cursor) {
        curs_set(want);
        cursor = want;
    }
    doupdate();
}

/* ------------------------------------------------------------------ keys */

static int shown(const wb *w, int p)
{
    return p == UI_REPL || (w->lo.shown[p] && w->win[p]) || w->m.zoom >= 0;
}

static void focus_step(wb *w, int d)
{
    ui_model *m = &w->m;
    int f = m->focus;
    for (int i = 0; i <= UI_NPANES; i++) {
        f = (f + d + UI_NPANES + 1) % (UI_NPANES + 1);
        if (shown(w, f))
            break;
    }
    m->focus = f;
    if (f != UI_REPL)
        m->last_pane = f;
    if (m->zoom >= 0 && f != UI_REPL)
        m->zoom = f; /* a zoomed screen shows the focused pane */
}

static void ctrl_c(wb *w)
{
    ui_model *m = &w->m;
    if (wb_cmd_cancel(w))
        return;
    if (w->edit_cell >= 0 || w->chunk || !wb_rl_line_empty()) {
        free(w->chunk);
        w->chunk = NULL;
        w->edit_cell = -1;
        rl_callback_sigcleanup();
        wb_rl_set_line(w, "");
        wb_rl_set_prompt(w, "r1> ");
        return;
    }
    w->confirm = WB_CONFIRM_QUIT;
    m->quit_confirm = 1;
}

static void confirm_key(wb *w, int k)
{
    ui_model *m = &w->m;
    m->quit_confirm = 0;
    int kind = w->confirm;
    w->confirm = WB_CONFIRM_NONE;
    if (k == 'y' || k == 'Y') {
        if (kind == WB_CONFIRM_QUIT)
            wb_cmd_quit(w);
        else
            w->quit = 1;
    } else if ((k == 's' || k == 'S') && kind == WB_CONFIRM_UNSAVED) {
        char err[1200];
        if (nb_save(w->nb, NULL, err, sizeof err) == 0)
            w->quit = 1;
        else
            ui_model_printf(m, OUT_ERROR, "not saved: %s", err);
    }
}

static void mouse(wb *w, const wb_key *k)
{
    ui_model *m = &w->m;
    if (!k->mpress)
        return;
    int p = ui_layout_hit(&w->lo, k->my, k->mx);
    if (p < 0)
        return;
    if (k->mbutton == 64 || k->mbutton == 65) { /* the wheel scrolls what is under it */
        if (p < UI_NPANES)
            for (int i = 0; i < 3; i++)
                ui_pane_get(p)->key(m, k->mbutton == 64 ? UI_KEY_UP : UI_KEY_DOWN);
        return;
    }
    if (k->mbutton != 0)
        return;
    m->focus = p;
    if (p < UI_NPANES) {
        m->last_pane = p;
        ui_rect r = w->lo.pane[p];
        if (k->my >= r.y && k->my < r.y + r.h && k->mx >= r.x && k->mx < r.x + r.w)
            ui_pane_get(p)->click(m, k->my - r.y, k->mx - r.x);
    }
}

static void act(wb *w)
{
    int req = w->m.request, *a = w->m.req_arg;
    w->m.request = UI_REQ_NONE;
    char src[128], what[64];
    switch (req) {
    case UI_REQ_RUN_CELL:
        wb_cmd_run_cell(w, w->m.nb_cur);
        break;
    case UI_REQ_EDIT_CELL:
        wb_cmd_edit_cell(w, w->m.nb_cur);
        break;
    case UI_REQ_LENS: /* the microscope's keys run its Lua calls (lua_ui_views.c) */
        snprintf(src, sizeof src, "local _ = ui.lens(%d)", a[0] + 1);
        snprintf(what, sizeof what, "logit lens at token %d", a[0] + 1);
        wb_cmd_submit(w, WB_JOB_LUA, src, "=lens", -1, what);
        break;
    case UI_REQ_ATTN: { /* layer and head -1: the defaults (the last layer, the mean) */
        char lay[16] = "nil", head[16] = "nil";
        if (a[1] >= 0)
            snprintf(lay, sizeof lay, "%d", a[1]);
        if (a[2] >= 0)
            snprintf(head, sizeof head, "%d", a[2] + 1);
        snprintf(src, sizeof src, "local _ = ui.attention(%d, %s, %s)", a[0] + 1, lay, head);
        snprintf(what, sizeof what, "attention at token %d", a[0] + 1);
        wb_cmd_submit(w, WB_JOB_LUA, src, "=attention", -1, what);
        break;
    }
    case UI_REQ_BRANCH:
        snprintf(src, sizeof src, "local _ = ui.branch(%d, %d)", a[0] + 1, a[1]);
        snprintf(what, sizeof what, "branching at token %d", a[0] + 1);
        wb_cmd_submit(w, WB_JOB_LUA, src, "=branch", -1, what);
        break;
    case UI_REQ_BRANCH_TEXT:
        wb_rl_set_line(w, ":branch ");
        w->m.focus = UI_REPL;
        ui_model_status(&w->m, "type the text to put at token %d, then Enter", a[0] + 1);
        break;
    case UI_REQ_TREE_SHOW:
        snprintf(src, sizeof src, "local _ = ui.tree_show(%d)", a[0]);
        snprintf(what, sizeof what, "showing branch %d", a[0]);
        wb_cmd_submit(w, WB_JOB_LUA, src, "=tree", -1, what);
        break;
    }
}

static void clear_matches(ui_model *m)
{
    for (int i = 0; i < m->nmatches; i++)
        free(m->matches[i]);
    free(m->matches);
    m->matches = NULL;
    m->nmatches = 0;
}

/* A bracketed paste (terminals wrap pasted text in ESC[200~ ... ESC[201~) goes into the input
 * line as text: its line ends become newlines in the line, as Alt-Enter makes them, so pasted
 * code is edited and run as one chunk with Enter.  The markers never reach readline (whose
 * own paste mode would read past the bytes this file queues).  A start marker whose end never
 * comes lapses after half a second without input, so Enter works again. */
static int paste(wb *w, const wb_key *k)
{
    if (k->key == UI_KEY_PASTE_BEGIN || k->key == UI_KEY_PASTE_END) {
        w->paste_at = k->key == UI_KEY_PASTE_BEGIN ? r1_now() : 0;
        return 1;
    }
    if (w->paste_at > 0 && r1_now() - w->paste_at > 0.5)
        w->paste_at = 0;
    if (w->paste_at > 0) {
        w->paste_at = r1_now();
        if (k->key == UI_KEY_ENTER || k->key == '\n') {
            w->m.focus = UI_REPL;
            wb_rl_feed(w, "\033\r", 2);
            return 1;
        }
    }
    return 0;
}

static void key(wb *w, const wb_key *k, const char *raw)
{
    ui_model *m = &w->m;
    int c = k->key;
    if (paste(w, k)) {
        w->dirty = 1;
        return;
    }
    w->dirty = 1;
    if (c != UI_KEY_TAB && m->matches)
        clear_matches(m);
    if (m->quit_confirm) {
        confirm_key(w, c);
        return;
    }
    if (m->help) {
        if (c == UI_KEY_UP || c == UI_KEY_PGUP)
            m->help_scroll = m->help_scroll > 0 ? m->help_scroll - (c == UI_KEY_UP ? 1 : 10) : 0;
        else if (c == UI_KEY_DOWN || c == UI_KEY_PGDN)
            m->help_scroll += c == UI_KEY_DOWN ? 1 : 10;
        else
            m->help = 0;
        if (m->help_scroll < 0)
            m->help_scroll = 0;
        return;
    }
    switch (c) {
    case UI_KEY_CTRL('c'): ctrl_c(w); return;
    case UI_KEY_MOUSE: mouse(w, k); return;
    case UI_KEY_F1: m->help = 1; m->help_scroll = 0; return;
    case UI_KEY_BTAB: focus_step(w, -1); return;
    case UI_KEY_F2: {
        int p = m->focus == UI_REPL ? UI_OUTPUT : m->focus;
        m->zoom = m->zoom == p ? -1 : p;
        return;
    }
    default: break;
    }
    if (m->demo && m->focus != UI_REPL && !wb_rl_busy()) {
        if (c == ' ') {
            wb_cmd_demo_step(w);
            return;
        }
        if (c == 'a') {
            m->demo = m->demo == 2 ? 1 : 2;
            w->demo_at = r1_now() + 1.0;
            return;
        }
        if (c == UI_KEY_ESC) {
            m->demo = 0;
            m->focus = UI_REPL;
            return;
        }
    }
    if (m->focus == UI_REPL) {
        if (c == UI_KEY_TAB && wb_rl_line_empty() && !wb_rl_busy()) {
            focus_step(w, +1);
            return;
        }
        if ((c == UI_KEY_PGUP || c == UI_KEY_PGDN) && !wb_rl_busy()) {
            ui_pane_get(UI_OUTPUT)->key(m, c);
            return;
        }
        wb_rl_feed(w, raw, k->len);
        return;
    }
    int p = m->focus;
    if (c == UI_KEY_TAB) {
        focus_step(w, +1);
    } else if (c == UI_KEY_ESC && !(p == UI_GRPO && m->reader)) {
        if (m->explain[p])
            m->explain[p] = 0;
        else
            m->focus = UI_REPL;
    } else if (c == 'z') {
        m->zoom = m->zoom == p ? -1 : p;
    } else if (c == 'e') {
        m->explain[p] = !m->explain[p];
    } else if (m->explain[p] && (c == UI_KEY_UP || c == UI_KEY_DOWN || c == UI_KEY_PGUP ||
                                 c == UI_KEY_PGDN)) { /* scroll the explanation */
        int d = c == UI_KEY_UP ? -1 : c == UI_KEY_DOWN ? 1 : c == UI_KEY_PGUP ? -5 : 5;
        m->explain[p] += d;
        if (m->explain[p] < 1)
            m->explain[p] = 1;
        int most = 1 + ui_wrap(ui_pane_get(p)->explain, m->pane_w[p] > 0 ? m->pane_w[p] : 1,
                               NULL, NULL);
        if (m->explain[p] > most)
            m->explain[p] = most;
    } else if (c == '?') {
        m->help = 1;
        m->help_scroll = 0;
    } else if (ui_pane_get(p)->key(m, c)) {
        act(w);
    } else if (c < UI_KEY_UP && c != UI_KEY_ESC) { /* typing goes back to the input line */
        m->focus = UI_REPL;
        wb_rl_feed(w, raw, k->len);
    }
}

/* Decodes and handles the bytes in buf; returns how many were used (the rest may be the
 * start of an escape sequence still arriving). */
static int keys(wb *w, const unsigned char *buf, int n, int final)
{
    int used = 0;
    while (used < n && !w->quit) {
        wb_key k;
        int len = wb_key_decode(buf + used, n - used, final, &k);
        if (len == 0)
            break;
        if (k.key == UI_KEY_OTHER && len == 2 && buf[used] == 0x1b && w->m.focus != UI_REPL) {
            /* in a pane, Esc and a key typed quickly after it are two keys, not Alt+key */
            k.key = UI_KEY_ESC;
            k.len = len = 1;
        }
        key(w, &k, (const char *)buf + used);
        used += len;
        /* lines readline accepted, handled now that it returned */
        while (w->npending > 0) {
            char *line = w->pending[0];
            memmove(w->pending, w->pending + 1, sizeof *w->pending * (size_t)--w->npending);
            wb_cmd_line(w, line);
            free(line);
        }
        if (w->eof) {
            w->eof = 0;
            wb_cmd_quit(w);
        }
    }
    return used;
}

/* ------------------------------------------------------------------ setup */

static void state_dir(wb *w)
{
    const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (x && *x)
        snprintf(w->state_dir, sizeof w->state_dir, "%s/r1lab", x);
    else
        snprintf(w->state_dir, sizeof w->state_dir, "%s/.local/state/r1lab",
                 home && *home ? home : ".");
    r1_error err = {0};
    if (r1_mkdirs(w->state_dir, 0700, &err) != R1_OK) /* XDG: state folders are private */
        ui_model_printf(&w->m, OUT_ERROR, "%s (history is not kept)", err.msg);
}

static int cap_fd = -1, saved_out = -1, saved_err = -1;

/* stdout (and stderr, except under the sanitizers) into a pipe shown in the output pane:
 * nothing else may write over the screen. */
static void capture_output(void)
{
    int p[2];
    fflush(stdout);
    fflush(stderr);
    if (pipe(p) != 0)
        return;
    saved_out = dup(1);
    dup2(p[1], 1);
    if (!WB_SANITIZED) {
        saved_err = dup(2);
        dup2(p[1], 2);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    cap_fd = p[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static void release_output(void)
{
    fflush(stdout);
    fflush(stderr);
    if (saved_out >= 0) {
        dup2(saved_out, 1);
        close(saved_out);
    }
    if (saved_err >= 0) {
        dup2(saved_err, 2);
        close(saved_err);
    }
    if (cap_fd >= 0)
        close(cap_fd);
    cap_fd = saved_out = saved_err = -1;
}

static void drain_fd(wb *w, int fd)
{
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf - 1)) > 0) {
        buf[r] = '\0';
        ui_model_print(&w->m, OUT_TEXT, buf);
        w->dirty = 1;
    }
}

static void drain_events(wb *w)
{
    ev *e;
    for (int n = 0; n < 4000 && (e = ev_take()); n++) {
        if (!wb_cmd_event(w, e))
            ui_model_apply(&w->m, e);
        ev_free(e);
        w->dirty = 1;
    }
}

/* The built-in model's folder when this install has one (dir, n bytes), else NULL. */
static const char *builtin_dir(char *dir, size_t n)
{
    paths_data(dir, n, "models/builtin");
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    return access(cfg, R_OK) == 0 ? dir : NULL;
}

/* Queues the start-up load of the built-in model.  It is an ordinary job of the worker's
 * queue, ahead of anything the user runs (so the welcome notebook's cells and ?questions see
 * m), and no notebook opening drops it: only Ctrl-C does, and says so. */
static void greet(wb *w, const char *builtin)
{
    ui_model *m = &w->m;
    ui_model_printf(m, OUT_INFO, "r1lab %s: a workbench for small DeepSeek-style reasoning "
                                 "models. F1: keys and commands.", PACKAGE_VERSION);
    if (builtin) {
        ui_model_printf(m, OUT_DIM, "loading the built-in model into m …");
        wb_cmd_submit(w, WB_JOB_LOAD, builtin, "=:load", -1, "loading the built-in model");
    } else {
        ui_model_printf(m, OUT_DIM,
                        "No model loaded. :load DIR loads a Hugging Face deepseek_v3 folder "
                        "into m (e.g. :load tests/data/tiny_moe in the source tree), or make "
                        "one: m = r1.init(\"tiny\")");
    }
}

static int open_terminal(void)
{
    setlocale(LC_ALL, "");
    ui_utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    int fd = dup(1);
    tty_out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!tty_out)
        return -1;
    install_signals();
    SCREEN *s = newterm(NULL, tty_out, stdin);
    screen = s;
    if (!s) {
        reset_signals();
        fclose(tty_out);
        tty_out = NULL;
        return -1;
    }
    set_term(s);
    /* a terminal that cannot place the cursor (TERM=dumb, a printing terminal) cannot show
     * the panes: back to the plain REPL, as for an unknown TERM (the probe's L1) */
    const char *cup = tigetstr("cup");
    if (!cup || cup == (char *)-1) {
        endwin();
        delscreen(s);
        screen = NULL;
        reset_signals();
        fclose(tty_out);
        tty_out = NULL;
        return -1;
    }
    curses_on = 1;
    atexit(restore_terminal);
    raw(); /* Ctrl-C and Ctrl-Z arrive as keys */
    noecho();
    nonl();
    keypad(stdscr, FALSE);
    if (ui_theme_terminal_colours() > 0) /* NO_COLOR: no colour is ever sent */
        start_color();
    fputs(mouse_on, tty_out);
    fflush(tty_out);
    return 0;
}

int wb_run(const wb_opts *opts)
{
    static wb w0;
    wb *w = &w0;
    memset(w, 0, sizeof *w);
    ui_model_init(&w->m);
    w->m.nb_scroll = -1;
    w->edit_cell = -1;
    if (pipe(sig_pipe) != 0)
        return -1;
    fcntl(sig_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
    if (open_terminal() != 0) {
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        return -1;
    }
    int evfd = ev_sink(1);
    char err[1500];
    char dir[1200];
    const char *builtin = builtin_dir(dir, sizeof dir);
    w->worker = wb_worker_start(builtin, err, sizeof err);
    w->syntax = luaL_newstate();
    if (!w->worker || !w->syntax || evfd < 0) {
        restore_terminal();
        fprintf(stderr, "r1lab: %s\n", w->worker ? "out of memory" : err);
        return 1;
    }
    sig_worker = w->worker;
    capture_output();
    state_dir(w);
    wb_cmd_theme(w, opts->theme ? opts->theme : "default");
    ui_model_status(&w->m, "%s", "");
    wb_rl_init(w);
    greet(w, builtin);
    char path[1200];
    if (opts->notebook)
        wb_cmd_open(w, opts->notebook, 0);
    else /* the welcome notebook, in the bottom pane: the first thing a new user reads */
        wb_cmd_open(w, paths_data(path, sizeof path, "scripts/welcome.md"), 1);
    if (opts->demo && w->nb) {
        w->m.demo = 1;
        w->m.focus = UI_OUTPUT;
        ui_model_status(&w->m, "demo: space runs the next cell");
    }
    w->dirty = 1;

    unsigned char in[8192];
    int inlen = 0;
    double esc_at = 0, last_frame = 0;
    while (!w->quit) {
        double now = r1_now();
        int timeout = 500;
        if (w->dirty)
            timeout = (int)((last_frame + 1.0 / 30 - now) * 1000) + 1;
        if (inlen > 0)
            timeout = 25;
        if (w->m.demo == 2 && w->demo_at > 0 && timeout > 100)
            timeout = 100;
        if (timeout < 0)
            timeout = 0;
        struct pollfd fds[4] = {{0, POLLIN, 0}, {evfd, POLLIN, 0}, {sig_pipe[0], POLLIN, 0},
                                {cap_fd, POLLIN, 0}};
        int nfds = cap_fd >= 0 ? 4 : 3;
        int pr = poll(fds, (nfds_t)nfds, timeout);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0 && (fds[2].revents & POLLIN)) {
            char buf[64];
            while (read(sig_pipe[0], buf, sizeof buf) > 0)
                ;
        }
        if (got_term) {
            w->quit = 1;
            break;
        }
        if (got_winch) {
            got_winch = 0;
            struct winsize ws;
            if (ioctl(fileno(tty_out), TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
                resizeterm(ws.ws_row, ws.ws_col);
            memset(&w->built, 0, sizeof w->built);
            w->dirty = 1;
        }
        if (got_int) {
            got_int = 0;
            ctrl_c(w);
            w->dirty = 1;
        }
        if (pr > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(0, in + inlen, sizeof in - (size_t)inlen);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
                w->quit = 1; /* the terminal went away */
                break;
            }
            if (r > 0) {
                inlen += (int)r;
                esc_at = r1_now();
            }
        }
        drain_events(w); /* first: keys act on the newest state (a job that just ended) */
        if (inlen > 0) {
            int final = inlen == (int)sizeof in || r1_now() - esc_at > 0.02;
            int used = keys(w, in, inlen, final);
            memmove(in, in + used, (size_t)(inlen - used));
            inlen -= used;
        }
        if (cap_fd >= 0)
            drain_fd(w, cap_fd);
        now = r1_now();
        if (w->m.demo == 2 && w->demo_at > 0 && now >= w->demo_at && w->njobs == 0) {
            w->demo_at = 0;
            wb_cmd_demo_step(w);
        }
        if (w->m.status[0] && w->status_at > 0 && now - w->status_at > 6) {
            w->m.status[0] = '\0';
            w->status_at = 0;
            w->dirty = 1;
        }
        if (w->dirty && now - last_frame >= 1.0 / 30) {
            w->dirty = 0;
            last_frame = now;
            frame(w);
        }
    }

    wb_rl_done(w);
    int stuck = wb_worker_stop(w->worker, 3000) != 0;
    sig_worker = NULL;
    free_wins(w);
    restore_terminal();
    delscreen(screen);
    screen = NULL;
    release_output();
    if (tty_out) {
        fclose(tty_out);
        tty_out = NULL;
    }
    reset_signals();
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    ev_sink(0);
    lua_close(w->syntax);
    nb_free(w->nb);
    for (int i = 0; i < w->npending; i++)
        free(w->pending[i]);
    free(w->pending);
    free(w->chunk);
    free(w->echo);
    for (int i = 0; i < w->njobs; i++)
        free(w->jobs[i].echo);
    w->m.nb = NULL;
    ui_model_free(&w->m);
    if (stuck)
        fprintf(stderr, "r1lab: the running job did not stop; leaving it\n");
    return 0;
}
