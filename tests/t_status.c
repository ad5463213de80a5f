/* t_status.c — the base layer: status names, error messages, the interrupt flag. */
#include <config.h>

#include "r1.h"
#include <sys/stat.h>

#include "tap.h"
#include "testutil.h"

int main(void)
{
    is_str(r1_status_str(R1_OK), "ok", "R1_OK has a name");
    is_str(r1_status_str(R1_EFORMAT), "malformed file", "R1_EFORMAT has a name");
    is_str(r1_status_str((r1_status)42), "unknown status", "an unknown status still has a name");

    r1_error e = {0};
    is_int(r1_error_set(&e, R1_EIO, "cannot open %s", "x.json"), R1_EIO,
           "r1_error_set returns its status");
    is_str(e.msg, "cannot open x.json", "the message is formatted");
    r1_error_prefix(&e, "model %d", 7);
    is_str(e.msg, "model 7: cannot open x.json", "a prefix names the context");
    is_int(r1_error_set(NULL, R1_EINVAL, "ignored"), R1_EINVAL, "a NULL error is allowed");

    ok(!r1_interrupted(), "no interrupt at start");
    r1_interrupt();
    ok(r1_interrupted(), "r1_interrupt sets the flag");
    r1_interrupt_clear();
    ok(!r1_interrupted(), "r1_interrupt_clear clears it");

    r1_set_threads(1);
    is_int(r1_threads(), 1, "thread count is kept");
    ok(r1_version()[0] != '\0', "a version string");

    /* the small helpers of util.c */
    r1_error err = {0};
    double t0 = r1_now(), t1 = r1_now();
    ok(t0 > 0 && t1 >= t0, "r1_now is a monotonic clock");
    tu_tmpdir("t_status");
    struct stat sb;
    ok(r1_mkdirs(tu_at("a/b/c"), 0755, &err) == R1_OK && stat(tu_at("a/b/c"), &sb) == 0 &&
       S_ISDIR(sb.st_mode), "r1_mkdirs creates the missing parents");
    ok(r1_mkdirs(tu_at("a/b/c/"), 0755, &err) == R1_OK, "and accepts a folder that exists");
    FILE *f = fopen(tu_at("file"), "w");
    if (f)
        fclose(f);
    ok(r1_mkdirs(tu_at("file/sub"), 0755, &err) != R1_OK && strstr(err.msg, "/file"),
       "a file in the way is named (%s)", err.msg);
    ok(r1_mkdirs("", 0755, &err) == R1_EINVAL, "an empty name is refused");
    tu_rm(tu_dir);
    return done_testing();
}
