/* r1_kernels.h — the numerical kernels of the model: plain functions on arrays with explicit
 * sizes, one forward/backward pair per operation, following the maths line by line.
 *
 * Every kernel is written once over the type `real` (engine/ops.c).  libr1 compiles it with
 * real = float; the gradient-check test compiles the same file again with R1_REAL_DOUBLE,
 * which gives the same functions with a `_d` suffix over double, so that every backward
 * kernel is checked against finite differences in double precision.
 *
 * Conventions: row-major; a linear layer's weight is [out, in] (Hugging Face's layout) and
 * y = x W^T.  Backward kernels ACCUMULATE (+=) into gradient buffers; a NULL gradient pointer
 * skips that gradient.  Kernels never fail and never allocate unless stated. */
#ifndef R1_KERNELS_H
#define R1_KERNELS_H

#include <stdint.h>

#ifdef R1_REAL_DOUBLE
typedef double real;
#define R1K(name) name##_d
#else
typedef float real;
#define R1K(name) name
#endif

/* out[N,Co] = in[N,Ci] · w[Co,Ci]^T, or += when accumulate. */
void R1K(r1_matmul_fwd)(real *out, const real *in, const real *w, int N, int Ci, int Co,
                        int accumulate);
/* din[N,Ci] += dout[N,Co] · w[Co,Ci];  dw[Co,Ci] += dout^T · in[N,Ci]. */
void R1K(r1_matmul_bwd)(real *din, real *dw, const real *dout, const real *in, const real *w, int N,
                        int Ci, int Co);

/* out[N,C] = x / sqrt(mean(x^2) + eps) * w[C]; rstd[N] keeps 1/sqrt(mean(x^2) + eps). */
void R1K(r1_rmsnorm_fwd)(real *out, real *rstd, const real *x, const real *w, int N, int C,
                         real eps);
/* dx[N,C] += ..., dw[C] += ..., from dout[N,C], x[N,C], w[C], rstd[N]. */
void R1K(r1_rmsnorm_bwd)(real *dx, real *dw, const real *dout, const real *x, const real *w,
                         const real *rstd, int N, int C);

/* Sums of products in double for up to 4 rows at once (the RMSNorm's, the MoE gates'
 * gradients): out[r] = sum over i < C of a[r][i] · b[r][i] (· c[r][i] when c is not NULL),
 * r < rows <= 4.  Element i adds into lane i % 8, in order, and the 8 lanes then sum in pairs,
 * ((0+1)+(2+3))+((4+5)+(6+7)): the same bits on every kernel path and thread count, 8 chains of
 * dependent additions side by side instead of one. */
void R1K(r1_dots)(double *out, int rows, const real *const *a, const real *const *b,
                  const real *const *c, int C);

/* Rotary embedding on interleaved pairs (2i, 2i+1), in place.  x: N tokens × nh heads, the
 * rope slice of token n, head h starting at x + n*ld + h*hs, dr values long.  pos[N] are the
 * positions; cs/sn[P, dr/2] the cos/sin tables (angle = pos · theta^(-2i/dr)).  inverse = 1
 * rotates by the negative angle, which is the backward pass (the rotation is orthogonal). */
void R1K(r1_rope)(real *x, int N, int nh, int ld, int hs, int dr, const int *pos, const real *cs,
                  const real *sn, int inverse);
/* Fills cs/sn[P, dr/2] for positions 0..P-1 (angles computed in double). */
void R1K(r1_rope_table)(real *cs, real *sn, int P, int dr, double theta);

/* a[N,I] = silu(g) * u. */
void R1K(r1_swiglu_fwd)(real *a, const real *g, const real *u, int n);
/* dg += da * u * silu'(g);  du += da * silu(g). */
void R1K(r1_swiglu_bwd)(real *dg, real *du, const real *da, const real *g, const real *u, int n);

/* Causal attention for one sequence of T tokens and H heads.
 * q[T, ldq] (head h's query at q + h*dq), k[T, ldk] (head h at k + h*dq), v[T, ldv] (head h at
 * v + h*dv), out[T, H*dv], P[H, T, T] the saved probabilities, scale the softmax scale. */
void R1K(r1_attention_fwd)(real *out, real *P, const real *q, int ldq, const real *k, int ldk,
                           const real *v, int ldv, int T, int H, int dq, int dv, real scale);
/* dq, dk, dv (same layouts as q, k, v) += ...; dP_scratch is workspace: [T, T] per thread
 * that may run (libr1 splits the heads over its pool: R1_MAX_WORKERS x T x T floats). */
void R1K(r1_attention_bwd)(real *dq, real *dk, real *dv, real *dP_scratch, const real *dout,
                           const real *P, const real *q, int ldq, const real *k, int ldk,
                           const real *v, int ldv, int T, int H, int dq_dim, int dv_dim,
                           real scale);
/* Attention runs by causal blocks of query rows (the keys after a block's last row are not
 * multiplied; ops.c chooses the block by T and path), with per-head copies of its operands
 * allocated as it goes (without the memory, that head runs the plain products: the same
 * sums, in fp32 in another order); rows > 0 sets the block, for tests
 * (rows >= T: whole-T products), 0 restores ops.c's choice.  The sums are the same up to
 * their order (and on the bf16 GEMM, the bits). */
void R1K(r1_attention_block)(int rows);

/* Cross-entropy of rows of logits[N,V] against targets[N] (a target < 0 skips the row), each
 * row weighted by w[N] (NULL: 1).  Returns sum_i w_i * CE_i; when dlogits is not NULL also
 * writes (not accumulates) dlogits[N,V] = scale * w_i * (softmax - onehot). */
double R1K(r1_xent_fwd_bwd)(real *dlogits, const real *logits, const int32_t *targets,
                            const real *w, int N, int V, real scale);

/* The MoE gating weights of the chosen experts.  s[N,E] sigmoid scores, sel[N,K] the chosen
 * experts; wts[N,K] = scale * s[sel] / sum_k s[sel] (norm) or scale * s[sel] (no norm). */
void R1K(r1_moe_weights_fwd)(real *wts, const real *s, const int32_t *sel, int N, int E, int K,
                             int norm, real scale);
/* ds[N,E] += d wts / d s · dwts. */
void R1K(r1_moe_weights_bwd)(real *ds, const real *dwts, const real *s, const int32_t *sel, int N,
                             int E, int K, int norm, real scale);

/* The sequence-wise balance loss of DeepSeek-V3 for one sequence of T tokens:
 * sum_i f_i * P_i with f_i = E/(K T) · #{t : i chosen at t}, P_i = mean_t s_{t,i} / sum_j s_{t,j}.
 * (The caller multiplies by alpha.)  The backward adds coef · dL/ds into ds[T,E]; f is treated
 * as a constant (it counts discrete choices). */
double R1K(r1_balance_fwd)(const real *s, const int32_t *sel, int T, int E, int K);
void R1K(r1_balance_bwd)(real *ds, const real *s, const int32_t *sel, int T, int E, int K,
                         real coef);

#endif
