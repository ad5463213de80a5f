/* r1_rng.h — the engine's seeded random numbers (xoshiro256** seeded through splitmix64).
 * The same seed gives the same stream on every machine.  A plain struct: copy it to fork a
 * stream; no allocation, no failure. */
#ifndef R1_RNG_H
#define R1_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} r1_rng;

void r1_rng_seed(r1_rng *r, uint64_t seed);
uint64_t r1_rng_u64(r1_rng *r);
double r1_rng_uniform(r1_rng *r);             /* [0, 1) with 53 random bits */
double r1_rng_normal(r1_rng *r);              /* standard normal (Box-Muller) */
uint32_t r1_rng_below(r1_rng *r, uint32_t n); /* uniform in [0, n), unbiased; n > 0 */

#endif
