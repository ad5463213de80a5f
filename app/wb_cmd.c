/* wb_cmd.c — what the workbench does with input: Lua chunks (continued over several lines
 * until complete), ?questions and : commands; the jobs it hands the worker and where their
 * output goes (the output log, or the notebook cell that runs); notebooks; themes; demo mode.
 * Everything runs on the UI thread; errors become messages in the output pane. */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "launch.h"
#include "lua_host.h"
#include "nb.h"
#include "paths.h"
#include "wb.h"
#include "wb_observe.h"

/* ------------------------------------------------------------------ jobs */

static void set_busy(wb *w)
{
    w->m.busy = w->njobs > 0;
    snprintf(w->m.busy_what, sizeof w->m.busy_what, "%s", w->njobs ? w->jobs[0].what : "");
}

/* The head job started (the previous one ended): a cell shows "running" and loses its old
 * output. */
static void advance(wb *w)
{
    if (w->njobs > 0 && w->jobs[0].echo) {
        ui_model_print(&w->m, OUT_ECHO, w->jobs[0].echo);
        free(w->jobs[0].echo);
        w->jobs[0].echo = NULL;
    }
    if (w->njobs > 0 && w->jobs[0].cell >= 0 && w->nb && w->jobs[0].cell < w->nb->ncells) {
        nb_cell *c = &w->nb->cells[w->jobs[0].cell];
        if (c->state == NB_QUEUED) {
            c->state = NB_RUNNING;
            nb_set_output(w->nb, w->jobs[0].cell, NULL);
            w->m.nb_cur = w->jobs[0].cell; /* the view follows the running cell */
            w->m.nb_scroll = -1;
        }
    }
    set_busy(w);
}

int wb_cmd_submit(wb *w, wb_job_kind kind, const char *text, const char *name, int cell,
                  const char *what)
{
    if (w->njobs == WB_MAX_JOBS) {
        ui_model_printf(&w->m, OUT_ERROR, "too many jobs queued");
        return -1;
    }
    int id = wb_worker_submit(w->worker, kind, text, name);
    if (id < 0) {
        ui_model_printf(&w->m, OUT_ERROR, "out of memory");
        return -1;
    }
    wb_job *j = &w->jobs[w->njobs++];
    j->id = id;
    j->kind = kind;
    j->cell = cell;
    j->echo = w->echo; /* shown when the job starts, above its output */
    w->echo = NULL;
    snprintf(j->what, sizeof j->what, "%s", what);
    advance(w);
    w->dirty = 1;
    return id;
}

/* Forgets the jobs the worker dropped (ids[n], oldest first): their cells show cancelled,
 * and the output pane says which jobs will not run, so that nothing is dropped unseen. */
static void dropped(wb *w, const int *ids, int n)
{
    char list[400] = "";
    size_t len = 0;
    int load = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < w->njobs; i++) {
            if (w->jobs[i].id != ids[k])
                continue;
            int c = w->jobs[i].cell;
            if (c >= 0 && w->nb && c < w->nb->ncells)
                w->nb->cells[c].state = NB_CANCELLED;
            load |= w->jobs[i].kind == WB_JOB_LOAD;
            if (len < sizeof list - 1) {
                int wr = snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "",
                                  w->jobs[i].what);
                len = wr < 0 ? len : len + (size_t)wr;
                if (len >= sizeof list - 1)
                    memcpy(list + sizeof list - 4, "...", 4);
            }
            free(w->jobs[i].echo);
            memmove(&w->jobs[i], &w->jobs[i + 1], sizeof *w->jobs * (size_t)(w->njobs - i - 1));
            w->njobs--;
            break;
        }
    if (n > 0) { /* the status line too: the notebook may hide the output */
        ui_model_printf(&w->m, OUT_DIM, "cancelled before they ran (%d): %s", n, list);
        ui_model_status(&w->m, "cancelled before they ran (%d): %s", n, list);
        w->status_at = r1_now();
    }
    if (load)
        ui_model_printf(&w->m, OUT_DIM, "m was not loaded: :load DIR loads a model");
    set_busy(w);
}

/* Drops the queued jobs (the running one goes on): all of them, or only notebook cells. */
static void cancel_pending(wb *w, int cells_only)
{
    static int which[WB_MAX_JOBS], ids[WB_MAX_JOBS];
    int nwhich = 0;
    for (int i = 0; i < w->njobs; i++)
        if (!cells_only || w->jobs[i].cell >= 0)
            which[nwhich++] = w->jobs[i].id;
    if (nwhich == 0)
        return;
    int n = wb_worker_cancel_pending(w->worker, which, nwhich, ids, WB_MAX_JOBS);
    dropped(w, ids, n);
}

int wb_cmd_cancel(wb *w)
{
    if (w->njobs == 0)
        return 0;
    cancel_pending(w, 0);
    wb_worker_interrupt(w->worker);
    w->runall = 0;
    ui_model_status(&w->m, "interrupting …");
    w->status_at = r1_now();
    return 1;
}

static void job_done(wb *w, const ev *e)
{
    int i = 0;
    while (i < w->njobs && w->jobs[i].id != e->n)
        i++;
    if (i == w->njobs)
        return;
    int cell = w->jobs[i].cell;
    wb_job_kind kind = w->jobs[i].kind;
    free(w->jobs[i].echo);
    memmove(&w->jobs[i], &w->jobs[i + 1], sizeof *w->jobs * (size_t)(w->njobs - i - 1));
    w->njobs--;
    if (cell >= 0 && w->nb && cell < w->nb->ncells) {
        w->nb->cells[cell].state = e->ok ? NB_OK : NB_ERROR;
        if (!e->ok) {
            nb_append_output(w->nb, cell, e->text ? e->text : "error");
            if (w->runall) { /* run all stops at the first error */
                cancel_pending(w, 1);
                w->runall = 0;
            }
        }
    } else if (!e->ok && e->text && !strncmp(e->text, "interrupted", 11)) {
        ui_model_printf(&w->m, OUT_DIM, "interrupted");
    } else if (!e->ok) {
        ui_model_printf(&w->m, OUT_ERROR, "%s", e->text ? e->text : "error");
    }
    if (!strcmp(w->m.status, "interrupting …"))
        w->m.status[0] = '\0';
    if (kind == WB_JOB_LOAD && !e->ok) { /* the status line keeps it until the next one */
        const char *why = e->text ? e->text : "error";
        ui_model_status(&w->m, "no model: the load failed: %.*s", (int)strcspn(why, "\n"), why);
        w->status_at = 0;
        ui_model_printf(&w->m, OUT_DIM, "m is not loaded: :load DIR loads a model folder");
    }
    if (w->njobs == 0)
        w->runall = 0;
    if (w->m.demo == 2)
        w->demo_at = r1_now() + 4.0;
    advance(w);
}

int wb_cmd_event(wb *w, const ev *e)
{
    if (e->kind == EV_JOB_DONE) {
        job_done(w, e);
        ui_model_apply(&w->m, e);
        return 1;
    }
    if (e->kind == EV_PRINT && !e->n && w->njobs > 0 && w->jobs[0].cell >= 0 && w->nb &&
        w->jobs[0].cell < w->nb->ncells) {
        nb_append_output(w->nb, w->jobs[0].cell, e->text);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ notebooks */

static int need_nb(wb *w)
{
    if (w->nb)
        return 1;
    ui_model_printf(&w->m, OUT_ERROR, "no notebook open: :open FILE (or :new FILE)");
    return 0;
}

static void show_nb(wb *w)
{
    w->m.nb = w->nb;
    w->m.nb_view = 1;
    w->m.nb_scroll = -1;
    w->dirty = 1;
}

void wb_cmd_run_cell(wb *w, int i)
{
    if (!need_nb(w))
        return;
    if (i < 0 || i >= w->nb->ncells) {
        ui_model_printf(&w->m, OUT_ERROR, "no cell %d (the notebook has %d)", i + 1,
                        w->nb->ncells);
        return;
    }
    char name[32], what[64];
    snprintf(name, sizeof name, "=cell %d", i + 1);
    snprintf(what, sizeof what, "cell %d", i + 1);
    w->nb->cells[i].state = NB_QUEUED;
    w->m.nb_cur = i;
    show_nb(w);
    if (wb_cmd_submit(w, WB_JOB_LUA, w->nb->cells[i].src, name, i, what) < 0)
        w->nb->cells[i].state = NB_IDLE;
}

void wb_cmd_edit_cell(wb *w, int i)
{
    if (!need_nb(w))
        return;
    if (i < 0 || i >= w->nb->ncells) {
        ui_model_printf(&w->m, OUT_ERROR, "no cell %d (the notebook has %d)", i + 1,
                        w->nb->ncells);
        return;
    }
    char *src = strdup(w->nb->cells[i].src);
    if (!src)
        return;
    size_t l = strlen(src);
    if (l && src[l - 1] == '\n')
        src[l - 1] = '\0';
    w->edit_cell = i;
    w->m.nb_cur = i;
    show_nb(w);
    char prompt[32];
    snprintf(prompt, sizeof prompt, "[%d]> ", i + 1);
    wb_rl_set_prompt(w, prompt);
    wb_rl_set_line(w, src);
    w->m.focus = UI_REPL;
    free(src);
    ui_model_status(&w->m, "editing cell %d: Enter runs it, Alt-Enter adds a line, Ctrl-C "
                           "cancels", i + 1);
    w->status_at = r1_now();
}

int wb_cmd_open(wb *w, const char *path, int readonly)
{
    char err[1200];
    nb_notebook *nb = nb_load(path, err, sizeof err);
    if (!nb) {
        ui_model_printf(&w->m, OUT_ERROR, "cannot open the notebook: %s", err);
        return -1;
    }
    nb->readonly = readonly;
    /* queued cells belong to the old notebook; other work (a model loading, a question, a
     * REPL chunk) is the user's and goes on */
    cancel_pending(w, 1);
    for (int i = 0; i < w->njobs; i++)
        w->jobs[i].cell = -1;
    nb_free(w->nb);
    w->nb = nb;
    w->m.nb_cur = 0;
    w->demo_next = 0;
    show_nb(w);
    ui_model_printf(&w->m, OUT_INFO, "opened %s (%d cells)%s", path, nb->ncells,
                    readonly ? "; :save FILE keeps a copy" : "");
    return 0;
}

static void save(wb *w, const char *arg)
{
    if (!need_nb(w))
        return;
    if (!*arg && w->nb->readonly) {
        ui_model_printf(&w->m, OUT_ERROR,
                        "this notebook is the shipped example: :save FILE writes your copy");
        return;
    }
    char err[1200];
    if (nb_save(w->nb, *arg ? arg : NULL, err, sizeof err) != 0) {
        ui_model_printf(&w->m, OUT_ERROR, "not saved: %s", err);
        return;
    }
    ui_model_printf(&w->m, OUT_INFO, "saved %s", w->nb->path);
    ui_model_status(&w->m, "saved %s", w->nb->path);
    w->status_at = r1_now();
}

/* ------------------------------------------------------------------ themes, demo, quit */

void wb_cmd_theme(wb *w, const char *name)
{
    ui_theme t;
    char err[1500];
    int rc = ui_theme_load(&t, name, ui_theme_terminal_colours(), err, sizeof err);
    if (rc != 0)
        ui_model_printf(&w->m, OUT_ERROR, "%s", err);
    ui_theme_apply(&t);
    snprintf(w->theme, sizeof w->theme, "%s", rc == 0 ? name : "default");
    memset(&w->built, 0, sizeof w->built); /* windows get the new background */
    if (rc == 0) {
        ui_model_status(&w->m, "theme %s%s", t.name, t.colours ? "" : " (no colours)");
        w->status_at = r1_now();
    }
    w->dirty = 1;
}

/* The next cell of the demo; while a job runs (the built-in model loading at start, the cell
 * before) it queues behind it, so a key pressed early is not lost. */
void wb_cmd_demo_step(wb *w)
{
    if (!w->nb)
        return;
    if (w->demo_next >= w->nb->ncells) {
        ui_model_status(&w->m, "end of the notebook · Esc leaves the demo");
        w->status_at = r1_now();
        return;
    }
    wb_cmd_run_cell(w, w->demo_next++);
}

void wb_cmd_quit(wb *w)
{
    if (w->nb && w->nb->dirty && !w->nb->readonly) {
        w->confirm = WB_CONFIRM_UNSAVED;
        w->m.quit_confirm = 1;
    } else {
        w->quit = 1;
    }
    w->dirty = 1;
}

/* ------------------------------------------------------------------ input lines */

/* Echoes an input line into the output: at once when the worker is idle, else when the job
 * the line makes starts (so that each output follows its input). */
static void echo_line(wb *w, const char *prompt, const char *line)
{
    w->m.nb_view = 0; /* show where the answer goes */
    w->m.scroll[UI_OUTPUT] = -1;
    if (w->njobs == 0 && !w->echo) {
        ui_model_printf(&w->m, OUT_ECHO, "%s%s", prompt, line);
        return;
    }
    size_t a = w->echo ? strlen(w->echo) : 0, b = strlen(prompt) + strlen(line) + 2;
    char *e = realloc(w->echo, a + b);
    if (!e)
        return;
    snprintf(e + a, b, "%s%s\n", prompt, line);
    w->echo = e;
}

/* Echo text no job took (a command that ran at once) shows now. */
static void flush_echo(wb *w)
{
    if (w->echo) {
        ui_model_print(&w->m, OUT_ECHO, w->echo);
        free(w->echo);
        w->echo = NULL;
    }
}

static int parse_cell(wb *w, const char *arg, int *i)
{
    if (!*arg) {
        *i = w->m.nb_cur;
        return 1;
    }
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end || v < 1) {
        ui_model_printf(&w->m, OUT_ERROR, "expected a cell number, got '%s'", arg);
        return 0;
    }
    *i = (int)v - 1;
    return 1;
}

static void ask(wb *w, const char *q)
{
    q += strspn(q, " \t");
    if (!*q) {
        ui_model_printf(&w->m, OUT_ERROR, "ask what? ?QUESTION or :ask QUESTION");
        return;
    }
    char what[64];
    snprintf(what, sizeof what, "asking: %.40s", q);
    wb_cmd_submit(w, WB_JOB_ASK, q, "=:ask", -1, what);
}

/* Appends s to dst[n] as a Lua string literal ("..." with escapes). */
static void lua_quote(char *dst, size_t n, const char *s)
{
    size_t k = strlen(dst);
    if (k + 1 < n)
        dst[k++] = '"';
    for (; *s && k + 5 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            k += (size_t)snprintf(dst + k, n - k, "\\%c", c);
        else if (c < 32 || c == 127)
            k += (size_t)snprintf(dst + k, n - k, "\\%03d", c);
        else
            dst[k++] = (char)c;
    }
    if (k + 1 < n)
        dst[k++] = '"';
    dst[k] = '\0';
}

/* :branch TEXT, :patch CLEAN | CORRUPT, :compare DIR: the microscope's calls (ui.branch,
 * ui.patch, ui.compare in lua_ui_views.c).  Returns 1 when name is one of them. */
static int microscope_command(wb *w, const char *name, const char *a)
{
    char src[4400] = "";
    if (!strcmp(name, "branch")) {
        if (w->m.cursor < 0 || !*a) {
            ui_model_printf(&w->m, OUT_ERROR, "%s", w->m.cursor < 0
                            ? ":branch TEXT needs a token under the cursor (the Reasoning pane)"
                            : ":branch TEXT (the text to put at the cursor's token)");
            return 1;
        }
        snprintf(src, sizeof src, "local _ = ui.branch(%d, ", w->m.cursor + 1);
        lua_quote(src, sizeof src - 2, a);
        strcat(src, ")");
        wb_cmd_submit(w, WB_JOB_LUA, src, "=:branch", -1, "branching");
    } else if (!strcmp(name, "patch")) {
        const char *bar = strchr(a, '|');
        if (!bar) {
            ui_model_printf(&w->m, OUT_ERROR, ":patch CLEAN | CORRUPT (two questions of the same "
                            "length, e.g. :patch What is 457+389? | What is 457+388?)");
            return 1;
        }
        char clean[2048];
        snprintf(clean, sizeof clean, "%.*s", (int)(bar - a), a);
        for (size_t l = strlen(clean); l && clean[l - 1] == ' '; l--)
            clean[l - 1] = '\0';
        strcpy(src, "local _ = ui.patch(");
        lua_quote(src, sizeof src - 8, clean);
        strcat(src, ", ");
        lua_quote(src, sizeof src - 2, bar + 1 + strspn(bar + 1, " "));
        strcat(src, ")");
        wb_cmd_submit(w, WB_JOB_LUA, src, "=:patch", -1, "activation patching");
    } else if (!strcmp(name, "compare")) {
        if (!*a) {
            ui_model_printf(&w->m, OUT_ERROR, ":compare DIR (a second checkpoint: the last "
                            "question goes through both)");
            return 1;
        }
        strcpy(src, "local _ = ui.compare(");
        lua_quote(src, sizeof src - 2, a);
        strcat(src, ")");
        wb_cmd_submit(w, WB_JOB_LUA, src, "=:compare", -1, "comparing two models");
    } else {
        return 0;
    }
    return 1;
}

/* :export FILE.svg [routing|grpo|reasoning]: a pane as an SVG picture (the one that had the
 * focus last, unless named) */
static void export_pane(wb *w, const char *arg)
{
    static const char *const names[UI_NPANES] = {"reasoning", "answer", "routing", "grpo",
                                                 "output"};
    char file[1024], which[32] = "";
    if (sscanf(arg, "%1023s %31s", file, which) < 1 || !strstr(file, ".svg")) {
        ui_model_printf(&w->m, OUT_ERROR, ":export FILE.svg [routing|grpo|reasoning]: a file "
                                          "name ending in .svg, then optionally the pane");
        return;
    }
    int pane = w->m.last_pane;
    if (which[0]) {
        for (pane = 0; pane < UI_NPANES && strcmp(names[pane], which); pane++)
            ;
        if (pane == UI_NPANES) {
            ui_model_printf(&w->m, OUT_ERROR, ":export: pane '%s': expected routing, grpo or "
                                              "reasoning", which);
            return;
        }
    }
    char *svg = NULL, err[512] = "";
    size_t len = 0;
    FILE *f = open_memstream(&svg, &len);
    int rc = f ? ui_export_svg(&w->m, pane, f, err, sizeof err) : -1;
    if (f)
        fclose(f);
    if (rc == 0 && nb_write_atomic(file, svg, len, 0644, err, sizeof err) == 0)
        ui_model_printf(&w->m, OUT_INFO, "the %s pane is in %s (%zu bytes of SVG)", names[pane],
                        file, len);
    else
        ui_model_printf(&w->m, OUT_ERROR, ":export: %s", err[0] ? err : "out of memory");
    free(svg);
}

/* :mpirun N FILE [ARG ...] starts an MPI job whose rank 0 reports into the panes; :mpirun
 * lists the jobs; :mpirun stop [ID] stops one (the last started by default) */
static void mpirun_cmd(wb *w, char *a)
{
    char *argv[64];
    int n = 0;
    for (char *t = strtok(a, " \t"); t && n < 64; t = strtok(NULL, " \t"))
        argv[n++] = t;
    char buf[4096];
    if (n == 0) {
        launch_list(buf, sizeof buf);
        ui_model_printf(&w->m, OUT_INFO, "%s", buf[0] ? buf
                        : "no MPI jobs; :mpirun N FILE [ARG ...] starts one");
        return;
    }
    if (!strcmp(argv[0], "stop")) {
        int id = n > 1 ? atoi(argv[1]) : w->last_mpirun;
        launch_job *j = id > 0 ? launch_find(id) : NULL;
        if (!j || launch_signal(j, SIGTERM) != 0)
            ui_model_printf(&w->m, OUT_ERROR, ":mpirun stop: no running job %d (:mpirun "
                            "lists them)", id);
        else
            ui_model_printf(&w->m, OUT_INFO, "stopping job %d", id);
        return;
    }
    char *end;
    long np = strtol(argv[0], &end, 10);
    if (*end || np < 1 || np > 4096 || n < 2) {
        ui_model_printf(&w->m, OUT_ERROR, ":mpirun N FILE [ARG ...] (N ranks, 1 to 4096, "
                        "each running the Lua script FILE); :mpirun lists the jobs; "
                        ":mpirun stop [ID]");
        return;
    }
    launch_opts o = {(int)np, argv[1], (const char *const *)argv + 2, n - 2, 0, NULL, NULL,
                     0, NULL};
    launch_job *j = launch_start(&o, wb_observer(), buf, sizeof buf);
    if (!j)
        ui_model_printf(&w->m, OUT_ERROR, ":mpirun: %s", buf);
    else
        w->last_mpirun = launch_id(j);
}

static void command(wb *w, const char *line)
{
    char name[32];
    size_t n = strcspn(line + 1, " \t");
    snprintf(name, sizeof name, "%.*s", (int)(n < 31 ? n : 31), line + 1);
    const char *arg = line + 1 + n;
    arg += strspn(arg, " \t");
    char a[2048];
    snprintf(a, sizeof a, "%s", arg);
    for (size_t l = strlen(a); l && (a[l - 1] == ' ' || a[l - 1] == '\t'); l--)
        a[l - 1] = '\0';
    int i;
    if (!strcmp(name, "help") || !strcmp(name, "h")) {
        w->m.help = 1;
        w->m.help_scroll = 0;
    } else if (!strcmp(name, "quit") || !strcmp(name, "q")) {
        wb_cmd_quit(w);
    } else if (!strcmp(name, "load")) {
        if (!*a)
            ui_model_printf(&w->m, OUT_ERROR, ":load DIR (a model folder with config.json)");
        else
            wb_cmd_submit(w, WB_JOB_LOAD, a, "=:load", -1, "loading the model");
    } else if (!strcmp(name, "ask")) {
        ask(w, a);
    } else if (!strcmp(name, "theme")) {
        if (!*a)
            ui_model_printf(&w->m, OUT_INFO,
                            "theme %s; :theme NAME (default, light, high-contrast, mono)",
                            w->theme);
        else
            wb_cmd_theme(w, a);
    } else if (!strcmp(name, "open") || !strcmp(name, "open!")) {
        if (!*a)
            ui_model_printf(&w->m, OUT_ERROR, ":open FILE");
        else if (w->nb && w->nb->dirty && !w->nb->readonly && strcmp(name, "open!"))
            ui_model_printf(&w->m, OUT_ERROR,
                            "%s has unsaved changes: :save first, or :open! FILE drops them",
                            w->nb->path ? w->nb->path : "the notebook");
        else
            wb_cmd_open(w, a, 0);
    } else if (!strcmp(name, "new")) {
        nb_notebook *nb = *a ? nb_new(a) : NULL;
        if (!nb) {
            ui_model_printf(&w->m, OUT_ERROR, ":new FILE");
        } else {
            nb_free(w->nb);
            w->nb = nb;
            w->m.nb_cur = 0;
            show_nb(w);
        }
    } else if (!strcmp(name, "add")) {
        if (need_nb(w) && nb_add_cell(w->nb, a) == 0) {
            w->m.nb_cur = w->nb->ncells - 1;
            show_nb(w);
        }
    } else if (!strcmp(name, "save") || !strcmp(name, "w")) {
        save(w, a);
    } else if (!strcmp(name, "run")) {
        if (parse_cell(w, a, &i))
            wb_cmd_run_cell(w, i);
    } else if (!strcmp(name, "runall")) {
        if (need_nb(w)) {
            for (i = 0; i < w->nb->ncells; i++)
                wb_cmd_run_cell(w, i);
            w->runall = w->njobs > 0;
        }
    } else if (!strcmp(name, "edit")) {
        if (parse_cell(w, a, &i))
            wb_cmd_edit_cell(w, i);
    } else if (!strcmp(name, "demo")) {
        if (need_nb(w)) {
            w->m.demo = 1;
            w->demo_next = w->m.nb_cur;
            show_nb(w);
            w->m.focus = UI_OUTPUT;
        }
    } else if (!strcmp(name, "clear")) {
        ui_model_clear_output(&w->m);
        ui_model_clear_run(&w->m);
    } else if (!strcmp(name, "export")) {
        export_pane(w, a);
    } else if (!strcmp(name, "mpirun")) {
        mpirun_cmd(w, a);
    } else if (microscope_command(w, name, a)) {
        /* done */
    } else {
        ui_model_printf(&w->m, OUT_ERROR,
                        "unknown command :%s (:help lists them: :load :ask :theme :open :save "
                        ":run :runall :edit :clear :branch :patch :compare :export :mpirun :quit)",
                        name);
    }
    w->dirty = 1;
}

void wb_cmd_line(wb *w, const char *line)
{
    if (w->edit_cell >= 0) { /* the edited cell comes back: store it and run it */
        int i = w->edit_cell;
        w->edit_cell = -1;
        wb_rl_set_prompt(w, "r1> ");
        wb_rl_add_history(w, line);
        if (w->nb && i < w->nb->ncells) {
            nb_set_src(w->nb, i, line);
            wb_cmd_run_cell(w, i);
        }
        return;
    }
    if (!w->chunk) {
        const char *p = line + strspn(line, " \t");
        if (!*p)
            return;
        if (*p == ':' || *p == '?') {
            wb_rl_add_history(w, line);
            echo_line(w, w->prompt, line);
            if (*p == ':')
                command(w, p);
            else
                ask(w, p + 1);
            flush_echo(w);
            return;
        }
        w->chunk = strdup(line);
    } else {
        size_t a = strlen(w->chunk), b = strlen(line);
        char *c = realloc(w->chunk, a + b + 2);
        if (!c)
            return;
        c[a] = '\n';
        memcpy(c + a + 1, line, b + 1);
        w->chunk = c;
    }
    if (!w->chunk)
        return;
    echo_line(w, w->prompt, line);
    int incomplete;
    lua_host_load_line(w->syntax, w->chunk, "=stdin", &incomplete);
    lua_settop(w->syntax, 0);
    if (incomplete) {
        wb_rl_set_prompt(w, ">> ");
        return;
    }
    wb_rl_add_history(w, w->chunk);
    char what[64];
    snprintf(what, sizeof what, "%.60s", w->chunk);
    for (char *p = what; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    wb_cmd_submit(w, WB_JOB_LUA, w->chunk, "=stdin", -1, what);
    flush_echo(w);
    free(w->chunk);
    w->chunk = NULL;
    wb_rl_set_prompt(w, "r1> ");
}
