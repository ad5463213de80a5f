/* checkpoint.c — resumable training checkpoints and JSONL logs (see r1_train.h).
 * Errors name the folder or file; nothing is left half-written. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "json_util.h"
#include "r1_safetensors.h"
#include "r1_train.h"

/* rm -r for the folders this file writes: its files, and the one subfolder a GRPO checkpoint
 * has (reference/, a model folder). */
static void remove_files(const char *dir)
{
    static const char *files[] = {"config.json", "model.safetensors", "optimizer.safetensors",
                                  "trainer_state.json", "tokenizer.json", NULL};
    char p[4300];
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void remove_tree(const char *dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/reference", dir);
    remove_files(p);
    remove_files(dir);
}

static r1_status write_state(const char *path, r1_adamw *o, const r1_train_state *st,
                             const char *settings, r1_error *err)
{
    json_t *j = json_object();
    json_object_set_new(j, "format", json_string("r1lab-trainer-state-1"));
    json_object_set_new(j, "stage", json_string(st ? st->stage : ""));
    json_object_set_new(j, "step", json_integer(st ? st->step : 0));
    json_object_set_new(j, "data_pos", json_integer(st ? st->data_pos : 0));
    /* resume takes the same thread count again (for the speed: results do not depend on it) */
    json_object_set_new(j, "threads", json_integer(r1_threads()));
    /* what the last bits do depend on: the CPU and the kernels (r1_machine) */
    json_object_set_new(j, "machine", r1_machine_json());
    json_t *rng = json_array();
    for (int i = 0; i < 4; i++) { /* u64 as decimal strings: JSON numbers are doubles */
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", st ? (unsigned long long)st->rng.s[i] : 0ULL);
        json_array_append_new(rng, json_string(buf));
    }
    json_object_set_new(j, "rng", rng);
    if (o) {
        const r1_adamw_cfg *c = r1_adamw_config(o);
        json_t *oj = json_object();
        json_object_set_new(oj, "t", json_integer(r1_adamw_steps(o)));
        json_object_set_new(oj, "lr", json_real(c->lr));
        json_object_set_new(oj, "min_lr", json_real(c->min_lr));
        json_object_set_new(oj, "warmup", json_integer(c->warmup));
        json_object_set_new(oj, "total", json_integer(c->total));
        json_object_set_new(oj, "beta1", json_real(c->beta1));
        json_object_set_new(oj, "beta2", json_real(c->beta2));
        json_object_set_new(oj, "eps", json_real(c->eps));
        json_object_set_new(oj, "weight_decay", json_real(c->weight_decay));
        json_object_set_new(oj, "clip", json_real(c->clip));
        json_object_set_new(oj, "bf16_moments", json_boolean(c->bf16_moments));
        json_object_set_new(j, "optimizer", oj);
    }
    if (settings) {
        json_error_t je;
        json_t *s = json_loads(settings, 0, &je);
        if (!s) {
            json_decref(j);
            return r1_error_set(err, R1_EINVAL, "checkpoint settings are not JSON: %s", je.text);
        }
        json_object_set_new(j, "settings", s);
    }
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(j);
    if (!text)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    r1_afile a;
    r1_status s = r1_afile_open(&a, path, err);
    if (s == R1_OK && (s = r1_afile_write(&a, text, strlen(text), err)) == R1_OK)
        s = r1_afile_commit(&a, err);
    else if (s != R1_OK && a.f)
        r1_afile_abort(&a);
    free(text);
    return s;
}

/* Calls fn on every sibling of dir named "<dir>.<kind>.<pid>[.<random>]" (kind "tmp" or
 * "old") whose writer, process pid, is gone: what a killed save left behind. */
static void stale_siblings(const char *dir, const char *kind,
                           void (*fn)(const char *path, void *user), void *user)
{
    char parent[4096], prefix[4200], p[8400];
    const char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (!*base)
        return;
    if (slash)
        snprintf(parent, sizeof parent, "%.*s", slash == dir ? 1 : (int)(slash - dir), dir);
    else
        snprintf(parent, sizeof parent, ".");
    int np = snprintf(prefix, sizeof prefix, "%s.%s.", base, kind);
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, (size_t)np) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + np, &end, 10);
        if (pid <= 0 || end == e->d_name + np || (*end && *end != '.'))
            continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* ours, or a writer still at work */
        snprintf(p, sizeof p, "%s/%s", parent, e->d_name);
        fn(p, user);
    }
    closedir(d);
}

static void remove_stale(const char *path, void *user)
{
    (void)user;
    remove_tree(path);
}

/* A save killed between its two renames leaves no checkpoint but a complete "<dir>.old.*":
 * the previous checkpoint, which goes back into place. */
static void restore_old(const char *path, void *user)
{
    const char *dir = user;
    char p[8400];
    snprintf(p, sizeof p, "%s/trainer_state.json", path);
    if (access(dir, F_OK) != 0 && access(p, F_OK) == 0)
        rename(path, dir);
}

/* Makes a new empty folder "<dir>.<kind>.<pid>.<random>" (mkdir is exclusive). */
static r1_status make_sibling_dir(const char *dir, const char *kind, char *buf, size_t cap,
                                  r1_error *err)
{
    for (int tries = 0; tries < 32; tries++) {
        r1_sibling_name(buf, cap, dir, kind);
        if (mkdir(buf, 0777) == 0)
            return R1_OK;
        if (errno != EEXIST)
            break;
    }
    return r1_error_set(err, R1_EIO, "%s: cannot create the folder: %s", buf, strerror(errno));
}

static r1_status ckpt_save(const char *dir, const r1_model *m, r1_adamw *o,
                           const r1_train_state *st, const char *settings_json,
                           const r1_tokenizer *tok, const r1_model *ref, r1_error *err)
{
    char tmp[4200], old[4200], path[4300];
    if (strlen(dir) > 4000)
        return r1_error_set(err, R1_EINVAL, "%s: the checkpoint path is too long", dir);
    /* what killed saves left behind goes first: their half-written folders, and a previous
     * checkpoint stranded between the two renames comes back */
    stale_siblings(dir, "old", restore_old, (void *)dir);
    stale_siblings(dir, "tmp", remove_stale, NULL);
    stale_siblings(dir, "old", remove_stale, NULL);
    r1_status s = make_sibling_dir(dir, "tmp", tmp, sizeof tmp, err);
    if (s != R1_OK)
        return s;
    s = r1_model_save(m, tmp, R1_DT_F32, err);
    if (s == R1_OK && o) {
        r1_st_writer *w = r1_st_writer_new();
        if (!w)
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
        /* names are built into one buffer that lives until the write */
        int np = r1_model_nparams(m);
        char *names = w ? malloc((size_t)np * 2 * 160) : NULL;
        if (w && !names)
            s = r1_error_set(err, R1_ENOMEM, "out of memory");
        for (int i = 0; s == R1_OK && i < np; i++) {
            const r1_param *p = r1_model_param(m, i);
            char *mn = names + (size_t)i * 320, *vn = mn + 160;
            snprintf(mn, 160, "m.%s", p->name);
            snprintf(vn, 160, "v.%s", p->name);
            s = r1_st_writer_add(w, mn, R1_DT_F32, R1_DT_F32, r1_adamw_m(o) + p->offset, p->ndim,
                                 p->shape, err);
            if (s == R1_OK)
                s = r1_st_writer_add(w, vn, R1_DT_F32, R1_DT_F32, r1_adamw_v(o) + p->offset,
                                     p->ndim, p->shape, err);
        }
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
        if (s == R1_OK)
            s = r1_st_writer_write(w, path, err);
        r1_st_writer_free(w);
        free(names);
    }
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    if (s == R1_OK)
        s = write_state(path, o, st, settings_json, err);
    if (s == R1_OK && tok)
        s = r1_tokenizer_save(tok, tmp, err);
    snprintf(path, sizeof path, "%s/reference", tmp);
    if (s == R1_OK && ref) /* inside the folder before the swap: one atomic checkpoint */
        s = r1_model_save(ref, path, R1_DT_F32, err);
    if (s != R1_OK) {
        remove_tree(tmp);
        return s;
    }
    /* swap the folders: the old checkpoint goes only once the new one is complete */
    struct stat sb;
    int had = stat(dir, &sb) == 0;
    r1_sibling_name(old, sizeof old, dir, "old");
    if (had && (r1__fault("rename") || rename(dir, old) != 0)) {
        int e = errno; /* before remove_tree's calls change it */
        remove_tree(tmp);
        return r1_error_set(err, R1_EIO, "%s: cannot replace the checkpoint: %s", dir,
                            strerror(e));
    }
    if (r1__fault("rename") || rename(tmp, dir) != 0) {
        int e = errno;
        if (had)
            rename(old, dir);
        remove_tree(tmp);
        return r1_error_set(err, R1_EIO, "%s: cannot write the checkpoint: %s", dir, strerror(e));
    }
    if (had)
        remove_tree(old);
    return R1_OK;
}

r1_status r1_ckpt_save(const char *dir, const r1_model *m, r1_adamw *o, const r1_train_state *st,
                       const char *settings_json, r1_error *err)
{
    return ckpt_save(dir, m, o, st, settings_json, NULL, NULL, err);
}

r1_status r1_ckpt_save_tok(const char *dir, const r1_model *m, r1_adamw *o,
                           const r1_train_state *st, const char *settings_json,
                           const r1_tokenizer *tok, r1_error *err)
{
    return ckpt_save(dir, m, o, st, settings_json, tok, NULL, err);
}

r1_status r1_ckpt_save_ref(const char *dir, const r1_model *m, r1_adamw *o,
                           const r1_train_state *st, const char *settings_json,
                           const r1_tokenizer *tok, const r1_model *ref, r1_error *err)
{
    return ckpt_save(dir, m, o, st, settings_json, tok, ref, err);
}

/* Integer field k of o, which must be there and in [0, hi]; else *bad is set: a damaged
 * trainer_state.json must not resume a run from a wrong place. */
static int64_t jcount(json_t *o, const char *k, int64_t hi, int *bad)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > hi) {
        *bad = 1;
        return 0;
    }
    return json_integer_value(v);
}

static double jnum(json_t *o, const char *k, double def)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : def;
}

r1_status r1_ckpt_load(const char *dir, r1_model **mout, r1_adamw **oout, r1_train_state *st,
                       char **settings_json, r1_error *err)
{
    *mout = NULL;
    if (oout)
        *oout = NULL;
    if (settings_json)
        *settings_json = NULL;
    if (access(dir, F_OK) != 0) /* a save killed between its renames: the previous one */
        stale_siblings(dir, "old", restore_old, (void *)dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j && access(path, F_OK) != 0)
        return r1_error_set(err, R1_ENOTFOUND, "%s: missing: no training checkpoint here (a run "
                            "stopped before its first checkpoint cannot be resumed; start it "
                            "again with the same command)", path);
    if (!j)
        return r1_json_fail(err, path, &je);
    r1_status s = R1_OK;
    json_t *fmt = json_object_get(j, "format");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "r1lab-trainer-state-1") != 0)
        s = r1_error_set(err, R1_EFORMAT,
                         "%s: field \"format\" should be \"r1lab-trainer-state-1\"", path);
    json_t *rng = json_object_get(j, "rng");
    if (s == R1_OK && (!json_is_array(rng) || json_array_size(rng) != 4))
        s = r1_error_set(err, R1_EFORMAT, "%s: field \"rng\" should hold 4 strings", path);
    int bad = 0;
    int64_t step = jcount(j, "step", INT64_MAX, &bad), pos = jcount(j, "data_pos", INT64_MAX, &bad);
    if (s == R1_OK && bad)
        s = r1_error_set(err, R1_EFORMAT,
                         "%s: fields \"step\" and \"data_pos\" should be integers >= 0", path);
    /* a tampered or damaged state is named, never cast into nonsense: the counters are
     * integers in range, the RNG four decimal u64 strings, not all zero (xoshiro's one state
     * that never leaves zero) */
    r1_rng rs;
    memset(&rs, 0, sizeof rs);
    for (int i = 0; s == R1_OK && i < 4; i++) {
        json_t *v = json_array_get(rng, i);
        const char *t = json_is_string(v) ? json_string_value(v) : "";
        char *end = NULL;
        errno = 0;
        rs.s[i] = strtoull(t, &end, 10);
        if (!*t || *end || errno || t[0] == '-')
            s = r1_error_set(err, R1_EFORMAT, "%s: field \"rng\" item %d should be a decimal "
                             "64-bit number in a string", path, i + 1);
    }
    if (s == R1_OK && !(rs.s[0] | rs.s[1] | rs.s[2] | rs.s[3]))
        s = r1_error_set(err, R1_EFORMAT, "%s: field \"rng\" is all zero, a state the "
                         "generator never reaches", path);
    json_t *ot = json_object_get(json_object_get(j, "optimizer"), "t");
    if (s == R1_OK && ot && (!json_is_integer(ot) || json_integer_value(ot) < 0 ||
                             json_integer_value(ot) > INT32_MAX))
        s = r1_error_set(err, R1_EFORMAT, "%s: field \"optimizer.t\" should be an integer in "
                         "0..2^31-1", path);
    if (s == R1_OK && st) {
        memset(st, 0, sizeof *st);
        json_t *sg = json_object_get(j, "stage");
        snprintf(st->stage, sizeof st->stage, "%s", json_is_string(sg) ? json_string_value(sg) : "");
        st->step = step;
        st->data_pos = pos;
        st->rng = rs;
    }
    if (s == R1_OK && settings_json && json_object_get(j, "settings")) {
        *settings_json = json_dumps(json_object_get(j, "settings"), JSON_COMPACT);
    }
    r1_model *m = NULL;
    if (s == R1_OK)
        s = r1_model_load(&m, dir, err);
    if (s == R1_OK && oout) {
        json_t *oj = json_object_get(j, "optimizer");
        r1_adamw_cfg c = r1_adamw_defaults();
        c.lr = (float)jnum(oj, "lr", c.lr);
        c.min_lr = (float)jnum(oj, "min_lr", c.min_lr);
        int obad = 0;
        c.warmup = (int)jcount(oj, "warmup", INT_MAX, &obad);
        c.total = (int)jcount(oj, "total", INT_MAX, &obad);
        int t = (int)jcount(oj, "t", INT_MAX, &obad);
        c.beta1 = (float)jnum(oj, "beta1", c.beta1);
        c.beta2 = (float)jnum(oj, "beta2", c.beta2);
        c.eps = (float)jnum(oj, "eps", c.eps);
        c.weight_decay = (float)jnum(oj, "weight_decay", c.weight_decay);
        c.clip = (float)jnum(oj, "clip", c.clip);
        c.bf16_moments = json_is_true(json_object_get(oj, "bf16_moments"));
        r1_adamw *o = NULL;
        s = obad ? r1_error_set(err, R1_EFORMAT, "%s: field \"optimizer\" should hold \"t\", "
                                "\"warmup\" and \"total\" (integers >= 0)", path)
                 : r1_adamw_new(&o, m, &c, err);
        r1_st *ost = NULL;
        snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
        if (s == R1_OK)
            s = r1_st_open(&ost, path, err);
        for (int i = 0; s == R1_OK && i < r1_model_nparams(m); i++) {
            const r1_param *p = r1_model_param(m, i);
            char name[200];
            snprintf(name, sizeof name, "m.%s", p->name);
            s = r1_st_read_f32(ost, name, r1_adamw_m(o) + p->offset, p->ndim, p->shape, err);
            snprintf(name, sizeof name, "v.%s", p->name);
            if (s == R1_OK)
                s = r1_st_read_f32(ost, name, r1_adamw_v(o) + p->offset, p->ndim, p->shape, err);
        }
        r1_st_close(ost);
        if (s == R1_OK) {
            r1_adamw_set_steps(o, t);
            *oout = o;
        } else {
            r1_adamw_free(o);
        }
    }
    json_decref(j);
    if (s != R1_OK) {
        r1_model_free(m);
        if (settings_json) {
            free(*settings_json);
            *settings_json = NULL;
        }
        return s;
    }
    *mout = m;
    return R1_OK;
}

r1_status r1_jsonl_append(const char *path, const char *json_line, r1_error *err)
{
    int fd = r1__fault("open") ? -1 : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return r1_error_set(err, R1_EIO, "%s: cannot open for appending: %s", path,
                            strerror(errno));
    struct stat sb;
    off_t before = fstat(fd, &sb) == 0 ? sb.st_size : -1;
    size_t n = strlen(json_line);
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    }
    memcpy(buf, json_line, n);
    buf[n] = '\n';
    ssize_t w = r1__fault("write") ? -1 : write(fd, buf, n + 1);
    int e = errno;
    free(buf);
    if (w != (ssize_t)(n + 1) && w > 0 && before >= 0) /* half a line: take it back */
        (void)!ftruncate(fd, before);
    close(fd);
    if (w != (ssize_t)(n + 1))
        return r1_error_set(err, R1_EIO, "%s: write failed: %s", path,
                            w < 0 ? strerror(e) : "short write");
    return R1_OK;
}

r1_status r1_jsonl_trim(const char *path, int64_t step, r1_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return R1_OK;
    r1_afile a;
    r1_status st = r1_afile_open(&a, path, err);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (st == R1_OK && (n = getline(&line, &cap, f)) > 0) {
        json_t *j = json_loadb(line, (size_t)n, 0, NULL); /* all of it: a NUL ends no line */
        json_t *sv = j ? json_object_get(j, "step") : NULL;
        int keep = json_is_integer(sv) && json_integer_value(sv) <= step;
        json_decref(j);
        if (keep)
            st = r1_afile_write(&a, line, (size_t)n, err);
        if (keep && st == R1_OK && line[n - 1] != '\n') /* the resumed run appends after it */
            st = r1_afile_write(&a, "\n", 1, err);
    }
    free(line);
    fclose(f);
    if (st == R1_OK)
        return r1_afile_commit(&a, err);
    if (a.f)
        r1_afile_abort(&a);
    return st;
}

r1_status r1_run_folder_fresh(const char *out_dir, r1_error *err)
{
    char ck[4200], mp[4200];
    snprintf(ck, sizeof ck, "%s/checkpoint", out_dir);
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", out_dir);
    struct stat sb;
    if (stat(ck, &sb) == 0)
        return r1_error_set(err, R1_EINVAL, "%s holds a run already (checkpoint/); resume it, "
                            "or choose another folder", out_dir);
    if (lstat(mp, &sb) == 0 && unlink(mp) != 0)
        return r1_error_set(err, R1_EIO, "%s: cannot remove the metrics of the run that stopped "
                            "before its first checkpoint: %s", mp, strerror(errno));
    return R1_OK;
}
