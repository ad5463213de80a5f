/* ui.h — the workbench screen: the screen model every pane draws from, colour roles and themes,
 * the layout, and the panes' drawing and key functions.
 *
 * The screen model (ui_model) is plain data owned by the UI thread: events from the worker are
 * applied to it (ui_model.c), keys change its view state, and once per frame each pane draws
 * its part of it into its own curses window (app/ui_<pane>.c) and stages it with wnoutrefresh.
 * Panes never call the engine or Lua; the model never calls curses.  Nothing here is
 * thread-safe: only the UI thread touches it.
 *
 * Errors: the model functions never fail visibly — when memory runs out an update is dropped
 * (a token, a line of output) and the screen shows less; drawing clips to the window, so any
 * terminal size, down to one column, is safe. */
#ifndef R1_APP_UI_H
#define R1_APP_UI_H

#include <curses.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"

struct nb_notebook;

/* ------------------------------------------------------------------ panes and keys */

typedef enum {
    UI_REASONING,
    UI_ANSWER,
    UI_ROUTING,
    UI_GRPO,
    UI_OUTPUT, /* the output log or the open notebook */
    UI_NPANES,
    UI_REPL = UI_NPANES /* focus on the input line */
} ui_pane_id;

/* Keys after decoding (wb_keys.c): a byte or UTF-8 character is its code point (< 0x110000);
 * the named keys sit above it. */
enum {
    UI_KEY_UP = 0x200000,
    UI_KEY_DOWN,
    UI_KEY_LEFT,
    UI_KEY_RIGHT,
    UI_KEY_PGUP,
    UI_KEY_PGDN,
    UI_KEY_HOME,
    UI_KEY_END,
    UI_KEY_F1,
    UI_KEY_F2,
    UI_KEY_BTAB, /* Shift-Tab */
    UI_KEY_ESC,
    UI_KEY_MOUSE,
    UI_KEY_PASTE_BEGIN, /* bracketed paste: ESC [ 200 ~ ... ESC [ 201 ~ */
    UI_KEY_PASTE_END,
    UI_KEY_OTHER /* an escape sequence the workbench does not use: passed to readline */
};
#define UI_KEY_TAB 9
#define UI_KEY_ENTER 13
#define UI_KEY_CTRL(c) ((c) & 0x1f)

/* ------------------------------------------------------------------ colour roles, themes */

typedef enum {
    R_TEXT,
    R_DIM,
    R_THINK,
    R_ANSWER,
    R_RIGHT,
    R_WRONG,
    R_BAR,
    R_BORDER,
    R_FOCUS,
    R_TITLE,
    R_PROMPT,
    R_ERROR,
    R_SELECTED, /* the token cursor, the selected completion, the current cell */
    R_STATUS,
    R_CODE,
    R_PLOT,
    R_SPECIAL, /* special tokens such as <think> */
    R_DOUBT,   /* the token inspector: a token chosen with some doubt (p < 0.9, H > 0.5) */
    R_UNSURE,  /* ... and with little confidence (p < 0.5, H > 1.5 nats) */
    R_HEAT0,   /* R_HEAT0 .. R_HEAT0 + UI_MAX_HEAT - 1: the heat ramp, cold to hot */
    R_SERIES0 = R_HEAT0 + 8, /* colours of reward components */
    R_NROLES = R_SERIES0 + 6
} ui_role;
#define UI_MAX_HEAT 8
#define UI_MAX_SERIES 6

typedef struct {
    char name[64];
    char file[1024];       /* where it came from ("" for the built-in fallback) */
    int colours;           /* 0 (attributes only), 8, or 256 */
    int nheat, nseries;    /* entries of the ramps */
    attr_t attr[R_NROLES]; /* COLOR_PAIR(n) | A_BOLD ... for each role */
} ui_theme;

/* The theme panes draw with (set by ui_theme_apply; attributes only before that). */
extern ui_theme ui_cur_theme;
/* 1 when the locale is UTF-8: panes use block, braille and box-drawing characters; otherwise
 * ASCII stand-ins. */
extern int ui_utf8;

/* The attribute of a role in the current theme. */
attr_t ui_attr(ui_role r);
/* The heat ramp's attribute for x in [0, 1]. */
attr_t ui_heat_attr(double x);

/* Loads themes/NAME.lua (NAME may also be a path to a .lua file) into *t.  colours is what the
 * terminal can show (0, 8 or 256); 0 also when NO_COLOR is set.  On a missing or bad file,
 * writes a message naming the file and the field into err (size n), fills *t with the
 * built-in default and returns -1; returns 0 on success. */
int ui_theme_load(ui_theme *t, const char *name, int colours, char *err, size_t n);
/* Initialises curses colour pairs for t and makes it current (after start_color). */
void ui_theme_apply(const ui_theme *t);
/* The colour count a theme should target on this terminal: 0 without colours or with NO_COLOR
 * set, 8 below 256 colours, else 256. */
int ui_theme_terminal_colours(void);

/* ------------------------------------------------------------------ the screen model */

/* One generated token as the panes show it (routing in the model's pools). */
typedef struct {
    int32_t id;
    char text[16]; /* the token's text; "" when the model has no tokenizer (ids are shown) */
    int part;      /* 0 prompt, 1 think, 2 answer, 3 other */
    int reasoning; /* shown in the Reasoning pane: think, or text outside the chat format
                    * before any answer (a prompt of bare ids); else in the Answer pane */
    int row;
    float logprob;
    size_t route;  /* offset into route_e / route_w (n_moe * K entries) */
    /* the token inspector (n_top 0 and entropy NaN when not recorded; mtp_id -1) */
    int n_top;
    int32_t top_id[5];
    float top_p[5];
    char top_text[5][12];
    float entropy;
    int32_t mtp_id;
    float mtp_p;
    char mtp_text[12];
} ui_token;

typedef enum { OUT_TEXT, OUT_ECHO, OUT_ERROR, OUT_INFO, OUT_DIM } ui_out_role;

typedef struct {
    char *text;
    unsigned char role; /* ui_out_role */
} ui_line;

/* History series the GRPO pane plots. */
enum { H_REWARD, H_ACCURACY, H_KL, H_LENGTH, H_FLIP, H_LPMIS, H_NSERIES };
#define H_ALWAYS 4 /* the first series always have a plot; the others once they have data */

typedef struct {
    double *v;
    int n, cap;
} ui_series;

typedef struct ui_model {
    /* ---- the current generation (EV_GEN_BEGIN resets it) */
    char *prompt;          /* owned; NULL before any generation */
    int gen_rows;
    int gen_active;        /* between EV_GEN_BEGIN and EV_GEN_END / the end of the job */
    int verdict;           /* EV_GEN_END: 1 right, 0 wrong, -1 unknown */
    int gen_done;          /* EV_GEN_END seen */
    int seen_answer;       /* a token of the answer part came */
    ui_token *tok;         /* row 0's tokens in order */
    int ntok, captok;
    int n_moe, K;          /* routing shape of the generation */
    int moe_layers[EV_MAX_MOE];
    int32_t *route_e;      /* pools: experts and weights of every kept token */
    float *route_w;
    size_t nroute, caproute;
    int *counts;           /* [n_moe, ncount_e] tokens (all rows) routed to each expert */
    int ncount_e;          /* experts covered by counts (max expert id + 1 seen) */
    long routed_tokens;    /* tokens counted (all rows) */
    int cursor;            /* selected token (index into tok), -1: none */

    /* ---- training (EV_STEP) */
    int have_step;
    char stage[16];
    int step, total_steps;
    int nstats;
    ev_stat stats[EV_MAX_STATS];
    int load_layers, load_experts;
    float *load, *bias;    /* owned copies, may be NULL */
    ui_series hist[H_NSERIES];
    int routing_view;      /* a UI_RV_...: what the Routing pane shows */
    int colour_by;         /* Reasoning pane's tokens: 0 plain, 1 probability, 2 entropy */

    /* ---- the microscope (EV_VIEW, owned copies; NULL when none) */
    ev *view[EV_NVIEWS];
    int attn_on;           /* the Reasoning pane shows view[EV_VIEW_ATTN] as heat */
    int compare_on;        /* the Reasoning pane shows view[EV_VIEW_COMPARE] */
    int tree_sel;          /* the selected row of the tree (the Answer pane) */
    int experts_class;     /* the token class the expert analytics view shows */

    /* ---- the last GRPO group (EV_GROUP) */
    ev *group;             /* owned */
    int group_step;
    int group_sel;         /* selected completion */
    int reader;            /* 1: the selected completion is shown full size */
    int reader_scroll;

    /* ---- output log */
    ui_line *lines;        /* a ring of at most UI_MAX_LINES */
    int nlines, line0;     /* count and index of the oldest */
    char *partial;         /* text after the last newline, not yet a line (owned) */
    int partial_role;

    /* ---- the notebook (borrowed from the workbench; may be NULL) */
    struct nb_notebook *nb;
    int nb_view;           /* 1: the output pane shows the notebook */
    int nb_cur;            /* current cell */
    int nb_scroll;         /* first row of the notebook view, -1: keep the current cell shown */

    /* ---- view state */
    int focus;             /* a ui_pane_id or UI_REPL */
    int last_pane;         /* the pane that had the focus last (:export draws it) */
    int zoom;              /* a zoomed pane, or -1 */
    int scroll[UI_NPANES]; /* first line shown (reasoning, answer, grpo, notebook) or lines up
                            * from the bottom (output log); -1 means "follow the end" */
    int explain[UI_NPANES]; /* 0, or 1 + the explanation's scroll: the pane explains itself */
    int help;              /* the help overlay is shown */
    int help_scroll;
    int quit_confirm;      /* "Quit r1lab? (y/n)" is shown */
    char status[256];      /* a transient message for the status line */
    int busy;              /* the worker runs a job */
    char busy_what[64];
    int demo;              /* demo mode: 1 stepping, 2 autoplay */
    char **matches;        /* completion candidates to show (owned), NULL when none */
    int nmatches;
    int request;           /* an action a pane key asks the workbench for (UI_REQ_...) */
    int req_arg[4];
    /* geometry the panes saw at the last frame (for keys and the mouse) */
    int pane_h[UI_NPANES], pane_w[UI_NPANES];
} ui_model;

#define UI_MAX_LINES 5000

/* What the Routing pane shows. */
enum { UI_RV_GEN, UI_RV_TRAIN, UI_RV_LENS, UI_RV_PATCH, UI_RV_COMPARE, UI_RV_EXPERTS };

/* Actions panes ask for through m->request (they need the worker or the input line); the
 * arguments in req_arg. */
enum {
    UI_REQ_NONE,
    UI_REQ_RUN_CELL,
    UI_REQ_EDIT_CELL,
    UI_REQ_LENS,      /* req_arg[0]: token index */
    UI_REQ_ATTN,      /* token index, layer, head (-1: mean) */
    UI_REQ_BRANCH,    /* token index, token id */
    UI_REQ_BRANCH_TEXT, /* token index: ask for the text in the input line */
    UI_REQ_TREE_SHOW, /* node id */
};

void ui_model_init(ui_model *m);
void ui_model_free(ui_model *m);
/* Applies one event from the worker (does not free it; EV_GROUP's event is copied). */
void ui_model_apply(ui_model *m, const ev *e);
/* Appends text to the output log (split into lines at '\n'; a trailing fragment waits for
 * the next append of the same role). */
void ui_model_print(ui_model *m, ui_out_role role, const char *text);
/* Formats a message into the output log, followed by a newline. */
void ui_model_printf(ui_model *m, ui_out_role role, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ui_model_clear_output(ui_model *m);
/* Forgets the generation, the routing counts, the training state and the group. */
void ui_model_clear_run(ui_model *m);
/* The i-th line of the output log (0 = oldest kept), or NULL. */
const ui_line *ui_model_line(const ui_model *m, int i);
/* Sets the transient status message. */
void ui_model_status(ui_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Routing of token i: experts and weights of n_moe * K entries (borrowed). */
const int32_t *ui_model_token_experts(const ui_model *m, int i);
const float *ui_model_token_weights(const ui_model *m, int i);
/* The latest value of a training statistic, or NAN. */
double ui_model_stat(const ui_model *m, const char *name);

/* ------------------------------------------------------------------ drawing helpers (ui_draw.c) */

/* Writes UTF-8 text at (y, x) clipped to maxw columns and to the window; returns the columns
 * written.  Control characters show as '?'. */
int ui_put(WINDOW *w, int y, int x, int maxw, attr_t a, const char *s);
/* The display width of the first n bytes of s (n < 0: all). */
int ui_width(const char *s, int n);
/* Bytes of s that fit in cols columns. */
int ui_fit(const char *s, int cols);
/* Word-wraps s at width cols: calls fn for each line (a pointer into s and its byte length). */
int ui_wrap(const char *s, int cols, void (*fn)(const char *line, int len, void *u), void *u);
/* Draws a wrapped paragraph from line `skip` into rows [y, y+h) and returns the line count. */
int ui_draw_text(WINDOW *w, int y, int h, int skip, attr_t a, const char *s);
/* The "e" overlay: a pane's explanation, wrapped, from line skip, with a hint to close it. */
void ui_draw_explain(WINDOW *w, const char *title, const char *text, int skip);
/* A bar of width x (in columns, fractional) with eighth blocks; returns the columns used. */
int ui_bar(WINDOW *w, int y, int x, double width, attr_t a);
/* The glyph (UTF-8) for a level in [0, 1]: blocks ▁..█ or ASCII " .:-=+*#". */
const char *ui_level_glyph(double x);
/* Plots the last points of v[n] into the box (y, x, h, w): braille dots when UTF-8, else
 * ASCII marks.  lo/hi give the vertical range. */
void ui_plot(WINDOW *w, int y, int x, int h, int wd, const double *v, int n, double lo, double hi,
             attr_t a);

/* Drops the chat format's markers (<|bos|>, <|user|>, ...) and a trailing <think> from s in
 * place, and turns newlines into blanks: a prompt shown as one line of plain text. */
void ui_strip_chat(char *s);

/* ------------------------------------------------------------------ layout (ui_layout.c) */

typedef struct {
    int y, x, h, w;
} ui_rect;

typedef struct {
    int lines, cols;
    int shown[UI_NPANES];
    ui_rect pane[UI_NPANES]; /* interiors */
    ui_rect box[UI_NPANES];  /* with their borders (the output pane's holds the input line) */
    int boxed;               /* 1 when panes have borders */
    ui_rect repl;            /* the input line(s) */
    ui_rect status;          /* the bottom line (h = 0 when there is no room) */
} ui_layout;

/* Computes where the panes go for a terminal of lines x cols, with pane `zoom` (or -1) full
 * size and repl_rows rows for the input. */
void ui_layout_compute(ui_layout *lo, int lines, int cols, int zoom, int repl_rows);
/* The pane whose box holds (y, x), or -1; UI_REPL for the input line. */
int ui_layout_hit(const ui_layout *lo, int y, int x);
/* Draws the borders and titles of the shown panes into w (the whole screen). */
void ui_layout_draw_frame(WINDOW *w, const ui_layout *lo, const ui_model *m);

/* ------------------------------------------------------------------ the panes */

/* Every pane: its title (into buf), its drawing from the model, its keys (returns 1 when the
 * key was used), the mouse (a click at (y, x) inside its window) and its explanation. */
typedef struct {
    const char *name;
    void (*title)(const ui_model *m, char *buf, size_t n);
    void (*draw)(WINDOW *w, const ui_model *m, int focused);
    int (*key)(ui_model *m, int key);
    void (*click)(ui_model *m, int y, int x);
    const char *explain;
} ui_pane;

extern const ui_pane ui_reasoning_pane, ui_answer_pane, ui_routing_pane, ui_grpo_pane,
    ui_output_pane;
/* The pane descriptions in ui_pane_id order. */
const ui_pane *ui_pane_get(int id);

/* Reasoning: where token i sits when the pane is cols wide (line and column of its first
 * cell, -1 when not shown); the line count. */
int ui_reasoning_locate(const ui_model *m, int cols, int i, int *line, int *col);
/* The token at (line, col) of the wrapped text, or -1. */
int ui_reasoning_token_at(const ui_model *m, int cols, int line, int col);

/* ------------------------------------------------------------------ overlays (ui_help.c) */

/* The help overlay: every key and command.  Drawn over the whole screen. */
void ui_help_draw(WINDOW *w, const ui_model *m);
/* Writes pane (UI_ROUTING: its current view as a heatmap; UI_GRPO: the history plots and the
 * group; UI_REASONING: the text) as an SVG picture to f.  -1 with a message in err (size n)
 * when the pane shows nothing yet or cannot be exported. */
int ui_export_svg(const ui_model *m, int pane, FILE *f, char *err, size_t n);

int ui_help_lines(void);
const char *ui_help_line(int i); /* line i of the help screen; '#' starts a heading */
/* The "Quit r1lab? (y/n)" box. */
void ui_confirm_draw(WINDOW *w, const char *question);
/* The status line. */
void ui_status_draw(WINDOW *w, const ui_model *m);

/* ------------------------------------------------------------------ the input line (ui_repl.c) */

/* What the input line shows: the prompt and the line with the cursor at byte `point`. */
typedef struct {
    const char *prompt;
    const char *line;
    int point;
} ui_repl_view;

/* Rows the input needs at width cols (at least 1, at most max_rows). */
int ui_repl_rows(const ui_repl_view *v, int cols, int max_rows);
/* Draws the prompt and the line wrapped, the cursor's row always visible; leaves the window's
 * cursor at the editing point. */
void ui_repl_draw(WINDOW *w, const ui_repl_view *v, int focused);

#endif
