/* t_distill.c — SFT on a JSONL dataset and logit distillation: the cross-entropy falls on the
 * records, the KL to a teacher falls when distilling, bad files and settings are refused. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1_distill.h"
#include "r1_tasks.h"
#include "tap.h"

static double first_loss, first_kl;
static int on_step(void *user, const r1_step_report *r)
{
    const r1_distill_progress *p = r->distill;
    (void)user;
    if (p->step == 1) {
        first_loss = p->ce;
        first_kl = p->kl;
    }
    return 0;
}

static const r1_observer obs = {.step = on_step};

static r1_model *make(int dense, uint64_t seed)
{
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    c.num_hidden_layers = 2;
    if (dense) { /* a small dense student: no routed experts, no MTP */
        c.hidden_size = 128, c.n_routed_experts = 0, c.num_nextn_predict_layers = 0;
        c.num_attention_heads = 4, c.q_lora_rank = 64, c.kv_lora_rank = 32;
    }
    r1_model *m;
    r1_model_new(&m, &c, NULL);
    r1_model_init(m, seed);
    return m;
}

int main(void)
{
    r1_set_threads(1);
    char dir[] = "/tmp/r1-distill-XXXXXX", path[64], bad[80];
    mkdtemp(dir);
    snprintf(path, sizeof path, "%s/set.jsonl", dir);
    FILE *f = fopen(path, "w");
    const r1_task *add;
    r1_task_find(&add, "add", NULL);
    for (int i = 0; i < 40; i++) {
        r1_task_sample s;
        r1_task_generate(add, 100 + i, 1, R1_LANG_EN, &s, NULL);
        fprintf(f, "{\"prompt\": \"%s\", \"completion\": \"", s.prompt);
        for (const char *p = s.reasoning; *p; p++)
            fprintf(f, *p == '\n' ? "\\n" : "%c", *p);
        fprintf(f, "</think><answer>%s</answer><|eos|>\", \"task\": \"add\"}\n", s.answer);
    }
    fclose(f);
    r1_tokenizer *tok = r1_tokenizer_new_builtin();
    r1_model *student = make(1, 1), *teacher = make(0, 2);
    r1_distill_cfg c = r1_distill_defaults();
    c.steps = 40, c.batch = 4, c.seq_len = 160, c.opt.lr = 3e-3f, c.opt.warmup = 5;
    r1_distill_progress last;
    r1_error err = {0};
    ok(r1_distill_run(student, tok, path, NULL, &c, &obs, &last, &err) == R1_OK,
       "SFT on a JSONL set runs (%s)", err.msg);
    diag("cross-entropy %.3f -> %.3f over %ld records", first_loss, last.ce, last.records);
    ok(last.ce < first_loss * 0.6, "the cross-entropy on the completions falls (%.3f -> %.3f)",
       first_loss, last.ce);
    is_int(last.records, 40, "every record fits");

    r1_model *s2 = make(1, 3);
    c.kd = 1.0f, c.ce = 0.0f, c.steps = 25; /* pure logit distillation */
    ok(r1_distill_run(s2, tok, path, teacher, &c, &obs, &last, &err) == R1_OK,
       "distillation from a teacher runs");
    ok(last.kl < first_kl, "the KL to the teacher falls (%.3f -> %.3f)", first_kl, last.kl);

    is_int(r1_distill_run(s2, tok, "/nonexistent.jsonl", NULL, &c, NULL, NULL, &err),
           R1_EIO, "a missing file");
    like(err.msg, "/nonexistent.jsonl", "is named");
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    f = fopen(bad, "w");
    fprintf(f, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": 3}\n");
    fclose(f);
    is_int(r1_distill_run(s2, tok, bad, NULL, &c, NULL, NULL, &err), R1_EFORMAT,
           "a malformed record");
    like(err.msg, "bad.jsonl:2", "names the file and line");
    r1_config vc;
    r1_config_preset(&vc, "tiny", NULL);
    vc.vocab_size = 64, vc.num_hidden_layers = 1;
    r1_model *other;
    r1_model_new(&other, &vc, NULL);
    is_int(r1_distill_run(s2, tok, path, other, &c, NULL, NULL, &err), R1_EINVAL,
           "a teacher with another vocabulary");
    r1_model_free(other);
    r1_model_free(student), r1_model_free(s2), r1_model_free(teacher);
    r1_tokenizer_free(tok);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ok(system(cmd) == 0, "clean up");
    return done_testing();
}
