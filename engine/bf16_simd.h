/* bf16_simd.h — internal to libr1: fp32 to bf16 on 16 lanes with AVX-512F integer operations,
 * shared by bf16.c's conversions and gemm16.c's packing (each had its own copy).  Include it
 * only where the compiler has the AVX-512 intrinsics (HAVE_AVX512BF16_INTRIN on x86). */
#ifndef R1_BF16_SIMD_H
#define R1_BF16_SIMD_H

#include <immintrin.h>

/* The bf16 of each lane's fp32 bits u in the lane's high half (the low half is left over):
 * round to nearest, ties to even, as r1_f32_to_bf16 does; a NaN keeps its payload's top bits
 * with the quiet bit set. */
static __attribute__((target("avx512f"))) inline __m512i bf16_round_hi(__m512i u)
{
    const __m512i magn = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                 _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, magn), inf);
    return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
}

/* ... as 16 bf16 */
static __attribute__((target("avx512f"))) inline __m256i bf16_round16(__m512 x)
{
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(bf16_round_hi(_mm512_castps_si512(x)), 16));
}

#endif
