/* r1_fp8.h — FP8 as DeepSeek-V3 uses it: the two 8-bit float formats, fine-grained scaling
 * (1×128 activation tiles, 128×128 weight blocks), a GEMM with FP8 weights for generation,
 * and the switch that makes training emulate FP8 GEMMs.
 *
 * The formats (OCP FP8, as torch.float8_e4m3fn / float8_e5m2):
 *
 *     E4M3  s eeee mmm  bias 7   largest 448     smallest normal 2^-6   subnormal step 2^-9
 *                                no infinities; s 1111 111 is NaN
 *     E5M2  s eeeee mm  bias 15  largest 57344   smallest normal 2^-14  subnormal step 2^-16
 *                                s 11111 00 is ±infinity, s 11111 mm (mm != 0) NaN
 *
 * Encoding rounds to nearest, ties to even, keeps the sign of zero, SATURATES every finite
 * value past the largest (and ±infinity) to ±largest, and keeps NaN a NaN with its sign.
 *
 * Scaling.  A group of values g shares one fp32 scale s = amax(|g|) / 448 (s = 1 for an
 * all-zero group): the stored code is e4m3(x / s) and x ≈ decode(code) · s, so the group's
 * largest value lands on 448 and the relative error of every value that is not a subnormal
 * after scaling is at most 2^-4.  s is what DeepSeek-V3's checkpoints store as
 * `<weight>_scale_inv` (the factor that DEquantises).  Groups:
 *   - activation tiles, 1×128: one row (token), 128 consecutive columns (channels);
 *   - the same transposed, 128×1: 128 rows (tokens) of one column — how the report quantises
 *     the operands of the weight-gradient GEMM, whose inner dimension is the tokens;
 *   - weight blocks, 128×128;
 *   - per tensor: one scale for everything (the coarse scheme the report improves upon).
 * Partial tiles and blocks at the edges are groups of their own, as if zero-padded.
 *
 * Thread-safety: everything here is a pure function except r1_fp8_set_simd (process-wide).
 * Nothing allocates or fails unless stated. */
#ifndef R1_FP8_H
#define R1_FP8_H

#include <stddef.h>
#include <stdint.h>

#include "r1_model.h"

#define R1_FP8_BLOCK 128      /* tile length and weight block side */
#define R1_E4M3_MAX 448.0f    /* largest finite E4M3 */
#define R1_E5M2_MAX 57344.0f  /* largest finite E5M2 */

/* ------------------------------------------------------------------ conversions */

uint8_t r1_f32_to_e4m3(float f); /* round to nearest even, saturating, NaN kept */
float r1_e4m3_to_f32(uint8_t c); /* exact; 0x7f / 0xff are NaN */
uint8_t r1_f32_to_e5m2(float f); /* round to nearest even, saturating, NaN kept */
float r1_e5m2_to_f32(uint8_t c); /* exact; 0x7c / 0xfc are ±infinity */

/* ------------------------------------------------------------------ scaling */

/* The scale of a group whose largest magnitude is amax: amax / 448, or 1 when amax is 0 (or
 * so small that amax / 448 underflows to 0). */
float r1_fp8_scale(float amax);

/* Quantise-then-dequantise to E4M3, dst[i] = decode(e4m3(src[i] / s)) · s with one scale per
 * group; dst may equal src.  x[N,K] row-major.
 *   _tiles:    1×128 tiles along each row;
 *   _coltiles: 128×1 tiles down each column;
 *   _blocks:   128×128 blocks;
 *   _tensor:   one scale for all n values. */
void r1_fp8_qdq_tiles(float *dst, const float *src, int N, int K);
void r1_fp8_qdq_coltiles(float *dst, const float *src, int N, int K);
void r1_fp8_qdq_blocks(float *dst, const float *src, int N, int K);
void r1_fp8_qdq_tensor(float *dst, const float *src, size_t n);

/* The same groupings, kept apart as the codes' values (decode(e4m3(src / s)), exact in bf16;
 * dst may equal src) and the scales s (what the FP8 GEMMs through BF16 take):
 *   _tiles:    scales[N, ceil(K/128)];
 *   _coltiles: scales[ceil(N/128), K];
 *   _blocks:   scales[ceil(N/128), ceil(K/128)];
 *   _tensor:   the one scale, returned.
 * codes · scale equals the _qdq result up to the rounding of that product. */
void r1_fp8_q_tiles(float *codes, float *scales, const float *src, int N, int K);
void r1_fp8_q_coltiles(float *codes, float *scales, const float *src, int N, int K);
void r1_fp8_q_blocks(float *codes, float *scales, const float *src, int N, int K);
float r1_fp8_q_tensor(float *codes, const float *src, size_t n);

/* Storage as DeepSeek-V3 ships it: codes[R,C] = e4m3(w / s_b) and scale_inv[ceil(R/128),
 * ceil(C/128)] = s_b, one per 128×128 block b of w[R,C] (R = 1 for a vector). */
void r1_fp8_quantize_blocks(uint8_t *codes, float *scale_inv, const float *w, int R, int C);
/* The inverse: w[R,C] = decode(codes) · scale_inv of the block; e5m2 selects the format. */
void r1_fp8_dequantize_blocks(float *w, const uint8_t *codes, const float *scale_inv, int R,
                              int C, int e5m2);

/* ------------------------------------------------------------------ FP8 weights in a GEMM */

/* out[N,Co] = in[N,Ci] · W^T (or += when accumulate), with W[Co,Ci] given as E4M3 codes w and
 * block scales scale_inv[ceil(Co/128), ceil(Ci/128)] as above.  The activations stay fp32;
 * each weight is decoded exactly and the products are summed in fp32, one partial sum per
 * 128-column block, scaled by the block's scale and added up.  So each output is within
 * about (Ci/16 + 20) · 2^-24 · sum_i |x_i · W_i| of the exact product with the dequantised
 * weights (fp32 summation only).  NaN codes give NaN on the portable path and an arbitrary
 * value on the AVX-512 path (r1_decoder_set_fp8 never makes any).  The AVX-512 path (AVX512F
 * + BW, chosen at run time) and the portable one may differ in the last bits.  Same contract
 * as r1_matmul_fwd otherwise: out must not overlap in or w; never fails or allocates. */
void r1_matmul_fp8(float *out, const float *in, const uint8_t *w, const float *scale_inv, int N,
                   int Ci, int Co, int accumulate);

/* 0 forces the portable path, non-zero asks for AVX-512 (used when this CPU has it, the
 * default).  Returns 1 when AVX-512 is in use afterwards.  Process-wide; for tests and
 * benchmarks. */
int r1_fp8_set_simd(int on);

/* ------------------------------------------------------------------ training emulation */

typedef enum {
    R1_FP8_OFF = 0,    /* fp32 GEMMs (bit-identical to a model that never heard of FP8) */
    R1_FP8_TILES = 1,  /* DeepSeek-V3: 1×128 activation / gradient tiles, 128×128 weight blocks */
    R1_FP8_TENSOR = 2  /* one scale per GEMM operand (for comparison) */
} r1_fp8_mode;

/* From the next r1_model_forward on, the GEMMs of every linear layer run on E4M3 inputs:
 *   forward  out  = Q(x) · Q(W)^T              x in 1×128 tiles, W in 128×128 blocks
 *   backward dx  += Q(dout) · Q(W)             dout in 1×128 tiles (along the outputs)
 *            dW  += Q'(dout)^T · Q'(x)         both in 128×1 tiles (along the tokens)
 * (R1_FP8_TENSOR: one scale per operand instead), with fp32 accumulation.  It runs through
 * BF16 (r1_model_set_fp8_emulation below) or as an emulation: every operand quantised and
 * dequantised in fp32, then multiplied by sgemm, which equals an FP8 GEMM whose products are
 * exact and whose sums are fp32.  The linear
 * layers are the attention projections (q_a, q_b or q_proj, kv_a, kv_b, o_proj), the dense
 * and expert MLPs (gate, up, down; shared and routed experts) and MTP's eh_proj.  As in the
 * report, the embedding, the output heads, the norms, the router (mlp.gate) and the attention
 * scores / softmax stay fp32, and so do the master weights, the gradients and the optimizer.
 * A backward pass uses the mode of the forward it differentiates.  Generation is not
 * affected (see r1_decoder_set_fp8 for FP8 weights there). */
void r1_model_set_fp8(r1_model *m, r1_fp8_mode mode);
r1_fp8_mode r1_model_fp8(const r1_model *m);
/* How the FP8 GEMMs run: through BF16 (on = 0, the default: the codes' values, exact in bf16,
 * multiplied on the BF16 kernels with the scales applied to each 128-block's fp32 sum, see
 * r1_gemm16.h), or (on != 0) by the emulation above, for comparisons in tests and benchmarks.
 * The two differ by the order and rounding of fp32 sums only. */
void r1_model_set_fp8_emulation(r1_model *m, int on);
const char *r1_fp8_mode_name(r1_fp8_mode mode); /* "off", "tiles", "tensor" */

/* 1 when the parameter of this (Hugging Face) name is stored as F8_E4M3 in DeepSeek-V3's
 * release, and so by r1_model_save(..., R1_DT_F8_E4M3): the attention projections and the
 * MLP / expert projections.  The embedding, the head, the norms, the router, MTP's eh_proj and
 * the router biases are not (BF16 and F32 there). */
int r1_fp8_is_stored(const char *name);

#endif
