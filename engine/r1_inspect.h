/* r1_inspect.h — the reasoning microscope's engine side: what a model computes inside, for one
 * token sequence, on demand.
 *
 *  - the logit lens: what the residual stream after each layer would predict through the final
 *    norm and the head, and what the MTP module predicts for the same next token;
 *  - attention weights: per head, the softmax the forward uses (MLA after the latent
 *    up-projection: keys [k_nope | k_pe], scale (dn + dr)^-1/2, causal);
 *  - activation patching: how much of a clean answer's log-probability returns to a corrupted
 *    prompt when one site of the residual stream at one position is copied from the clean run;
 *  - the routing difference of two models over the same tokens.
 *
 * Every call runs r1_model_forward (fp32, or the model's training precision) and so replaces
 * the model's kept activations: never while the same model trains or generates.  Outputs are
 * caller-owned arrays of the documented sizes.  Errors: R1_EINVAL naming the argument (a
 * position or layer out of range, a token outside the vocabulary, prompts that differ in
 * length), R1_ENOMEM, R1_ECANCELED after r1_interrupt() (patching only). */
#ifndef R1_INSPECT_H
#define R1_INSPECT_H

#include "r1_model.h"

/* r1_model_forward for looking inside (opts may be NULL: the defaults): the experts chosen do
 * not count towards the expert load that auxiliary-loss-free balancing reads. */
r1_status r1_inspect_forward(r1_model *m, const int32_t *tokens, int B, int T,
                             const r1_fwd_opts *opts, r1_error *err);

/* Sites of the residual stream: 0 is the embeddings entering layer 0, l + 1 the output of
 * decoder layer l; num_hidden_layers + 1 sites in all (the last is the final residual, before
 * the final norm). */
int r1_inspect_sites(const r1_model *m);

/* The logit lens at position pos of tokens[T] (0 <= pos < T): probs[sites, V] the softmax of
 * head(final_norm(residual at each site, position pos)); the last row is the model's own
 * next-token distribution.  mtp[V] (may be NULL): the MTP module's distribution for the same
 * next token (it reads the main model's hidden state at pos - 1 and the token at pos);
 * *has_mtp (may be NULL) is 0 when it has none (no module, or pos 0) and mtp is untouched. */
r1_status r1_inspect_lens(r1_model *m, const int32_t *tokens, int T, int pos, float *probs,
                          float *mtp, int *has_mtp, r1_error *err);

/* Attention probabilities of decoder layer `layer` over tokens[T]: out[H, T', T'] with T' = T
 * for a main layer (0 <= layer < L) and T - 1 for the MTP module's layer (layer == L, when the
 * model has one; it runs on positions 0..T-2).  Row t holds query t's weights over keys
 * 0..t; the rest of the row is 0. */
r1_status r1_inspect_attention(r1_model *m, const int32_t *tokens, int T, int layer, float *out,
                               r1_error *err);

/* Activation patching.  clean[T] and corrupt[T] share their tokens from Tp on (the answer,
 * 1 <= Tp < T); lp(x) = sum over t = Tp..T-1 of log p(x[t] | x[0..t-1]).  Computes lp of the
 * clean and of the corrupt sequence and lp[sites, Tp]: entry [i, p] is lp of the corrupt
 * sequence when its residual at site i, position p is replaced by the clean run's before the
 * following layers run (a layer x position map; the share that returns is
 * (lp - lp_corrupt) / (lp_clean - lp_corrupt)).  progress (may be NULL) is called after each
 * site with (done, sites); a non-zero return cancels (R1_ECANCELED). */
r1_status r1_inspect_patch(r1_model *m, const int32_t *clean, const int32_t *corrupt, int T,
                           int Tp, float *lp, double *lp_clean, double *lp_corrupt,
                           int (*progress)(void *user, int done, int total), void *user,
                           r1_error *err);

/* Activation patching of one MoE layer's experts: the same clean / corrupt pair as
 * r1_inspect_patch, and lp[E, Tp]: entry [e, p] is lp of the corrupt sequence when routed
 * expert e's contribution to layer `layer`'s output at prompt position p (its gate weight times
 * its output; nothing where the router did not pick it) is replaced by the clean run's.
 * R1_EINVAL when `layer` is not a MoE layer of the main model. */
r1_status r1_inspect_patch_experts(r1_model *m, const int32_t *clean, const int32_t *corrupt,
                                   int T, int Tp, int layer, float *lp, double *lp_clean,
                                   double *lp_corrupt,
                                   int (*progress)(void *user, int done, int total),
                                   void *user, r1_error *err);

/* MTP acceptance: how often the MTP module's greedy drafts would be accepted by greedy
 * speculative decoding over tokens[T], the main model's own greedy text from position `from`
 * on (the prompt before it).  At each anchor row i >= from - 1 the depths draft a chain:
 * depth k's argmax at row i guesses token i + k + 1 (reading the text's tokens up to i + k),
 * and is accepted when it equals the main model's argmax at row i + k, provided depths
 * 1..k-1 were; a draft is tried only for tokens the text has (i + k + 1 < T).  Adds to
 * tries[k-1] the drafts depth k made and to hits[k-1] the accepted ones (k = 1..D; hits over
 * tries is the acceptance rate of draft position k).  On greedy text this is exactly what
 * r1_generate's speculative decoding accepts (depth 1).  Nothing is counted for a model
 * without MTP.  R1_EINVAL when from is outside 1..T. */
r1_status r1_inspect_mtp_accept(r1_model *m, const int32_t *tokens, int T, int from, long *tries,
                                long *hits, r1_error *err);

/* Runs a and b over the same tokens[T] and writes, for each main layer index l <
 * nshare, the share of positions from..T-1 whose chosen expert set differs between the two:
 * share[l], NaN where l is dense in either model or beyond either model's depth.  R1_EINVAL
 * when the two vocabularies differ in size or from is outside 0..T-1. */
r1_status r1_inspect_routing_diff(r1_model *a, r1_model *b, const int32_t *tokens, int T,
                                  int from, double *share, int nshare, r1_error *err);

#endif
