/* Winograd F(6x6, 3x3) transforms for 3x3 / stride 1 / pad 1 convolutions on NHWC float32.
 *
 * A convolution becomes: V = input_transform(x); M[p] = V[p] @ U[p] for the 64 Winograd points
 * (wino_gemm below); y = output_transform(M) + bias, with an optional per-channel leaky slope or
 * a scaled residual fused into the store. The tiles are 6x6 outputs read from 8x8 inputs
 * (interpolation points 0, +-1, +-2, +-1/2, infinity); the tile grid covers ceil(H/6) x
 * ceil(W/6), reads outside the image are zero (the conv's padding), writes outside are dropped.
 * `up` = 2 reads the input through a nearest-neighbour x2 upsampling, so interpolate + conv never
 * materialises the big tensor. [ty0, ty0 + nty) selects a strip of tile rows, so big images run
 * in cache-sized strips (V and M then hold only that strip's tiles). Work is split over tiles
 * with OpenMP (linked against libgomp.so.1: the runtime torch already loaded, so both share one
 * thread pool).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#define CB 32 /* channels per inner block: two 8x8x32 float blocks stay in L1 */
#define TS 6  /* output tile side */
#define TI 8  /* input tile side (TS + 2) */
#define NP 64 /* Winograd points, TI * TI */
#define GB 6  /* tiles per block of V: the GEMM's register block */

static inline int imin(int a, int b) { return a < b ? a : b; }

/* V is written once and read by the GEMMs much later (or it does not fit the cache at all):
 * streaming stores skip reading each line before overwriting it. */
static inline void stream_floats(float *dst, const float *src, int nc) {
#ifdef __AVX__
    if (((uintptr_t)dst & 31) == 0 && (nc & 7) == 0) {
        for (int k = 0; k < nc; k += 8) _mm256_stream_ps(dst + k, _mm256_load_ps(src + k));
        return;
    }
#endif
    memcpy(dst, src, sizeof(float) * nc);
}

/* Tile t of a strip of nty tile rows (starting at ty0), tw tiles per row, over n images. */
typedef struct {
    int n, ty, tx;
} tile_pos;

static inline tile_pos locate_tile(long t, int ty0, int nty, int tw) {
    tile_pos p = {(int)(t / ((long)nty * tw)), ty0 + (int)((t / tw) % nty), (int)(t % tw)};
    return p;
}

/* out[a * os + k] = sum_i BT[a][i] in[i * is + k] for k < nc: the 8-point input transform,
 * factored (BT rows 1/2, 3/4 and 5/6 share their even and odd halves). */
static inline void input_8(const float *restrict in, long is, float *restrict out, long os, int nc) {
    for (int k = 0; k < nc; k++) {
        const float d0 = in[k], d1 = in[is + k], d2 = in[2 * is + k], d3 = in[3 * is + k];
        const float d4 = in[4 * is + k], d5 = in[5 * is + k], d6 = in[6 * is + k], d7 = in[7 * is + k];
        out[k] = d0 - d6 + 5.25f * (d4 - d2);
        out[7 * os + k] = d7 - d1 + 5.25f * (d3 - d5);
        const float e1 = d2 + d6 - 4.25f * d4, o1 = d1 + d5 - 4.25f * d3;
        out[os + k] = e1 + o1;
        out[2 * os + k] = e1 - o1;
        const float e2 = 0.25f * d2 + d6 - 1.25f * d4, o2 = 0.5f * d1 - 2.5f * d3 + 2.f * d5;
        out[3 * os + k] = e2 + o2;
        out[4 * os + k] = e2 - o2;
        const float e3 = 4.f * d2 + d6 - 5.f * d4, o3 = 2.f * d1 - 2.5f * d3 + 0.5f * d5;
        out[5 * os + k] = e3 + o3;
        out[6 * os + k] = e3 - o3;
    }
}

/* out[a * os + k] = sum_i AT[a][i] in[i * is + k] (+ bias[k]) for k < nc: the 6-point output transform. */
static inline void output_8(const float *restrict in, long is, float *restrict out, long os, int nc,
                            const float *restrict bias) {
    for (int k = 0; k < nc; k++) {
        const float m0 = in[k], m1 = in[is + k], m2 = in[2 * is + k], m3 = in[3 * is + k];
        const float m4 = in[4 * is + k], m5 = in[5 * is + k], m6 = in[6 * is + k], m7 = in[7 * is + k];
        const float a1 = m1 + m2, s1 = m1 - m2, a2 = m3 + m4, s2 = m3 - m4, a3 = m5 + m6, s3 = m5 - m6;
        const float b = bias ? bias[k] : 0.f;
        out[k] = m0 + a1 + a2 + a3 + b;
        out[os + k] = s1 + 2.f * s2 + 0.5f * s3 + b;
        out[2 * os + k] = a1 + 4.f * a2 + 0.25f * a3 + b;
        out[3 * os + k] = s1 + 8.f * s2 + 0.125f * s3 + b;
        out[4 * os + k] = a1 + 16.f * a2 + 0.0625f * a3 + b;
        out[5 * os + k] = s1 + 32.f * s2 + 0.03125f * s3 + m7 + b;
    }
}

/* x: [N, Hs, Ws, C] (C contiguous); logical input size H = Hs*up, W = Ws*up.
 * V: [ceil(T/6), 64, 6, ldv] with T = N * nty * ceil(W/6): point p of tile t is row t % 6 of
 * block (t / 6, p), so a GEMM reads 6 x ldv contiguous floats per block and a tile's 64 rows land
 * within one 64 x 6 x ldv block instead of 64 far-apart streams. This input's channels land at
 * column c_off.
 * stream: write V with non-temporal stores (for a V far bigger than the cache). */
void wino_input(const float *x, int n_img, int hs, int ws, int c, int up, int ty0, int nty,
                float *v, long ldv, long c_off, int stream, int n_threads) {
    const int h = hs * up, w = ws * up;
    const int tw = (w + TS - 1) / TS;
    const long t_all = (long)n_img * nty * tw;
#pragma omp parallel num_threads(n_threads)
    {
#pragma omp for schedule(static)
        for (long t = 0; t < t_all; t++) {
            const tile_pos pos = locate_tile(t, ty0, nty, tw);
            const int n = pos.n, ty = pos.ty, tx = pos.tx;
            float d[TI][TI][CB] __attribute__((aligned(64)));
            float r[TI][TI][CB] __attribute__((aligned(64)));
            float q[TI][CB] __attribute__((aligned(64)));
            for (int c0 = 0; c0 < c; c0 += CB) {
                const int nc = imin(CB, c - c0);
                for (int i = 0; i < TI; i++) {
                    const int yy = TS * ty - 1 + i;
                    for (int j = 0; j < TI; j++) {
                        const int xx = TS * tx - 1 + j;
                        if (yy < 0 || yy >= h || xx < 0 || xx >= w) {
                            memset(d[i][j], 0, sizeof(float) * nc);
                        } else {
                            const float *src = x + (((long)n * hs + yy / up) * ws + xx / up) * c + c0;
                            memcpy(d[i][j], src, sizeof(float) * nc);
                        }
                    }
                }
                for (int j = 0; j < TI; j++) input_8(d[0][j], TI * CB, r[0][j], TI * CB, nc); /* rows */
                for (int a = 0; a < TI; a++) {
                    input_8(r[a][0], CB, q[0], CB, nc); /* columns: V[a*8+b] */
                    for (int b = 0; b < TI; b++) {
                        float *dst = v + (((t / GB) * NP + a * TI + b) * GB + t % GB) * ldv + c_off + c0;
                        if (stream) stream_floats(dst, q[b], nc);
                        else memcpy(dst, q[b], sizeof(float) * nc);
                    }
                }
            }
        }
#ifdef __AVX__
        _mm_sfence(); /* each thread's streaming stores are visible before anyone reads V */
#endif
    }
}

/* m: [T, 64, co] (contiguous, tile-major: a tile's 64 points are one read), T = N * nty * ceil(W/6).
 * y: [N, H, W, co] (contiguous).
 * out = A^T m A + bias; then if slope: out = out >= 0 ? out : out * slope[c];
 * if res: out = out * alpha + res[same pixel] (res: [N, H, W, co]). */
void wino_output(const float *m, int n_img, int h, int w, int co, int ty0, int nty,
                 const float *bias, const float *slope, const float *res, float alpha, float *y,
                 int n_threads) {
    const long ldy = co;
    const int tw = (w + TS - 1) / TS;
    const long t_all = (long)n_img * nty * tw;
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (long t = 0; t < t_all; t++) {
        const tile_pos pos = locate_tile(t, ty0, nty, tw);
        const int n = pos.n, ty = pos.ty, tx = pos.tx;
        float s[TS][TI][CB] __attribute__((aligned(64)));
        float o[TS][TS][CB] __attribute__((aligned(64)));
        for (int c0 = 0; c0 < co; c0 += CB) {
            const int nc = imin(CB, co - c0);
            const float *mt = m + t * NP * co + c0; /* point p of this tile at mt + p * co */
            for (int j = 0; j < TI; j++) output_8(mt + j * co, TI * co, s[0][j], TI * CB, nc, NULL);
            for (int a = 0; a < TS; a++) output_8(s[a][0], CB, o[a][0], CB, nc, bias ? bias + c0 : NULL);
            for (int a = 0; a < TS; a++) {
                const int yy = TS * ty + a;
                if (yy >= h) break;
                for (int b = 0; b < TS; b++) {
                    const int xx = TS * tx + b;
                    if (xx >= w) break;
                    const long pix = (((long)n * h + yy) * w + xx) * ldy + c0;
                    float *restrict dst = y + pix;
                    const float *restrict src = o[a][b];
                    if (slope) {
                        /* leaky ReLU without a branch: max(v, 0) + slope * min(v, 0), exact */
                        const float *restrict sl = slope + c0;
                        for (int k = 0; k < nc; k++) {
                            const float v = src[k];
                            dst[k] = (v > 0.f ? v : 0.f) + sl[k] * (v < 0.f ? v : 0.f);
                        }
                    } else if (res) {
                        const float *restrict rr = res + pix;
                        for (int k = 0; k < nc; k++) dst[k] = src[k] * alpha + rr[k];
                    } else {
                        memcpy(dst, src, sizeof(float) * nc);
                    }
                }
            }
        }
    }
}

/* The 64 GEMMs M[p] = V[p][:, :k] @ U[p] (the convs here have 32 or 64 outputs, SRVGG's last 48):
 * A rows stream from memory once per register block of columns, U's columns stay in L1, a 6 x
 * (2 vectors) block of outputs lives in registers. MKL, through torch.bmm, packs A first and ran
 * these narrow GEMMs at ~45 GFLOP/s on one AVX2 EPYC core once V left L2; this runs at ~60-70.
 * GCC vector types compile to whatever -march=native offers: 8 floats a vector with AVX2, 16 with
 * AVX-512 (WINO_VW overrides, so that the tests run the 16-wide code on an AVX2 machine too). */
#ifndef WINO_VW
#ifdef __AVX512F__
#define WINO_VW 16
#else
#define WINO_VW 8
#endif
#endif
typedef float vec __attribute__((vector_size(WINO_VW * 4)));
typedef float vecu __attribute__((vector_size(WINO_VW * 4), aligned(4)));

/* c[r, 0:nv*VW] = a[r, 0:k] @ b[0:k, 0:nv*VW] for r < rows (<= 6), nv = 1 or 2 vectors (a
 * constant at each call); a short block recomputes its last row. next: rows to prefetch
 * meanwhile (the next block), or NULL. */
static inline __attribute__((always_inline)) void gemm_block(const float *a, long lda, const float *b, long ldb,
                                                             int k, float *c, long ldc, int rows,
                                                             const float *next, const int nv) {
    const float *ar[GB];
    vec acc[GB][2];
#pragma GCC unroll 6
    for (int r = 0; r < GB; r++) {
        ar[r] = a + (r < rows ? r : rows - 1) * lda;
        acc[r][0] = acc[r][1] = (vec){0};
    }
    for (int kk = 0; kk < k; kk++) {
        if (next && (kk & 15) == 0) {
            /* a cache line per row of the next block every 16 steps: V comes from memory */
#pragma GCC unroll 6
            for (int r = 0; r < GB; r++) __builtin_prefetch(next + r * lda + kk);
        }
        const vec b0 = *(const vecu *)(b + kk * ldb);
        const vec b1 = nv == 2 ? *(const vecu *)(b + kk * ldb + WINO_VW) : b0;
#pragma GCC unroll 6
        for (int r = 0; r < GB; r++) {
            const float x = ar[r][kk];
            acc[r][0] += x * b0;
            if (nv == 2) acc[r][1] += x * b1;
        }
    }
    for (int r = 0; r < rows; r++) {
        *(vecu *)(c + r * ldc) = acc[r][0];
        if (nv == 2) *(vecu *)(c + r * ldc + WINO_VW) = acc[r][1];
    }
}

/* The columns j0.. of a block that do not fill a vector: plain loops. */
static void gemm_tail(const float *a, long lda, const float *b, long ldb, int k, float *c, long ldc, int rows,
                      int j0, int n_out) {
    for (int r = 0; r < rows; r++) {
        for (int j = j0; j < n_out; j++) {
            float sum = 0.f;
            for (int kk = 0; kk < k; kk++) sum += a[r * lda + kk] * b[(long)kk * ldb + j];
            c[r * ldc + j] = sum;
        }
    }
}

/* M[t, p] = V[t, p, :k] @ U[p] for the 64 points. v: [ceil(t_all/6), 64, 6, ldv] as written by
 * wino_input (k <= ldv: a leading slice of the channels); u: [64, k, n_out]; m: [t_all, 64, n_out]. */
void wino_gemm(const float *v, long ldv, long t_all, int k, const float *u, int n_out, float *m, int n_threads) {
    const long blocks = (t_all + GB - 1) / GB;
    const int pairs = n_out / (2 * WINO_VW) * (2 * WINO_VW), vectors = n_out / WINO_VW * WINO_VW;
#pragma omp parallel for collapse(2) schedule(static) num_threads(n_threads)
    for (int p = 0; p < NP; p++) {
        for (long blk = 0; blk < blocks; blk++) {
            const long t0 = blk * GB;
            const int rows = (int)(t_all - t0 < GB ? t_all - t0 : GB);
            const float *a = v + (blk * NP + p) * GB * ldv;
            const float *up = u + (long)p * k * n_out;
            float *c = m + (t0 * NP + p) * n_out;
            const float *next = blk + 1 < blocks ? a + (long)NP * GB * ldv : NULL;
            const long ldc = (long)NP * n_out;
            for (int j = 0; j < pairs; j += 2 * WINO_VW)
                gemm_block(a, ldv, up + j, n_out, k, c + j, ldc, rows, j == 0 ? next : NULL, 2);
            if (pairs < vectors)
                gemm_block(a, ldv, up + pairs, n_out, k, c + pairs, ldc, rows, pairs == 0 ? next : NULL, 1);
            if (vectors < n_out) gemm_tail(a, ldv, up, n_out, k, c, ldc, rows, vectors, n_out);
        }
    }
}
