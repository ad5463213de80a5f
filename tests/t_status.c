/* t_status.c — the base layer: status names, error messages, the interrupt flag. */
#include <config.h>

#include "r1.h"
#include "tap.h"

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
    return done_testing();
}
