/* fuzz_reject_state.c — the state file of an unfinished rejection sampling run,
 * OUT.part.json, as read by r1_reject_pending (engine/reject.c), and through it the settings
 * table's JSON reader (engine/settings.c).
 *
 * The input is written as out.jsonl.part.json and read with r1_reject_pending.  Settings it
 * accepts must survive the trip a resumed run makes: written with r1_settings_json and read
 * back with r1_settings_parse_json, they give the same JSON text again.
 *
 * Checks: a refusal carries a message; accepted settings are in range and round-trip. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "r1_reject.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write("out.jsonl.part.json", data, size);
    char out[4200];
    snprintf(out, sizeof out, "%s", fuzz_path("out.jsonl"));
    r1_reject_cfg *c = malloc(sizeof *c), *back = malloc(sizeof *back);
    FUZZ_CHECK(c && back, "out of memory");
    r1_error err = {0};
    r1_status s = r1_reject_pending(out, c, &err);
    if (s != R1_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "r1_reject_pending failed (%d) without a message", (int)s);
    } else {
        FUZZ_CHECK(memchr(c->model, '\0', sizeof c->model), "unterminated model folder");
        FUZZ_CHECK(c->ntasks >= 0 && c->ntasks <= R1_REJECT_MAX_TASKS, "%d tasks", c->ntasks);
        const r1_settings_table *t = r1_reject_settings_table();
        char *json = r1_settings_json(t, c);
        FUZZ_CHECK(json != NULL, "the accepted settings cannot be written");
        *back = r1_reject_defaults();
        s = r1_settings_parse_json(t, back, json, NULL, "fuzz", &err);
        FUZZ_CHECK(s == R1_OK, "written settings do not read back: %s\n%s", err.msg, json);
        char *again = r1_settings_json(t, back);
        FUZZ_CHECK(again && !strcmp(json, again), "settings change when read back:\n%s\n%s",
                   json, again);
        free(again);
        free(json);
    }
    free(back);
    free(c);
    return 0;
}
