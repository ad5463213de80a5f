/* t_faults.c — fault injection over every way r1lab writes (#18): the n-th open, write, fsync
 * or rename of a model save, a checkpoint save and a metrics append fails (r1__fault, the
 * engine's test hook, as a full or failing disk would), for every n until the save gets
 * through: each time the error names the operation, and the previous files are intact and
 * load.  Then kill -9 at random moments of a checkpoint save loop: the checkpoint on disk is
 * always the old or the new one, never a mix. */
#include <config.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "r1_model.h"
#include "r1_rng.h"
#include "r1_train.h"
#include "tap.h"
#include "testutil.h"

static const char *const ops[] = {"open", "write", "fsync", "rename"};
/* what the message says for each op */
static const char *const says[] = {"cannot", "write failed", "fsync failed", "cannot"};

/* The n-th call to fail next: every one of the first 24, then about every 5th (a save makes
 * a few hundred writes). */
static int next(int n)
{
    return n < 24 ? n + 1 : n + n / 5;
}

static r1_model *model(int hidden, uint64_t seed)
{
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    c.num_hidden_layers = 2;
    c.hidden_size = hidden;
    r1_model *m;
    r1_model_new(&m, &c, NULL);
    r1_model_init(m, seed);
    return m;
}

static int same_params(const r1_model *a, const r1_model *b)
{
    return r1_model_numel(a) == r1_model_numel(b) &&
           memcmp(r1_model_params((r1_model *)a), r1_model_params((r1_model *)b),
                  sizeof(float) * r1_model_numel(a)) == 0;
}

/* Names in dir other than the expected ones (temporary files left behind); 0 when clean. */
static int strays(const char *dir, const char *const *expect)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int known = 0;
        for (int i = 0; expect[i]; i++)
            known |= !strcmp(e->d_name, expect[i]);
        if (!known) {
            diag("stray file: %s/%s", dir, e->d_name);
            n++;
        }
    }
    if (d)
        closedir(d);
    return n;
}

static void test_model_save(void)
{
    r1_model *a = model(128, 1), *b = model(192, 2);
    r1_error err = {0};
    const char *dir = tu_at("model");
    r1_model_save(a, dir, R1_DT_F32, &err);
    static const char *const files[] = {"config.json", "model.safetensors", NULL};
    for (int o = 0; o < 4; o++) {
        int cases = 0, named = 0, intact = 0, clean = 0;
        int through = 0;
        for (int n = 1; n < 100000; n = next(n)) {
            char spec[32];
            snprintf(spec, sizeof spec, "%s:%d", ops[o], n);
            r1__fault_set(spec);
            r1_status s = r1_model_save(b, dir, R1_DT_F32, &err);
            r1__fault_set(NULL);
            if (s == R1_OK) { /* fewer than n such calls: the faults covered them all */
                through = 1;
                break;
            }
            cases++;
            named += strstr(err.msg, says[o]) != NULL && strstr(err.msg, dir) != NULL;
            r1_model *back = NULL;
            intact += r1_model_load(&back, dir, &err) == R1_OK && same_params(back, a);
            r1_model_free(back);
            clean += strays(dir, files) == 0;
        }
        ok(through && cases > 0 && named == cases && intact == cases && clean == cases,
           "model save, %s failing (%d cases): named %d, old model intact %d, nothing left %d",
           ops[o], cases, named, intact, clean);
        r1_model_save(a, dir, R1_DT_F32, &err); /* the successful save wrote b: back to a */
    }
    r1_model_free(a), r1_model_free(b);
}

static void test_checkpoint_save(void)
{
    r1_model *a = model(128, 3), *b = model(128, 4);
    r1_error err = {0};
    const char *ck = tu_at("ck");
    r1_train_state ts;
    memset(&ts, 0, sizeof ts);
    snprintf(ts.stage, sizeof ts.stage, "pretrain");
    r1_rng_seed(&ts.rng, 9);
    ts.step = 1;
    r1_ckpt_save(ck, a, NULL, &ts, "{\"x\":1}", &err);
    for (int o = 0; o < 4; o++) {
        int cases = 0, named = 0, intact = 0, clean = 0;
        int through = 0;
        for (int n = 1; n < 100000; n = next(n)) {
            char spec[32];
            snprintf(spec, sizeof spec, "%s:%d", ops[o], n);
            ts.step = 2;
            r1__fault_set(spec);
            r1_status s = r1_ckpt_save(ck, b, NULL, &ts, "{\"x\":2}", &err);
            r1__fault_set(NULL);
            if (s == R1_OK) {
                through = 1;
                break;
            }
            cases++;
            named += strstr(err.msg, says[o]) != NULL;
            r1_model *back = NULL;
            r1_train_state got;
            intact += r1_ckpt_load(ck, &back, NULL, &got, NULL, &err) == R1_OK && got.step == 1 &&
                      same_params(back, a);
            r1_model_free(back);
            /* the folder's siblings: only ck itself (no .tmp or .old left) */
            int siblings = 0;
            DIR *d = opendir(tu_dir);
            struct dirent *e;
            while ((e = readdir(d)))
                siblings += !strncmp(e->d_name, "ck.", 3);
            closedir(d);
            clean += siblings == 0;
        }
        ok(through && cases > 0 && named == cases && intact == cases && clean == cases,
           "checkpoint save, %s failing (%d cases): named %d, old checkpoint intact %d, "
           "nothing left %d", ops[o], cases, named, intact, clean);
        ts.step = 1;
        r1_ckpt_save(ck, a, NULL, &ts, "{\"x\":1}", &err);
    }
    r1_model_free(a), r1_model_free(b);
}

static void test_metrics_append(void)
{
    const char *mp = tu_at("metrics.jsonl");
    r1_error err = {0};
    r1_jsonl_append(mp, "{\"step\":1}", &err);
    int failed = 0, named = 0, intact = 0;
    for (int o = 0; o < 2; o++) { /* an append opens and writes */
        r1__fault_set(o ? "write:1" : "open:1");
        r1_status s = r1_jsonl_append(mp, "{\"step\":2}", &err);
        r1__fault_set(NULL);
        failed += s != R1_OK;
        named += strstr(err.msg, o ? "write failed" : "cannot open") != NULL;
        FILE *f = fopen(mp, "r");
        char buf[64] = {0};
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        intact += k == 11 && !strcmp(buf, "{\"step\":1}\n");
    }
    ok(failed == 2 && named == 2 && intact == 2,
       "a metrics append that cannot open or write fails by name and leaves the lines before");
}

/* kill -9 at a random moment of a loop that saves checkpoint A and B in turn */
static void test_kill(void)
{
    r1_model *a = model(128, 5), *b = model(128, 6);
    r1_error err = {0};
    const char *ck = tu_at("killck");
    r1_train_state ts;
    memset(&ts, 0, sizeof ts);
    snprintf(ts.stage, sizeof ts.stage, "pretrain");
    r1_rng_seed(&ts.rng, 9);
    r1_ckpt_save(ck, a, NULL, &ts, NULL, &err);
    srand((unsigned)time(NULL));
    int runs = 12, good = 0;
    for (int r = 0; r < runs; r++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0;; i++) {
                ts.step = i % 2;
                r1_ckpt_save(ck, i % 2 ? b : a, NULL, &ts, NULL, NULL);
            }
        }
        usleep(20000 + (unsigned)(rand() % 200000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        r1_model *back = NULL;
        r1_train_state got;
        if (r1_ckpt_load(ck, &back, NULL, &got, NULL, &err) == R1_OK)
            good += got.step == 0 ? same_params(back, a) : same_params(back, b);
        else
            diag("after kill %d: %s", r, err.msg);
        r1_model_free(back);
    }
    is_int(good, runs, "kill -9 during a save loop: the checkpoint is always A or B, whole");
    r1_model_free(a), r1_model_free(b);
}

int main(void)
{
    r1_set_threads(1);
    tu_tmpdir("t_faults");
    test_model_save();
    test_checkpoint_save();
    test_metrics_append();
    test_kill();
    tu_rm(tu_dir);
    return done_testing();
}
