/* sample.c — turning logits into the sampling distribution (repetition penalty, temperature,
 * top-k, top-p, min-p), drawing from it, and log-probabilities.  Internal to generate.c
 * (declared in sample.h).  No allocation beyond the caller's buffers; never fails. */
#include <config.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

static int by_prob_desc(const void *a, const void *b, void *key)
{
    const float *p = key;
    int i = *(const int *)a, j = *(const int *)b;
    if (p[i] != p[j])
        return p[i] < p[j] ? 1 : -1;
    return i - j; /* ties: the lower id first, so the order is total and reproducible */
}

int r1__argmax(const float *x, int V)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

void r1__sampling_dist(const r1_gen_cfg *cfg, const float *logits, const uint8_t *seen,
                       float *p, int *idx, int V)
{
    float pen = cfg->repetition_penalty;
    for (int i = 0; i < V; i++) {
        float z = logits[i];
        /* the CTRL-style penalty: shrink positive logits, grow negative ones */
        if (seen && pen > 0 && pen != 1 && seen[i])
            z = z > 0 ? z / pen : z * pen;
        p[i] = z;
    }
    if (cfg->temperature <= 0) {
        int a = r1__argmax(p, V);
        memset(p, 0, sizeof(float) * V);
        p[a] = 1;
        return;
    }
    float mx = p[0];
    for (int i = 1; i < V; i++)
        mx = p[i] > mx ? p[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        p[i] = expf((p[i] - mx) / cfg->temperature);
        sum += p[i];
    }
    for (int i = 0; i < V; i++)
        p[i] = (float)(p[i] / sum);
    int filter = (cfg->top_k > 0 && cfg->top_k < V) || (cfg->top_p > 0 && cfg->top_p < 1) ||
                 cfg->min_p > 0;
    if (!filter)
        return;
    for (int i = 0; i < V; i++)
        idx[i] = i;
    qsort_r(idx, V, sizeof(int), by_prob_desc, p); /* GNU qsort_r: thread-safe */
    int keep = V;
    if (cfg->top_k > 0 && cfg->top_k < keep)
        keep = cfg->top_k;
    if (cfg->top_p > 0 && cfg->top_p < 1) {
        double cum = 0;
        for (int r = 0; r < keep; r++) {
            cum += p[idx[r]];
            if (cum >= cfg->top_p) {
                keep = r + 1;
                break;
            }
        }
    }
    if (cfg->min_p > 0) {
        float floor_p = cfg->min_p * p[idx[0]];
        int r = 1;
        while (r < keep && p[idx[r]] >= floor_p)
            r++;
        keep = r;
    }
    double kept = 0;
    for (int r = 0; r < keep; r++)
        kept += p[idx[r]];
    for (int r = keep; r < V; r++)
        p[idx[r]] = 0;
    for (int r = 0; r < keep; r++)
        p[idx[r]] = (float)(p[idx[r]] / kept);
}

int r1__draw(const float *p, int V, r1_rng *rng)
{
    double u = r1_rng_uniform(rng), cum = 0;
    int last = 0;
    for (int i = 0; i < V; i++) {
        if (p[i] <= 0)
            continue;
        cum += p[i];
        last = i;
        if (u < cum)
            return i;
    }
    return last; /* rounding left u just above the total */
}

float r1_log_softmax_at(const float *logits, int V, int t)
{
    float mx = logits[0];
    for (int i = 1; i < V; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++)
        sum += exp((double)(logits[i] - mx));
    return (float)((double)(logits[t] - mx) - log(sum));
}

void r1_top_tokens(const float *logits, int V, int n, int32_t *ids, float *p, float *entropy)
{
    float mx = logits[0];
    for (int i = 1; i < V; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0, wsum = 0;
    for (int i = 0; i < V; i++) {
        double z = (double)(logits[i] - mx), e = exp(z);
        sum += e;
        wsum += e * z;
    }
    /* H = -sum p log p with p = e^z / S: log S - sum e^z z / S */
    if (entropy)
        *entropy = (float)(log(sum) - wsum / sum);
    /* insertion into the kept list: n is small (a handful), V a few hundred */
    int k = 0;
    for (int i = 0; i < V && n > 0; i++) {
        float v = logits[i];
        if (k == n && !(v > logits[ids[n - 1]]))
            continue;
        int j = k < n ? k++ : n - 1;
        while (j > 0 && v > logits[ids[j - 1]]) { /* strict: ties keep the lower id first */
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
    for (int j = 0; j < k; j++)
        p[j] = (float)(exp((double)(logits[ids[j]] - mx)) / sum);
    for (int j = k; j < n; j++) {
        ids[j] = -1;
        p[j] = 0;
    }
}
