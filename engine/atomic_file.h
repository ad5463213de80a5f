/* atomic_file.h — internal to libr1 (not installed): writing a file so that a crash never
 * leaves it half-written.  The bytes go to an unguessable sibling "<path>.tmp.<pid>.<random>"
 * (created exclusively, with the target's permissions); commit flushes them, fsyncs, and
 * renames the temporary file over path (over the file a symlink at path points to); a path
 * that exists and is not a regular file is refused.  r1_afile_abort, or any failed commit,
 * removes the temporary file.
 *
 * Ownership: the r1_afile lives in the caller (usually on the stack); open allocates the
 * temporary name, commit and abort free it.  Every r1_afile that open succeeded on must end in
 * exactly one commit or abort.  Errors go to r1_error with messages naming the path. */
#ifndef R1_ATOMIC_FILE_H
#define R1_ATOMIC_FILE_H

#include <stdio.h>

#include "r1.h"

typedef struct {
    FILE *f;
    char *tmp;        /* "<target>.tmp.<pid>.<random>", owned */
    const char *path; /* borrowed from the caller until the file is done; for messages */
    char *target;     /* owned: path, or the file a symlink at path points to */
} r1_afile;

/* The fault-injection hook of the tests: non-zero (and errno set) when this call of op ("open",
 * "write", "fsync", "rename") is the one $R1_FAULT="OP:N" names.  Every write path of the
 * engine asks it before the system call. */
int r1__fault(const char *op);
/* Replaces $R1_FAULT's setting ("OP:N", or NULL: no faults) and restarts the count (tests). */
void r1__fault_set(const char *spec);

/* "<path>.<kind>.<pid>.<8 random hex digits>" into buf: a name for a temporary sibling of
 * path that nobody can guess (create it exclusively: O_EXCL, or mkdir). */
void r1_sibling_name(char *buf, size_t cap, const char *path, const char *kind);

/* Creates the temporary file next to path.  R1_EIO when it cannot be created. */
r1_status r1_afile_open(r1_afile *a, const char *path, r1_error *err);

/* Appends n bytes.  R1_EIO on a write error; the file stays open, the caller aborts. */
r1_status r1_afile_write(r1_afile *a, const void *p, size_t n, r1_error *err);

/* Flushes, fsyncs and closes the temporary file without renaming it yet: its bytes are safe,
 * the target unchanged until r1_afile_commit (which then only renames) or r1_afile_abort.
 * For two files that must change together: finish both, then commit both.  On failure the
 * temporary file is removed (R1_EIO). */
r1_status r1_afile_finish(r1_afile *a, r1_error *err);

/* Flushes, fsyncs, closes and renames the temporary file to path.  On failure the temporary
 * file is removed, path is left as it was, and the status is R1_EIO. */
r1_status r1_afile_commit(r1_afile *a, r1_error *err);

/* Closes and removes the temporary file.  Accepts an r1_afile whose open failed. */
void r1_afile_abort(r1_afile *a);

/* config.c: validates c and writes its config.json text to a finished, not yet committed
 * temporary file for path (r1_afile_finish): the model folder's two files change together.
 * stored: the weights' dtype, R1_DT_F32, R1_DT_BF16 or R1_DT_F8_E4M3 (torch_dtype says it). */
struct r1_config;
r1_status r1__config_prepare(const struct r1_config *c, const char *path, int stored,
                             r1_afile *af, r1_error *err);

#endif
