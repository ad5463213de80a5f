/* fuzz_notebook.c — the notebook parser and serializer (app/nb.c), no curses, no files.
 *
 * Input: the notebook text, optionally followed by a NUL byte and edits separated by NUL
 * bytes.  An edit's first byte picks the operation (its value mod 4: set a cell's output,
 * append to it, set its code, add a cell) and the cell (its value / 4, mod the cell count);
 * the rest of the edit is the text.  These are the calls the workbench makes when cells run
 * and are edited.
 *
 * Checks (what nb.h promises, so that :save never loses a cell):
 *   - read and written back, a notebook is the same text, except that a block left open at
 *     the end of the file gets its closing fence (and the newline before it);
 *   - after any edits, the saved text reads back with the same cells, the same code and the
 *     same output (as whole lines), and saving that again gives the same text. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nb.h"

#define MAX_EDITS 16

/* 1 when a and b hold the same lines: equal, or equal but for a final newline. */
static int same_lines(const char *a, const char *b)
{
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    if (la == lb)
        return la == 0 || !memcmp(a, b, la);
    if (la + 1 == lb)
        return b[la] == '\n' && !memcmp(a, b, la);
    if (lb + 1 == la)
        return a[lb] == '\n' && !memcmp(a, b, lb);
    return 0;
}

/* 1 when s is what closes a block left open: a newline when the last line had none, then a
 * bare fence of at least three backticks. */
static int closing_fence(const char *s)
{
    s += *s == '\n';
    size_t k = strspn(s, "`");
    return k >= 3 && !strcmp(s + k, "\n");
}

/* Saves nb, reads the text back and checks that nothing changed; returns the text. */
static char *save_and_reread(const nb_notebook *nb, size_t *len)
{
    char *text = nb_serialize(nb, len);
    FUZZ_CHECK(text != NULL, "nb_serialize failed");
    nb_notebook *back = nb_parse(text, *len, NULL);
    FUZZ_CHECK(back != NULL, "nb_parse of a saved notebook failed");
    FUZZ_CHECK(back->ncells == nb->ncells, "%d cells saved, %d read back", nb->ncells,
               back->ncells);
    for (int i = 0; i < nb->ncells; i++) {
        const nb_cell *a = &nb->cells[i], *b = &back->cells[i];
        FUZZ_CHECK(same_lines(a->src, b->src), "cell %d: code changes when saved", i);
        FUZZ_CHECK(!a->out_open == !b->out_open, "cell %d: output block %s when saved", i,
                   a->out_open ? "lost" : "appears");
        FUZZ_CHECK(!a->out_open || same_lines(a->output, b->output),
                   "cell %d: output changes when saved", i);
    }
    size_t len2;
    char *again = nb_serialize(back, &len2);
    FUZZ_CHECK(again && len2 == *len && !memcmp(again, text, len2),
               "saving a saved notebook again changes it");
    free(again);
    nb_free(back);
    return text;
}

static void edit(nb_notebook *nb, const char *e)
{
    unsigned sel = (unsigned char)e[0];
    const char *text = e + 1;
    int cell = nb->ncells ? (int)(sel / 4 % (unsigned)nb->ncells) : 0;
    int rc = 0;
    switch (sel % 4) {
    case 0: rc = nb->ncells ? nb_set_output(nb, cell, text) : 0; break;
    case 1: rc = nb->ncells ? nb_append_output(nb, cell, text) : 0; break;
    case 2: rc = nb->ncells ? nb_set_src(nb, cell, text) : 0; break;
    default: rc = nb_add_cell(nb, text); break;
    }
    FUZZ_CHECK(rc == 0, "edit %u failed", sel % 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t len = nul ? (size_t)(nul - data) : size;
    nb_notebook *nb = nb_parse((const char *)data, len, NULL);
    FUZZ_CHECK(nb != NULL, "nb_parse failed");

    /* read and written back unchanged: the same text, closed */
    size_t out_len;
    char *text = save_and_reread(nb, &out_len);
    FUZZ_CHECK(out_len >= len && !memcmp(text, data, len), "the text changes when saved");
    const char *extra = text + len;
    FUZZ_CHECK(out_len == len || closing_fence(extra), "saving adds \"%s\"", extra);
    free(text);

    if (nul) {
        char *edits = fuzz_cstr(nul + 1, size - len - 1);
        size_t elen = size - len - 1;
        int done = 0;
        for (size_t at = 0; at < elen && done < MAX_EDITS; done++) {
            const char *e = edits + at;
            at += strlen(e) + 1;
            if (*e)
                edit(nb, e);
        }
        free(edits);
        free(save_and_reread(nb, &out_len));
    }
    nb_free(nb);
    return 0;
}
