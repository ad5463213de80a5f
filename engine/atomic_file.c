/* atomic_file.c — write to a temporary name, fsync, rename (see atomic_file.h).
 *
 * The temporary file is a sibling of the target, "<target>.tmp.<pid>.<random>", created with
 * O_EXCL | O_NOFOLLOW: nobody can guess the name in advance, and a file or symlink planted
 * under it makes the open fail instead of redirecting the write.  It takes the target's
 * permission bits when the target exists (a 0600 file stays 0600); a new file gets 0666 less
 * the umask.  A target that is a symlink is resolved, so the file it points to is replaced and
 * the link stays; a target that is not a regular file (a folder, a device, a FIFO) is refused.
 *
 * Ownership: the temporary name is allocated by r1_afile_open and freed by commit or abort.
 * Errors: R1_EIO with a message naming the path and the system's reason; the temporary file
 * never survives a failure. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"

/* The test hook: R1_FAULT="OP:N" (OP open, write, fsync or rename) makes the N-th such call
 * of this process fail with ENOSPC (write) or EIO, as a full or failing disk would.  Read
 * once; unset, it costs one load and a compare per call. */
static struct {
    char op[16];
    long n;
    atomic_long seen;
} fault_cfg = {"", 0, 0};

static pthread_once_t fault_once = PTHREAD_ONCE_INIT;

static void fault_apply(const char *spec)
{
    char op[16];
    long n;
    fault_cfg.n = 0;
    atomic_store(&fault_cfg.seen, 0);
    if (spec && sscanf(spec, "%15[a-z]:%ld", op, &n) == 2 && n > 0) {
        snprintf(fault_cfg.op, sizeof fault_cfg.op, "%s", op);
        fault_cfg.n = n;
    }
}

static void fault_read(void)
{
    fault_apply(getenv("R1_FAULT"));
}

void r1__fault_set(const char *spec)
{
    pthread_once(&fault_once, fault_read);
    fault_apply(spec);
}

int r1__fault(const char *op)
{
    pthread_once(&fault_once, fault_read);
    if (!fault_cfg.n || strcmp(op, fault_cfg.op) != 0)
        return 0;
    if (atomic_fetch_add(&fault_cfg.seen, 1) + 1 != fault_cfg.n)
        return 0;
    return errno = !strcmp(op, "write") ? ENOSPC : EIO;
}

void r1_sibling_name(char *buf, size_t cap, const char *path, const char *kind)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        /* no entropy yet (early boot): the clock and a counter still differ per call */
        static unsigned counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint32_t)ts.tv_nsec * 2654435761u ^ (uint32_t)ts.tv_sec ^ ++counter * 40503u;
    }
    snprintf(buf, cap, "%s.%s.%ld.%08x", path, kind, (long)getpid(), (unsigned)r);
}

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m) ? "a folder" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) || S_ISBLK(m) ? "a device"
           : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

r1_status r1_afile_open(r1_afile *a, const char *path, r1_error *err)
{
    a->f = NULL;
    a->tmp = NULL;
    a->path = path;
    a->target = NULL;
    struct stat sb;
    int have = lstat(path, &sb) == 0;
    if (have && S_ISLNK(sb.st_mode)) { /* write where the link points; the link stays */
        a->target = realpath(path, NULL);
        if (!a->target || stat(a->target, &sb) != 0) {
            int e = errno;
            free(a->target);
            a->target = NULL;
            return r1_error_set(err, R1_EIO, "%s: a symlink to nowhere usable: %s", path,
                                strerror(e));
        }
    } else if (!(a->target = strdup(path))) {
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", path);
    }
    if (have && !S_ISREG(sb.st_mode)) {
        r1_afile_abort(a);
        return r1_error_set(err, R1_EIO, "%s: %s, not a file; refusing to replace it", path,
                            kind_of(sb.st_mode));
    }
    size_t n = strlen(a->target) + 48;
    if (!(a->tmp = malloc(n))) {
        r1_afile_abort(a);
        return r1_error_set(err, R1_ENOMEM, "%s: out of memory", path);
    }
    int fd = -1, e = 0;
    for (int tries = 0; fd < 0 && tries < 32; tries++) {
        r1_sibling_name(a->tmp, n, a->target, "tmp");
        fd = r1__fault("open") ? -1
                               : open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                      0666);
        e = errno;
        if (fd < 0 && e != EEXIST)
            break;
    }
    if (fd >= 0 && have && fchmod(fd, sb.st_mode & 07777) != 0)
        e = errno, close(fd), unlink(a->tmp), fd = -1;
    if (fd < 0) {
        free(a->tmp);
        a->tmp = NULL;
        r1_afile_abort(a);
        return r1_error_set(err, R1_EIO, "%s: cannot create the temporary file: %s", path,
                            strerror(e));
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        e = errno;
        close(fd);
        r1_afile_abort(a);
        return r1_error_set(err, R1_EIO, "%s: cannot open the temporary file: %s", path,
                            strerror(e));
    }
    return R1_OK;
}

r1_status r1_afile_write(r1_afile *a, const void *p, size_t n, r1_error *err)
{
    if (n && (r1__fault("write") || fwrite(p, 1, n, a->f) != n))
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

r1_status r1_afile_finish(r1_afile *a, r1_error *err)
{
    if (!a->f)
        return R1_OK;
    const char *what = NULL;
    int e = 0;
    if (fflush(a->f) != 0)
        what = "write failed", e = errno;
    else if (r1__fault("fsync") || fsync(fileno(a->f)) != 0)
        what = "fsync failed", e = errno;
    int rc = fclose(a->f);
    a->f = NULL;
    if (!what && rc != 0)
        what = "close failed", e = errno;
    if (what) {
        r1_error_set(err, R1_EIO, "%s: %s: %s", a->path, what, strerror(e));
        r1_afile_abort(a);
        return R1_EIO;
    }
    return R1_OK;
}

r1_status r1_afile_commit(r1_afile *a, r1_error *err)
{
    if (r1_afile_finish(a, err) != R1_OK)
        return R1_EIO;
    const char *what = NULL;
    int e = 0;
    if (r1__fault("rename") || rename(a->tmp, a->target) != 0)
        what = "cannot rename the temporary file into place", e = errno;
    if (what) {
        r1_error_set(err, R1_EIO, "%s: %s: %s", a->path, what, strerror(e));
        r1_afile_abort(a);
        return R1_EIO;
    }
    free(a->tmp);
    a->tmp = NULL;
    sync_parent(a->target);
    free(a->target);
    a->target = NULL;
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
    free(a->target);
    a->target = NULL;
}
