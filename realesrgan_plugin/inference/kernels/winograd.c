/* Winograd F(4x4, 3x3) transforms for 3x3 / stride 1 / pad 1 convolutions on NHWC float32.
 *
 * A convolution becomes: V = input_transform(x); M[k] = V[k] @ U[k] for the 36 Winograd points
 * (one batched GEMM, done by the caller with torch.bmm); y = output_transform(M) + bias, with
 * an optional per-channel leaky slope or a scaled residual fused into the store. The tiles are
 * 4x4 outputs read from 6x6 inputs; the tile grid covers ceil(H/4) x ceil(W/4), reads outside
 * the image are zero (the conv's padding), writes outside are dropped. `up` = 2 reads the input
 * through a nearest-neighbour x2 upsampling, so interpolate + conv never materialises the big
 * tensor. [ty0, ty0 + nty) selects a strip of tile rows, so big images run in cache-sized strips
 * (V and M then hold only that strip's tiles). Work is split over tiles with OpenMP (linked
 * against libgomp.so.1: the runtime torch already loaded, so both share one thread pool).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#define CB 64 /* channels per inner block: 6x6x64 floats stay in L1 */

static inline int imin(int a, int b) { return a < b ? a : b; }

/* memcpy / memset of nc floats; the usual full blocks get a constant size, which the compiler
 * turns into a few vector moves instead of a library call (72 of them per tile and block). */
static inline void copy_floats(float *dst, const float *src, int nc) {
    if (nc == CB) memcpy(dst, src, sizeof(float) * CB);
    else if (nc == CB / 2) memcpy(dst, src, sizeof(float) * (CB / 2));
    else memcpy(dst, src, sizeof(float) * nc);
}

/* V is written once and read by the GEMMs much later (or it does not fit the cache at all):
 * streaming stores skip reading each line before overwriting it. */
static inline void stream_floats(float *dst, const float *src, int nc) {
#ifdef __AVX__
    if (((uintptr_t)dst & 31) == 0 && (nc & 7) == 0) {
        for (int k = 0; k < nc; k += 8) _mm256_stream_ps(dst + k, _mm256_load_ps(src + k));
        return;
    }
#endif
    copy_floats(dst, src, nc);
}

static inline void zero_floats(float *dst, int nc) {
    if (nc == CB) memset(dst, 0, sizeof(float) * CB);
    else if (nc == CB / 2) memset(dst, 0, sizeof(float) * (CB / 2));
    else memset(dst, 0, sizeof(float) * nc);
}

/* Tile t of a strip of nty tile rows (starting at ty0), tw tiles per row, over n images. */
typedef struct {
    int n, ty, tx;
} tile_pos;

static inline tile_pos locate_tile(long t, int ty0, int nty, int tw) {
    tile_pos p = {(int)(t / ((long)nty * tw)), ty0 + (int)((t / tw) % nty), (int)(t % tw)};
    return p;
}

/* x: [N, Hs, Ws, C] (C contiguous); logical input size H = Hs*up, W = Ws*up.
 * V: [36, T, ldv] with T = N * nty * ceil(W/4); this input's channels land at column c_off. */
void wino_input(const float *x, int n_img, int hs, int ws, int c, int up, int ty0, int nty,
                float *v, long ldv, long c_off, int stream, int n_threads) {
    const int h = hs * up, w = ws * up;
    const int tw = (w + 3) / 4;
    const long t_all = (long)n_img * nty * tw;
#pragma omp parallel num_threads(n_threads)
    {
#pragma omp for schedule(static)
    for (long t = 0; t < t_all; t++) {
        const tile_pos pos = locate_tile(t, ty0, nty, tw);
        const int n = pos.n, ty = pos.ty, tx = pos.tx;
        float d[6][6][CB] __attribute__((aligned(64)));
        float r[6][6][CB] __attribute__((aligned(64)));
        for (int c0 = 0; c0 < c; c0 += CB) {
            const int nc = imin(CB, c - c0);
            for (int i = 0; i < 6; i++) {
                const int yy = 4 * ty - 1 + i;
                for (int j = 0; j < 6; j++) {
                    const int xx = 4 * tx - 1 + j;
                    if (yy < 0 || yy >= h || xx < 0 || xx >= w) {
                        zero_floats(d[i][j], nc);
                    } else {
                        const float *src = x + (((long)n * hs + yy / up) * ws + xx / up) * c + c0;
                        copy_floats(d[i][j], src, nc);
                    }
                }
            }
            /* rows: r[a][j] = sum_i BT[a][i] d[i][j] */
            for (int j = 0; j < 6; j++) {
                for (int k = 0; k < nc; k++) {
                    const float d0 = d[0][j][k], d1 = d[1][j][k], d2 = d[2][j][k];
                    const float d3 = d[3][j][k], d4 = d[4][j][k], d5 = d[5][j][k];
                    r[0][j][k] = 4.f * d0 - 5.f * d2 + d4;
                    r[1][j][k] = -4.f * (d1 + d2) + (d3 + d4);
                    r[2][j][k] = 4.f * (d1 - d2) + (d4 - d3);
                    r[3][j][k] = 2.f * (d3 - d1) + (d4 - d2);
                    r[4][j][k] = 2.f * (d1 - d3) + (d4 - d2);
                    r[5][j][k] = 4.f * d1 - 5.f * d3 + d5;
                }
            }
            /* columns: V[a*6+b] = sum_j r[a][j] BT[b][j], computed in a local row (the compiler
             * vectorizes that; six output pointers that might alias each other it does not) */
            for (int a = 0; a < 6; a++) {
                float q[6][CB] __attribute__((aligned(64)));
                for (int k = 0; k < nc; k++) {
                    const float e0 = r[a][0][k], e1 = r[a][1][k], e2 = r[a][2][k];
                    const float e3 = r[a][3][k], e4 = r[a][4][k], e5 = r[a][5][k];
                    q[0][k] = 4.f * e0 - 5.f * e2 + e4;
                    q[1][k] = -4.f * (e1 + e2) + (e3 + e4);
                    q[2][k] = 4.f * (e1 - e2) + (e4 - e3);
                    q[3][k] = 2.f * (e3 - e1) + (e4 - e2);
                    q[4][k] = 2.f * (e1 - e3) + (e4 - e2);
                    q[5][k] = 4.f * e1 - 5.f * e3 + e5;
                }
                for (int b = 0; b < 6; b++)
                    if (stream) stream_floats(v + ((long)(a * 6 + b) * t_all + t) * ldv + c_off + c0, q[b], nc);
                    else copy_floats(v + ((long)(a * 6 + b) * t_all + t) * ldv + c_off + c0, q[b], nc);
            }
        }
    }
#ifdef __AVX__
    _mm_sfence(); /* each thread's streaming stores are visible before anyone reads V */
#endif
    }
}

/* m: [36, T, co] (contiguous), T = N * nty * ceil(W/4). y: [N, H, W, co] (contiguous).
 * out = A^T m A + bias; then if slope: out = out >= 0 ? out : out * slope[c];
 * if res: out = out * alpha + res[same pixel] (res: [N, H, W, co]). */
void wino_output(const float *m, int n_img, int h, int w, int co, int ty0, int nty,
                 const float *bias, const float *slope, const float *res, float alpha, float *y,
                 int n_threads) {
    const long ldy = co;
    const int tw = (w + 3) / 4;
    const long t_all = (long)n_img * nty * tw;
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (long t = 0; t < t_all; t++) {
        const tile_pos pos = locate_tile(t, ty0, nty, tw);
        const int n = pos.n, ty = pos.ty, tx = pos.tx;
        float s[4][6][CB] __attribute__((aligned(64)));
        float o[4][4][CB] __attribute__((aligned(64)));
        for (int c0 = 0; c0 < co; c0 += CB) {
            const int nc = imin(CB, co - c0);
            /* rows: s[a][j] = sum_i AT[a][i] m[i*6+j] */
            for (int j = 0; j < 6; j++) {
                const float *p[6];
                for (int i = 0; i < 6; i++) p[i] = m + ((long)(i * 6 + j) * t_all + t) * co + c0;
                for (int k = 0; k < nc; k++) {
                    const float m0 = p[0][k], m1 = p[1][k], m2 = p[2][k];
                    const float m3 = p[3][k], m4 = p[4][k], m5 = p[5][k];
                    const float a12 = m1 + m2, s12 = m1 - m2, a34 = m3 + m4, s34 = m3 - m4;
                    s[0][j][k] = m0 + a12 + a34;
                    s[1][j][k] = s12 + 2.f * s34;
                    s[2][j][k] = a12 + 4.f * a34;
                    s[3][j][k] = s12 + 8.f * s34 + m5;
                }
            }
            /* columns */
            for (int a = 0; a < 4; a++) {
                for (int k = 0; k < nc; k++) {
                    const float e0 = s[a][0][k], e1 = s[a][1][k], e2 = s[a][2][k];
                    const float e3 = s[a][3][k], e4 = s[a][4][k], e5 = s[a][5][k];
                    const float a12 = e1 + e2, s12 = e1 - e2, a34 = e3 + e4, s34 = e3 - e4;
                    const float b = bias ? bias[c0 + k] : 0.f;
                    o[a][0][k] = e0 + a12 + a34 + b;
                    o[a][1][k] = s12 + 2.f * s34 + b;
                    o[a][2][k] = a12 + 4.f * a34 + b;
                    o[a][3][k] = s12 + 8.f * s34 + e5 + b;
                }
            }
            for (int a = 0; a < 4; a++) {
                const int yy = 4 * ty + a;
                if (yy >= h) break;
                for (int b = 0; b < 4; b++) {
                    const int xx = 4 * tx + b;
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
                        copy_floats(dst, src, nc);
                    }
                }
            }
        }
    }
}

/* The 36 GEMMs M[p] = V[p][:, :k] @ U[p] for output widths that are multiples of 16 (the convs
 * here have 32 or 64): A rows stream from memory once per 16 columns, U's 16 columns stay in L1,
 * 6 x 16 outputs live in registers. MKL, through torch.bmm, packs A first and runs these
 * narrow GEMMs at ~40 GFLOP/s on a 2-core AVX2 EPYC once V leaves L2; this runs at ~70. GCC
 * vector types compile to AVX/AVX-512/NEON, whatever -march=native offers. */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
#define GEMM_ROWS 6

/* c[r, 0:16] = a[r, 0:k] @ b[0:k, 0:16] for r < rows (<= 6); a short block recomputes its last row. */
static inline void gemm_6x16(const float *a, long lda, const float *b, long ldb, int k, float *c, long ldc,
                             int rows, const float *next) {
    const float *ar[GEMM_ROWS];
    v8 acc[GEMM_ROWS][2];
#pragma GCC unroll 6
    for (int r = 0; r < GEMM_ROWS; r++) {
        ar[r] = a + (r < rows ? r : rows - 1) * lda;
        acc[r][0] = acc[r][1] = (v8){0};
    }
    for (int kk = 0; kk < k; kk++) {
        if (next && (kk & 15) == 0) {
            /* the next block's rows, a cache line per row every 16 steps: A comes from memory */
#pragma GCC unroll 6
            for (int r = 0; r < GEMM_ROWS; r++) __builtin_prefetch(next + r * lda + kk);
        }
        const v8 b0 = *(const v8u *)(b + kk * ldb), b1 = *(const v8u *)(b + kk * ldb + 8);
#pragma GCC unroll 6
        for (int r = 0; r < GEMM_ROWS; r++) {
            const float x = ar[r][kk];
            acc[r][0] += x * b0;
            acc[r][1] += x * b1;
        }
    }
    for (int r = 0; r < rows; r++) {
        *(v8u *)(c + r * ldc) = acc[r][0];
        *(v8u *)(c + r * ldc + 8) = acc[r][1];
    }
}

/* v: point p's [t_all, ldv] rows start at v + p * ldp (k <= ldv columns used: a strip of tiles
 * and a leading slice of the channels); u: [36, k, n_out]; m: [36, t_all, n_out]. */
void wino_gemm(const float *v, long ldp, long ldv, long t_all, int k, const float *u, int n_out, float *m,
               int n_threads) {
    const long blocks = (t_all + GEMM_ROWS - 1) / GEMM_ROWS;
#pragma omp parallel for collapse(2) schedule(static) num_threads(n_threads)
    for (int p = 0; p < 36; p++) {
        for (long blk = 0; blk < blocks; blk++) {
            const long t0 = blk * GEMM_ROWS;
            const int rows = (int)(t_all - t0 < GEMM_ROWS ? t_all - t0 : GEMM_ROWS);
            const float *a = v + p * ldp + t0 * ldv;
            const float *up = u + (long)p * k * n_out;
            float *c = m + ((long)p * t_all + t0) * n_out;
            const float *next = rows == GEMM_ROWS && t0 + 2 * GEMM_ROWS <= t_all ? a + GEMM_ROWS * ldv : NULL;
            for (int j = 0; j < n_out; j += 16)
                gemm_6x16(a, ldv, up + j, n_out, k, c + j, n_out, rows, j == 0 ? next : NULL);
        }
    }
}
