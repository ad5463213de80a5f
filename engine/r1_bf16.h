/* r1_bf16.h — linear layers with bf16 weights, for generation, and bulk fp32 <-> bf16
 * conversion.
 *
 * bf16 is the upper half of an fp32: same sign and 8-bit exponent, 7 stored mantissa bits
 * (8 significant bits).  Storing the weights of a model as bf16 halves the bytes a decoding
 * step streams through the caches, and on CPUs with AVX512_BF16 a dot product of bf16 pairs
 * (`vdpbf16ps`) does twice the multiply-adds of an fp32 FMA per instruction.
 *
 *     uint16_t *wb = malloc(sizeof *wb * Co * Ci);
 *     r1_bf16_from_f32(wb, w, (size_t)Co * Ci);          // once, when the model is loaded
 *     r1_matmul_bf16(out, x, wb, N, Ci, Co, 0);          // every decoding step
 *
 * Numerics.  r1_matmul_bf16 rounds the activations to bf16 too (round to nearest even) and
 * sums the exact products bf16(x)·w in fp32.  With S = sum_i |x_i|·|w_i| (plus |out| before
 * the call when accumulating), each output is within
 *
 *     (Ci/16 + 40) · 2^-24 · S        of the exact  sum_i bf16(x_i) · w_i,  and
 *     (2^-8 + (Ci/16 + 40) · 2^-24) · S   of the exact  sum_i x_i · w_i  (fp32 activations)
 *
 * for Ci up to 65536.  The first is fp32 summation error alone: every product of two bf16 is
 * exact in fp32 and no sum is deeper than Ci/16 + 8 additions.  The 2^-8 is the rounding of
 * the activations, the same size as the rounding already in the bf16 weights.  Keeping the
 * activations in fp32 would make the products exact but costs half the speed for N >= 2 on Zen 4
 * (see bf16.c for the measurements).  The AVX-512 path treats inputs and partial sums below 2^-126
 * in magnitude as zero (vdpbf16ps flushes denormals); the portable path does not.  Both paths sum
 * each output in an order that depends only on Ci, never on N or on the row's place in the batch,
 * so a token gets bit-for-bit the same outputs whether it is decoded alone or in a group of 16. The
 * two paths may differ in the last bits from each other.
 *
 * The AVX-512 BF16 path is chosen at run time when the CPU has AVX512F, BW, VL and BF16;
 * otherwise a portable C path gives results within the same bounds.  Nothing here allocates,
 * fails or keeps state beyond that one-time choice; all functions are thread-safe.  Pointers
 * need no particular alignment. */
#ifndef R1_BF16_H
#define R1_BF16_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[N,Co] = in[N,Ci] · w[Co,Ci]^T, or += when accumulate is non-zero; w is bf16, the
 * accumulation fp32 (error bounds above).  The contract of r1_matmul_fwd (r1_kernels.h) with
 * bf16 weights: the caller owns all three arrays, out must not overlap in or w.  Ci = 0 gives
 * zeros (or leaves out unchanged when accumulating); N <= 0 or Co <= 0 does nothing.  Never
 * fails, never allocates (it uses at most 8 KB of stack). */
void r1_matmul_bf16(float *out, const float *in, const uint16_t *w, int N, int Ci, int Co,
                    int accumulate);

/* One value: bf16 widened to fp32 (exact), and fp32 rounded to bf16 (round to nearest even,
 * overflow to ±infinity, NaN stays a quiet NaN with its sign and top payload bits).  Every
 * bf16 conversion of the engine is one of these or the bulk pair below. */
float r1_bf16_to_f32(uint16_t h);
uint16_t r1_f32_to_bf16(float f);

/* dst[i] = bf16(src[i]) for i < n: round to nearest even, overflow to ±infinity, NaN stays a
 * (quiet) NaN with its sign and top payload bits; denormals are kept.  Bit-identical to
 * r1_f32_to_bf16 on every input.  dst and src must not overlap. */
void r1_bf16_from_f32(uint16_t *dst, const float *src, size_t n);

/* dst[i] = src[i] widened to fp32 (exact) for i < n.  dst and src must not overlap. */
void r1_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n);

/* Chooses the code path, through r1_isa_set: on = 0 forces the portable C path, on != 0 the best
 * path (AVX-512 BF16 if this CPU and compiler support it, the default).  Returns 1
 * when the AVX-512 path is in use afterwards, 0 otherwise.  Process-wide; meant for tests and
 * benchmarks, and safe to call at any time (a call running concurrently uses either path). */
int r1_bf16_set_simd(int on);

/* The path r1_matmul_bf16 takes now: "avx512-bf16" or "portable". */
const char *r1_bf16_path(void);

#ifdef __cplusplus
}
#endif
#endif /* R1_BF16_H */
