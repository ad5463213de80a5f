/* t_files.c — how r1lab replaces files (the reliability probe's M2 and L4): temporary names
 * nobody can guess, created exclusively; the target's permissions kept; a symlink's file
 * replaced and the link kept; folders, devices and FIFOs refused; what killed checkpoint saves
 * leave behind is cleaned up or, for a checkpoint stranded between the two renames, restored;
 * a run folder with metrics but no checkpoint starts afresh. */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic_file.h"
#include "r1_model.h"
#include "r1_rng.h"
#include "r1_train.h"
#include "tap.h"
#include "testutil.h"

static r1_status write_text(const char *path, const char *text, r1_error *err)
{
    r1_afile a;
    r1_status s = r1_afile_open(&a, path, err);
    if (s != R1_OK)
        return s;
    if ((s = r1_afile_write(&a, text, strlen(text), err)) != R1_OK) {
        r1_afile_abort(&a);
        return s;
    }
    return r1_afile_commit(&a, err);
}

static int file_is(const char *path, const char *want)
{
    char buf[256] = {0};
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strcmp(buf, want) == 0;
}

/* a pid that no process has */
static long dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return (long)p;
}

static void test_afile(void)
{
    r1_error err = {0};
    const char *t = tu_at("notes.txt");
    ok(write_text(t, "one", &err) == R1_OK && file_is(t, "one"), "a new file is written");
    chmod(t, 0600);
    ok(write_text(t, "two", &err) == R1_OK && file_is(t, "two"), "and replaced");
    struct stat sb;
    stat(t, &sb);
    is_int((int)(sb.st_mode & 0777), 0600, "a 0600 file stays 0600 when replaced");

    char a[600], b[600];
    r1_sibling_name(a, sizeof a, t, "tmp");
    r1_sibling_name(b, sizeof b, t, "tmp");
    char want[600];
    snprintf(want, sizeof want, "%s.tmp.%ld.", t, (long)getpid());
    ok(strncmp(a, want, strlen(want)) == 0 && strlen(a) == strlen(want) + 8 && strcmp(a, b),
       "temporary names carry the pid and 8 random hex digits, different each time");

    /* the probe's attack: symlinks planted under the old predictable names */
    const char *victim = tu_at("victim.txt"), *out = tu_at("out.st");
    write_text(victim, "precious", &err);
    char planted[700];
    for (int k = 0; k < 4; k++) {
        snprintf(planted, sizeof planted, "%s.tmp.%ld", out, (long)getpid() + k);
        symlink(victim, planted);
    }
    ok(write_text(out, "output", &err) == R1_OK && file_is(out, "output") &&
       file_is(victim, "precious"), "planted symlinks redirect nothing");
    lstat(out, &sb);
    ok(S_ISREG(sb.st_mode), "and the output is a regular file");

    /* a symlink as the target: the file it points to is replaced, the link stays */
    const char *real = tu_at("real.md"), *link = tu_at("link.md");
    write_text(real, "v1", &err);
    chmod(real, 0640);
    symlink("real.md", link);
    ok(write_text(link, "v2", &err) == R1_OK && file_is(real, "v2"),
       "writing through a symlink replaces the file it points to");
    lstat(link, &sb);
    ok(S_ISLNK(sb.st_mode), "and the link stays a link");
    stat(real, &sb);
    is_int((int)(sb.st_mode & 0777), 0640, "with the file's permissions");

    /* not regular files */
    const char *fifo = tu_at("fifo");
    mkfifo(fifo, 0600);
    is_int(write_text(fifo, "x", &err), R1_EIO, "a FIFO is not replaced");
    like(err.msg, "a FIFO, not a file; refusing to replace it", "saying what it is");
    is_int(write_text(tu_dir, "x", &err), R1_EIO, "nor is a folder");
    like(err.msg, "a folder", "named as such");
    is_int(write_text("/dev/null", "x", &err), R1_EIO, "nor a device");
    struct stat dn;
    ok(stat("/dev/null", &dn) == 0 && S_ISCHR(dn.st_mode), "/dev/null is still a device");
    const char *dangling = tu_at("dangling");
    symlink("nowhere/at/all", dangling);
    is_int(write_text(dangling, "x", &err), R1_EIO, "a dangling symlink is refused");
    like(err.msg, "dangling", "naming it");
}

static void test_checkpoint_leftovers(void)
{
    r1_config c;
    r1_config_preset(&c, "tiny", NULL);
    c.num_hidden_layers = 1;
    r1_model *m;
    r1_model_new(&m, &c, NULL);
    r1_model_init(m, 1);
    r1_error err = {0};
    r1_train_state ts;
    memset(&ts, 0, sizeof ts);
    snprintf(ts.stage, sizeof ts.stage, "pretrain");
    r1_rng_seed(&ts.rng, 9);
    ts.step = 7;
    const char *ck = tu_at("ck");
    ok(r1_ckpt_save(ck, m, NULL, &ts, NULL, &err) == R1_OK, "a checkpoint (%s)", err.msg);
    /* a save killed between its two renames: the checkpoint sits under .old.<dead pid> */
    long dead = dead_pid();
    char old[700], tmp[700];
    snprintf(old, sizeof old, "%s.old.%ld.0badf00d", ck, dead);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.0badcafe", ck, dead);
    ok(rename(ck, old) == 0 && mkdir(tmp, 0777) == 0, "(a save killed between its renames)");
    r1_model *back = NULL;
    r1_train_state got;
    ok(r1_ckpt_load(ck, &back, NULL, &got, NULL, &err) == R1_OK && got.step == 7,
       "the stranded checkpoint is found and restored (%s)", err.msg);
    ok(access(old, F_OK) != 0, "under its own name");
    r1_model_free(back);
    ts.step = 8;
    ok(r1_ckpt_save(ck, m, NULL, &ts, NULL, &err) == R1_OK && access(tmp, F_OK) != 0,
       "the next save removes the half-written folder a killed save left");
    char live[700];
    snprintf(live, sizeof live, "%s.tmp.%ld.12345678", ck, (long)getppid());
    mkdir(live, 0777);
    r1_ckpt_save(ck, m, NULL, &ts, NULL, &err);
    ok(access(live, F_OK) == 0, "but not one whose writer still runs");
    rmdir(live);

    /* a tampered trainer_state.json is named, never cast into nonsense (the probe's L8) */
    static const char *const bad[][3] = {
        {"\"step\": 8", "\"step\": 1e300", "\"step\" and \"data_pos\" should be integers"},
        {"\"step\": 8", "\"step\": -2", "\"step\" and \"data_pos\" should be integers"},
        {"\"rng\": [", "\"rng\": [\"x\", ", "\"rng\" item 1 should be a decimal"},
    };
    char sp[700];
    snprintf(sp, sizeof sp, "%s/trainer_state.json", ck);
    FILE *f = fopen(sp, "r");
    char orig[8192] = {0};
    size_t on = fread(orig, 1, sizeof orig - 1, f);
    fclose(f);
    orig[on] = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[8400];
        const char *at = strstr(orig, bad[i][0]);
        if (!at) {
            ok(0, "the state holds %s", bad[i][0]);
            continue;
        }
        size_t pre = (size_t)(at - orig);
        const char *rest = at + strlen(bad[i][0]);
        if (!strcmp(bad[i][0], "\"rng\": [")) /* drop the first item: four again */
            rest = strchr(rest, ',') + 1;
        snprintf(text, sizeof text, "%.*s%s%s", (int)pre, orig, bad[i][1], rest);
        f = fopen(sp, "w");
        fputs(text, f);
        fclose(f);
        r1_model *x = NULL;
        is_int(r1_ckpt_load(ck, &x, NULL, &got, NULL, &err), R1_EFORMAT, "a state with %s is "
               "refused", bad[i][1]);
        like(err.msg, bad[i][2], "naming the field");
        r1_model_free(x);
    }
    f = fopen(sp, "w");
    fputs(orig, f);
    fclose(f);

    /* a run folder with metrics.jsonl and no checkpoint: it starts afresh */
    const char *run = tu_at("run");
    mkdir(run, 0777);
    char mp[700];
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", run);
    write_text(mp, "{\"step\":1}\n", &err);
    ok(r1_run_folder_fresh(run, &err) == R1_OK && access(mp, F_OK) != 0,
       "metrics without a checkpoint (a run killed before its first one) make way");
    char rck[700];
    snprintf(rck, sizeof rck, "%s/checkpoint", run);
    r1_ckpt_save(rck, m, NULL, &ts, NULL, &err);
    is_int(r1_run_folder_fresh(run, &err), R1_EINVAL, "a checkpoint is never overwritten");
    like(err.msg, "resume it", "the message says what to do");
    r1_model_free(m);
}

int main(void)
{
    tu_tmpdir("t_files");
    test_afile();
    test_checkpoint_leftovers();
    tu_rm(tu_dir);
    return done_testing();
}
