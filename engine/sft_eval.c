/* sft_eval.c — evaluation of the pretraining and SFT stages on the held-out set: greedy batched
 * generation of the held-out prompts, then accuracy, format, language consistency and lengths
 * per (task, difficulty) cell.  Scoring is separate from generation (r1_sft_eval_add) so that
 * tests can score hand-made completions.
 *
 * Ownership: results live in the caller's r1_sft_eval; generation buffers are freed before
 * returning.  Errors: those of r1_generate (R1_ECANCELED when interrupted), R1_ENOMEM. */
#include <config.h>

#include <stddef.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "r1_comm.h"
#include "r1_generate.h"
#include "r1_inspect.h"
#include "r1_rewards.h"
#include "r1_sft.h"

void r1_sft_eval_reset(r1_sft_eval *e)
{
    memset(e, 0, sizeof *e);
}

/* The cell of (task, difficulty), made (empty) when it is not there yet; NULL when full. */
static r1_sft_eval_cell *cell_of(r1_sft_eval *e, const r1_task *task, int difficulty,
                                 int in_training)
{
    for (int i = 0; i < e->ncells; i++)
        if (e->cell[i].task == task && e->cell[i].difficulty == difficulty)
            return &e->cell[i];
    if (e->ncells == R1_SFT_MAX_CELLS)
        return NULL; /* r1_sft_validate keeps evaluations within the cells */
    r1_sft_eval_cell *c = &e->cell[e->ncells++];
    memset(c, 0, sizeof *c);
    c->task = task;
    c->difficulty = difficulty;
    c->in_training = in_training;
    return c;
}

/* While accumulating, the mean fields hold sums; r1_sft_eval_finish divides. */
void r1_sft_eval_add(r1_sft_eval *e, const r1_task_sample *s, int in_training,
                     const char *completion, int ntokens)
{
    r1_sft_eval_cell *c = cell_of(e, s->task, s->difficulty, in_training);
    if (!c)
        return;
    r1_completion_parts parts;
    r1_reward_split(completion, &parts);
    r1_reward_sample rs = {0};
    rs.prompt = s->prompt;
    rs.completion = completion;
    rs.target = s->answer;
    rs.task = s->task;
    rs.lang = s->lang;
    rs.ntokens = ntokens;
    double acc = r1_reward_accuracy(&rs, NULL), fmt = r1_reward_format(&rs, NULL);
    double lang = r1_reward_language(&rs, NULL);
    c->n++;
    c->accuracy += acc;
    c->format += fmt;
    c->language += lang;
    c->length += ntokens;
    c->think_len += (double)parts.think_len;
    e->n++;
    e->accuracy += acc;
    e->format += fmt;
    e->language += lang;
    e->length += ntokens;
    e->think_len += (double)parts.think_len;
    if (s->lang == R1_LANG_EN || s->lang == R1_LANG_ES) {
        e->lang_n[s->lang]++;
        e->lang_accuracy[s->lang] += acc;
        e->lang_format[s->lang] += fmt;
        e->lang_language[s->lang] += lang;
    }
    if (c->in_training) {
        e->n_in++;
        e->accuracy_in += acc;
    } else {
        e->n_above++;
        e->accuracy_above += acc;
    }
}

void r1_sft_eval_finish(r1_sft_eval *e)
{
    for (int i = 0; i < e->ncells; i++) {
        r1_sft_eval_cell *c = &e->cell[i];
        double n = c->n ? c->n : 1;
        c->accuracy /= n, c->format /= n, c->language /= n, c->length /= n, c->think_len /= n;
    }
    double n = e->n ? e->n : 1;
    e->accuracy /= n, e->format /= n, e->language /= n, e->length /= n, e->think_len /= n;
    e->accuracy_in /= e->n_in ? e->n_in : 1;
    e->accuracy_above /= e->n_above ? e->n_above : 1;
    for (int l = 0; l < 2; l++) {
        double nl = e->lang_n[l] ? e->lang_n[l] : 1;
        e->lang_accuracy[l] /= nl, e->lang_format[l] /= nl, e->lang_language[l] /= nl;
    }
}

void r1_sft_eval_mark_trained(r1_sft_eval *e, const r1_sft_settings *s)
{
    double in = 0, above = 0;
    e->n_in = e->n_above = 0;
    for (int i = 0; i < e->ncells; i++) {
        r1_sft_eval_cell *c = &e->cell[i];
        c->in_training = 0;
        for (int k = 0; k < s->ntasks; k++)
            if (s->tasks[k].task == c->task && c->difficulty >= s->tasks[k].dmin &&
                c->difficulty <= s->tasks[k].dmax)
                c->in_training = 1;
        if (c->in_training)
            e->n_in += c->n, in += c->accuracy * c->n;
        else
            e->n_above += c->n, above += c->accuracy * c->n;
    }
    e->accuracy_in = e->n_in ? in / e->n_in : 0;
    e->accuracy_above = e->n_above ? above / e->n_above : 0;
}


/* Generates and scores held-out samples j0 .. j0 + n - 1 of cell ci (a rank's share; the cell
 * is made even when the share is empty, so that every rank holds the same cells). */
static r1_status eval_cell(r1_model *m, const r1_tokenizer *tok, const r1_sft_data *d, int ci,
                           int j0, int n, r1_task_sample *smp, int32_t **prompts, int *lens,
                           r1_sft_eval *out, r1_error *err)
{
    const r1_config *c = r1_model_config(m);
    int in_training, difficulty;
    const r1_task *task;
    r1_sft_data_cell(d, ci, &task, &difficulty, &in_training);
    cell_of(out, task, difficulty, in_training);
    if (n == 0)
        return R1_OK;
    int ref = 0, plen = 0;
    r1_status st = R1_OK;
    for (int j = 0; j < n && st == R1_OK; j++) {
        if ((st = r1_sft_data_heldout(d, ci, j0 + j, &smp[j], err)) != R1_OK)
            break;
        st = r1_tokenizer_encode_prompt(tok, smp[j].prompt, prompts[j], R1_TASK_PROMPT_MAX + 8,
                                        &lens[j], err);
        /* the reference completion: reasoning, answer and its five tags */
        int r = (int)(strlen(smp[j].reasoning) + strlen(smp[j].answer)) + 5;
        ref = r > ref ? r : ref;
        plen = lens[j] > plen ? lens[j] : plen;
    }
    if (st != R1_OK)
        return st;
    /* room to ramble: half as long again as the longest reference, within the positions */
    int max_new = ref + ref / 2 + 16;
    if (plen + max_new > c->max_position_embeddings)
        max_new = c->max_position_embeddings - plen;
    if (max_new < 1)
        return r1_error_set(err, R1_EINVAL, "evaluation: %s prompts of %d tokens leave no room "
                            "within max_position_embeddings %d", r1_task_name(smp[0].task), plen,
                            c->max_position_embeddings);
    int32_t stops[2] = {r1_tokenizer_special_id(tok, R1_TOK_EOS),
                        r1_tokenizer_special_id(tok, R1_TOK_ANSWER_END)};
    r1_gen_cfg g = r1_gen_defaults();
    g.max_tokens = max_new;
    g.temperature = 0;
    g.stop_ids = stops;
    g.n_stop_ids = 2;
    r1_gen_result *res = NULL;
    st = r1_generate(m, (const int32_t *const *)prompts, lens, n, &g, NULL, &res, err);
    for (int j = 0; st == R1_OK && j < n; j++) {
        char *text = NULL;
        st = r1_tokenizer_decode(tok, res->row[j].tokens, res->row[j].n, &text, err);
        if (st == R1_OK)
            r1_sft_eval_add(out, &smp[j], in_training, text, res->row[j].n);
        free(text);
    }
    /* the MTP module's drafts against the greedy text: prompt and completion in one sequence */
    int D = c->num_nextn_predict_layers < R1_SFT_MTP_MAX ? c->num_nextn_predict_layers
                                                          : R1_SFT_MTP_MAX;
    out->mtp_depth = D;
    for (int j = 0; st == R1_OK && D > 0 && j < n; j++) {
        int T = lens[j] + res->row[j].n;
        if (T > c->max_position_embeddings)
            T = c->max_position_embeddings;
        int32_t *seq = malloc(sizeof(int32_t) * (T > 0 ? T : 1));
        if (!seq) {
            st = r1_error_set(err, R1_ENOMEM, "out of memory");
            break;
        }
        memcpy(seq, prompts[j], sizeof(int32_t) * lens[j]);
        memcpy(seq + lens[j], res->row[j].tokens, sizeof(int32_t) * (T - lens[j]));
        long tries[R1_SFT_MTP_MAX] = {0}, hits[R1_SFT_MTP_MAX] = {0};
        st = r1_inspect_mtp_accept(m, seq, T, lens[j], tries, hits, err);
        for (int k = 0; k < D; k++)
            out->mtp_tries[k] += tries[k], out->mtp_hits[k] += hits[k];
        free(seq);
    }
    r1_gen_result_free(res);
    return st;
}

/* The sums of a data-parallel evaluation, over the ranks (every rank holds the same cells). */
static r1_status sum_eval(const r1_comm *comm, r1_sft_eval *e, r1_error *err)
{
    enum { PER_CELL = 6, TOP = 10 + 2 * 4 };
    size_t nv = (size_t)e->ncells * PER_CELL + TOP + 2 * R1_SFT_MTP_MAX;
    double *v = malloc(sizeof(double) * nv);
    if (!v)
        return r1_error_set(err, R1_ENOMEM, "out of memory");
    double *p = v;
    for (int i = 0; i < e->ncells; i++) {
        r1_sft_eval_cell *c = &e->cell[i];
        *p++ = c->n, *p++ = c->accuracy, *p++ = c->format, *p++ = c->language;
        *p++ = c->length, *p++ = c->think_len;
    }
    *p++ = e->n, *p++ = e->accuracy, *p++ = e->format, *p++ = e->language, *p++ = e->length;
    *p++ = e->think_len, *p++ = e->n_in, *p++ = e->n_above, *p++ = e->accuracy_in;
    *p++ = e->accuracy_above;
    for (int l = 0; l < 2; l++)
        *p++ = e->lang_n[l], *p++ = e->lang_accuracy[l], *p++ = e->lang_format[l],
        *p++ = e->lang_language[l];
    for (int k = 0; k < R1_SFT_MTP_MAX; k++)
        *p++ = (double)e->mtp_tries[k], *p++ = (double)e->mtp_hits[k];
    r1_status st = r1_comm_sum_f64(comm, v, nv, err);
    p = v;
    for (int i = 0; st == R1_OK && i < e->ncells; i++) {
        r1_sft_eval_cell *c = &e->cell[i];
        c->n = (int)*p++, c->accuracy = *p++, c->format = *p++, c->language = *p++;
        c->length = *p++, c->think_len = *p++;
    }
    if (st == R1_OK) {
        e->n = (int)*p++, e->accuracy = *p++, e->format = *p++, e->language = *p++;
        e->length = *p++, e->think_len = *p++, e->n_in = (int)*p++, e->n_above = (int)*p++;
        e->accuracy_in = *p++, e->accuracy_above = *p++;
        for (int l = 0; l < 2; l++)
            e->lang_n[l] = (int)*p++, e->lang_accuracy[l] = *p++, e->lang_format[l] = *p++,
            e->lang_language[l] = *p++;
        for (int k = 0; k < R1_SFT_MTP_MAX; k++)
            e->mtp_tries[k] = (long)*p++, e->mtp_hits[k] = (long)*p++;
    }
    free(v);
    return st;
}

r1_status r1_sft_evaluate(r1_model *m, const r1_tokenizer *tok, const r1_sft_data *d, int n,
                          r1_sft_eval *out, r1_error *err)
{
    return r1_sft_evaluate_comm(m, tok, d, n, NULL, out, err);
}

r1_status r1_sft_evaluate_comm(r1_model *m, const r1_tokenizer *tok, const r1_sft_data *d, int n,
                               const r1_comm *comm, r1_sft_eval *out, r1_error *err)
{
    if (n < 1 || n > R1_SFT_HELDOUT)
        return r1_error_set(err, R1_EINVAL, "evaluation: %d samples per cell; expected 1..%d", n,
                            R1_SFT_HELDOUT);
    double t0 = r1_now();
    r1_sft_eval_reset(out);
    r1_task_sample *smp = malloc(sizeof *smp * (size_t)n);
    int32_t **prompts = calloc((size_t)n, sizeof *prompts);
    int *lens = calloc((size_t)n, sizeof *lens);
    r1_status st = smp && prompts && lens ? R1_OK : R1_ENOMEM;
    for (int j = 0; st == R1_OK && j < n; j++)
        if (!(prompts[j] = malloc(sizeof(int32_t) * (R1_TASK_PROMPT_MAX + 8))))
            st = R1_ENOMEM;
    if (st == R1_ENOMEM)
        r1_error_set(err, R1_ENOMEM, "evaluation: out of memory");
    int lo = 0, hi = n; /* with ranks, each its share of every cell's problems */
    r1_comm_rows(comm, n, &lo, &hi);
    for (int ci = 0; st == R1_OK && ci < r1_sft_data_ncells(d); ci++)
        st = eval_cell(m, tok, d, ci, lo, hi - lo, smp, prompts, lens, out, err);
    if (comm && comm->size > 1) { /* every rank learns whether any failed, then the sums */
        double f = st != R1_OK;
        r1_status cs = r1_comm_sum_f64(comm, &f, 1, err);
        if (cs != R1_OK)
            st = cs;
        else if (st == R1_OK && f > 0)
            st = r1_error_set(err, R1_ECANCELED, "evaluation: another rank stopped (its "
                              "message says why)");
        if (st == R1_OK)
            st = sum_eval(comm, out, err);
    }
    for (int j = 0; prompts && j < n; j++)
        free(prompts[j]);
    free(prompts);
    free(lens);
    free(smp);
    r1_sft_eval_finish(out);
    out->seconds = r1_now() - t0;
    return st;
}

/* ------------------------------------------------------------------ evaluation as a stage */

r1_eval_settings r1_eval_defaults(void)
{
    r1_eval_settings e;
    memset(&e, 0, sizeof e);
    e.s = r1_sft_defaults(R1_SFT_COLDSTART);
    e.s.eval_n = 16;
    e.s.eval_above = 0;
    e.trained = e.s;
    return e;
}

static r1_status parse_tasks(void *v, const char *t, r1_error *err)
{
    return r1_sft_parse_tasks(&((r1_eval_settings *)v)->s, t, err);
}

static void format_tasks(const void *v, char *buf, size_t cap)
{
    r1_sft_format_tasks(&((const r1_eval_settings *)v)->s, buf, cap);
}

static r1_status parse_trained(void *v, const char *t, r1_error *err)
{
    r1_eval_settings *e = v;
    if (!*t) { /* none: every evaluated cell counts as trained */
        e->has_trained = 0;
        return R1_OK;
    }
    r1_status st = r1_sft_parse_tasks(&e->trained, t, err);
    if (st == R1_OK)
        e->has_trained = 1;
    return st;
}

static void format_trained(const void *v, char *buf, size_t cap)
{
    const r1_eval_settings *e = v;
    if (e->has_trained)
        r1_sft_format_tasks(&e->trained, buf, cap);
    else
        if (cap)
            buf[0] = 0;
}

#define F(field) offsetof(r1_eval_settings, field)
static const r1_setting eval_settings[] = {
    {"tasks", R1_SET_TEXT, 0, 0, 0, NULL, "tasks and difficulties evaluated: NAME[:D|:LO-HI],...",
     NULL, parse_tasks, format_tasks},
    {"n", R1_SET_INT, F(s.eval_n), 1, R1_SFT_HELDOUT, NULL,
     "held-out problems per task and difficulty", NULL, NULL, NULL},
    {"above", R1_SET_INT, F(s.eval_above), 0, 100, NULL,
     "also evaluate this many difficulties above each entry", NULL, NULL, NULL},
    {"seed", R1_SET_SEED, F(s.seed), 0, 0, NULL, "seed (the held-out problems do not depend on it)",
     NULL, NULL, NULL},
    {"phrasing", R1_SET_CHOICE, F(s.eval_phrasing), 0, 0, "task|typed|mixed",
     "the questions: the task's own words, as people type them, or either", NULL, NULL, NULL},
    {"trained", R1_SET_TEXT, 0, 0, 0, NULL,
     "the training tasks: which cells count as trained (empty: every cell evaluated)", NULL,
     parse_trained, format_trained},
};
#undef F

const r1_settings_table r1_eval_settings_tbl = {"eval", eval_settings,
                                                sizeof eval_settings / sizeof *eval_settings};

const r1_settings_table *r1_eval_settings_table(void)
{
    return &r1_eval_settings_tbl;
}

r1_status r1_eval_run(r1_model *m, const r1_tokenizer *tok, const r1_eval_settings *e,
                      r1_sft_eval *out, r1_error *err)
{
    return r1_eval_run_comm(m, tok, e, NULL, out, err);
}

r1_status r1_eval_run_comm(r1_model *m, const r1_tokenizer *tok, const r1_eval_settings *e,
                           const r1_comm *comm, r1_sft_eval *out, r1_error *err)
{
    r1_sft_settings s = e->s;
    const r1_config *c = r1_model_config(m);
    s.seq_len = c->max_position_embeddings < 384 ? c->max_position_embeddings : 384;
    s.out_dir[0] = '\0';
    r1_status st = r1_sft_validate(&s, c, err);
    r1_sft_data *d = NULL;
    if (st == R1_OK)
        st = r1_sft_data_new(&d, &s, tok, err);
    if (st == R1_OK)
        st = r1_sft_evaluate_comm(m, tok, d, s.eval_n, comm, out, err);
    if (st == R1_OK && e->has_trained)
        r1_sft_eval_mark_trained(out, &e->trained);
    r1_sft_data_free(d);
    return st;
}
