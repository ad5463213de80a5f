/* nb.c — reading, editing and atomically saving notebooks (see nb.h).  The parser works line
 * by line; everything it does not recognise as a cell is prose and is kept as written. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "nb.h"

/* A growable string. */
typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    if (s)
        sb_add(b, s, strlen(s));
}

/* The buffer's string, "" when empty (owned by the caller). */
static char *sb_take(sbuf *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (!b->s)
        return strdup("");
    return b->s;
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Like dupn, with a newline added at the end when the text has none ("" stays ""): whole lines,
 * so that what is saved after them starts a line of its own. */
static char *dupn_lines(const char *s, size_t n)
{
    char *p = malloc(n + 2);
    if (p) {
        memcpy(p, s, n);
        if (n && s[n - 1] != '\n')
            p[n++] = '\n';
        p[n] = '\0';
    }
    return p;
}

/* The number of backticks a fence line opens with when the rest of the line is `info`
 * (optionally followed by blanks); 0 when it is not such a fence.  info "" matches a bare
 * fence (a closing fence). */
static int fence(const char *line, size_t len, const char *info)
{
    size_t k = 0;
    while (k < len && line[k] == '`')
        k++;
    if (k < 3)
        return 0;
    size_t il = strlen(info);
    if (len - k < il || strncmp(line + k, info, il) != 0)
        return 0;
    for (size_t i = k + il; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
            return 0;
    return (int)k;
}

static int blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
            return 0;
    return 1;
}

/* The length of the line starting at text+i (newline included). */
static size_t line_len(const char *text, size_t len, size_t i)
{
    const char *nl = memchr(text + i, '\n', len - i);
    return nl ? (size_t)(nl - (text + i)) + 1 : len - i;
}

/* Skips the blank lines from *j; returns the number of backticks of the output fence that opens
 * the line there (the output block of the cell before it), or 0. */
static int output_after(const char *text, size_t len, size_t *j)
{
    while (*j < len && blank(text + *j, line_len(text, len, *j)))
        *j += line_len(text, len, *j);
    return *j < len ? fence(text + *j, line_len(text, len, *j), "output") : 0;
}

/* A fence line of `ticks` backticks followed by info and a newline (malloc'd). */
static char *fence_line(int ticks, const char *info)
{
    size_t il = strlen(info);
    char *p = malloc((size_t)ticks + il + 2);
    if (p) {
        memset(p, '`', (size_t)ticks);
        memcpy(p + ticks, info, il);
        strcpy(p + ticks + il, "\n");
    }
    return p;
}

/* Reads a fenced block starting after its opening line at *i: the body up to a closing fence
 * of at least `ticks` backticks.  Sets *close to that line (or NULL at the end of the text).
 * The body is whole lines: one left open at the end of the text gets a final newline, so that
 * the closing fence saved after it stands on a line of its own. */
static char *read_block(const char *text, size_t len, size_t *i, int ticks, char **close)
{
    size_t start = *i;
    *close = NULL;
    while (*i < len) {
        size_t l = line_len(text, len, *i);
        int k = fence(text + *i, l, "");
        if (k >= ticks) {
            char *body = dupn(text + start, *i - start);
            *close = dupn(text + *i, l);
            *i += l;
            return body;
        }
        *i += l;
    }
    return dupn_lines(text + start, len - start);
}

static void cell_free(nb_cell *c)
{
    free(c->prose);
    free(c->open);
    free(c->src);
    free(c->close);
    free(c->gap);
    free(c->out_open);
    free(c->output);
    free(c->out_close);
}

void nb_free(nb_notebook *nb)
{
    if (!nb)
        return;
    for (int i = 0; i < nb->ncells; i++)
        cell_free(&nb->cells[i]);
    free(nb->cells);
    free(nb->tail);
    free(nb->path);
    free(nb);
}

static nb_cell *new_cell(nb_notebook *nb)
{
    nb_cell *c = realloc(nb->cells, sizeof *c * (size_t)(nb->ncells + 1));
    if (!c)
        return NULL;
    nb->cells = c;
    c = &nb->cells[nb->ncells++];
    memset(c, 0, sizeof *c);
    return c;
}

nb_notebook *nb_parse(const char *text, size_t len, const char *path)
{
    nb_notebook *nb = calloc(1, sizeof *nb);
    if (!nb)
        return NULL;
    if (path && !(nb->path = strdup(path)))
        goto oom;
    sbuf prose = {0};
    size_t i = 0;
    while (i < len) {
        size_t l = line_len(text, len, i);
        int ticks = fence(text + i, l, "lua");
        if (!ticks) {
            sb_add(&prose, text + i, l);
            i += l;
            continue;
        }
        nb_cell *c = new_cell(nb);
        if (!c)
            goto oom_prose;
        c->prose = sb_take(&prose);
        memset(&prose, 0, sizeof prose);
        c->open = dupn_lines(text + i, l); /* the last line of the file may lack its newline */
        i += l;
        c->src = read_block(text, len, &i, ticks, &c->close);
        if (!c->close) /* unclosed at the end of the file: closed when saved, by as many */
            c->close = fence_line(ticks, "");
        /* blank lines, then an output block? */
        size_t j = i;
        int ot = output_after(text, len, &j);
        if (ot) {
            size_t ol = line_len(text, len, j);
            c->gap = dupn(text + i, j - i);
            c->out_open = dupn_lines(text + j, ol);
            j += ol;
            c->output = read_block(text, len, &j, ot, &c->out_close);
            if (!c->out_close)
                c->out_close = fence_line(ot, "");
            i = j;
        }
        if (!c->gap)
            c->gap = strdup("");
        if (!c->prose || !c->open || !c->src || !c->close || !c->gap ||
            (c->out_open && (!c->output || !c->out_close)))
            goto oom;
    }
    nb->tail = sb_take(&prose);
    if (!nb->tail)
        goto oom;
    return nb;
oom_prose:
    free(prose.s);
oom:
    nb_free(nb);
    return NULL;
}

nb_notebook *nb_load(const char *path, char *err, size_t n)
{
    /* a notebook is a regular file of at most NB_MAX_BYTES: a FIFO would block the open and
     * /dev/zero never end (the probe's L6), so the open does not wait and the size is checked */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, n, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size > NB_MAX_BYTES) {
        if (!S_ISREG(sb.st_mode))
            snprintf(err, n, "%s: not a regular file", path);
        else
            snprintf(err, n, "%s: %lld bytes, more than a notebook's limit of %d MiB", path,
                     (long long)sb.st_size, NB_MAX_BYTES >> 20);
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(err, n, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    sbuf b = {0};
    char buf[8192];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0 && b.n <= NB_MAX_BYTES)
        sb_add(&b, buf, r);
    int bad = ferror(f);
    fclose(f);
    if (bad || b.oom) {
        snprintf(err, n, "%s: %s", path, bad ? "read error" : "out of memory");
        free(b.s);
        return NULL;
    }
    if (b.n && memchr(b.s, '\0', b.n)) {
        snprintf(err, n, "%s: not a text file (it holds NUL bytes)", path);
        free(b.s);
        return NULL;
    }
    nb_notebook *nb = nb_parse(b.s ? b.s : "", b.n, path);
    free(b.s);
    if (!nb)
        snprintf(err, n, "%s: out of memory", path);
    return nb;
}

char *nb_serialize(const nb_notebook *nb, size_t *len)
{
    sbuf b = {0};
    for (int i = 0; i < nb->ncells; i++) {
        const nb_cell *c = &nb->cells[i];
        sb_str(&b, c->prose);
        sb_str(&b, c->open);
        sb_str(&b, c->src);
        sb_str(&b, c->close);
        if (c->out_open) {
            if (c->close[0] && c->close[strlen(c->close) - 1] != '\n')
                sb_str(&b, "\n");
            sb_str(&b, c->gap);
            sb_str(&b, c->out_open);
            sb_str(&b, c->output);
            /* output appended in pieces may end mid-line: the fence needs a line of its own */
            if (c->output[0] && c->output[strlen(c->output) - 1] != '\n')
                sb_str(&b, "\n");
            sb_str(&b, c->out_close);
        } else {
            sb_str(&b, c->gap);
        }
    }
    sb_str(&b, nb->tail);
    if (len)
        *len = b.n;
    return sb_take(&b);
}

int nb_write_atomic(const char *path, const char *data, size_t len, int mode, char *err,
                    size_t n)
{
    /* the engine's safe replacement (atomic_file.h): an unguessable temporary name created
     * exclusively, the target's permissions kept (mode only for a new file), a symlink's file
     * replaced, anything but a regular file refused, fsync and rename (the probe's M2) */
    struct stat sb;
    int fresh = stat(path, &sb) != 0;
    r1_afile a;
    r1_error e = {0};
    r1_status s = r1_afile_open(&a, path, &e);
    if (s == R1_OK && fresh && fchmod(fileno(a.f), (mode_t)mode) != 0)
        s = r1_error_set(&e, R1_EIO, "%s: %s", path, strerror(errno));
    if (s == R1_OK)
        s = r1_afile_write(&a, data, len, &e);
    if (s == R1_OK)
        s = r1_afile_commit(&a, &e);
    else
        r1_afile_abort(&a);
    if (s != R1_OK) {
        snprintf(err, n, "%s", e.msg);
        return -1;
    }
    return 0;
}

int nb_save(nb_notebook *nb, const char *path, char *err, size_t n)
{
    if (!path)
        path = nb->path;
    if (!path) {
        snprintf(err, n, "the notebook has no file name yet: :save FILE");
        return -1;
    }
    size_t len;
    char *text = nb_serialize(nb, &len);
    if (!text) {
        snprintf(err, n, "%s: out of memory", path);
        return -1;
    }
    int rc = nb_write_atomic(path, text, len, 0644, err, n);
    free(text);
    if (rc == 0) {
        if (path != nb->path) {
            char *p = strdup(path);
            if (p) {
                free(nb->path);
                nb->path = p;
            }
        }
        nb->dirty = 0;
        nb->readonly = 0;
    }
    return rc;
}

/* s with a newline added at the end when it has none ("" and NULL give ""). */
static char *with_newline(const char *s)
{
    return s ? dupn_lines(s, strlen(s)) : dupn_lines("", 0);
}

static int make_fences(char **open, char **close, const char *body, const char *info);

int nb_set_src(nb_notebook *nb, int i, const char *src)
{
    if (i < 0 || i >= nb->ncells)
        return -1;
    char *p = with_newline(src);
    if (!p)
        return -1;
    nb_cell *c = &nb->cells[i];
    free(c->src);
    c->src = p;
    nb->dirty = 1;
    return make_fences(&c->open, &c->close, c->src, "lua");
}

/* The longest run of backticks that starts a line of s. */
static int max_ticks(const char *s)
{
    int best = 0;
    for (const char *p = s; p && *p;) {
        int k = 0;
        while (p[k] == '`')
            k++;
        if (k > best)
            best = k;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return best;
}

/* Makes a block's fence lines *open and *close (info "lua" or "output") longer than any run of
 * backticks that starts a line of body, so that no line of it closes the block early; keeps
 * them when they are.  0, or -1 when out of memory (the fences unchanged). */
static int make_fences(char **open, char **close, const char *body, const char *info)
{
    int need = max_ticks(body) + 1;
    int have = 0;
    if (*open)
        while ((*open)[have] == '`')
            have++;
    if (*open && have >= need && have >= 3)
        return 0;
    if (need < 3)
        need = 3;
    char *o = fence_line(need, info), *cl = fence_line(need, "");
    if (!o || !cl) {
        free(o);
        free(cl);
        return -1;
    }
    free(*open);
    free(*close);
    *open = o;
    *close = cl;
    return 0;
}

int nb_set_output(nb_notebook *nb, int i, const char *out)
{
    if (i < 0 || i >= nb->ncells)
        return -1;
    nb_cell *c = &nb->cells[i];
    const char *next = i + 1 < nb->ncells ? nb->cells[i + 1].prose : nb->tail;
    size_t j = 0;
    if ((!out || !*out) && c->out_open && next && output_after(next, strlen(next), &j)) {
        /* the prose after the block opens with another output block, which would become this
         * cell's: keep this block, empty */
        char *e = strdup("");
        if (!e)
            return -1;
        free(c->output);
        c->output = e;
        nb->dirty = 1;
        return 0;
    }
    if (!out || !*out) {
        if (c->out_open) {
            free(c->out_open);
            free(c->output);
            free(c->out_close);
            c->out_open = c->output = c->out_close = NULL;
            free(c->gap);
            c->gap = strdup("");
            nb->dirty = 1;
        }
        return c->gap ? 0 : -1;
    }
    char *p = with_newline(out);
    if (!p)
        return -1;
    free(c->output);
    c->output = p;
    nb->dirty = 1;
    return make_fences(&c->out_open, &c->out_close, c->output, "output");
}

int nb_append_output(nb_notebook *nb, int i, const char *text)
{
    if (i < 0 || i >= nb->ncells || !text || !*text)
        return i < 0 || i >= nb->ncells ? -1 : 0;
    nb_cell *c = &nb->cells[i];
    sbuf b = {0};
    sb_str(&b, c->out_open ? c->output : NULL);
    sb_str(&b, text);
    char *p = sb_take(&b);
    if (!p)
        return -1;
    free(c->output);
    c->output = p;
    nb->dirty = 1;
    return make_fences(&c->out_open, &c->out_close, c->output, "output");
}

nb_notebook *nb_new(const char *path)
{
    return nb_parse("", 0, path);
}

int nb_add_cell(nb_notebook *nb, const char *src)
{
    nb_cell *c = new_cell(nb);
    if (!c)
        return -1;
    /* the old tail becomes this cell's prose, ending in a newline so that the fence starts a
     * line */
    c->prose = with_newline(nb->tail && *nb->tail ? nb->tail : "\n");
    free(nb->tail);
    nb->tail = strdup("");
    c->src = with_newline(src);
    c->gap = strdup("");
    nb->dirty = 1;
    if (!c->prose || !nb->tail || !c->src || !c->gap)
        return -1;
    return make_fences(&c->open, &c->close, c->src, "lua");
}
