#include "core/td_rand.h"

#include <stdio.h>
#include <sys/random.h>
#include <time.h>

static uint64_t rand_s[4];
static int rand_seeded;

static uint64_t rand_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void td_rand_seed(uint64_t seed)
{
    if (seed == 0) {
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
        }
    }
    for (int i = 0; i < 4; i++)
        rand_s[i] = rand_splitmix(&seed);
    rand_seeded = 1;
}

static uint64_t rand_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t td_rand_u64(void)
{
    if (!rand_seeded)
        td_rand_seed(0);
    uint64_t result = rand_rotl(rand_s[1] * 5, 7) * 9;
    uint64_t t = rand_s[1] << 17;
    rand_s[2] ^= rand_s[0];
    rand_s[3] ^= rand_s[1];
    rand_s[1] ^= rand_s[2];
    rand_s[0] ^= rand_s[3];
    rand_s[2] ^= t;
    rand_s[3] = rand_rotl(rand_s[3], 45);
    return result;
}

void td_rand_uuid(char out[37])
{
    uint64_t a = td_rand_u64(), b = td_rand_u64();
    a = (a & ~0xf000ULL) | 0x4000ULL;       /* version 4 */
    b = (b & ~(3ULL << 62)) | (2ULL << 62); /* RFC 4122 variant */
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)((a >> 16) & 0xffff), (unsigned)(a & 0xffff), (unsigned)(b >> 48),
             (unsigned long long)(b & 0xffffffffffffULL));
}

void td_rand_alnum(char *out, size_t n)
{
    static const char set[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (size_t i = 0; i < n; i++)
        out[i] = set[td_rand_u64() % (sizeof(set) - 1)];
    out[n] = '\0';
}
