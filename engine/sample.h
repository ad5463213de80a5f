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
float r1__log_softmax_at(const float *logits, int V, int t); /* log softmax(logits)[t] */
/* The n most likely tokens of softmax(logits) (temperature 1, unfiltered), most likely first
 * (ties: the lower id first), their probabilities p[n], and the distribution's entropy in nats
 * (entropy may be NULL).  Slots beyond V hold id -1 and p 0. */
void r1__top_n(const float *logits, int V, int n, int32_t *ids, float *p, float *entropy);

#endif
