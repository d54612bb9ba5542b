/*
 * lg_hist.c - log-bucket latency histogram.
 *
 * Bucket i < 256 holds exactly the value i. Above that, each power of two [2^k, 2^(k+1))
 * is split into 128 equal buckets, so a bucket is at most 1/128 of its value wide (two
 * significant digits and then some). 3328 buckets cover 0 .. 2^32 us (about 71 minutes).
 */
#include "loadgen.h"

static size_t hist_index(uint64_t v)
{
    if (v < 256)
        return (size_t)v;
    if (v > UINT32_MAX)
        v = UINT32_MAX;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 8 */
    unsigned shift = msb - 7u;
    return 256u + (size_t)(shift - 1u) * 128u + (size_t)((v >> shift) - 128u);
}

/* hist_value returns the middle of bucket i. */
static uint64_t hist_value(size_t i)
{
    if (i < 256)
        return i;
    unsigned shift = (unsigned)((i - 256u) / 128u) + 1u;
    uint64_t top = (uint64_t)((i - 256u) % 128u) + 128u;
    return (top << shift) + ((1ull << shift) >> 1);
}

void lg_hist_add(struct lg_hist *h, uint64_t us)
{
    h->b[hist_index(us)]++;
    h->count++;
    if (us > h->max)
        h->max = us;
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    double r = q * (double)h->count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
