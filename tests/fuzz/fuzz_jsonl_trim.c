/* fuzz_jsonl_trim.c — r1_jsonl_trim (engine/checkpoint.c), the reader that cuts a run's
 * metrics.jsonl back to its checkpoint when the run resumes.
 *
 * The input is written as metrics.jsonl and trimmed to step STEP.  What r1_train.h promises is
 * computed here independently, line by line: a line stays when it is a JSON object with an
 * integer "step" <= STEP, and every other line (a later step, a half line written by a killed
 * run, garbage) goes.  The resumed run then appends whole lines to the file, so what stays
 * must be whole lines too: a kept last line without its newline gets one.
 *
 * Checks: the trim succeeds and leaves exactly the expected bytes. */
#include <config.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "r1_train.h"

#define STEP 3

/* 1 when line [p, p + n) (its newline included, if any) is one that stays. */
static int stays(const char *p, size_t n)
{
    json_t *j = json_loadb(p, n, 0, NULL);
    json_t *s = json_object_get(j, "step");
    int keep = json_is_object(j) && json_is_integer(s) && json_integer_value(s) <= STEP;
    json_decref(j);
    return keep;
}

/* The expected trimmed file of the n bytes at p (malloc'd; *len its length). */
static char *expected(const char *p, size_t n, size_t *len)
{
    char *out = malloc(n + 2);
    FUZZ_CHECK(out != NULL, "out of memory");
    *len = 0;
    for (size_t at = 0; at < n;) {
        const char *nl = memchr(p + at, '\n', n - at);
        size_t l = nl ? (size_t)(nl - (p + at)) + 1 : n - at;
        if (stays(p + at, l)) {
            memcpy(out + *len, p + at, l);
            *len += l;
            if (!nl)
                out[(*len)++] = '\n';
        }
        at += l;
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("metrics.jsonl", data, size);
    r1_error err = {0};
    r1_status s = r1_jsonl_trim(path, STEP, &err);
    FUZZ_CHECK(s == R1_OK, "r1_jsonl_trim failed: %s", err.msg);
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL, "the trimmed file is gone");
    char *got = malloc(size + 2);
    FUZZ_CHECK(got != NULL, "out of memory");
    size_t n = fread(got, 1, size + 2, f);
    fclose(f);
    size_t want_n;
    char *want = expected((const char *)data, size, &want_n);
    FUZZ_CHECK(n == want_n && !memcmp(got, want, n),
               "trimmed to %zu bytes, expected %zu (the lines with an integer step <= %d)", n,
               want_n, STEP);
    free(want);
    free(got);
    return 0;
}
