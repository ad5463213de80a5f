/* t_distill.c — SFT on a JSONL dataset and logit distillation: the cross-entropy falls on the
 * records, the KL to a teacher falls when distilling, bad files and settings are refused. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "r1_distill.h"
#include "r1_tasks.h"
#include "r1_train.h"
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

/* ---- a resumable run in a folder */

static int stop_at, die_at;
static int stopper(void *user, const r1_step_report *r)
{
    (void)user;
    if (r->step == die_at)
        _exit(0); /* a kill: no checkpoint of this step, no cleanup */
    return r->step == stop_at;
}

/* The metrics of run folder dir without the timings: "step loss ce kl lr grad_norm\n"... */
static char *curve(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(1, cap), line[1024];
    while (f && fgets(line, sizeof line, f) && n + 200 < cap) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            continue;
        n += (size_t)snprintf(out + n, cap - n, "%lld %.9g %.9g %.9g %.9g %.9g\n",
                              (long long)json_integer_value(json_object_get(o, "step")),
                              json_number_value(json_object_get(o, "loss")),
                              json_number_value(json_object_get(o, "ce")),
                              json_number_value(json_object_get(o, "kl")),
                              json_number_value(json_object_get(o, "lr")),
                              json_number_value(json_object_get(o, "grad_norm")));
        json_decref(o);
    }
    if (f)
        fclose(f);
    return out;
}

static void test_run_dir(const char *dir, const char *data, const r1_tokenizer *tok)
{
    char ref[300], can[300], kil[300], tdir[300];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(can, sizeof can, "%s/canceled/", dir); /* a trailing slash is the same folder */
    snprintf(kil, sizeof kil, "%s/killed", dir);
    snprintf(tdir, sizeof tdir, "%s/teacher", dir);
    r1_model *teacher = make(0, 2);
    r1_error err = {0};
    ok(r1_model_save(teacher, tdir, R1_DT_F32, &err) == R1_OK, "a teacher folder");
    r1_model_free(teacher);
    r1_distill_cfg c = r1_distill_defaults();
    c.steps = 6, c.batch = 2, c.seq_len = 160, c.opt.lr = 3e-3f, c.opt.warmup = 2;
    c.save_every = 2, c.kd = -1;
    r1_distill_progress last;
    r1_model *m = make(1, 5);
    stop_at = die_at = 0;
    ok(r1_distill_run_dir(m, tok, data, tdir, &c, ref, NULL, &last, &err) == R1_OK,
       "a 6-step distillation run in a folder (%s)", err.msg);
    r1_model_free(m);
    char *a = curve(ref);
    int lines = 0;
    for (const char *p = a; *p; p++)
        lines += *p == '\n';
    is_int(lines, 6, "metrics.jsonl has a line per step");
    ok(last.kl > 0, "the teacher was used (kd 0.5 when not given)");
    char p[400];
    snprintf(p, sizeof p, "%s/checkpoint/trainer_state.json", ref);
    ok(access(p, F_OK) == 0, "the checkpoint is written");
    snprintf(p, sizeof p, "%s/model.safetensors", ref);
    ok(access(p, F_OK) == 0, "and the student beside it");

    m = make(1, 5);
    is_int(r1_distill_run_dir(m, tok, data, tdir, &c, ref, NULL, NULL, &err), R1_EINVAL,
           "a folder that holds a run is refused");
    like(err.msg, "holds a run already", "saying so");
    /* stopped by the observer at step 3 (checkpoint at 3), resumed */
    stop_at = 3;
    r1_observer o = {.step = stopper};
    is_int(r1_distill_run_dir(m, tok, data, tdir, &c, can, &o, &last, &err), R1_ECANCELED,
           "the observer stops the run");
    r1_model_free(m);
    stop_at = 0;
    r1_distill_cfg rc;
    ok(r1_distill_resume(can, &rc, &o, &last, &err) == R1_OK && last.step == 6,
       "the run resumes to its end (%s)", err.msg);
    is_int(rc.steps, 6, "with its own settings");
    char *b = curve(can);
    is_str(b, a, "the same metrics as the run that never stopped");
    free(b);
    /* killed at step 5: the checkpoint of step 4 (save_every 2) is where it resumes */
    pid_t pid = fork();
    if (pid == 0) {
        die_at = 5;
        r1_model *k = make(1, 5);
        r1_distill_run_dir(k, tok, data, tdir, &c, kil, &o, NULL, NULL);
        _exit(1);
    }
    int ws;
    waitpid(pid, &ws, 0);
    die_at = 0;
    ok(r1_distill_resume(kil, NULL, NULL, &last, &err) == R1_OK && last.step == 6,
       "a killed run resumes from its last checkpoint (%s)", err.msg);
    b = curve(kil);
    is_str(b, a, "and its metrics read as if it had never stopped");
    free(b);
    ok(r1_distill_resume(kil, NULL, NULL, &last, &err) == R1_OK && last.step == 6,
       "resuming a finished run does nothing");
    /* the data changed under the run: refused by name */
    char data2[300];
    snprintf(data2, sizeof data2, "%s/ref/checkpoint/trainer_state.json", dir);
    snprintf(p, sizeof p, "%s/changed.jsonl", dir);
    FILE *f = fopen(data, "r"), *g = fopen(p, "w");
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (n++ % 2 == 0)
            fputs(line, g);
    fclose(f), fclose(g);
    json_t *st = json_load_file(data2, 0, NULL);
    json_object_set_new(json_object_get(st, "settings"), "data", json_string(p));
    json_dump_file(st, data2, 0);
    json_decref(st);
    c.steps = 8; /* not used: the settings come from the checkpoint */
    json_t *st2 = json_load_file(data2, 0, NULL);
    json_object_set_new(json_object_get(st2, "settings"), "steps", json_integer(8));
    json_dump_file(st2, data2, 0);
    json_decref(st2);
    is_int(r1_distill_resume(ref, NULL, NULL, NULL, &err), R1_EINVAL,
           "a resume over other records is refused");
    like(err.msg, "changed.jsonl: the records differ", "naming the data file");
    free(a);
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
    test_run_dir(dir, path, tok);
    r1_model_free(student), r1_model_free(s2), r1_model_free(teacher);
    r1_tokenizer_free(tok);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ok(system(cmd) == 0, "clean up");
    return done_testing();
}
