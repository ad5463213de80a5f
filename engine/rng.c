/* rng.c — xoshiro256** (Blackman and Vigna) seeded with splitmix64; see r1_rng.h. */
#include <config.h>

#include <math.h>

#include "r1_rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void r1_rng_seed(r1_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t r1_rng_u64(r1_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double r1_rng_uniform(r1_rng *r) { return (double)(r1_rng_u64(r) >> 11) * 0x1.0p-53; }

double r1_rng_normal(r1_rng *r)
{
    double u1 = r1_rng_uniform(r), u2 = r1_rng_uniform(r);
    return sqrt(-2.0 * log1p(-u1)) * cos(6.283185307179586 * u2);
}

uint32_t r1_rng_below(r1_rng *r, uint32_t n)
{
    /* Lemire's multiply-shift with rejection of the biased low range */
    uint64_t m = (uint64_t)(uint32_t)(r1_rng_u64(r) >> 32) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t thresh = (uint32_t)-n % n;
        while (lo < thresh) {
            m = (uint64_t)(uint32_t)(r1_rng_u64(r) >> 32) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
