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

/* "<path>.<kind>.<pid>.<8 random hex digits>" into buf: a name for a temporary sibling of
 * path that nobody can guess (create it exclusively: O_EXCL, or mkdir). */
void r1_sibling_name(char *buf, size_t cap, const char *path, const char *kind);

/* Creates the temporary file next to path.  R1_EIO when it cannot be created. */
r1_status r1_afile_open(r1_afile *a, const char *path, r1_error *err);

/* Appends n bytes.  R1_EIO on a write error; the file stays open, the caller aborts. */
r1_status r1_afile_write(r1_afile *a, const void *p, size_t n, r1_error *err);

/* Flushes, fsyncs, closes and renames the temporary file to path.  On failure the temporary
 * file is removed, path is left as it was, and the status is R1_EIO. */
r1_status r1_afile_commit(r1_afile *a, r1_error *err);

/* Closes and removes the temporary file.  Accepts an r1_afile whose open failed. */
void r1_afile_abort(r1_afile *a);

#endif
