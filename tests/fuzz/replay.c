/* replay.c — runs a fuzz harness over saved inputs without libFuzzer, so that any build (gcc,
 * no sanitizer) can replay the corpus and the crashes as regression tests.
 *
 *   replay_<name> PATH...    PATH a file, or a folder whose files (not dot files, not
 *                            README.md) are replayed in name order
 *
 * Prints "replayed N inputs" and exits 0 when every input went through; a harness check or a
 * crash ends the process there (abort, a signal, a sanitizer report), with the input's name
 * already on stderr.  A missing PATH or an unreadable file is exit status 2.  Each input gets
 * a watchdog alarm (R1_FUZZ_REPLAY_ALARM seconds, 300 by default) so that a hang that comes
 * back fails the test instead of stopping make check; it is a safety net far above what any
 * input needs, not a measurement. */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* libFuzzer calls this once before the first input when a harness defines it. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static long replayed;

static int replay_file(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: cannot open\n", p);
        return -1;
    }
    size_t cap = 4096, n = 0, r;
    uint8_t *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: cannot read\n", p);
        free(buf);
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", p, n);
    const char *w = getenv("R1_FUZZ_REPLAY_ALARM");
    alarm(w && atoi(w) > 0 ? (unsigned)atoi(w) : 300);
    LLVMFuzzerTestOneInput(buf, n);
    alarm(0);
    free(buf);
    replayed++;
    return 0;
}

static int skip(const struct dirent *e)
{
    return e->d_name[0] != '.' && strcmp(e->d_name, "README.md") != 0;
}

static int replay_path(const char *p)
{
    struct stat sb;
    if (stat(p, &sb) != 0) {
        fprintf(stderr, "replay: %s: no such file or folder\n", p);
        return -1;
    }
    if (!S_ISDIR(sb.st_mode))
        return replay_file(p);
    struct dirent **list;
    int n = scandir(p, &list, skip, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: cannot list\n", p);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char f[8192];
        snprintf(f, sizeof f, "%s/%s", p, list[i]->d_name);
        if (rc == 0)
            rc = replay_file(f);
        free(list[i]);
    }
    free(list);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i]) != 0)
            return 2;
    printf("replayed %ld inputs\n", replayed);
    return 0;
}
