/* r1_gemm16.h — internal to libr1: the general matrix product on bf16 operands with fp32
 * accumulation that BF16 mixed-precision training and FP8-through-BF16 run on (gemm16.c).
 *
 *     C[M,N] = or += A[M,K] · B[K,N]
 *
 * Each operand is fp32 (rounded to bf16, nearest even, when it is packed) or already bf16, and
 * stored either way round (r1_gop).  With block scales (r1_gscale, FP8), K is cut into blocks
 * of 128 and each block's sum is multiplied by the scales of its A row and B column before it
 * is added:  C += sum over blocks kb of  sa(m,kb) · sb(kb,n) · sum over k in kb of A·B.
 *
 * Numerics.  Every product of two bf16 is exact in fp32; the sum runs, for each output, over
 * K in blocks of 256 (128 with scales) in order, within a block over pairs of k in order,
 * adding the odd k's product and then the even k's (the order of vdpbf16ps), each addition
 * rounded to fp32.  That order depends on K alone, so an output is the same whatever M, N, the
 * pieces the product is cut into, or the thread count; and the kernel paths (r1.h, "kernel
 * paths") give the same bits, except that the AVX-512 BF16 path flushes denormals to zero and
 * the AMX path sums within each tile instruction (16 pairs) in the hardware's order: its bits
 * differ in the last places, within the same bound, and still depend on K alone.
 * The error against the exact sum of the bf16 products is at most (K/2 + 2) · 2^-24 · S with
 * S = sum |A|·|B| (and |C| when accumulating).
 *
 * Never fails: packed operands go to the heap when it has room (B once for all the pieces of
 * a product cut by rows, or all of a piece's columns at once), else to about 120 KB of stack;
 * runs on r1_threads() threads (at most one piece per thread: the sums do not depend on the
 * cut).
 * C must not overlap A or B. */
#ifndef R1_GEMM16_H
#define R1_GEMM16_H

#include <stdint.h>

typedef struct {
    const void *p; /* fp32, or bf16 (uint16_t) when bf16 != 0 */
    int ld;        /* elements between the stored matrix's rows */
    int trans;     /* A(m,k) at p[m*ld + k], or p[k*ld + m] when trans; B(k,n) at p[k*ld + n],
                    * or p[n*ld + k] when trans */
    int bf16;
} r1_gop;

/* Scales per 128 of K: sa(m,kb) = a[(m / ablk) * am + kb * ak], sb(kb,n) = b[kb * bk +
 * (n / bblk) * bn] (ablk, bblk: 1 for per-row or per-column scales, 128 for block scales).
 * aq (bq) set: A (B) is the fp32 operand itself, quantised to E4M3 as it is packed, in tiles
 * of 1 x 128 along K (A's rows; B's columns) with the scale r1_fp8_scale of each tile's
 * largest |value|: the codes and scales r1_fp8_q_tiles gives for rows stored along K, and
 * r1_fp8_q_coltiles for operands stored the other way (k-major), and so the same result as
 * passing those, with a (b) and its strides unused.  (A quantisation pass over the operands
 * had written and read back twice their size: a fifth of an fp8 `tiny` step.) */
typedef struct {
    const float *a;
    long am, ak;
    int ablk;
    const float *b;
    long bk, bn;
    int bblk;
    int aq, bq;
} r1_gscale;

#define R1_GEMM16_KBLOCK 128

/* r1__gemm16 sums K in blocks of this many from k = 0 (R1_GEMM16_KBLOCK with FP8 scales),
 * adding each block's sum into C. */
#define R1_GEMM16_KC 256

/* C (row stride ldc) = A·B, or += when accumulate; sc NULL for plain bf16 products.  M, N or K
 * <= 0: nothing, except that K <= 0 without accumulate zeroes C. */
void r1__gemm16(float *C, int ldc, int M, int N, int K, r1_gop A, r1_gop B, int accumulate,
                const r1_gscale *sc);

/* fp8.c, for the quantisation in packing (aq, bq above), codes as bf16 (exact), a NaN kept
 * quiet as packing leaves it.  r1__fp8_tile16: one tile x[0, n), n <= 128, its codes to dst;
 * returns its scale.  r1__fp8_cols16: kc rows (ld apart) of n columns, a tile per column: the
 * scales to s[0, n), the codes of row k to dst + k * dld. */
float r1__fp8_tile16(uint16_t *dst, const float *x, int n);
void r1__fp8_cols16(uint16_t *dst, long dld, float *s, const float *x, long ld, int kc, int n);

/* C (row stride ldc) = A·B, or += when accumulate, all fp32 (gemm32.c): each output one chain of
 * fused multiply-adds over k = 0, 1, ... K-1 in order, from 0 (or from C's value when
 * accumulating), each step rounded once (fmaf's bits): the same whatever M, N, the cut or the
 * thread count.  Runs on the AVX-512 kernel paths (r1__gemm32_available); returns 0 without
 * touching C elsewhere, and the caller runs sgemm.  Never fails otherwise.  C must not overlap
 * A or B; A and B must be fp32 (bf16 == 0). */
int r1__gemm32_available(void);
int r1__gemm32(float *C, int ldc, int M, int N, int K, r1_gop A, r1_gop B, int accumulate);

/* r1_attention_fwd / r1_attention_bwd (r1_kernels.h) with their four products (scores, P·V
 * and the backward's) on r1__gemm16: bf16 operands, fp32 sums; softmax, its backward and the
 * scale stay fp32.  BF16 mixed-precision training runs attention this way (ops.c), as
 * torch.autocast runs attention's matrix products in bf16. */
void r1__attention_fwd16(float *out, float *P, const float *q, int ldq, const float *k, int ldk,
                         const float *v, int ldv, int T, int H, int dq, int dv, float scale);
void r1__attention_bwd16(float *dq, float *dk, float *dv, float *dP, const float *dout,
                         const float *P, const float *q, int ldq, const float *k, int ldk,
                         const float *v, int ldv, int T, int H, int dq_dim, int dv_dim,
                         float scale);

/* A weight W[N, K] (bf16, rows along K) packed once as the B = W^T of products on it, as
 * r1__gemm16 would pack it for the kernel path in use: r1__gemm16_packed_words(N, K) words at
 * dst.  The layout depends on r1__gemm16_layout() (AMX pads K), so a packed weight is valid
 * while that stays the same.  r1__gemm16_packed is then r1__gemm16(C, ldc, M, N, K, A, W^T as
 * bf16, accumulate, NULL) without packing W: the same bits, since the sums depend on K alone. */
int r1__gemm16_layout(void);
size_t r1__gemm16_packed_words(int N, int K);
void r1__gemm16_pack_wt(uint32_t *dst, const uint16_t *w, int N, int K);
void r1__gemm16_packed(float *C, int ldc, int M, int N, int K, r1_gop A, const uint32_t *bp,
                       int accumulate);

/* Two products of one A with two Bs packed so (r1__gemm16_packed's), C1 = A · B1 and C2 = A ·
 * B2 (never accumulated), each block of A packed once for both: the bits of two
 * r1__gemm16_packed calls (a SwiGLU's gate and up, or two projections of one input). */
void r1__gemm16_packed2(float *C1, int ldc1, int N1, const uint32_t *bp1, float *C2, int ldc2,
                        int N2, const uint32_t *bp2, int M, int K, r1_gop A);

/* Two products on one B, C1 = A1 · B and C2 = A2 · B (+= when accumulate), A1 and A2 of the
 * same shape (M × K): each block of B packed once for both; the bits of two r1__gemm16 calls
 * (the weight gradients of a SwiGLU's gate and up, both from its input). */
void r1__gemm16_pair(float *C1, int ldc1, r1_gop A1, float *C2, int ldc2, r1_gop A2, int M, int N,
                     int K, r1_gop B, int accumulate);

/* Products on parts of one B, packed once (attention's causal blocks): a B of K <=
 * R1_GEMM16_KC rows and N columns is packed into r1__gemm16_sub_words(N, K) words at dst
 * (0: K too large) by r1__gemm16_sub_pack, which returns its pairs a panel (bkps; 0 when K is
 * too large).  r1__gemm16_sub is then r1__gemm16(C, ldc, M, N', K', A, B's rows [k0, k0 + K')
 * and columns [0, N'), accumulate, NULL), k0 even, k0 + K' <= K, N' <= N, with one caveat:
 * B's rows past k0 + K' (up to the next even row, and on the AMX path the next 32) meet zeros
 * of A's padding, so they must be finite.  Its sums run as the whole product's in a block of
 * K: a part whose A is zero before k0 has the bits of the product from k = 0 (single block). */
size_t r1__gemm16_sub_words(int N, int K);
int r1__gemm16_sub_pack(uint32_t *dst, int N, int K, r1_gop B);
void r1__gemm16_sub(float *C, int ldc, int M, int N, int k0, int K, r1_gop A, const uint32_t *bp,
                    int bkps, int accumulate);

/* r1_attention_fwd / bwd (bf16 != 0: the ...16 forms above) over B sequences of T tokens at
 * once, their B·H heads side by side in one loop: sequence b's rows start b·T rows further on
 * in q, k, v, dq, dk, dv (each with its own row stride), out and dout (row stride H·dv), and
 * its probabilities b·H·T·T further on in P; dP holds T·T floats per thread.  Each head's
 * arithmetic is the one-sequence function's, so the bits are too. */
void r1__attention_fwd_seqs(int bf16, float *out, float *P, const float *q, int ldq,
                            const float *k, int ldk, const float *v, int ldv, int B, int T, int H,
                            int dq, int dv, float scale);
void r1__attention_bwd_seqs(int bf16, float *dq, float *dk, float *dv, float *dP,
                            const float *dout, const float *P, const float *q, int ldq,
                            const float *k, int ldk, const float *v, int ldv, int B, int T, int H,
                            int dq_dim, int dv_dim, float scale);

/* A decoding step's rows of a linear layer with fp32 weights (bf16.c): out[N, Co] (row stride
 * ldo) = or += in[N, Ci] · w[Co, Ci]^T, each output a dot product along Ci summed in an order
 * that depends on Ci alone (16 lanes of FMAs on the AVX-512 path, 8 on the AVX2 and portable
 * ones, then a fixed tree), so a row's bits do not depend on N or on the rows beside it.
 * Returns 1 when done (every path has the kernel now; 0, nothing written, had sent the
 * caller to sgemm). */
int r1__matmul_f32_rows(float *out, int ldo, const float *in, const float *w, int N, int Ci,
                        int Co, int accumulate);
/* The same with the input's rows ldi floats apart. */
int r1__matmul_f32_rows_ld(float *out, int ldo, const float *in, int ldi, const float *w, int N,
                           int Ci, int Co, int accumulate);

/* A decoding step's attention output for one token (decode.c): out[r, c] (row stride ldo) =
 * sum over t < n of p[r, t] · v[t, c] for r < rows, c < nc, each output one chain of fp32 FMAs
 * in t order (its bits depend on n alone).  sgemm had cost 2 us a call for these [6, n] x
 * [n, 64] products.  Returns 1 when done (on every path, the portable one with fmaf: the
 * same bits as the vector paths); 0, nothing written, only for empty sizes. */
int r1__pv_rows(float *out, int ldo, const float *p, int ldp, const float *v, int ldv, int rows,
                int n, int nc);
/* The same added to out (out[r, c] += the chain, one rounded add after it), p[r, t] at
 * p[r * prs + t * pts]: P^T's rows are P's columns (prs 1, pts its row stride). */
int r1__pv_rows_add(float *out, int ldo, const float *p, long prs, long pts, const float *v,
                    int ldv, int rows, int n, int nc);

/* r1_matmul_fwd (r1_kernels.h) for a decoding step's rows (a token's, and the router's in
 * every decoding step): its products through r1__matmul_f32_rows (ops.c), which read each
 * weight once per 4 tokens.  r1_matmul_fwd itself runs training's and prompts' products on
 * r1__gemm32 (or sgemm on the paths without it). */
void r1__matmul_fwd_decode(float *out, const float *in, const float *w, int N, int Ci, int Co,
                           int accumulate);

#endif
