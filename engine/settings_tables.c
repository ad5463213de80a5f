/* settings_tables.c — the list of every stage's settings table (r1_settings_table_of, see
 * r1_settings.h).  It sits above the stages (which use settings.c's machinery) so that the
 * machinery does not depend on the stages.  Nothing allocates; no errors. */
#include <config.h>

#include <string.h>

#include "r1_settings.h"

extern const r1_settings_table r1_sft_pretrain_table, r1_sft_coldstart_table,
    r1_grpo_settings_tbl, r1_reject_settings_tbl, r1_distill_settings_tbl, r1_eval_settings_tbl;

const r1_settings_table *r1_settings_table_of(const char *stage)
{
    static const r1_settings_table *const all[] = {&r1_sft_pretrain_table,
                                                   &r1_sft_coldstart_table,
                                                   &r1_grpo_settings_tbl,
                                                   &r1_reject_settings_tbl,
                                                   &r1_distill_settings_tbl,
                                                   &r1_eval_settings_tbl};
    for (size_t i = 0; stage && i < sizeof all / sizeof *all; i++)
        if (!strcmp(all[i]->stage, stage))
            return all[i];
    return NULL;
}
