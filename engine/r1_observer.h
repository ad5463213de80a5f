/* r1_observer.h — how the engine's run loops report while they work: one interface for every
 * stage.
 *
 * Pre-training, SFT, GRPO, rejection sampling, distillation and generation take a
 * `const r1_observer *` (NULL: nobody watches).  A run calls the slots that concern it and
 * skips the NULL ones:
 *
 *   step   after every training step (rejection sampling: every generation batch), with the
 *          stage's own statistics in the one pointer of r1_step_report that is set;
 *   group  after every GRPO group is scored (its completions, rewards and advantages);
 *   token  after every generated token, with its routing (the experts chosen per MoE layer);
 *   eval   after an evaluation inside a run (SFT's eval_every).
 *
 * Every pointer handed to a slot is borrowed for the call.  A non-zero return stops the work:
 * from step, after the step (and its checkpoint, when one is due); from group, eval or token,
 * at once (R1_ECANCELED, the results so far kept).  The slots are called on the thread that
 * runs the loop.  Whoever shows the reports (the Lua binding, the command line, the
 * workbench) fills in the slots; the engine itself never prints. */
#ifndef R1_OBSERVER_H
#define R1_OBSERVER_H

#include <stdint.h>

struct r1_sft_progress;
struct r1_grpo_stats;
struct r1_grpo_group;
struct r1_distill_progress;
struct r1_reject_stats;
struct r1_token_event;
struct r1_task_sample;
struct r1_sft_eval;

typedef struct r1_step_report {
    const char *stage;    /* "pretrain", "sft", "grpo", "reject", "distill" */
    int64_t step, steps;  /* done (this one included) of the run; reject: prompts */
    double elapsed;       /* seconds of the run so far */
    /* exactly one of these is set, by stage */
    const struct r1_sft_progress *sft;         /* pretrain, sft */
    const struct r1_grpo_stats *grpo;          /* grpo */
    const struct r1_distill_progress *distill; /* distill */
    const struct r1_reject_stats *reject;      /* reject */
} r1_step_report;

typedef struct r1_observer {
    int (*step)(void *user, const r1_step_report *r);
    int (*group)(void *user, const struct r1_grpo_group *g, const struct r1_task_sample *t);
    int (*token)(void *user, const struct r1_token_event *ev);
    int (*eval)(void *user, const struct r1_sft_eval *e);
    void *user;
} r1_observer;

#endif
