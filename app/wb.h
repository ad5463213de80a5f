/* wb.h — the workbench: the UI thread's state and the parts that drive it.
 *
 *   wb.c           terminal setup and teardown, signals, the poll loop, frames, keys
 *   wb_keys.c      decoding terminal input bytes into keys
 *   wb_readline.c  GNU readline through its callback interface, history, Tab completion
 *   wb_cmd.c       input lines and : commands, jobs and their output, notebooks, demo mode
 *
 * Only the UI thread touches any of it (and curses and readline); Lua runs on the worker
 * (wb_worker.h).  Entry point: wb_run. */
#ifndef R1_APP_WB_H
#define R1_APP_WB_H

#include <curses.h>
#include <lua.h>
#include <stdio.h>

#include "r1.h"
#include "ui.h"
#include "wb_worker.h"

typedef struct {
    const char *theme;    /* NULL: "default" */
    const char *notebook; /* a notebook to open, or NULL */
    int demo;             /* play the notebook (the welcome notebook by default) */
} wb_opts;

/* Runs the workbench on the terminal until the user quits.  Returns the exit status. */
int wb_run(const wb_opts *opts);

/* ------------------------------------------------------------------ shared state */

typedef struct {
    int id;
    wb_job_kind kind;
    int cell;      /* notebook cell, or -1 */
    char what[64]; /* for the status line */
    char *echo;    /* the input that made it, echoed when it starts (owned; may be NULL) */
} wb_job;

#define WB_MAX_JOBS 512

typedef struct wb {
    ui_model m;
    ui_layout lo;
    wb_worker *worker;
    lua_State *syntax; /* a private state for checking whether a chunk is complete */
    int quit;
    int dirty;         /* the screen needs a frame */
    /* windows, rebuilt when the layout changes */
    WINDOW *win[UI_NPANES], *repl, *status;
    ui_layout built;
    /* jobs queued or running, oldest first (mirrors the worker's queue) */
    wb_job jobs[WB_MAX_JOBS];
    int njobs;
    int runall;        /* running all cells: an error cancels the rest */
    int last_mpirun;   /* the id of the last job :mpirun started (0: none) */
    /* the input line */
    char *chunk;       /* the lines of an incomplete Lua chunk so far */
    char *echo;        /* input lines to echo when the job they make starts (owned) */
    int edit_cell;     /* the line came from :edit / 'c' (a cell index), or -1 */
    char **pending;    /* lines readline accepted, not yet handled */
    int npending;
    int eof;           /* Ctrl-D at an empty line */
    double paste_at;   /* inside a bracketed paste: when its last byte came (0: not) */
    int confirm;       /* 0, or what the yes/no box asks (WB_CONFIRM_...) */
    char prompt[64];
    /* notebook, theme, demo */
    struct nb_notebook *nb;
    char theme[256];
    int demo_next;     /* the cell the demo runs next */
    double demo_at;    /* autoplay: when to run it */
    double status_at;  /* when the status message was set */
    char state_dir[1024];
} wb;

enum { WB_CONFIRM_NONE, WB_CONFIRM_QUIT, WB_CONFIRM_UNSAVED };


/* ---- wb_keys.c */
typedef struct {
    int key;       /* a code point or UI_KEY_... */
    int len;       /* bytes consumed */
    int my, mx;    /* UI_KEY_MOUSE: 0-based cell */
    int mbutton;   /* 0 left, 1 middle, 2 right, 64 wheel up, 65 wheel down */
    int mpress;    /* 1 press, 0 release */
} wb_key;

/* Decodes the key at the start of b[0..n).  Returns the bytes it takes, or 0 when b may be
 * the start of a longer sequence and more bytes should be awaited (never when final is set). */
int wb_key_decode(const unsigned char *b, int n, int final, wb_key *k);

/* ---- wb_readline.c */
void wb_rl_init(wb *w);
void wb_rl_done(wb *w);
/* Feeds bytes to readline as typed input. */
void wb_rl_feed(wb *w, const char *bytes, int n);
/* What the input line shows now (prompt copied into buf). */
void wb_rl_view(ui_repl_view *v, char *buf, size_t n);
void wb_rl_set_prompt(wb *w, const char *prompt);
/* Replaces the line being edited (the cursor goes to its end). */
void wb_rl_set_line(wb *w, const char *text);
int wb_rl_line_empty(void);
/* 1 when readline is in the middle of something (a search, a key sequence, an argument) and
 * keys the workbench would take must go to it. */
int wb_rl_busy(void);
void wb_rl_add_history(wb *w, const char *entry);
/* Saves the history atomically (0, or -1 with a message in the output). */
int wb_rl_save_history(wb *w);

/* ---- wb_cmd.c */
/* Handles a line accepted by readline. */
void wb_cmd_line(wb *w, const char *line);
/* Takes an event for the job queue: output of cells, job ends.  Returns 1 when used (the
 * model gets it otherwise). */
int wb_cmd_event(wb *w, const ev *e);
/* Ctrl-C: stops the running job and drops the queued ones; returns 1 when there was one. */
int wb_cmd_cancel(wb *w);
void wb_cmd_run_cell(wb *w, int i);
void wb_cmd_edit_cell(wb *w, int i);
int wb_cmd_open(wb *w, const char *path, int readonly);
void wb_cmd_theme(wb *w, const char *name);
void wb_cmd_demo_step(wb *w);
/* Quits, or asks first when the notebook has unsaved changes. */
void wb_cmd_quit(wb *w);
/* Submits a job of the worker and records it; returns its id or -1. */
int wb_cmd_submit(wb *w, wb_job_kind kind, const char *text, const char *name, int cell,
                  const char *what);

#endif
