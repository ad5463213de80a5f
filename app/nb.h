/* nb.h — notebooks: Markdown files whose ```lua blocks are cells, each cell's output kept in
 * the ```output block that follows it.
 *
 * A notebook read and written back unchanged is byte-for-byte the same file: prose, fences
 * and blank lines are kept verbatim; only the cells' code and output blocks are regenerated
 * when they change (a block left open at the end of the file is closed, by a fence as long as
 * its opening one, on a line of its own).  Edited code and output get fences longer than any
 * run of backticks that starts one of their lines, so that a saved notebook reads back with
 * the same cells.  Saving writes a temporary file next to the target, flushes and fsyncs
 * it, then renames it over the target, so a crash never leaves half a notebook.
 *
 * Ownership: nb_notebook and every string in it belong to the notebook (nb_free).  Errors:
 * functions that touch files return -1 and write a message naming the file into err; NULL
 * from a constructor means out of memory. */
#ifndef R1_APP_NB_H
#define R1_APP_NB_H

#include <stddef.h>

typedef enum { NB_IDLE, NB_QUEUED, NB_RUNNING, NB_OK, NB_ERROR, NB_CANCELLED } nb_state;

typedef struct {
    char *prose;     /* the Markdown before the cell, verbatim ("" when none) */
    char *open;      /* the opening fence line with its newline, e.g. "```lua\n" */
    char *src;       /* the code: whole lines, each ending in '\n' ("" when empty) */
    char *close;     /* the closing fence line ("```\n"; may lack the newline at the end) */
    char *gap;       /* blank lines between the code and its output block */
    char *out_open;  /* the output block's fence lines; NULL when the cell has no output */
    char *output;    /* the output text (whole lines) */
    char *out_close;
    nb_state state;  /* not saved */
} nb_cell;

typedef struct nb_notebook {
    char *path;      /* where it was read from / is saved to (owned) */
    int readonly;    /* a shipped example: :save without a name writes a copy */
    nb_cell *cells;
    int ncells;
    char *tail;      /* the Markdown after the last cell */
    int dirty;       /* changed since read or saved */
} nb_notebook;

/* Parses Markdown text (len bytes); path is recorded (may be NULL). */
nb_notebook *nb_parse(const char *text, size_t len, const char *path);
#define NB_MAX_BYTES (16 << 20) /* the largest notebook r1lab opens */

/* Reads and parses a file.  NULL with a message on error. */
nb_notebook *nb_load(const char *path, char *err, size_t n);
/* The Markdown text of the notebook (malloc'd, NUL-terminated; *len may be NULL). */
char *nb_serialize(const nb_notebook *nb, size_t *len);
/* Saves to path (NULL: nb->path) atomically; on success records path and clears dirty. */
int nb_save(nb_notebook *nb, const char *path, char *err, size_t n);
void nb_free(nb_notebook *nb);

/* Replaces cell i's code (a trailing newline is added when missing).  0, or -1 when out of
 * memory (the cell is unchanged). */
int nb_set_src(nb_notebook *nb, int i, const char *src);
/* Replaces cell i's output; an empty or NULL output removes the output block. */
int nb_set_output(nb_notebook *nb, int i, const char *out);
/* Appends to cell i's output (creating the block). */
int nb_append_output(nb_notebook *nb, int i, const char *text);
/* A new empty notebook that will be saved to path. */
nb_notebook *nb_new(const char *path);
/* Appends a cell with src (and a blank line of prose before it). */
int nb_add_cell(nb_notebook *nb, const char *src);

/* Writes len bytes to path through a temporary file (created with mode), fsync and rename. */
int nb_write_atomic(const char *path, const char *data, size_t len, int mode, char *err,
                    size_t n);

#endif
