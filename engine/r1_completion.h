/* r1_completion.h — the chat format's completion, split: the reasoning and the answer of
 * "<think>REASONING</think><answer>ANSWER</answer><|eos|>" (DESIGN.md), and whether the
 * completion has exactly that shape (the format reward).  Nothing allocated; the parts point
 * into the completion, so they live as long as it does. */
#ifndef R1_COMPLETION_H
#define R1_COMPLETION_H

#include <stddef.h>

typedef struct {
    int well_formed;   /* 1: [<think>] THINK </think> [ws] <answer> ANSWER </answer> [ws]
                        * [<|eos|>], where THINK and ANSWER hold no special-token text */
    const char *think; /* the reasoning (borrowed from the completion); never NULL */
    size_t think_len;
    const char *answer; /* the first answer block's content, NULL when there is none */
    size_t answer_len;
} r1_completion_parts;

/* Splits a completion into its reasoning and answer.  For a malformed completion the parts are
 * best effort (the reasoning runs to the first </think> or <answer>, the answer is the first
 * <answer> block if closed) and well_formed is 0.  Returns well_formed. */
int r1_reward_split(const char *completion, r1_completion_parts *p);

#endif
