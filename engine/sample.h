/* sample.h — sampling helpers shared by generate.c (internal, not installed). */
#ifndef R1_SAMPLE_H
#define R1_SAMPLE_H

#include <stdint.h>

#include "r1_generate.h"
#include "r1_rng.h"

/* p[V] = the sampling distribution of logits[V] under cfg; seen[V] (may be NULL) marks the
 * tokens the repetition penalty applies to; idx[V] is scratch.  Greedy gives a one-hot. */
void r1__sampling_dist(const r1_gen_cfg *cfg, const float *logits, const uint8_t *seen,
                       float *p, int *idx, int V);
int r1__draw(const float *p, int V, r1_rng *rng);          /* a token drawn from p */
int r1__argmax(const float *x, int V);                      /* ties: the lowest id */
/* r1_log_softmax_at and r1_top_tokens: r1_generate.h */

#endif
