/* t_gemm32.c — the fp32 GEMM of training (r1__gemm32, engine/gemm32.c), and fp32 training's
 * linear layers on it (r1_matmul_fwd, r1_matmul_bwd).
 *
 * Its contract is exact: every output is the chain c = fmaf(a_k, b_k, c) over k in order from
 * 0 (or from C's value when accumulating).  So each product is checked bit for bit against
 * that loop in C, on shapes that cover every tail of the 8×32 tiles, of the 32-row and
 * 64-column blocks and of the 256 blocks of K, both storage orders of both operands,
 * accumulation, leading dimensions wider than the matrix (canaries between the rows must
 * survive), on 1 thread and on 2 (the product cut into pieces, B packed once for them).  And
 * against OpenBLAS sgemm within K·2^-24·S (S = sum |A|·|B| + |C|): the two sum in other
 * orders.  Training's layers: forward, dX and dW bit for bit the fmaf loops, and a row's
 * outputs the same bits alone and among 67 others (which sgemm does not promise).  On a path
 * without the kernel (avx2, portable: R1_ISA) r1__gemm32 declines, writing nothing, and the
 * layers run on sgemm; a machine without AVX-512 BF16 reports the kernel's checks skipped by
 * name.  Built as t_gemm32_noheap (engine/gemm32.c compiled in, R1_GEMM32_TEST_MALLOC), it also
 * runs the products with every allocation of the GEMM failing: the stack path's bits. */
#include <config.h>

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "r1.h"
#include "r1_gemm16.h"
#include "r1_kernels.h"
#include "r1_rng.h"
#include "tap.h"

#define CANARY (-12345.0f)

#ifdef R1_GEMM32_TEST_MALLOC
/* t_gemm32_noheap: engine/gemm32.c is compiled into this test with its malloc here */
static int no_heap, refused;
void *r1_test_malloc(size_t n);
void *r1_test_malloc(size_t n)
{
    refused += no_heap;
    return no_heap ? NULL : malloc(n);
}
#endif

static r1_rng rng;

static float unif(void) { return (float)(r1_rng_uniform(&rng) * 2 - 1); }

typedef struct {
    int M, N, K, ta, tb, acc, pad;
} shape;

/* A(m,k) and B(k,n) as the r1_gop describes them */
static float at_a(const r1_gop *o, int m, int k)
{
    const float *p = o->p;
    return o->trans ? p[(long)k * o->ld + m] : p[(long)m * o->ld + k];
}

static float at_b(const r1_gop *o, int k, int n)
{
    const float *p = o->p;
    return o->trans ? p[(long)n * o->ld + k] : p[(long)k * o->ld + n];
}

static void fma_ref(float *C, int ldc, int M, int N, int K, const r1_gop *A, const r1_gop *B,
                    int acc)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float c = acc ? C[(long)m * ldc + n] : 0.0f;
            for (int k = 0; k < K; k++)
                c = fmaf(at_a(A, m, k), at_b(B, k, n), c);
            C[(long)m * ldc + n] = c;
        }
}

static float *filled(long n)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++)
        p[i] = unif();
    return p;
}

/* One shape on the current path and thread count: bits against the fmaf loop, the canaries
 * past each row, and the distance from sgemm.  1 when all hold. */
static int check_shape(const shape *s, int threads)
{
    r1_set_threads(threads);
    int M = s->M, N = s->N, K = s->K;
    int lda = (s->ta ? M : K) + s->pad, ldb = (s->tb ? K : N) + s->pad, ldc = N + s->pad;
    float *a = filled((long)(s->ta ? K : M) * lda), *b = filled((long)(s->tb ? N : K) * ldb);
    float *c0 = filled((long)M * ldc), *c = malloc(sizeof(float) * (size_t)M * ldc);
    float *want = malloc(sizeof(float) * (size_t)M * ldc);
    for (int m = 0; m < M; m++)
        for (int n = N; n < ldc; n++)
            c0[(long)m * ldc + n] = CANARY;
    memcpy(c, c0, sizeof(float) * (size_t)M * ldc);
    memcpy(want, c0, sizeof(float) * (size_t)M * ldc);
    r1_gop A = {a, lda, s->ta, 0}, B = {b, ldb, s->tb, 0};
    int ran = r1__gemm32(c, ldc, M, N, K, A, B, s->acc);
    fma_ref(want, ldc, M, N, K, &A, &B, s->acc);
    int same = ran && !memcmp(c, want, sizeof(float) * (size_t)M * ldc); /* canaries too */
    /* sgemm on the same operands, within K·2^-24·S */
    float *g = malloc(sizeof(float) * (size_t)M * ldc);
    memcpy(g, c0, sizeof(float) * (size_t)M * ldc);
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                s->tb ? CblasTrans : CblasNoTrans, M, N, K, 1, a, lda, b, ldb, s->acc ? 1 : 0, g,
                ldc);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double S = s->acc ? fabs(c0[(long)m * ldc + n]) : 0;
            for (int k = 0; k < K; k++)
                S += fabs((double)at_a(&A, m, k) * at_b(&B, k, n));
            double d = fabs((double)c[(long)m * ldc + n] - g[(long)m * ldc + n]);
            double r = d / ((K + 1) * ldexp(S, -24) + 1e-30);
            worst = r > worst ? r : worst;
        }
    int near = worst <= 1.0;
    if (!same || !near)
        diag("%dx%dx%d ta=%d tb=%d acc=%d pad=%d threads=%d: ran %d, bits %s, sgemm at %.3g of "
             "the bound", M, N, K, s->ta, s->tb, s->acc, s->pad, threads, ran,
             same ? "same" : "differ", worst);
    free(a), free(b), free(c0), free(c), free(want), free(g);
    return same && near;
}

/* r1_matmul_fwd and r1_matmul_bwd on the fmaf loops' bits; rows alone and among others. */
static void check_layers(void)
{
    int N = 68, Ci = 300, Co = 70;
    float *in = filled((long)N * Ci), *w = filled((long)Co * Ci), *dout = filled((long)N * Co);
    float *out = malloc(sizeof(float) * (size_t)N * Co), *want = malloc(sizeof(float) * N * Co);
    r1_gop X = {in, Ci, 0, 0}, Wt = {w, Ci, 1, 0};
    r1_matmul_fwd(out, in, w, N, Ci, Co, 0);
    fma_ref(want, Co, N, Co, Ci, &X, &Wt, 0);
    ok(!memcmp(out, want, sizeof(float) * (size_t)N * Co),
       "r1_matmul_fwd (%d x %d -> %d) gives the fmaf chains' bits", N, Ci, Co);
    int alone = 1;
    for (int r = 0; r < N; r += 13) {
        float one[70];
        r1_matmul_fwd(one, in + (long)r * Ci, w, 1, Ci, Co, 0);
        alone &= !memcmp(one, out + (long)r * Co, sizeof one);
    }
    ok(alone, "a row's outputs are the same bits alone and among %d others", N - 1);

    float *din = filled((long)N * Ci), *dw = filled((long)Co * Ci);
    float *wdin = malloc(sizeof(float) * (size_t)N * Ci), *wdw = malloc(sizeof(float) * Co * Ci);
    memcpy(wdin, din, sizeof(float) * (size_t)N * Ci);
    memcpy(wdw, dw, sizeof(float) * (size_t)Co * Ci);
    r1_matmul_bwd(din, dw, dout, in, w, N, Ci, Co);
    r1_gop dy = {dout, Co, 0, 0}, dyt = {dout, Co, 1, 0}, W = {w, Ci, 0, 0};
    fma_ref(wdin, Ci, N, Ci, Co, &dy, &W, 1);
    fma_ref(wdw, Ci, Co, Ci, N, &dyt, &X, 1);
    ok(!memcmp(din, wdin, sizeof(float) * (size_t)N * Ci),
       "r1_matmul_bwd's dX += dY·W gives the fmaf chains' bits");
    ok(!memcmp(dw, wdw, sizeof(float) * (size_t)Co * Ci),
       "r1_matmul_bwd's dW += dY^T·X gives the fmaf chains' bits");
    free(in), free(w), free(dout), free(out), free(want), free(din), free(dw), free(wdin),
        free(wdw);
}

int main(void)
{
    r1_rng_seed(&rng, 32);
    r1_isa best = r1_isa_best();
    r1_error err;
    if (best < R1_ISA_AVX512BF16 || !r1__gemm32_available()) {
        skip("r1__gemm32: this machine's best path (%s) has no AVX-512 for it; training's "
             "layers run on sgemm", r1_isa_name(best));
    } else {
        static const shape shapes[] = {
            {1, 1, 1, 0, 0, 0, 0},      {8, 32, 256, 0, 1, 0, 0},   {9, 33, 257, 0, 1, 1, 3},
            {63, 31, 255, 1, 0, 1, 0},  {64, 64, 512, 0, 0, 0, 5},  {65, 65, 513, 1, 1, 1, 2},
            {130, 100, 600, 0, 1, 1, 0}, {7, 130, 31, 1, 0, 0, 1},  {200, 17, 3, 0, 0, 1, 0},
            {3, 200, 300, 1, 1, 0, 0},  {129, 150, 70, 1, 0, 1, 0}, {300, 96, 192, 0, 1, 0, 0},
            {96, 192, 340, 1, 0, 1, 0}, {340, 192, 64, 0, 0, 1, 0},
        };
        int n = (int)(sizeof shapes / sizeof shapes[0]);
        for (int threads = 1; threads <= 2; threads++) {
            int all = 1;
            for (int i = 0; i < n; i++)
                all &= check_shape(&shapes[i], threads);
            ok(all, "r1__gemm32 on %d thread%s: %d shapes bit for bit the fmaf loop, canaries "
               "kept, within K·2^-24·S of sgemm", threads, threads > 1 ? "s" : "", n);
        }
        /* a product large enough to be cut into pieces with B packed once for them */
        shape big = {1000, 200, 300, 0, 1, 1, 0};
        ok(check_shape(&big, 2), "r1__gemm32 cut by rows on 2 threads (1000 x 200 x 300)");
        shape wide = {16, 1500, 400, 0, 1, 0, 0};
        ok(check_shape(&wide, 2), "r1__gemm32 cut by columns on 2 threads (16 x 1500 x 400)");
#ifdef R1_GEMM32_TEST_MALLOC
        no_heap = 1; /* B packed NC columns at a time on the stack, not shared between pieces */
        int stack = check_shape(&big, 2) && check_shape(&wide, 2) && check_shape(&wide, 1);
        for (int i = 0; i < n; i++)
            stack &= check_shape(&shapes[i], 1);
        no_heap = 0;
        ok(stack && refused > 0, "without the heap (every allocation of the GEMM fails, %d "
           "refused): the same bits, from the stack", refused);
#endif
        float c = 7.0f;
        r1_gop A = {&c, 1, 0, 0};
        ok(r1__gemm32(&c, 1, 1, 1, 0, A, A, 0) == 1 && c == 0.0f,
           "K = 0 without accumulating zeroes C");
        r1_set_threads(2);
        check_layers();
    }
    for (r1_isa p = R1_ISA_PORTABLE; p <= R1_ISA_AVX2; p++) {
        if (!r1_isa_cpu_has(p)) {
            skip("path %s: not on this machine", r1_isa_name(p));
            continue;
        }
        r1_isa_set(p, &err);
        float c = 3.0f, a = 2.0f;
        r1_gop A = {&a, 1, 0, 0};
        ok(r1__gemm32(&c, 1, 1, 1, 1, A, A, 0) == 0 && c == 3.0f,
           "path %s: r1__gemm32 declines and writes nothing", r1_isa_name(p));
        /* the layers still compute, on sgemm, within its rounding */
        float in[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 2, 1, 0}, out[4];
        r1_matmul_fwd(out, in, w, 2, 3, 2, 0);
        ok(out[0] == -2 && out[1] == 4 && out[2] == -2 && out[3] == 13,
           "path %s: r1_matmul_fwd on sgemm", r1_isa_name(p));
    }
    r1_isa_set(best, &err);
    return done_testing();
}
