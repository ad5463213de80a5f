/* t_settings.c — the settings tables (r1_settings.h) of every stage: each setting is found by
 * its name and its command-line spelling, its default writes back to text and reads again
 * unchanged, numbers outside the range are refused naming the key and the range, misspelt
 * keys get a suggestion, deprecated spellings still work, and JSON round-trips.  The Lua and
 * command-line front ends are tested in tests/lua/t_errors.lua and tests/t_cli.sh. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "r1_distill.h"
#include "r1_grpo_run.h"
#include "r1_reject.h"
#include "r1_settings.h"
#include "r1_sft.h"
#include "tap.h"

static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* The stage's defaults in a buffer big enough for any settings struct. */
static void defaults(const char *stage, void *buf)
{
    if (!strcmp(stage, "grpo")) {
        r1_grpo_settings g = r1_grpo_settings_defaults();
        memcpy(buf, &g, sizeof g);
    } else if (!strcmp(stage, "reject")) {
        r1_reject_cfg c = r1_reject_defaults();
        memcpy(buf, &c, sizeof c);
    } else if (!strcmp(stage, "distill")) {
        r1_distill_cfg c = r1_distill_defaults();
        memcpy(buf, &c, sizeof c);
    } else if (!strcmp(stage, "eval")) {
        r1_eval_settings e = r1_eval_defaults();
        memcpy(buf, &e, sizeof e);
    } else {
        r1_sft_settings s = r1_sft_defaults(strcmp(stage, "sft") ? R1_SFT_PRETRAIN
                                                                  : R1_SFT_COLDSTART);
        memcpy(buf, &s, sizeof s);
    }
}

static size_t size_of(const char *stage)
{
    return !strcmp(stage, "grpo")      ? sizeof(r1_grpo_settings)
           : !strcmp(stage, "reject")  ? sizeof(r1_reject_cfg)
           : !strcmp(stage, "distill") ? sizeof(r1_distill_cfg)
           : !strcmp(stage, "eval")    ? sizeof(r1_eval_settings)
                                       : sizeof(r1_sft_settings);
}

int main(void)
{
    static const char *const stages[] = {"pretrain", "sft", "grpo", "reject", "distill", "eval"};
    enum { MAXS = sizeof(r1_grpo_settings) + sizeof(r1_sft_settings) + sizeof(r1_eval_settings) };
    static unsigned char a[MAXS], b[MAXS];
    r1_error err = {0};
    for (int si = 0; si < 6; si++) {
        const char *stage = stages[si];
        const r1_settings_table *t = r1_settings_table_of(stage);
        ok(t && !strcmp(t->stage, stage) && t->n >= 5, "%s has a table (%d settings)", stage,
           t ? t->n : 0);
        if (!t)
            continue;
        int found = 0, round = 0, ranged = 0, nnum = 0, helped = 0;
        for (int i = 0; i < t->n; i++) {
            const r1_setting *e = &t->v[i];
            char dash[64], txt[1024], txt2[1024];
            snprintf(dash, sizeof dash, "%s", e->name);
            for (char *c = dash; *c; c++)
                *c = *c == '_' ? '-' : *c;
            found += r1_settings_find(t, e->name, NULL, stage, &err) == e &&
                     r1_settings_find(t, dash, NULL, stage, &err) == e;
            helped += e->help && strlen(e->help) > 8;
            defaults(stage, a);
            defaults(stage, b);
            r1_settings_format(e, a, txt, sizeof txt);
            r1_status st = r1_settings_set_text(e, b, txt, stage, &err);
            r1_settings_format(e, b, txt2, sizeof txt2);
            round += st == R1_OK && !strcmp(txt, txt2) && !memcmp(a, b, size_of(stage));
            if (st != R1_OK || strcmp(txt, txt2))
                diag("%s %s: '%s' -> '%s' (%s)", stage, e->name, txt, txt2, err.msg);
            if (e->type == R1_SET_INT || e->type == R1_SET_FLOAT || e->type == R1_SET_DOUBLE) {
                nnum++;
                ranged += r1_settings_set_number(e, b, e->hi * 2 + 1, stage, &err) == R1_EINVAL &&
                          has(err.msg, e->name) && has(err.msg, "expects");
                ranged -= r1_settings_set_number(e, b, NAN, stage, &err) != R1_EINVAL;
            }
        }
        ok(found == t->n, "%s: every setting is found by its name and with dashes", stage);
        ok(round == t->n, "%s: every default writes back to text and reads again unchanged",
           stage);
        ok(ranged == nnum, "%s: every number outside its range (or NaN) is refused naming the "
           "key (%d of %d)", stage, ranged, nnum);
        ok(helped == t->n, "%s: every setting has a line of help", stage);
        /* a typo of the table's longest name: two letters swapped */
        const char *lng = t->v[0].name;
        for (int i = 1; i < t->n; i++)
            if (strlen(t->v[i].name) > strlen(lng))
                lng = t->v[i].name;
        char typo[64], want[96];
        snprintf(typo, sizeof typo, "%s", lng);
        char c1 = typo[1];
        typo[1] = typo[2], typo[2] = c1;
        snprintf(want, sizeof want, "did you mean '%s'?", lng);
        ok(!r1_settings_find(t, typo, NULL, stage, &err) && has(err.msg, "unknown option") &&
           has(err.msg, typo) && has(err.msg, want), "%s: a typo suggests the name (%s)", stage,
           err.msg);
        ok(!r1_settings_find(t, "zzzzzz", NULL, stage, &err) && !has(err.msg, "did you mean"),
           "%s: nothing far off is suggested", stage);
        defaults(stage, a);
        char *j = r1_settings_json(t, a);
        defaults(stage, b);
        ok(j && r1_settings_parse_json(t, b, j, NULL, stage, &err) == R1_OK &&
           !memcmp(a, b, size_of(stage)), "%s: JSON round-trips (%s)", stage, err.msg);
        free(j);
        char js[128];
        snprintf(js, sizeof js, "{\"%s\": 3}", typo);
        ok(r1_settings_parse_json(t, b, js, NULL, stage, &err) == R1_EINVAL && has(err.msg, want),
           "%s: an unknown JSON key is refused with a suggestion", stage);
    }
    const r1_settings_table *g = r1_settings_table_of("grpo");
    r1_grpo_settings gs = r1_grpo_settings_defaults();
    int old = 0;
    const r1_setting *e = r1_settings_find(g, "gamma", &old, "grpo", &err);
    ok(e && old && !strcmp(e->name, "balance_gamma"), "a deprecated spelling finds its setting");
    const r1_setting *lt = r1_settings_find(g, "loss_type", NULL, "", &err);
    ok(r1_settings_set_text(lt, &gs, "cispo", "", &err) == R1_OK && gs.cfg.agg == R1_GRPO_CISPO,
       "a choice is set by its text");
    old = 0;
    e = r1_settings_find(g, "agg", &old, "", &err);
    ok(e == lt && old && r1_settings_set_text(e, &gs, "token", "", &err) == R1_OK &&
           gs.cfg.agg == R1_GRPO_TOKEN_MEAN,
       "the old name with an old choice still works: agg = token is loss_type dapo");
    char val[64];
    r1_settings_format(lt, &gs, val, sizeof val);
    is_str(val, "dapo", "and it is written back under its new spelling");
    ok(r1_settings_set_text(lt, &gs, "tokens", "r1.grpo", &err) == R1_EINVAL &&
           has(err.msg, "loss_type expects one of grpo|dapo|dr_grpo|cispo, got") &&
           !has(err.msg, "seq"),
       "an unknown choice lists the choices, not the old spellings (%s)", err.msg);
    r1_grpo_settings gf = r1_grpo_settings_defaults();
    char *jt = r1_settings_json(g, &gf);
    ok(jt && has(jt, "\"importance_sampling_level\":\"token\"") &&
           has(jt, "\"multi_objective_aggregation\":\"sum_then_normalize\"") &&
           has(jt, "\"ref_model_mixup_alpha\""),
       "the family's settings are in the checkpoint's JSON under TRL's names");
    free(jt);
    ok(r1_settings_parse_json(g, &gf, "{\"importance_sampling_level\": \"sequence\", "
                              "\"top_entropy_quantile\": 0.2, \"off_policy_mask_threshold\": "
                              "0.5, \"use_bias_correction_kl\": true, \"sync_ref_model\": true}",
                              NULL, "grpo", &err) == R1_OK &&
           gf.cfg.is_level == 1 && fabsf(gf.cfg.top_entropy_quantile - 0.2f) < 1e-7f &&
           gf.cfg.off_policy_mask == 0.5f && gf.cfg.bias_correction_kl && gf.cfg.sync_ref,
       "and they are read back (%s)", err.msg);
    ok(r1_grpo_parse_rewards(&gf, "accuracy,overlong:max=200:cache=50@0.5,random", &err) ==
           R1_OK && gf.overlong_max == 200 && gf.overlong_cache == 50 && gf.cfg.nrewards == 3 &&
           gf.cfg.reward_weights[1] == 0.5,
       "rewards: overlong takes its lengths (%s)", err.msg);
    r1_settings_format(r1_settings_find(g, "rewards", NULL, "", &err), &gf, val, sizeof val);
    is_str(val, "accuracy,overlong:max=200:cache=50@0.5,random", "and writes them back");
    ok(r1_grpo_parse_rewards(&gf, "accuracy:max=3", &err) == R1_EINVAL &&
           has(err.msg, "only overlong takes settings"), "another reward's settings are refused");
    ok(r1_grpo_parse_rewards(&gf, "overlong:max=0", &err) == R1_EINVAL &&
           has(err.msg, "1..65536"), "so is a length of 0 (%s)", err.msg);
    ok(r1_settings_set_number(r1_settings_find(g, "prompts", NULL, "", &err), &gs, 1e6,
                              "r1.grpo", &err) == R1_EINVAL && has(err.msg, "1..4096"),
       "prompts = 1e6 is refused with the range (%s)", err.msg);
    ok(r1_settings_set_number(r1_settings_find(g, "steps", NULL, "", &err), &gs, 2.5, "r1.grpo",
                              &err) == R1_EINVAL, "a fraction for an integer is refused");
    ok(r1_grpo_parse_tasks(&gs, "add:2-3,mul", &err) == R1_OK && gs.ntasks == 2 &&
       gs.dmin[0] == 2 && gs.dmax[0] == 3 && gs.dmin[1] == 0, "a task list with a range");
    ok(r1_grpo_settings_validate(&gs, &err) == R1_OK && gs.dmin[1] >= 1 &&
       gs.cfg.opt.min_lr == gs.cfg.opt.lr, "validation resolves the default difficulty and min_lr");
    ok(r1_grpo_parse_rewards(&gs, "accuracy,format@0.5,language", &err) == R1_OK &&
       gs.cfg.nrewards == 3 && gs.cfg.reward_weights[1] == 0.5, "a reward list with a weight");
    ok(!r1_settings_find(r1_settings_table_of("sft"), "stpes", NULL, "r1.sft", &err) &&
       has(err.msg, "unknown option 'stpes' for r1.sft (did you mean 'steps'?)"),
       "the issue's example: stpes suggests steps");
    ok(r1_grpo_parse_rewards(&gs, "acuracy", &err) != R1_OK && has(err.msg, "acuracy"),
       "an unknown reward is named (%s)", err.msg);
    char help[16384];
    r1_settings_help(g, &gs, help, sizeof help);
    ok(has(help, "--dynamic-sampling") && has(help, "--max-new") && has(help, "1..4096"),
       "the help lists the command-line spellings and ranges");
    return done_testing();
}
