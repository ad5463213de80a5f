/* fuzz.h — what the fuzz harnesses in tests/fuzz/ share (see tests/fuzz/README.md).
 *
 * A harness is one file, fuzz_<name>.c, defining LLVMFuzzerTestOneInput: it hands one input to
 * one parser of r1lab and checks what the parser promises (a status and a message, never a
 * crash; a round trip that comes back the same).  The same object is linked twice: with
 * libFuzzer (tests/fuzz/fuzz_<name>, ./configure --enable-fuzzing) and with replay.c's main
 * (tests/fuzz/replay_<name>, any build), which make check runs over the committed corpus and
 * every crash ever found.
 *
 * Ownership: the scratch folder and the strings these functions return belong to fuzz_util.c;
 * the folder is removed when the process exits or a check fails (not after a crash).
 * Errors: a check that fails prints what failed to stderr and aborts, which libFuzzer records
 * as a crash and the replay test as a failed input; nothing else here fails softly either. */
#ifndef R1_FUZZ_H
#define R1_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The entry point both drivers call, once per input; returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The path of file `name` inside this process's scratch folder, created on first use under
 * $TMPDIR (else /tmp).  The string is valid until the next call. */
const char *fuzz_path(const char *name);

/* Writes the n bytes of data to fuzz_path(name), replacing it; returns that path (valid until
 * the next call to fuzz_path or fuzz_write).  Aborts when the scratch folder is not writable:
 * a harness that cannot feed its parser tests nothing. */
const char *fuzz_write(const char *name, const void *data, size_t n);

/* A NUL-terminated copy of data (malloc'd, the caller frees it); aborts when out of memory. */
char *fuzz_cstr(const uint8_t *data, size_t size);

/* Aborts with "fuzz check failed: FILE:LINE: MESSAGE" unless cond holds. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                                            \
    } while (0)

void fuzz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#endif
