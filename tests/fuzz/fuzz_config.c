/* fuzz_config.c — the config.json reader (engine/config.c) on one JSON text.
 *
 * The input is parsed with r1_config_parse.  A config it accepts must pass r1_config_validate,
 * be written by r1_config_save and read back by r1_config_load into the same struct, bit for
 * bit (r1_config.h promises floats that read back bit-identically), and, when it is small,
 * lay out a model with r1_model_new: the sizes the reader lets through are the sizes the model
 * code multiplies (the probe's M3 overflowed there).
 *
 * Checks: refusals carry a message; accepted configs validate, round-trip and build. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "r1_config.h"
#include "r1_model.h"

/* Models are laid out only up to this many parameters (keeps an input fast). */
#define BUILD_MAX 200000.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    r1_config c, back;
    memset(&c, 0, sizeof c);
    r1_error err = {0};
    r1_status s = r1_config_parse(&c, text, "fuzz/config.json", &err);
    free(text);
    if (s != R1_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "r1_config_parse failed (%d) without a message", (int)s);
        return 0;
    }
    s = r1_config_validate(&c, &err);
    FUZZ_CHECK(s == R1_OK, "an accepted config does not validate: %s", err.msg);
    const char *path = fuzz_path("config.json");
    s = r1_config_save(&c, path, &err);
    FUZZ_CHECK(s == R1_OK, "an accepted config cannot be saved: %s", err.msg);
    memset(&back, 0x55, sizeof back);
    s = r1_config_load(&back, path, &err);
    FUZZ_CHECK(s == R1_OK, "a saved config does not load: %s", err.msg);
    FUZZ_CHECK(memcmp(&c, &back, sizeof c) == 0, "a saved config reads back different");
    for (int l = 0; l < c.num_hidden_layers + c.num_nextn_predict_layers; l++)
        (void)r1_config_is_moe(&c, l);
    if (r1_config_param_estimate(&c) <= BUILD_MAX) {
        r1_model *m = NULL;
        s = r1_model_new(&m, &c, &err);
        FUZZ_CHECK(s == R1_OK, "a small valid config makes no model: %s", err.msg);
        r1_model_init(m, 1);
        r1_model_free(m);
    }
    return 0;
}
