/* testutil.h — what the C tests share besides tap.h: a private temporary folder for the files
 * a test writes, paths inside it, and rm -r.  Header-only, like tap.h; one test program per
 * translation unit.
 *
 *     tu_tmpdir("t_config");              // $TMPDIR/t_config.XXXXXX (or /tmp), or bail out
 *     r1_config_save(&c, tu_at("config.json"), &err);
 *     tu_rm(tu_dir);                       // at the end */
#ifndef R1_TESTUTIL_H
#define R1_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tu_dir[512];

/* Creates the test's temporary folder tu_dir (mkdtemp: private, unpredictable).  Exits with a
 * TAP "Bail out!" when it cannot. */
static inline void tu_tmpdir(const char *name)
{
    const char *base = getenv("TMPDIR");
    snprintf(tu_dir, sizeof tu_dir, "%s/%s.XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(tu_dir)) {
        printf("Bail out! mkdtemp %s: %s\n", tu_dir, strerror(errno));
        exit(1);
    }
}

/* "<tu_dir>/<name>", in one of four rotating buffers (so that a call may use two or three). */
static inline const char *tu_at(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tu_dir, name);
    return buf[k];
}

/* The first 64 KiB of a text file as a new string (free it), or NULL when it cannot be read. */
static inline char *tu_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = calloc(1, 1 << 16);
    size_t n = s ? fread(s, 1, (1 << 16) - 1, f) : 0;
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

/* rm -r path (a file or a folder tree); missing paths are fine. */
static inline void tu_rm(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[2048];
        int w = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        if (w > 0 && (size_t)w < sizeof sub)
            tu_rm(sub);
    }
    closedir(d);
    rmdir(path);
}

#endif
