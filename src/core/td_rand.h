/*
 * td_rand.h - fast non-cryptographic randomness for ids and epochs (xoshiro256**),
 * seeded once from getrandom(). Not for secrets.
 */
#ifndef TD_RAND_H
#define TD_RAND_H

#include <stddef.h>
#include <stdint.h>

/* td_rand_seed seeds from the OS, or from `seed` when it is non-zero (tests). */
void td_rand_seed(uint64_t seed);
uint64_t td_rand_u64(void);
/* td_rand_uuid writes a random RFC 4122 version-4 UUID: 36 chars + NUL. */
void td_rand_uuid(char out[37]);
/* td_rand_alnum writes n random [0-9a-zA-Z] characters + NUL. */
void td_rand_alnum(char *out, size_t n);

#endif
