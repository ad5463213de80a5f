/* t_reject.c — rejection sampling as a resumable run: stopped by the observer, killed, or with
 * a half-written batch, it resumes into the same file, byte for byte, as a run that never
 * stopped; an unfinished run is not overwritten; a damaged state file is named. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "r1_reject.h"
#include "tap.h"
#include "testutil.h"

static int stop_at, die_at;
static int stopper(void *user, const r1_step_report *r)
{
    (void)user;
    if (r->step == die_at)
        _exit(0); /* a kill after the batch's state was saved */
    return r->step == stop_at;
}

static char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*n + 1);
    *n = (long)fread(b, 1, (size_t)*n, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static int same_file(const char *a, const char *b)
{
    long na = -1, nb = -2;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, (size_t)na) == 0;
    free(x), free(y);
    return same;
}

int main(void)
{
    r1_set_threads(1);
    tu_tmpdir("t_reject");
    const char *top = getenv("top_srcdir");
    char mdir[2048];
    snprintf(mdir, sizeof mdir, "%s/models/builtin", top ? top : ".");
    r1_error err = {0};
    r1_model *m = NULL;
    r1_tokenizer *tok = NULL;
    char tp[2100];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", mdir);
    if (r1_model_load(&m, mdir, &err) != R1_OK || r1_tokenizer_load(&tok, tp, &err) != R1_OK) {
        printf("1..0 # SKIP the built-in model: %s\n", err.msg);
        return 0;
    }
    r1_reject_cfg c = r1_reject_defaults();
    c.prompts = 12, c.batch_prompts = 4, c.k = 4, c.max_new = 192, c.direct_share = 0.5;
    r1_reject_stats a, b;
    const char *ref = tu_at("ref.jsonl");
    ok(r1_reject_sample(m, tok, &c, ref, NULL, &a, &err) == R1_OK, "a run of 12 prompts (%s)",
       err.msg);
    ok(a.kept > 0 && a.sampled == 48, "keeps some of its 48 completions (%ld)", a.kept);
    char p[1200];
    snprintf(p, sizeof p, "%s.part", ref);
    ok(access(p, F_OK) != 0, "no progress file is left behind");
    snprintf(p, sizeof p, "%s.part.json", ref);
    ok(access(p, F_OK) != 0, "nor its state");

    /* stopped by the observer after the first batch */
    const char *can = tu_at("canceled.jsonl");
    snprintf(c.model, sizeof c.model, "%s", mdir);
    stop_at = 4;
    r1_observer o = {.step = stopper};
    is_int(r1_reject_sample(m, tok, &c, can, &o, &b, &err), R1_ECANCELED,
           "the observer stops the run after a batch");
    like(err.msg, "after 4 of 12 prompts", "saying how far it got");
    ok(access(can, F_OK) != 0, "the file itself is not there yet");
    is_int(r1_reject_sample(m, tok, &c, can, NULL, &b, &err), R1_EINVAL,
           "a new run into a file with an unfinished one is refused");
    like(err.msg, "unfinished", "saying why");
    r1_reject_cfg rc;
    ok(r1_reject_pending(can, &rc, &err) == R1_OK && rc.prompts == 12 && rc.k == 4 &&
       !strcmp(rc.model, mdir), "the unfinished run's settings and model are read back");
    stop_at = 0;
    ok(r1_reject_resume(m, tok, can, &o, &b, &err) == R1_OK, "it resumes (%s)", err.msg);
    ok(same_file(can, ref), "into the same file, byte for byte, as the run that never stopped");
    ok(b.sampled == a.sampled && b.kept == a.kept && b.direct == a.direct,
       "with the same counts (kept %ld of %ld)", b.kept, b.sampled);
    is_int(r1_reject_pending(can, &rc, &err), R1_ENOTFOUND, "and nothing is left to resume");

    /* killed after the second batch, with half a line of a third one in the progress file */
    const char *kil = tu_at("killed.jsonl");
    pid_t pid = fork();
    if (pid == 0) {
        die_at = 8;
        r1_reject_sample(m, tok, &c, kil, &o, NULL, NULL);
        _exit(1);
    }
    int ws;
    waitpid(pid, &ws, 0);
    die_at = 0;
    snprintf(p, sizeof p, "%s.part", kil);
    FILE *f = fopen(p, "a");
    fputs("{\"prompt\": \"half a li", f);
    fclose(f);
    ok(r1_reject_resume(m, tok, kil, NULL, &b, &err) == R1_OK, "a killed run resumes (%s)",
       err.msg);
    ok(same_file(kil, ref), "the half-written batch is cut away: the same file again");

    /* a damaged state is named */
    const char *dam = tu_at("damaged.jsonl");
    stop_at = 4;
    r1_reject_sample(m, tok, &c, dam, &o, NULL, NULL);
    snprintf(p, sizeof p, "%s.part.json", dam);
    f = fopen(p, "w");
    fputs("{\"prompts_done\": 4, \"bytes\": -3}", f);
    fclose(f);
    is_int(r1_reject_resume(m, tok, dam, NULL, NULL, &err), R1_EFORMAT,
           "a damaged state file is refused");
    like(err.msg, "damaged.jsonl.part.json", "naming it");
    f = fopen(p, "w");
    fputs("{\"prompts_", f);
    fclose(f);
    is_int(r1_reject_resume(m, tok, dam, NULL, NULL, &err), R1_EFORMAT, "so is a cut one");
    like(err.msg, "part.json:1", "with the position");

    r1_model_free(m);
    r1_tokenizer_free(tok);
    tu_rm(tu_dir);
    return done_testing();
}
