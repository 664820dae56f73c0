// target_avx512.c: the FMA kernels of the target network's fast path for x86-64 CPUs with
// AVX-512 (F, BW, VL) and FMA, selected at run time by target.c (HT_TARGET_IMPL=avx512). The
// driver (plan, packing, routed lists, pools, fc tail) is target_avx2.c's; only the kernels that
// do the FMAs are here, in 512-bit registers:
//   conv       tiles of MR <= 12 rows x 32 (or 16) columns: up to 24 zmm accumulators, one
//              broadcast FMA per row and vector and step (the 32 registers of AVX-512 allow twice
//              the rows of the AVX2 6 x 16 tile, so even a 16-filter conv keeps 12 FMAs in flight);
//   conv_pool  conv + bias + [relu] + 2x2 max pool, two pool windows (8 rows) per tile;
//   conv_dw    the weight-gradient GEMM, 12-row tiles;
//   gather     the routed gradients' row sums, up to 160 floats (10 zmm) per call.
//   dout_win, route_win  data movement of the backward (relu/pool backward, routed lists) of
//              one 2x2 pool window, 16 filters a vector: the same bits as the driver's AVX2 code.
// A column block of width 8 (filters 8 mod 16) is one zmm with a lane mask (masked loads and
// stores touch only the 8 floats).
//
// Each output element is summed over its steps in ascending order with one FMA per step, then
// the epilogue applies [+= old] + bias (+0 when there is none, as AVX2) [relu] [pool], exactly as
// the AVX2 kernels: the results are bitwise those of the avx2 implementation (test_target checks
// it), so a run can move between the two and still resume bit for bit.
#include "target_avx512.h"

#include <string.h>

#include "common.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define INLINE inline __attribute__((always_inline))

int target_avx512_cpu_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// ---- the micro-kernel ----

#define MR_MAX 12

typedef struct {
    const float *a[MR_MAX];       // row r reads A[r][t] = a[r][aoff[t]]
    float *c[MR_MAX];             // output row pointers (already offset to the tile's first column)
    const float *B;               // vector v of step t: B[boff[t] + v*bstep + 0..16)
    ptrdiff_t bstep;
    const int32_t *aoff, *boff;   // per-step offsets (tables built once per network)
    int T;                        // steps (the inner dimension)
    const float *bias;            // forward: bias of the tile's columns, or NULL
    int relu, add;                // epilogue: max(0, .); accumulate into c
    __mmask16 mlast;              // lanes of the last vector (0xffff, or 0x00ff for 8 columns)
    int k, kC;                    // window tiles (wtile_*): kernel rows, and steps k*C per row,
    ptrdiff_t rs;                 // at a row stride of rs floats (instead of aoff and boff)
} Tile;

// k of a window table: K = k*k*C.
static int kernel_size(int K, int C) {
    int k = 1;
    while (k * k * C < K) k++;
    return k;
}

static AVX512 INLINE void epi(int add, __m512 bias, int relu, float *dst, __m512 y, __mmask16 m) {
    if (add) y = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst), y);
    y = _mm512_add_ps(y, bias);
    if (relu) y = _mm512_max_ps(y, _mm512_setzero_ps()); // max(NaN, 0) = 0, as the reference
    _mm512_mask_storeu_ps(dst, m, y);
}

// Accumulators are named variables (kept in registers), rows r < MR, vectors v < NV.
#define ROW_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps(); \
                    const float *a##r = t->a[MR > r ? r : 0]
#define ROW_FMA(r) if (MR > r) { const __m512 x = _mm512_set1_ps(a##r[o]);                  \
                    c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0);                               \
                    if (NV > 1) c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1); }
#define ROW_OUT(r) if (MR > r) { epi(add, bias0, relu, c[r], c##r##0, m0);                 \
                    if (NV > 1) epi(add, bias1, relu, c[r] + 16, c##r##1, m1); }

#define TILE_ACCUMULATE(t)                                                                       \
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3); ROW_DECL(4); ROW_DECL(5);               \
    ROW_DECL(6); ROW_DECL(7); ROW_DECL(8); ROW_DECL(9); ROW_DECL(10); ROW_DECL(11);             \
    {                                                                                            \
        const __mmask16 mb0 = NV > 1 ? (__mmask16)0xffff : (t)->mlast, mb1 = (t)->mlast;         \
        const ptrdiff_t bs = (t)->bstep;                                                         \
        for (int j = 0; j < (t)->T; j++) {                                                       \
            const float *b = (t)->B + (t)->boff[j];                                              \
            const ptrdiff_t o = (t)->aoff[j];                                                    \
            const __m512 b0 = _mm512_maskz_loadu_ps(mb0, b);                                     \
            const __m512 b1 = NV > 1 ? _mm512_maskz_loadu_ps(mb1, b + bs) : b0;                  \
            ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)                    \
            ROW_FMA(6) ROW_FMA(7) ROW_FMA(8) ROW_FMA(9) ROW_FMA(10) ROW_FMA(11)                  \
        }                                                                                        \
    }

static AVX512 INLINE void tile_body(const Tile *t, const int MR, const int NV) {
    TILE_ACCUMULATE(t)
    float *c[MR_MAX];
    for (int r = 0; r < MR; r++) c[r] = t->c[r];
    const int add = t->add, relu = t->relu;
    const __mmask16 m0 = NV > 1 ? (__mmask16)0xffff : t->mlast, m1 = t->mlast;
    const __m512 bias0 = t->bias ? _mm512_maskz_loadu_ps(m0, t->bias) : _mm512_setzero_ps();
    const __m512 bias1 = t->bias && NV > 1 ? _mm512_maskz_loadu_ps(m1, t->bias + 16) : _mm512_setzero_ps();
    ROW_OUT(0) ROW_OUT(1) ROW_OUT(2) ROW_OUT(3) ROW_OUT(4) ROW_OUT(5)
    ROW_OUT(6) ROW_OUT(7) ROW_OUT(8) ROW_OUT(9) ROW_OUT(10) ROW_OUT(11)
}

// The same product for a convolution's window steps (forward, input gradient): step t = (ky, s)
// with s < kC = k*C reads A[r][t] = a[r][ky*rs + s] and B[t] = B + 16 t, so within a kernel row the
// broadcasts walk each row's window row contiguously and B linearly: no offset tables, and the
// loop keeps only the row pointers, B and the counter in registers (the table version needs two
// table loads per step and more registers than x86-64 has with 12 rows).
#define WROW_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps(); \
                     const float *p##r = t->a[MR > r ? r : 0]
#define WROW_FMA(r) if (MR > r) { const __m512 x = _mm512_set1_ps(p##r[s]);                 \
                     c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0);                              \
                     if (NV > 1) c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1); }
#define WROW_NEXT(r) if (MR > r) p##r += rs
#define WIN_ACCUMULATE(t, k, kC, rs)                                                             \
    WROW_DECL(0); WROW_DECL(1); WROW_DECL(2); WROW_DECL(3); WROW_DECL(4); WROW_DECL(5);         \
    WROW_DECL(6); WROW_DECL(7); WROW_DECL(8); WROW_DECL(9); WROW_DECL(10); WROW_DECL(11);       \
    {                                                                                            \
        const __mmask16 mb0 = NV > 1 ? (__mmask16)0xffff : (t)->mlast, mb1 = (t)->mlast;         \
        const ptrdiff_t bs = (t)->bstep;                                                         \
        const float *b = (t)->B;                                                                 \
        for (int ky = 0; ky < (k); ky++) {                                                       \
            for (int s = 0; s < (kC); s++, b += 16) {                                            \
                const __m512 b0 = _mm512_maskz_loadu_ps(mb0, b);                                 \
                const __m512 b1 = NV > 1 ? _mm512_maskz_loadu_ps(mb1, b + bs) : b0;              \
                WROW_FMA(0) WROW_FMA(1) WROW_FMA(2) WROW_FMA(3) WROW_FMA(4) WROW_FMA(5)          \
                WROW_FMA(6) WROW_FMA(7) WROW_FMA(8) WROW_FMA(9) WROW_FMA(10) WROW_FMA(11)        \
            }                                                                                    \
            WROW_NEXT(0); WROW_NEXT(1); WROW_NEXT(2); WROW_NEXT(3); WROW_NEXT(4); WROW_NEXT(5);  \
            WROW_NEXT(6); WROW_NEXT(7); WROW_NEXT(8); WROW_NEXT(9); WROW_NEXT(10); WROW_NEXT(11);\
        }                                                                                        \
    }

static AVX512 INLINE void wtile_body(const Tile *t, const int MR, const int NV) {
    const int k = t->k, kC = t->kC;
    const ptrdiff_t rs = t->rs;
    WIN_ACCUMULATE(t, k, kC, rs)
    float *c[MR_MAX];
    for (int r = 0; r < MR; r++) c[r] = t->c[r];
    const int add = t->add, relu = t->relu;
    const __mmask16 m0 = NV > 1 ? (__mmask16)0xffff : t->mlast, m1 = t->mlast;
    const __m512 bias0 = t->bias ? _mm512_maskz_loadu_ps(m0, t->bias) : _mm512_setzero_ps();
    const __m512 bias1 = t->bias && NV > 1 ? _mm512_maskz_loadu_ps(m1, t->bias + 16) : _mm512_setzero_ps();
    ROW_OUT(0) ROW_OUT(1) ROW_OUT(2) ROW_OUT(3) ROW_OUT(4) ROW_OUT(5)
    ROW_OUT(6) ROW_OUT(7) ROW_OUT(8) ROW_OUT(9) ROW_OUT(10) ROW_OUT(11)
}

#define TILE_FN(MR, NV) static AVX512 void tile_##MR##_##NV(const Tile *t) { tile_body(t, MR, NV); } \
                        static AVX512 void wtile_##MR##_##NV(const Tile *t) { wtile_body(t, MR, NV); }
#define TILE_FNS(MR) TILE_FN(MR, 1) TILE_FN(MR, 2)
TILE_FNS(1) TILE_FNS(2) TILE_FNS(3) TILE_FNS(4) TILE_FNS(5) TILE_FNS(6)
TILE_FNS(7) TILE_FNS(8) TILE_FNS(9) TILE_FNS(10) TILE_FNS(11) TILE_FNS(12)
typedef void (*TileFn)(const Tile *);
static const TileFn TILES[MR_MAX + 1][3] = {
    {NULL, NULL, NULL},
    {NULL, tile_1_1, tile_1_2},   {NULL, tile_2_1, tile_2_2},   {NULL, tile_3_1, tile_3_2},
    {NULL, tile_4_1, tile_4_2},   {NULL, tile_5_1, tile_5_2},   {NULL, tile_6_1, tile_6_2},
    {NULL, tile_7_1, tile_7_2},   {NULL, tile_8_1, tile_8_2},   {NULL, tile_9_1, tile_9_2},
    {NULL, tile_10_1, tile_10_2}, {NULL, tile_11_1, tile_11_2}, {NULL, tile_12_1, tile_12_2},
};
static const TileFn WTILES[MR_MAX + 1][3] = {
    {NULL, NULL, NULL},
    {NULL, wtile_1_1, wtile_1_2},   {NULL, wtile_2_1, wtile_2_2},   {NULL, wtile_3_1, wtile_3_2},
    {NULL, wtile_4_1, wtile_4_2},   {NULL, wtile_5_1, wtile_5_2},   {NULL, wtile_6_1, wtile_6_2},
    {NULL, wtile_7_1, wtile_7_2},   {NULL, wtile_8_1, wtile_8_2},   {NULL, wtile_9_1, wtile_9_2},
    {NULL, wtile_10_1, wtile_10_2}, {NULL, wtile_11_1, wtile_11_2}, {NULL, wtile_12_1, wtile_12_2},
};

// Rows are cut into ceil(m / 12) tiles of near-equal size.
#define FOR_TILES(m, r0, mr)                                                                   \
    for (int nt_ = ((m) + MR_MAX - 1) / MR_MAX, q_ = (m) / nt_, e_ = (m) % nt_, ti_ = 0, r0 = 0, \
             mr = q_ + (e_ > 0);                                                               \
         ti_ < nt_; r0 += mr, ti_++, mr = q_ + (ti_ < e_))

// Column blocks: 32 columns (two vectors) while they last, then 24 (16 + 8 masked), 16 or 8.
// Sets *nv (1 or 2) and *mlast; returns the block's width.
static INLINE int col_block(int F, int col0, int *nv, __mmask16 *mlast) {
    const int rem = F - col0, w = rem >= 32 ? 32 : rem;
    *nv = w > 16 ? 2 : 1;
    *mlast = w % 16 ? (__mmask16)0x00ff : (__mmask16)0xffff;
    return w;
}

// ---- conv kernels, one image (contracts in target_avx2.h) ----

static AVX512 void conv_img(int H, int W, int C, int F, int K, int Wp, const float *in, const int32_t *win,
                            const int32_t *iota16, const float *wp, const float *bias, int relu, float *out,
                            ptrdiff_t ors) {
    const int npix = H * W;
    Tile t;
    t.aoff = win; t.boff = iota16; t.T = K; t.relu = relu; t.add = 0; t.bstep = (ptrdiff_t)16 * K;
    t.k = kernel_size(K, C); t.kC = t.k * C; t.rs = (ptrdiff_t)Wp * C; // win[t] = ky*rs + s
    float *cpix[MR_MAX];
    int y = 0, x = 0; // pixel of the next tile row (no divisions in the tile loop)
    FOR_TILES(npix, q0, mr) {
        for (int r = 0; r < mr; r++, x++) {
            if (x == W) { x = 0; y++; }
            t.a[r] = in + ((size_t)y * Wp + x) * C;
            cpix[r] = out + y * ors + (ptrdiff_t)x * F;
        }
        for (int col0 = 0, nv, w; col0 < F; col0 += w) {
            w = col_block(F, col0, &nv, &t.mlast);
            t.B = wp + (size_t)col0 * K;
            t.bias = bias ? bias + col0 : NULL;
            for (int r = 0; r < mr; r++) t.c[r] = cpix[r] + col0;
            WTILES[mr][nv](&t);
        }
    }
}

static AVX512 void conv_dw_img(int H, int W, int C, int F, int k, int Wp, const float *in, const int32_t *pin,
                               const float *dout, const int32_t *pdo, float *dwt, int add) {
    const int K = k * k * C;
    Tile t;
    t.aoff = pin; t.boff = pdo; t.T = H * W; t.bias = NULL; t.relu = 0; t.add = add; t.bstep = 16;
    float *crow[MR_MAX];
    int ky = 0, kx = 0, c = 0; // (ky, kx, c) of the next tile row
    FOR_TILES(K, j0, mr) {
        for (int r = 0; r < mr; r++) {
            t.a[r] = in + ((size_t)ky * Wp + kx) * C + c;
            crow[r] = dwt + (size_t)(j0 + r) * F;
            if (++c == C) { c = 0; if (++kx == k) { kx = 0; ky++; } }
        }
        for (int col0 = 0, nv, w; col0 < F; col0 += w) {
            w = col_block(F, col0, &nv, &t.mlast);
            t.B = dout + col0;
            for (int r = 0; r < mr; r++) t.c[r] = crow[r] + col0;
            TILES[mr][nv](&t);
        }
    }
}

// ---- conv + 2x2 max pool, fused ----

// One or two (WIN) pool windows of 4 pixels each (rows 4w .. 4w+3 of the tile, (h, w) order): the
// epilogue adds the bias, applies the relu, takes each window's maximum with the reference's scan
// (strict >: ties and NaN keep the earlier pixel; max_ps(v, best) is "v > best ? v : best") and
// its index. Window w writes its pooled output to out[w] and the argmax to am[w] (NULL: none);
// first[w] is the index of its pixel 0, channel col0; the other pixels are +F, +W*F, +W*F+F.
typedef struct {
    Tile t;
    float *out[2];
    int32_t *am[2];
    int32_t first[2];
} PoolTile;

static AVX512 INLINE __m512 pool4(__m512 y0, __m512 y1, __m512 y2, __m512 y3, __m512 bias, int relu,
                                  __m512i i0, int32_t d1, int32_t d2, int32_t d3, __m512i *bi) {
    const __m512 zero = _mm512_setzero_ps();
    y0 = _mm512_add_ps(y0, bias); y1 = _mm512_add_ps(y1, bias);
    y2 = _mm512_add_ps(y2, bias); y3 = _mm512_add_ps(y3, bias);
    if (relu) {
        y0 = _mm512_max_ps(y0, zero); y1 = _mm512_max_ps(y1, zero);
        y2 = _mm512_max_ps(y2, zero); y3 = _mm512_max_ps(y3, zero);
    }
    __m512 best = y0;
    __m512i b = i0;
    b = _mm512_mask_add_epi32(b, _mm512_cmp_ps_mask(y1, best, _CMP_GT_OQ), i0, _mm512_set1_epi32(d1));
    best = _mm512_max_ps(y1, best);
    b = _mm512_mask_add_epi32(b, _mm512_cmp_ps_mask(y2, best, _CMP_GT_OQ), i0, _mm512_set1_epi32(d2));
    best = _mm512_max_ps(y2, best);
    b = _mm512_mask_add_epi32(b, _mm512_cmp_ps_mask(y3, best, _CMP_GT_OQ), i0, _mm512_set1_epi32(d3));
    best = _mm512_max_ps(y3, best);
    *bi = b;
    return best;
}

static AVX512 INLINE void tile_pool_body(const PoolTile *pt, int W, int F, const int WIN, const int NV) {
    const Tile *t = &pt->t;
    const int MR = 4 * WIN;
    TILE_ACCUMULATE(t)
    const int relu = t->relu;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const int32_t d1 = F, d2 = W * F, d3 = W * F + F;
    const __mmask16 m0 = NV > 1 ? (__mmask16)0xffff : t->mlast, m1 = t->mlast;
    const __m512 bias0 = _mm512_maskz_loadu_ps(m0, t->bias);
    const __m512 bias1 = NV > 1 ? _mm512_maskz_loadu_ps(m1, t->bias + 16) : bias0;
    __m512i bi;
#define POOL_OUT(w, v, r0, r1, r2, r3, bias, m)                                                          \
    if (WIN > w && NV > v) {                                                                             \
        const __m512i i0 = _mm512_add_epi32(_mm512_set1_epi32(pt->first[w] + 16 * v), lane);             \
        const __m512 best = pool4(r0, r1, r2, r3, bias, relu, i0, d1, d2, d3, &bi);                      \
        _mm512_mask_storeu_ps(pt->out[w] + 16 * v, m, best);                                             \
        if (pt->am[w]) _mm512_mask_storeu_epi32(pt->am[w] + 16 * v, m, bi);                              \
    }
    POOL_OUT(0, 0, c00, c10, c20, c30, bias0, m0)
    POOL_OUT(0, 1, c01, c11, c21, c31, bias1, m1)
    POOL_OUT(1, 0, c40, c50, c60, c70, bias0, m0)
    POOL_OUT(1, 1, c41, c51, c61, c71, bias1, m1)
#undef POOL_OUT
}

static AVX512 void tile_pool_1_1(const PoolTile *p, int W, int F) { tile_pool_body(p, W, F, 1, 1); }
static AVX512 void tile_pool_1_2(const PoolTile *p, int W, int F) { tile_pool_body(p, W, F, 1, 2); }
static AVX512 void tile_pool_2_1(const PoolTile *p, int W, int F) { tile_pool_body(p, W, F, 2, 1); }
static AVX512 void tile_pool_2_2(const PoolTile *p, int W, int F) { tile_pool_body(p, W, F, 2, 2); }

static AVX512 void conv_pool_img(int H, int W, int C, int F, int K, int Wp, const float *in, const int32_t *win,
                                 const int32_t *iota16, const float *wp, const float *bias, int relu, float *out,
                                 ptrdiff_t ors, int32_t *am) {
    PoolTile pt;
    Tile *t = &pt.t;
    t->aoff = win; t->boff = iota16; t->T = K; t->relu = relu; t->add = 0; t->bstep = (ptrdiff_t)16 * K;
    const int OW = W / 2;
    for (int oy = 0; oy < H / 2; oy++)
        for (int ox = 0; ox < OW; ox += 2) {
            const int nwin = OW - ox >= 2 ? 2 : 1;
            for (int w = 0; w < nwin; w++) {
                const int y = 2 * oy, x = 2 * (ox + w);
                const float *a0 = in + ((size_t)y * Wp + x) * C;
                t->a[4 * w] = a0;
                t->a[4 * w + 1] = a0 + C;
                t->a[4 * w + 2] = a0 + (size_t)Wp * C;
                t->a[4 * w + 3] = a0 + (size_t)Wp * C + C;
            }
            for (int col0 = 0, nv, cw; col0 < F; col0 += cw) {
                cw = col_block(F, col0, &nv, &t->mlast);
                t->B = wp + (size_t)col0 * K;
                t->bias = bias + col0;
                for (int w = 0; w < nwin; w++) {
                    const int y = 2 * oy, x = 2 * (ox + w);
                    pt.out[w] = out + oy * ors + (ptrdiff_t)(ox + w) * F + col0;
                    pt.am[w] = am ? am + ((size_t)oy * OW + ox + w) * F + col0 : NULL;
                    pt.first[w] = (y * W + x) * F + col0;
                }
                if (nwin == 2) { if (nv == 2) tile_pool_2_2(&pt, W, F); else tile_pool_2_1(&pt, W, F); }
                else { if (nv == 2) tile_pool_1_2(&pt, W, F); else tile_pool_1_1(&pt, W, F); }
            }
        }
}

// ---- routed gradients: row sums ----

// acc (NV vectors, the last with lanes ml) = sum over the entries of g[e] * a[pix[e] + 16v ...];
// dst[16v ...] += acc.
#define ACC_DECL(v) __m512 q##v = _mm512_setzero_ps()
#define ACC_FMA(v) if (NV > v) q##v = _mm512_fmadd_ps(ge, _mm512_maskz_loadu_ps(NV - 1 == v ? ml : 0xffff, ae + 16 * v), q##v)
#define ACC_OUT(v) if (NV > v) { const __mmask16 m_ = NV - 1 == v ? ml : 0xffff;                  \
                       _mm512_mask_storeu_ps(dst + 16 * v, m_, _mm512_add_ps(_mm512_maskz_loadu_ps(m_, dst + 16 * v), q##v)); }
static AVX512 INLINE void gather_seg(const float *a, const int32_t *pix, const float *g, int n, float *dst,
                                     const int NV, __mmask16 ml) {
    ACC_DECL(0); ACC_DECL(1); ACC_DECL(2); ACC_DECL(3); ACC_DECL(4);
    ACC_DECL(5); ACC_DECL(6); ACC_DECL(7); ACC_DECL(8); ACC_DECL(9);
    for (int e = 0; e < n; e++) {
        const __m512 ge = _mm512_set1_ps(g[e]);
        const float *ae = a + pix[e];
        ACC_FMA(0); ACC_FMA(1); ACC_FMA(2); ACC_FMA(3); ACC_FMA(4);
        ACC_FMA(5); ACC_FMA(6); ACC_FMA(7); ACC_FMA(8); ACC_FMA(9);
    }
    ACC_OUT(0); ACC_OUT(1); ACC_OUT(2); ACC_OUT(3); ACC_OUT(4);
    ACC_OUT(5); ACC_OUT(6); ACC_OUT(7); ACC_OUT(8); ACC_OUT(9);
}

#define GATHER_SEG_LEN 160 // 10 vectors: a whole window row of the paper's conv2 (5 x 32 floats)

static AVX512 void gather(const float *a, const int32_t *pix, const float *g, int n, float *dst, int len) {
    const __mmask16 ml = len % 16 ? (__mmask16)0x00ff : (__mmask16)0xffff;
    switch ((len + 15) / 16) {
    case 10: gather_seg(a, pix, g, n, dst, 10, ml); break;
    case 9: gather_seg(a, pix, g, n, dst, 9, ml); break;
    case 8: gather_seg(a, pix, g, n, dst, 8, ml); break;
    case 7: gather_seg(a, pix, g, n, dst, 7, ml); break;
    case 6: gather_seg(a, pix, g, n, dst, 6, ml); break;
    case 5: gather_seg(a, pix, g, n, dst, 5, ml); break;
    case 4: gather_seg(a, pix, g, n, dst, 4, ml); break;
    case 3: gather_seg(a, pix, g, n, dst, 3, ml); break;
    case 2: gather_seg(a, pix, g, n, dst, 2, ml); break;
    default: gather_seg(a, pix, g, n, dst, 1, ml); break;
    }
}

// ---- routed input gradient, a padded row at a time (the paper's conv2: C = 32, k = 5) ----
// The row's 10-vector window of pixel x (floats x*32 .. x*32 + 160) stays in R0..R9; pixel x's
// filters are summed into A0..A9 (from zero, one FMA per filter in list order, as gather_seg),
// added to the window, then the window slides by 2 vectors: R0, R1 are final (no later pixel
// of the row reaches them) and stored, R2..R9 move down, the next 2 vectors are loaded. Each
// element gets gather's additions in the same order; loads and stores of the row drop from 20
// vectors per pixel to 4. init: the row starts from zeros (the caller does not zero it).
#define DXR_DECL(v) __m512 R##v = init ? _mm512_setzero_ps() : _mm512_loadu_ps(drow + 16 * v), A##v
#define DXR_ZERO(v) A##v = _mm512_setzero_ps()
#define DXR_FMA(v) A##v = _mm512_fmadd_ps(ge, _mm512_loadu_ps(ae + 16 * v), A##v)
#define DXR_ADD(v) R##v = _mm512_add_ps(R##v, A##v)
static AVX512 void dx_row_c32k5(float *drow, const float *wky, const int32_t *qcnt, const int32_t *qw,
                                const float *qg, int F, int W, int init) {
    DXR_DECL(0); DXR_DECL(1); DXR_DECL(2); DXR_DECL(3); DXR_DECL(4);
    DXR_DECL(5); DXR_DECL(6); DXR_DECL(7); DXR_DECL(8); DXR_DECL(9);
    for (int x = 0; x < W; x++) {
        const int n = qcnt[x];
        if (n) {
            const int32_t *pw = qw + (size_t)x * F;
            const float *pg = qg + (size_t)x * F;
            DXR_ZERO(0); DXR_ZERO(1); DXR_ZERO(2); DXR_ZERO(3); DXR_ZERO(4);
            DXR_ZERO(5); DXR_ZERO(6); DXR_ZERO(7); DXR_ZERO(8); DXR_ZERO(9);
            for (int e = 0; e < n; e++) {
                const __m512 ge = _mm512_set1_ps(pg[e]);
                const float *ae = wky + pw[e];
                DXR_FMA(0); DXR_FMA(1); DXR_FMA(2); DXR_FMA(3); DXR_FMA(4);
                DXR_FMA(5); DXR_FMA(6); DXR_FMA(7); DXR_FMA(8); DXR_FMA(9);
            }
            DXR_ADD(0); DXR_ADD(1); DXR_ADD(2); DXR_ADD(3); DXR_ADD(4);
            DXR_ADD(5); DXR_ADD(6); DXR_ADD(7); DXR_ADD(8); DXR_ADD(9);
        }
        float *o = drow + (size_t)x * 32;
        _mm512_storeu_ps(o, R0);
        _mm512_storeu_ps(o + 16, R1);
        R0 = R2; R1 = R3; R2 = R4; R3 = R5; R4 = R6; R5 = R7; R6 = R8; R7 = R9;
        if (x + 1 < W) {
            R8 = init ? _mm512_setzero_ps() : _mm512_loadu_ps(o + 160);
            R9 = init ? _mm512_setzero_ps() : _mm512_loadu_ps(o + 176);
        }
    }
    float *o = drow + (size_t)W * 32; // the row's last 8 vectors
    _mm512_storeu_ps(o, R0); _mm512_storeu_ps(o + 16, R1); _mm512_storeu_ps(o + 32, R2);
    _mm512_storeu_ps(o + 48, R3); _mm512_storeu_ps(o + 64, R4); _mm512_storeu_ps(o + 80, R5);
    _mm512_storeu_ps(o + 96, R6); _mm512_storeu_ps(o + 112, R7);
}

// ---- relu/pool backward and routed lists (data movement: the same bits as the AVX2 driver code) ----

// The lanes of filters f0.. of F (F % 8 == 0): 16, or 8 for the last block of F = 8 mod 16.
static INLINE __mmask16 fmask(int F, int f0) { return F - f0 >= 16 ? (__mmask16)0xffff : (__mmask16)0x00ff; }

// dout_img's 2x2 window (TargetSimdKernels.dout_win): g where the argmax is, +0 at the window's
// other 3 pixels (as the AVX2 and-mask), relu mask v > 0, db += the kept g.
static AVX512 void dout_win(int F, int W, int Wd, int relu, const float *g, const float *v, const int32_t *ai,
                            int32_t first, float *dst, float *db) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i d1 = _mm512_set1_epi32(F), d2 = _mm512_set1_epi32(W * F), d3 = _mm512_set1_epi32(W * F + F);
    float *dst1 = dst + F, *dst2 = dst + (size_t)Wd * F, *dst3 = dst2 + F;
    for (int c = 0; c < F; c += 16) {
        const __mmask16 m = fmask(F, c);
        __m512 gv = _mm512_maskz_loadu_ps(m, g + c);
        if (relu) gv = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, v + c),
                                                                   _mm512_setzero_ps(), _CMP_GT_OQ), gv);
        _mm512_mask_storeu_ps(db + c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, db + c), gv));
        // amv = argmax - index of the window's first element (0, F, W F or W F + F)
        const __m512i amv = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, ai + c),
                                             _mm512_add_epi32(_mm512_set1_epi32(first + c), lane));
        _mm512_mask_storeu_ps(dst + c, m, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(amv, _mm512_setzero_si512()), gv));
        _mm512_mask_storeu_ps(dst1 + c, m, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(amv, d1), gv));
        _mm512_mask_storeu_ps(dst2 + c, m, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(amv, d2), gv));
        _mm512_mask_storeu_ps(dst3 + c, m, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(amv, d3), gv));
    }
}

// route_img's 2x2 window (TargetSimdKernels.route_win): 16 filters at a time, the argmax slot
// from two mask compares; by filter, each lane its own list (entry f * OHW + fcnt[f], written
// always, counted when kept); by pixel, per pixel of the window its kept lanes compressed in
// filter order (filters stay ascending) and stored at once.
static AVX512 void route_win(const TargetRoute *r, const TargetRouteWin *w) {
    const int F = w->F, W = w->W, C = w->C, Wp = w->Wp;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i lane_ohw = _mm512_mullo_epi32(lane, _mm512_set1_epi32(w->OHW));
    const __m512i wf = _mm512_set1_epi32(W * F), one = _mm512_set1_epi32(1);
    const __m512i px0 = _mm512_set1_epi32((w->y0 * Wp + w->x0) * C);
    const int q00 = w->y0 * W + w->x0, qs[4] = {q00, q00 + 1, q00 + W, q00 + W + 1};
    const __m512i qstride = _mm512_set1_epi32(w->qstride);
    int32_t ev[16], pxv[16];
    float gv[16];
    for (int f0 = 0; f0 < F; f0 += 16) {
        const __mmask16 m = fmask(F, f0);
        const __m512 g = _mm512_maskz_loadu_ps(m, w->go + f0);
        const __mmask16 pass = w->relu ? _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, w->vo + f0),
                                                                 _mm512_setzero_ps(), _CMP_GT_OQ) : m;
        _mm512_mask_storeu_ps(w->db + f0, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, w->db + f0), _mm512_maskz_mov_ps(pass, g)));
        const __mmask16 keep = _mm512_mask_cmp_ps_mask(pass, g, _mm512_setzero_ps(), _CMP_NEQ_UQ); // NaN kept
        // d = (dy * W + dx) * F: the argmax relative to the window's first pixel, channel 0
        const __m512i d = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, w->ao + f0),
                                           _mm512_add_epi32(_mm512_set1_epi32(w->y0 * W * F + w->x0 * F + f0), lane));
        const __mmask16 mdy = _mm512_cmpgt_epi32_mask(d, _mm512_sub_epi32(wf, one));
        const __mmask16 mdx = _mm512_cmpgt_epi32_mask(_mm512_mask_sub_epi32(d, mdy, d, wf), _mm512_setzero_si512());
        const __m512i py = _mm512_mask_add_epi32(px0, mdy, px0, _mm512_set1_epi32(Wp * C));
        const __m512i px = _mm512_mask_add_epi32(py, mdx, py, _mm512_set1_epi32(C));
        const __m512i fc = _mm512_maskz_loadu_epi32(m, r->fcnt + f0);
        const __m512i e = _mm512_add_epi32(fc, _mm512_add_epi32(lane_ohw, _mm512_set1_epi32(f0 * w->OHW)));
        _mm512_mask_storeu_epi32(r->fcnt + f0, m, _mm512_mask_add_epi32(fc, keep, fc, one));
        _mm512_storeu_si512(ev, e);
        _mm512_storeu_si512(pxv, px);
        _mm512_storeu_ps(gv, g);
        const int nl = F - f0 >= 16 ? 16 : 8;
        for (int l = 0; l < nl; l++) { // scalar stores: faster than vpscatterdd here (Zen 5, measured)
            r->pix[ev[l]] = pxv[l];
            r->g[ev[l]] = gv[l];
        }
        if (!r->qw) continue;
        // by pixel: the kept lanes of each of the window's 4 pixels, compressed in lane (filter)
        // order and appended with one masked store (the AVX2 code writes every lane and counts
        // the kept ones: the same entries below the counts)
        const __m512i fw = _mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(f0)), qstride);
        const __mmask16 ms[4] = {keep & ~mdy & ~mdx, keep & ~mdy & mdx, keep & mdy & ~mdx, keep & mdy & mdx};
        for (int s = 0; s < 4; s++) {
            if (!ms[s]) continue;
            const int q = qs[s], nk = __builtin_popcount(ms[s]);
            const __mmask16 mk = (__mmask16)((1u << nk) - 1);
            _mm512_mask_storeu_epi32(r->qw + (size_t)q * F + r->qcnt[q], mk, _mm512_maskz_compress_epi32(ms[s], fw));
            _mm512_mask_storeu_ps(r->qg + (size_t)q * F + r->qcnt[q], mk, _mm512_maskz_compress_ps(ms[s], g));
            r->qcnt[q] += nk;
        }
    }
}

static const TargetSimdKernels AVX512_KERNELS = {"avx512", conv_img, conv_pool_img, conv_dw_img, gather,
                                                 GATHER_SEG_LEN, dx_row_c32k5, 32, 160,
                                                 dout_win, route_win};

const TargetSimdKernels *target_avx512_kernels(void) { return &AVX512_KERNELS; }

#else // no AVX-512 kernels in this build

int target_avx512_cpu_ok(void) { return 0; }
const TargetSimdKernels *target_avx512_kernels(void) { return NULL; }

#endif
