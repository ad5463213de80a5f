/* fp8_avx2.h — internal to libr1: E4M3 rounding of 8 fp32 lanes with AVX2, for fp8.c's
 * quantisers on CPUs without AVX-512 (the kernel path avx2, isa.c).  Include it only on x86. */
#ifndef R1_FP8_AVX2_H
#define R1_FP8_AVX2_H

#include <immintrin.h>

#include "r1_fp8.h"

#define FP8_AVX2 __attribute__((target("avx2,fma")))

/* qdq_e4m3 (fp8.c) on 8 lanes, the same operations lane by lane and so the same bits (as
 * fp8_qdq16 in fp8_simd.h): the clamp to 448 as an unsigned minimum, the subnormal rounding only
 * for a group that has a nonzero value below 2^-6.  (Its multiply by 512 is exact, so an FMA
 * the compiler may fuse it into rounds the same.) */
static FP8_AVX2 inline __m256 fp8_qdq8(__m256 y)
{
    __m256i u = _mm256_castps_si256(y), a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(0x7ffff)), odd);
    r = _mm256_and_si256(r, _mm256_set1_epi32(~0xfffff));
    r = _mm256_min_epu32(r, _mm256_set1_epi32(0x43e00000));
    __m256i sub = _mm256_andnot_si256(_mm256_cmpeq_epi32(a, _mm256_setzero_si256()),
                                      _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), a));
    if (!_mm256_testz_si256(sub, sub)) {
        __m256 t = _mm256_mul_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(512.0f));
        t = _mm256_sub_ps(_mm256_add_ps(t, _mm256_set1_ps(8388608.0f)),
                          _mm256_set1_ps(8388608.0f));
        t = _mm256_mul_ps(t, _mm256_set1_ps(1.0f / 512.0f));
        r = _mm256_blendv_epi8(r, _mm256_castps_si256(t), sub);
    }
    r = _mm256_blendv_epi8(r, a, _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000)));
    return _mm256_castsi256_ps(_mm256_or_si256(r, _mm256_andnot_si256(a, u))); /* the sign */
}

/* The codes qdq(x / s) as bf16 in the low half of each lane, a NaN quiet (fp8_code_bits). */
static FP8_AVX2 inline __m256i fp8_code_bits8(__m256 x, __m256 s)
{
    __m256i u = _mm256_castps_si256(fp8_qdq8(_mm256_div_ps(x, s)));
    __m256i h = _mm256_srli_epi32(u, 16);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                     _mm256_set1_epi32(0x7f800000));
    return _mm256_or_si256(h, _mm256_and_si256(nan, _mm256_set1_epi32(0x40)));
}

/* |x| into the running maxima m; a NaN never wins (vmaxps returns its second operand). */
static FP8_AVX2 inline __m256 fp8_amax8(__m256 m, __m256 x)
{
    __m256i u = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7fffffff));
    return _mm256_max_ps(_mm256_castsi256_ps(u), m);
}

/* r1_fp8_scale on 8 lanes: amax / 448, or 1 where that is not above zero. */
static FP8_AVX2 inline __m256 fp8_scale8(__m256 amax)
{
    __m256 q = _mm256_div_ps(amax, _mm256_set1_ps(R1_E4M3_MAX));
    return _mm256_blendv_ps(_mm256_set1_ps(1.0f), q,
                            _mm256_cmp_ps(q, _mm256_setzero_ps(), _CMP_GT_OQ));
}

#endif
