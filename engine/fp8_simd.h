/* fp8_simd.h — internal to libr1: E4M3 rounding of 16 fp32 lanes with AVX-512, shared by
 * fp8.c's quantisers and gemm16.c's quantisation in packing.  Include it only where the
 * compiler has the AVX-512 intrinsics (HAVE_AVX512BF16_INTRIN on x86). */
#ifndef R1_FP8_SIMD_H
#define R1_FP8_SIMD_H

#include <immintrin.h>

#include "r1_fp8.h"

#define FP8_WIDE __attribute__((target("avx512f,avx512bw,avx512vl")))

/* qdq_e4m3 (fp8.c) on 16 lanes: the same operations lane by lane, so the same bits, written
 * with AVX-512's own: the clamp to 448 as an unsigned minimum, the choices as masked moves, and
 * the subnormal rounding only for a group that has a nonzero value below 2^-6 (rare once
 * scaled; zero rounds to itself on either side).  The vector-extension form of qdq4 had
 * compiled to blends of whole vectors and ran the subnormal rounding always; quantisation was
 * 19% of an fp8 `tiny` step. */
static FP8_WIDE inline __m512 fp8_qdq16(__m512 y)
{
    __m512i u = _mm512_castps_si512(y), a = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(a, 20), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(a, _mm512_set1_epi32(0x7ffff)), odd);
    r = _mm512_and_si512(r, _mm512_set1_epi32(~0xfffff));
    r = _mm512_min_epu32(r, _mm512_set1_epi32(0x43e00000));
    __mmask16 sub = _mm512_cmplt_epu32_mask(a, _mm512_set1_epi32(0x3c800000)) &
                    _mm512_test_epi32_mask(a, a);
    if (sub) {
        __m512 t = _mm512_mul_ps(_mm512_castsi512_ps(a), _mm512_set1_ps(512.0f));
        t = _mm512_sub_ps(_mm512_add_ps(t, _mm512_set1_ps(8388608.0f)),
                          _mm512_set1_ps(8388608.0f));
        t = _mm512_mul_ps(t, _mm512_set1_ps(1.0f / 512.0f));
        r = _mm512_mask_mov_epi32(r, sub, _mm512_castps_si512(t));
    }
    r = _mm512_mask_mov_epi32(r, _mm512_cmpgt_epu32_mask(a, _mm512_set1_epi32(0x7f800000)), a);
    return _mm512_castsi512_ps(_mm512_or_si512(r, _mm512_andnot_si512(a, u))); /* the sign */
}

/* The codes qdq(x / s) (s per lane) as bf16, exact, in the low half of each lane: a code has
 * at most 4 significant bits; a NaN keeps its quiet bit, as gemm16's rounding to bf16 does. */
static FP8_WIDE inline __m512i fp8_code_bits(__m512 x, __m512 s)
{
    __m512i u = _mm512_castps_si512(fp8_qdq16(_mm512_div_ps(x, s)));
    __m512i h = _mm512_srli_epi32(u, 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(h, nan, h, _mm512_set1_epi32(0x40));
}

/* |x| of 16 lanes into the running maxima m: a NaN never wins (vmaxps returns its second
 * operand then). */
static FP8_WIDE inline __m512 fp8_amax_lanes(__m512 m, __m512 x)
{
    __m512i u = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff));
    return _mm512_max_ps(_mm512_castsi512_ps(u), m);
}

/* r1_fp8_scale on 16 lanes: amax / 448 (R1_E4M3_MAX), or 1 where that is not above zero. */
static FP8_WIDE inline __m512 fp8_scale_lanes(__m512 amax)
{
    __m512 q = _mm512_div_ps(amax, _mm512_set1_ps(R1_E4M3_MAX));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(q, _mm512_setzero_ps(), _CMP_GT_OQ),
                                _mm512_set1_ps(1.0f), q);
}

#endif
