/* fuzz_ckpt_state.c — the JSON part of checkpoint loading: trainer_state.json as read by
 * r1_ckpt_load (engine/checkpoint.c).
 *
 * Once per process the harness saves a real checkpoint of a very small model (config.json,
 * model.safetensors, optimizer.safetensors) in its scratch folder; each input then replaces
 * trainer_state.json and the checkpoint is loaded with its optimizer, state and settings, so
 * that every field the file feeds (step, data position, RNG, optimizer settings and step
 * count, stage settings) is read the way a resumed run reads it.
 *
 * Checks: a refusal carries a message; an accepted file gives the state the file holds: step,
 * data_pos and the optimizer's t, warmup and total equal to the file's integers (a file where
 * one is not an integer >= 0 is refused), and settings that are an object as an equal JSON
 * value. */
#include <config.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "r1_config.h"
#include "r1_train.h"

static const char *dir;

/* A dense one-layer model of a few hundred parameters. */
static void make_checkpoint(void)
{
    static char d[4096];
    snprintf(d, sizeof d, "%s", fuzz_path("ckpt"));
    r1_config c;
    r1_error err = {0};
    FUZZ_CHECK(r1_config_preset(&c, "tiny", &err) == R1_OK, "%s", err.msg);
    c.vocab_size = 16;
    c.hidden_size = 8;
    c.intermediate_size = 8;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 1;
    c.q_lora_rank = 0;
    c.kv_lora_rank = 4;
    c.qk_nope_head_dim = 4;
    c.qk_rope_head_dim = 2;
    c.v_head_dim = 4;
    c.n_routed_experts = 0;
    c.num_nextn_predict_layers = 0;
    c.max_position_embeddings = 16;
    r1_model *m = NULL;
    r1_adamw *o = NULL;
    FUZZ_CHECK(r1_model_new(&m, &c, &err) == R1_OK, "%s", err.msg);
    r1_model_init(m, 1);
    FUZZ_CHECK(r1_adamw_new(&o, m, NULL, &err) == R1_OK, "%s", err.msg);
    r1_train_state st = {.stage = "pretrain", .step = 3, .data_pos = 12};
    FUZZ_CHECK(r1_ckpt_save(d, m, o, &st, "{\"lr\": 0.001}", &err) == R1_OK, "%s", err.msg);
    r1_adamw_free(o);
    r1_model_free(m);
    dir = d;
}

/* What the file says about an integer field: 1 and *v for an integer >= 0, else 0. */
static int file_int(const json_t *j, const char *key, json_int_t *v)
{
    const json_t *x = json_object_get(j, key);
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return 0;
    *v = json_integer_value(x);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir)
        make_checkpoint();
    fuzz_write("ckpt/trainer_state.json", data, size);
    r1_model *m = NULL;
    r1_adamw *o = NULL;
    r1_train_state st;
    char *settings = NULL;
    r1_error err = {0};
    r1_status s = r1_ckpt_load(dir, &m, &o, &st, &settings, &err);
    if (s != R1_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "r1_ckpt_load failed (%d) without a message", (int)s);
        FUZZ_CHECK(!m && !o && !settings, "a failed load hands out a model, optimizer or settings");
        return 0;
    }
    FUZZ_CHECK(m && o, "an accepted checkpoint without its model or optimizer");
    FUZZ_CHECK(memchr(st.stage, '\0', sizeof st.stage), "unterminated stage");
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    FUZZ_CHECK(j != NULL, "an accepted trainer_state.json that is not JSON");
    json_int_t step, pos;
    FUZZ_CHECK(file_int(j, "step", &step) && st.step == step,
               "step %lld accepted from a file whose \"step\" is not that integer",
               (long long)st.step);
    FUZZ_CHECK(file_int(j, "data_pos", &pos) && st.data_pos == pos,
               "data_pos %lld accepted from a file whose \"data_pos\" is not that integer",
               (long long)st.data_pos);
    const json_t *oj = json_object_get(j, "optimizer");
    const r1_adamw_cfg *oc = r1_adamw_config(o);
    json_int_t t, warmup, total;
    FUZZ_CHECK(file_int(oj, "t", &t) && file_int(oj, "warmup", &warmup) &&
                   file_int(oj, "total", &total) && r1_adamw_steps(o) == t &&
                   oc->warmup == warmup && oc->total == total,
               "optimizer t %d, warmup %d, total %d accepted from a file that does not hold them",
               r1_adamw_steps(o), oc->warmup, oc->total);
    json_t *want = json_object_get(j, "settings");
    json_t *got = settings ? json_loads(settings, 0, NULL) : NULL;
    FUZZ_CHECK(!json_is_object(want) || json_equal(want, got), "the settings read back different");
    json_decref(got);
    json_decref(j);
    free(settings);
    r1_adamw_free(o);
    r1_model_free(m);
    return 0;
}
