/* ui_help.c — what overlays the panes: the help screen listing every key and command (F1 or
 * '?'), the yes/no question box, and the status line at the bottom.  Draws from the screen
 * model only. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "nb.h"
#include "ui.h"

static const char *const help_text[] = {
    "#r1lab workbench — keys and commands",
    "",
    "#Everywhere",
    "  F1              this help (any key closes it; Up/Down scroll it)",
    "  Tab / Shift-Tab focus the next / previous pane (Tab completes while you type)",
    "  F2              zoom the focused pane to the whole screen and back",
    "  PgUp / PgDn     scroll the focused pane (the output when typing)",
    "  Ctrl-C          stop the running job; at an empty prompt, asks before quitting",
    "  Ctrl-D          quit (at an empty prompt)",
    "  mouse click     focus a pane, select a token, a completion or a cell",
    "",
    "#In a pane (after Tab)",
    "  z               zoom this pane / back",
    "  e               explain what this pane shows",
    "  ?               this help",
    "  arrows, PgUp/PgDn, Home/End   move and scroll",
    "  Esc             back to the input line (typing also goes back)",
    "  Reasoning       Left/Right move the token cursor, a: all tokens again",
    "                  c: colour tokens by probability / entropy / off",
    "                  l: logit lens at the cursor (what each layer predicted)",
    "                  w: where it looked (attention); [ ] layer, h head",
    "                  1-5: branch with that alternative; b: branch with typed text",
    "                  v: a comparison (:compare) / the generation",
    "  Routing         t: next view (generation, training, lens, patching, A/B, experts)",
    "                  n: the expert view's next token class (ui.experts{...} draws it)",
    "  Answer          the reasoning tree: Up/Down, Enter show, u parent, [ ] siblings",
    "  GRPO            Up/Down select a completion, Enter read it",
    "  Notebook        j/k next/previous cell, Enter run it, c edit it, n output view",
    "",
    "#The input line (GNU readline)",
    "  Enter           run the Lua chunk (an incomplete chunk continues on >>)",
    "  Up / Down       history (saved in ~/.local/state/r1lab/history)",
    "  Tab             complete globals, table fields and methods",
    "  Ctrl-R          search the history; Alt-Enter inserts a newline",
    "  ?QUESTION       ask the model (same as :ask QUESTION)",
    "",
    "#Commands",
    "  :help           this help",
    "  :load DIR       load a model folder into the global m",
    "  :ask TEXT       ask(TEXT) if you defined ask, else m:ask(TEXT)",
    "  :theme NAME     default, light, high-contrast, mono, or a file",
    "  :open FILE      open a notebook (Markdown with ```lua cells)",
    "  :save [FILE]    save the notebook with its outputs",
    "  :run [N]        run the current cell (or cell N)",
    "  :runall         run every cell in order (stops at an error)",
    "  :edit N         put cell N into the input line; Enter runs it",
    "  :new FILE       start an empty notebook; :add CODE appends a cell",
    "  :demo           play the notebook cell by cell (space steps)",
    "  :clear          clear the output log and the generation panes",
    "  :branch TEXT    branch at the cursor's token with TEXT in its place",
    "  :patch A | B    activation patching: question A (clean) against B (corrupted)",
    "  :compare DIR    the last question through the model and checkpoint DIR",
    "  :export F.svg   the pane that had the focus last as an SVG picture (or name it:",
    "                  :export F.svg routing|grpo|reasoning)",
    "  :mpirun N FILE  run the Lua script FILE on N MPI ranks in the background; rank 0's",
    "                  output and training reports come to the panes (:mpirun lists",
    "                  the jobs, :mpirun stop [ID] stops one; r1.launch{...} in Lua)",
    "  :quit           quit (asks when the notebook has unsaved changes)",
    "",
    "#Lua in the workbench",
    "  print and io.write go to the output; ui.step{...} and ui.group{...} feed the",
    "  Routing and GRPO panes from your own training loops (see scripts/README.md).",
    "  ui.lens(i), ui.attention(i, layer, head), ui.branch(i, token), ui.patch(a, b),",
    "  ui.compare(dir) are the microscope's keys and commands as Lua calls.",
};

int ui_help_lines(void)
{
    return (int)(sizeof help_text / sizeof *help_text);
}

const char *ui_help_line(int i)
{
    return i >= 0 && i < ui_help_lines() ? help_text[i] : "";
}

void ui_help_draw(WINDOW *w, const ui_model *m)
{
    int h = getmaxy(w), cols = getmaxx(w);
    werase(w);
    if (h < 1 || cols < 1)
        return;
    int n = ui_help_lines();
    int skip = m->help_scroll > 0 ? m->help_scroll : 0;
    if (skip > n - (h - 1))
        skip = n - (h - 1) > 0 ? n - (h - 1) : 0;
    for (int r = 0; r < h - 1 && skip + r < n; r++) {
        const char *s = help_text[skip + r];
        if (s[0] == '#')
            ui_put(w, r, 0, cols, ui_attr(R_TITLE) | A_BOLD, s + 1);
        else
            ui_put(w, r, 0, cols, ui_attr(R_TEXT), s);
    }
    ui_put(w, h - 1, 0, cols, ui_attr(R_DIM),
           n > h - 1 ? "Up/Down scroll · any other key closes" : "any key closes");
}

void ui_confirm_draw(WINDOW *w, const char *question)
{
    int h = getmaxy(w), cols = getmaxx(w);
    werase(w);
    if (h < 1 || cols < 1)
        return;
    if (h >= 3 && cols >= 8) {
        box(w, 0, 0);
        ui_put(w, h / 2, 2, cols - 4, ui_attr(R_TITLE) | A_BOLD, question);
    } else {
        ui_put(w, 0, 0, cols, ui_attr(R_TITLE) | A_BOLD, question);
    }
}

void ui_status_draw(WINDOW *w, const ui_model *m)
{
    int cols = getmaxx(w);
    attr_t a = ui_attr(R_STATUS);
    wbkgdset(w, ' ' | a);
    werase(w);
    if (cols < 1)
        return;
    char left[160];
    if (m->demo)
        snprintf(left, sizeof left, " DEMO %s· space: next cell · a: autoplay · Esc: leave ",
                 m->demo == 2 ? "(autoplay) " : "");
    else if (m->busy)
        snprintf(left, sizeof left, " %s %s · Ctrl-C stops ", ui_utf8 ? "●" : "*",
                 m->busy_what[0] ? m->busy_what : "running");
    else
        snprintf(left, sizeof left, " ready ");
    int x = ui_put(w, 0, 0, cols, a | (m->busy ? A_BOLD : 0), left);
    const char *right = " F1 help ";
    int rw = (int)strlen(right);
    if (m->status[0] && cols - x - rw > 4)
        ui_put(w, 0, x + 1, cols - x - rw - 1, a, m->status);
    if (cols - rw > x)
        ui_put(w, 0, cols - rw, rw, a, right);
}
