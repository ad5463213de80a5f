/* atomic_file.c — write to a temporary name, fsync, rename (see atomic_file.h).
 *
 * Ownership: the temporary name is allocated by r1_afile_open and freed by commit or abort.
 * Errors: R1_EIO with a message naming the path and the system's reason; the temporary file
 * never survives a failure. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"

r1_status r1_afile_open(r1_afile *a, const char *path, r1_error *err)
{
    a->f = NULL;
    a->path = path;
    size_t n = strlen(path) + 32;
    a->tmp = malloc(n);
    if (!a->tmp)
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", path);
    snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        return r1_error_set(err, R1_EIO, "%s: cannot create the temporary file: %s", path,
                            strerror(e));
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        r1_afile_abort(a);
        return r1_error_set(err, R1_EIO, "%s: cannot open the temporary file: %s", path,
                            strerror(e));
    }
    return R1_OK;
}

r1_status r1_afile_write(r1_afile *a, const void *p, size_t n, r1_error *err)
{
    if (n && fwrite(p, 1, n, a->f) != n)
        return r1_error_set(err, R1_EIO, "%s: write failed: %s", a->path, strerror(errno));
    return R1_OK;
}

/* Makes the rename itself durable.  Best effort: some file systems refuse fsync on a
 * directory, and the data is already safe under its new name either way. */
static void sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

r1_status r1_afile_commit(r1_afile *a, r1_error *err)
{
    const char *what = NULL;
    int e = 0;
    if (fflush(a->f) != 0)
        what = "write failed", e = errno;
    else if (fsync(fileno(a->f)) != 0)
        what = "fsync failed", e = errno;
    int rc = fclose(a->f);
    a->f = NULL;
    if (!what && rc != 0)
        what = "close failed", e = errno;
    if (!what && rename(a->tmp, a->path) != 0)
        what = "cannot rename the temporary file into place", e = errno;
    if (what) {
        r1_error_set(err, R1_EIO, "%s: %s: %s", a->path, what, strerror(e));
        r1_afile_abort(a);
        return R1_EIO;
    }
    free(a->tmp);
    a->tmp = NULL;
    sync_parent(a->path);
    return R1_OK;
}

void r1_afile_abort(r1_afile *a)
{
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
    }
    if (a->tmp) {
        unlink(a->tmp);
        free(a->tmp);
        a->tmp = NULL;
    }
}
