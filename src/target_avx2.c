// target_avx2.c: fast path of the target network for x86-64 CPUs with AVX2 and FMA (selected at
// run time by target.c; the reference path there stays the oracle it is tested against).
//
// Every convolution (forward, weight gradient, input gradient) is an implicit GEMM computed by one
// register-blocked micro-kernel: a tile of MR <= 6 rows x 16 (or 8) columns held in 12 AVX2
// accumulators, fed per step by two vector loads of the B row and MR broadcasts of A, 12 FMAs
// (the Haswell/Zen 6x16 sgemm kernel shape). A is never materialized (no im2col): each tile row
// has its own base pointer a_r into a zero-padded activation, and step t of the inner dimension
// reads A[r][t] = a_r[aoff[t]] and B[t] = B + boff[t] through offset tables built once per
// network, so every broadcast is one base + index load:
//   forward:         rows = output pixels, a_r = padded input at the pixel's window, steps =
//                    (ky, kx, c) window offsets; B = W^T packed in 16-column blocks.
//   weight gradient: rows = weight index (ky, kx, c), a_r = padded input + offset of that index,
//                    steps = the pixels of one image; B = dOut of the pixel.
//   input gradient:  the forward kernel on the padded dOut with the flipped kernel.
// Epilogues are fused: bias + ReLU on the forward output, += for the weight-gradient tiles.
//
// The network runs image by image through its conv blocks (conv [relu] [maxpool]), so that the
// per-image conv output, the padded dOut and the input gradient stay in L1/L2; the fc layers and
// the softmax run on all images at once with the reference functions of target.c. Stored for
// the backward pass (training only): each conv block's zero-padded input and the pool argmax.
// In a forward-only call every image reuses slot 0 of those buffers.
//
// The FMA kernels (conv_img, conv_pool_img, conv_dw_img, gather_avx2) are reached through a
// TargetSimdKernels table (target_avx2.h), so that src/target_avx512.c can run this same driver
// with 512-bit kernels; the pools stay AVX2 in both, and the 2x2-window cases of dout_img and
// route_img go to the table's dout_win / route_win where it has them (avx512).
//
// Blocking depends only on the architecture and never on the number of networks, threads or
// images in the call, so results are deterministic and identical for 1 or 2 threads, and one
// network's result does not depend on the other networks (or on the batch size, per image).
#include "target_avx2.h"

#include <string.h>

#include "common.h"
#include "target.h"

// ---- plan: the architecture cut into conv blocks and the fc tail, and the workspace layout ----

typedef struct {
    int layer;             // the conv's layer
    int H, W, C, F, k, p;  // input H x W x C, output H x W x F (SAME, stride 1), kernel k, pad p
    int Wp;                // padded input width W + 2p
    int K, Kb;             // inner dims: k*k*C (forward, weight gradient), k*k*F (input gradient)
    int relu;              // conv followed by relu
    int pk, py, px;        // pool window (0: none) and TF SAME pads
    int OH, OW;            // block output (after the pool)
    int dpad, Wd;          // padding of the per-image dOut (p when the input gradient is needed)
    size_t in_img;         // floats of one padded input image
    size_t in, am;         // ws offsets: padded inputs and pool argmax (int32), per image slot
    size_t wt, wf, bias;   // ws: packed W^T (K x 16-column blocks), flipped W (Kb x C blocks), bias
    size_t dwt, db;        // ws: weight-gradient accumulator (K x F, (ky, kx, c) rows), bias gradient
    size_t dy;             // ws: one image's gradient w.r.t. the block output (OH x OW x F)
    size_t fa, ia;         // ws (int32): window offsets, forward (K) and input gradient (Kb)
    size_t pin, pdo;       // ws (int32): pixel offsets (H*W) in the padded input and in dOut
    int fused;             // conv and 2x2 pool in one pass (conv_pool_img): short K, no clipped windows
    int sparse;            // backward through the pool routed (see route_img): dW (and dX) from
                           // the argmax pixels only; dwt then holds dW filter-major (F x K)
} Block;

typedef struct {
    int nb;                // conv blocks
    Block b[HT_MAX_OPS];
    int fc0;               // first fc op
    size_t D;              // fc input features (last block output, or the image)
    size_t fcin;           // ws: fc input (M x D); unused when nb == 0 (the images are read)
    size_t act[HT_MAX_OPS];// ws: output of fc op i (relu ops share it)
    size_t iota;           // ws (int32): 16 t, for t < max K, Kb
    size_t conv_out;       // ws: one image's conv output before the pool
    size_t dout;           // ws: one image's padded dOut
    size_t g[2];           // ws: fc gradients (M x max width)
    size_t route;          // ws: one image's routed gradients (Route, see route_img)
    size_t dxpad;          // ws: one image's padded input gradient of a sparse block
    size_t total;
} Plan;

static size_t r16(size_t n) { return (n + 15) & ~(size_t)15; }

int target_avx2_arch_ok(const TargetArch *a, const char **why) {
    const char *w = NULL;
    int i = 0;
    while (i < a->n_ops && a->ops[i].type == OP_CONV) {
        const TargetOp *op = &a->ops[i];
        if (op->out_c % 8) { w = "conv filters not a multiple of 8"; break; }
        if (op->out_h != op->in_h || op->out_w != op->in_w) { w = "conv not SAME stride 1"; break; }
        i++;
        if (i < a->n_ops && a->ops[i].type == OP_RELU) i++;
        if (i < a->n_ops && a->ops[i].type == OP_MAXPOOL) i++;
    }
    if (!w && (i >= a->n_ops || a->ops[i].type != OP_FC)) w = "ops after the conv blocks are not fc";
    for (; !w && i < a->n_ops; i++)
        if (a->ops[i].type != OP_FC && a->ops[i].type != OP_RELU) w = "conv or pool after an fc layer";
        else if (a->ops[i].type == OP_RELU && a->ops[i - 1].type != OP_FC) w = "relu not after fc";
    if (!w && a->ops[a->n_ops - 1].type != OP_FC) w = "last op is not fc";
    if (why) *why = w;
    return w == NULL;
}

// One image's routed gradients of a sparse block (route_img): see TargetRoute (target_avx2.h).
typedef TargetRoute Route;

static size_t route_floats(const Block *B) {
    const size_t ne = (size_t)B->OH * B->OW * B->F, np = (size_t)B->H * B->W;
    return 2 * r16(ne) + r16((size_t)B->F) + (B->dpad ? 2 * r16(np * B->F) + r16(np) : 0);
}

static Route route_map(const Block *B, float *w) {
    const size_t ne = (size_t)B->OH * B->OW * B->F, np = (size_t)B->H * B->W;
    Route r;
    memset(&r, 0, sizeof(r));
    r.pix = (int32_t *)w; w += r16(ne);
    r.g = w; w += r16(ne);
    r.fcnt = (int32_t *)w; w += r16((size_t)B->F);
    if (!B->dpad) return r;
    r.qw = (int32_t *)w; w += r16(np * B->F);
    r.qg = w; w += r16(np * B->F);
    r.qcnt = (int32_t *)w;
    return r;
}

static void make_plan(const TargetArch *a, int M, int routed, Plan *P) {
    memset(P, 0, sizeof(*P));
    int i = 0;
    size_t off = 0, conv_out = 0, dout = 0, gmax = (size_t)a->classes, kmax = 0, route = 0, dxpad = 0;
    while (a->ops[i].type == OP_CONV) {
        Block *B = &P->b[P->nb++];
        const TargetOp *op = &a->ops[i];
        B->layer = op->layer;
        B->H = op->in_h; B->W = op->in_w; B->C = op->in_c; B->F = op->out_c; B->k = op->kernel;
        B->p = (B->k - 1) / 2; B->Wp = B->W + 2 * B->p;
        B->K = B->k * B->k * B->C; B->Kb = B->k * B->k * B->F;
        B->OH = B->H; B->OW = B->W;
        i++;
        if (a->ops[i].type == OP_RELU) { B->relu = 1; i++; }
        if (a->ops[i].type == OP_MAXPOOL) {
            const TargetOp *po = &a->ops[i++];
            B->pk = po->kernel; B->OH = po->out_h; B->OW = po->out_w;
            B->py = (B->OH * B->pk - B->H) / 2; B->px = (B->OW * B->pk - B->W) / 2;
        }
        // Fused tiles have 4 rows (8 accumulators: FMA-latency bound on long sums); measured: a
        // win for conv1 (K = 25: conv + pool 35% faster), a 10-15% loss for conv2 (K = 800).
        B->fused = B->pk == 2 && B->H % 2 == 0 && B->W % 2 == 0 && B->K < 128;
        B->in_img = (size_t)(B->H + 2 * B->p) * B->Wp * B->C;
        B->dpad = P->nb > 1 ? B->p : 0;
        B->Wd = B->W + 2 * B->dpad;
        B->in = off; off += r16((size_t)M * B->in_img);
        B->am = off; if (B->pk) off += r16((size_t)M * B->OH * B->OW * B->F);
        B->wt = off; off += (size_t)B->K * r16((size_t)B->F);
        B->wf = off; if (B->dpad) off += (size_t)B->Kb * r16((size_t)B->C);
        B->bias = off; off += r16((size_t)B->F);
        B->dwt = off; off += r16((size_t)B->K * B->F);
        B->db = off; off += r16((size_t)B->F);
        B->dy = off; off += r16((size_t)B->OH * B->OW * B->F);
        B->fa = off; off += r16((size_t)B->K);
        B->ia = off; if (B->dpad) off += r16((size_t)B->Kb);
        B->pin = off; off += r16((size_t)B->H * B->W);
        B->pdo = off; off += r16((size_t)B->H * B->W);
        // routed: window rows of whole vectors (C % 8 == 0). (A variant for the first block's
        // 1-channel rows of 5 floats, with masked loads, measured slower than the dense kernel:
        // building its 6,272 entries per image costs more than the 4x fewer products save.)
        B->sparse = routed && B->pk && B->C % 8 == 0;
        if (B->sparse && route_floats(B) > route) route = route_floats(B);
        if (B->sparse && B->dpad && B->in_img > dxpad) dxpad = B->in_img;
        if ((size_t)B->K > kmax) kmax = (size_t)B->K;
        if ((size_t)B->Kb > kmax) kmax = (size_t)B->Kb;
        if (B->pk && (size_t)B->H * B->W * B->F > conv_out) conv_out = (size_t)B->H * B->W * B->F;
        const size_t d = (size_t)(B->H + 2 * B->dpad) * B->Wd * B->F;
        if (d > dout) dout = d;
    }
    P->fc0 = i;
    P->D = P->nb ? (size_t)P->b[P->nb - 1].OH * P->b[P->nb - 1].OW * P->b[P->nb - 1].F : (size_t)a->in_size;
    if (P->D > gmax) gmax = P->D;
    P->fcin = off; if (P->nb) off += r16((size_t)M * P->D);
    for (; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        if (op->type == OP_RELU) { P->act[i] = P->act[i - 1]; continue; }
        P->act[i] = off; off += r16((size_t)M * op->out_c);
        if ((size_t)op->out_c > gmax) gmax = (size_t)op->out_c;
    }
    P->iota = off; off += r16(kmax);
    P->conv_out = off; off += r16(conv_out);
    P->dout = off; off += r16(dout);
    for (int g = 0; g < 2; g++) { P->g[g] = off; off += r16((size_t)M * gmax); }
    P->route = off; off += route;
    P->dxpad = off; off += r16(dxpad);
    P->total = off;
}

size_t target_avx2_ws_floats(const TargetArch *a, int max_images) {
    Plan P;
    make_plan(a, max_images, 1, &P); // the routed backward needs more
    return P.total;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE inline __attribute__((always_inline))

int target_avx2_cpu_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// ---- the micro-kernel ----

typedef struct {
    const float *a[6];            // row r reads A[r][t] = a[r][aoff[t]]
    float *c[6];                  // output row pointers (already offset to the tile's first column)
    const float *B;               // B[t][0..8*NV) = B[boff[t] + ...]
    const int32_t *aoff, *boff;   // per-step offsets (tables built once per network)
    int T;                        // steps (the inner dimension)
    const float *bias;            // forward: bias of the tile's columns, or NULL
    int relu, add;                // epilogue: max(0, .); accumulate into c
} Tile;

static AVX2 INLINE void epi(int add, __m256 bias, int relu, float *dst, __m256 y) {
    if (add) y = _mm256_add_ps(_mm256_loadu_ps(dst), y);
    y = _mm256_add_ps(y, bias);
    if (relu) y = _mm256_max_ps(y, _mm256_setzero_ps()); // max(NaN, 0) = 0, as the reference
    _mm256_storeu_ps(dst, y);
}

// MR rows x NV vectors of 8 columns. Written out row by row so that the accumulators are plain
// variables the compiler keeps in registers (12 for 6 x 16, plus 2 for B and 1 broadcast). The
// per-step offsets come from tables, so each broadcast is one instruction with base + index
// addressing and no per-row pointer arithmetic.
#define ROW_DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps(); \
                    const float *a##r = t->a[MR > r ? r : 0]
#define ROW_FMA(r) if (MR > r) { const __m256 x = _mm256_broadcast_ss(a##r + o);            \
                    c##r##0 = _mm256_fmadd_ps(x, b0, c##r##0);                             \
                    if (NV > 1) c##r##1 = _mm256_fmadd_ps(x, b1, c##r##1); }
#define ROW_OUT(r) if (MR > r) { epi(add, bias0, relu, c[r], c##r##0);                     \
                    if (NV > 1) epi(add, bias1, relu, c[r] + 8, c##r##1); }

// The tile's accumulation, shared by tile_body and tile_pool_body: declares the accumulators
// c<r><v> (rows r < MR, vectors v < NV) and runs the T steps.
#define TILE_ACCUMULATE(t)                                                                     \
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3); ROW_DECL(4); ROW_DECL(5);             \
    for (int j = 0; j < (t)->T; j++) {                                                         \
        const float *b = (t)->B + (t)->boff[j];                                                \
        const ptrdiff_t o = (t)->aoff[j];                                                      \
        const __m256 b0 = _mm256_loadu_ps(b);                                                  \
        const __m256 b1 = NV > 1 ? _mm256_loadu_ps(b + 8) : b0;                                \
        ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)                      \
    }

static AVX2 INLINE void tile_body(const Tile *t, const int MR, const int NV) {
    TILE_ACCUMULATE(t)
    // epilogue: fields copied to locals first (the stores below could alias *t otherwise)
    float *c[6];
    for (int r = 0; r < MR; r++) c[r] = t->c[r];
    const int add = t->add, relu = t->relu;
    const __m256 bias0 = t->bias ? _mm256_loadu_ps(t->bias) : _mm256_setzero_ps();
    const __m256 bias1 = t->bias && NV > 1 ? _mm256_loadu_ps(t->bias + 8) : _mm256_setzero_ps();
    ROW_OUT(0) ROW_OUT(1) ROW_OUT(2) ROW_OUT(3) ROW_OUT(4) ROW_OUT(5)
}

#define TILE_FN(MR, NV) static AVX2 void tile_##MR##_##NV(const Tile *t) { tile_body(t, MR, NV); }
TILE_FN(1, 1) TILE_FN(2, 1) TILE_FN(3, 1) TILE_FN(4, 1) TILE_FN(5, 1) TILE_FN(6, 1)
TILE_FN(1, 2) TILE_FN(2, 2) TILE_FN(3, 2) TILE_FN(4, 2) TILE_FN(5, 2) TILE_FN(6, 2)
typedef void (*TileFn)(const Tile *);
static const TileFn TILES[7][3] = {
    {NULL, NULL, NULL},
    {NULL, tile_1_1, tile_1_2}, {NULL, tile_2_1, tile_2_2}, {NULL, tile_3_1, tile_3_2},
    {NULL, tile_4_1, tile_4_2}, {NULL, tile_5_1, tile_5_2}, {NULL, tile_6_1, tile_6_2},
};

// Rows are cut into ceil(m / 6) tiles of near-equal size (6 and 5, say, rather than 6 and 1).
#define FOR_TILES(m, r0, mr)                                                                   \
    for (int nt_ = ((m) + 5) / 6, q_ = (m) / nt_, e_ = (m) % nt_, ti_ = 0, r0 = 0, mr = q_ + (e_ > 0); \
         ti_ < nt_; r0 += mr, ti_++, mr = q_ + (ti_ < e_))
// Column blocks of 16, then one of 8 if the width is 8 mod 16.
#define COL_NB(F, col0) ((F) - (col0) >= 16 ? 16 : 8)

// conv + bias + [relu] + 2x2 max pool of one 2x2 window, fused: the tile's 4 rows are the
// window's pixels in (h, w) order, and the epilogue takes their maximum (the reference's scan:
// strict >, so ties and NaN keep the earlier pixel; max_ps(v, best) is "v > best ? v : best")
// and its index (y*W + x)*F + c into am, instead of storing the 4 pixels for pool_img.
// t->c[0] is the pooled output, t->c[1] (as int32) the argmax or NULL; first = the index of
// pixel 0, channel col0; the other pixels are +F, +W*F, +W*F+F.
static AVX2 INLINE void tile_pool_body(const Tile *t, int32_t first, int W, int F, const int NV) {
    const int MR = 4;
    TILE_ACCUMULATE(t)
    float *out = t->c[0];
    int32_t *am = (int32_t *)t->c[1];
    const int relu = t->relu;
    const __m256 zero = _mm256_setzero_ps();
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int32_t d1 = F, d2 = W * F, d3 = W * F + F;
#define POOL_OUT(v)                                                                                 \
    if (NV > v) {                                                                                   \
        const __m256 bias = _mm256_loadu_ps(t->bias + 8 * v);                                      \
        __m256 y0 = _mm256_add_ps(c0##v, bias), y1 = _mm256_add_ps(c1##v, bias);                   \
        __m256 y2 = _mm256_add_ps(c2##v, bias), y3 = _mm256_add_ps(c3##v, bias);                   \
        if (relu) { y0 = _mm256_max_ps(y0, zero); y1 = _mm256_max_ps(y1, zero);                   \
                    y2 = _mm256_max_ps(y2, zero); y3 = _mm256_max_ps(y3, zero); }                  \
        const __m256i i0 = _mm256_add_epi32(_mm256_set1_epi32(first + 8 * v), lane);               \
        __m256 best = y0;                                                                           \
        __m256i bi = i0;                                                                            \
        if (am) bi = _mm256_blendv_epi8(bi, _mm256_add_epi32(i0, _mm256_set1_epi32(d1)),            \
                                        _mm256_castps_si256(_mm256_cmp_ps(y1, best, _CMP_GT_OQ))); \
        best = _mm256_max_ps(y1, best);                                                             \
        if (am) bi = _mm256_blendv_epi8(bi, _mm256_add_epi32(i0, _mm256_set1_epi32(d2)),            \
                                        _mm256_castps_si256(_mm256_cmp_ps(y2, best, _CMP_GT_OQ))); \
        best = _mm256_max_ps(y2, best);                                                             \
        if (am) bi = _mm256_blendv_epi8(bi, _mm256_add_epi32(i0, _mm256_set1_epi32(d3)),            \
                                        _mm256_castps_si256(_mm256_cmp_ps(y3, best, _CMP_GT_OQ))); \
        best = _mm256_max_ps(y3, best);                                                             \
        _mm256_storeu_ps(out + 8 * v, best);                                                        \
        if (am) _mm256_storeu_si256((__m256i *)(am + 8 * v), bi);                                   \
    }
    POOL_OUT(0) POOL_OUT(1)
#undef POOL_OUT
}

static AVX2 void tile_pool_1(const Tile *t, int32_t first, int W, int F) { tile_pool_body(t, first, W, F, 1); }
static AVX2 void tile_pool_2(const Tile *t, int32_t first, int W, int F) { tile_pool_body(t, first, W, F, 2); }

// ---- offset tables ----

// Forward (and input-gradient) conv over a padded input of width Wp and C channels: step t =
// (ky, kx, c) reads the window element at (ky*Wp + kx)*C + c from the pixel's window origin.
static void table_window(int k, int Wp, int C, int32_t *off) {
    for (int t = 0; t < k * k * C; t++) off[t] = (int32_t)(((t / (k * C)) * Wp + t / C % k) * C + t % C);
}
// Pixels (y, x) of an H x W image stored at offset (pad, pad) of rows of width rw, C channels.
static void table_pixels(int H, int W, int rw, int C, int pad, int32_t *off) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) off[y * W + x] = (int32_t)(((y + pad) * rw + x + pad) * C);
}

// ---- conv pieces, one image ----

// out (H x W x F; pixel (y, x) at out + y*ors + x*F) = [relu](bias + conv SAME) of the padded
// input in ((H+k-1) x Wp x C), K = k*k*C steps with window offsets win; the packed kernel wp
// holds column block col0 (width 16 or 8) as K rows of stride 16 at wp + col0*K, and iota16[t]
// = 16 t.
static AVX2 void conv_img(int H, int W, int C, int F, int K, int Wp, const float *in,
                          const int32_t *win, const int32_t *iota16, const float *wp,
                          const float *bias, int relu, float *out, ptrdiff_t ors) {
    const int npix = H * W;
    Tile t;
    t.aoff = win; t.boff = iota16; t.T = K; t.relu = relu; t.add = 0;
    float *cpix[6];
    int y = 0, x = 0; // pixel of the next tile row (no divisions in the tile loop)
    FOR_TILES(npix, q0, mr) {
        for (int r = 0; r < mr; r++, x++) {
            if (x == W) { x = 0; y++; }
            t.a[r] = in + ((size_t)y * Wp + x) * C;
            cpix[r] = out + y * ors + (ptrdiff_t)x * F;
        }
        for (int col0 = 0, nb; col0 < F; col0 += nb) {
            nb = COL_NB(F, col0);
            t.B = wp + (size_t)col0 * K;
            t.bias = bias ? bias + col0 : NULL;
            for (int r = 0; r < mr; r++) t.c[r] = cpix[r] + col0;
            TILES[mr][nb / 8](&t);
        }
    }
}

// dwt (K x F; row j = weight (ky, kx, c), the transposed theta layout) += im2col(in)^T . dOut
// over one image (add = 0: stores): rows = weight index j, columns = filters, steps = the H*W
// pixels. in is the padded input ((H+k-1) x Wp x C) with pixel offsets pin; dout (F channels)
// has pixel offsets pdo. (Rows = filters and columns = input channels measured the same.)
static AVX2 void conv_dw_img(int H, int W, int C, int F, int k, int Wp, const float *in,
                             const int32_t *pin, const float *dout, const int32_t *pdo, float *dwt,
                             int add) {
    const int K = k * k * C;
    Tile t;
    t.aoff = pin; t.boff = pdo; t.T = H * W; t.bias = NULL; t.relu = 0; t.add = add;
    float *crow[6];
    int ky = 0, kx = 0, c = 0; // (ky, kx, c) of the next tile row
    FOR_TILES(K, j0, mr) {
        for (int r = 0; r < mr; r++) {
            t.a[r] = in + ((size_t)ky * Wp + kx) * C + c;
            crow[r] = dwt + (size_t)(j0 + r) * F;
            if (++c == C) { c = 0; if (++kx == k) { kx = 0; ky++; } }
        }
        for (int col0 = 0, nb; col0 < F; col0 += nb) {
            nb = COL_NB(F, col0);
            t.B = dout + col0;
            for (int r = 0; r < mr; r++) t.c[r] = crow[r] + col0;
            TILES[mr][nb / 8](&t);
        }
    }
}

// Window [y0, y1) x [x0, x1) of pool output o (TF SAME: starts at o*k - pad, clipped).
static INLINE void pool_window(const Block *B, int oy, int ox, int *y0, int *y1, int *x0, int *x1) {
    const int k = B->pk, ys = oy * k - B->py, xs = ox * k - B->px;
    *y0 = ys < 0 ? 0 : ys; *y1 = ys + k > B->H ? B->H : ys + k;
    *x0 = xs < 0 ? 0 : xs; *x1 = xs + k > B->W ? B->W : xs + k;
}

// Max pool SAME (window = stride = pk) of one image's conv output in (H x W x F), output pixel
// (oy, ox) at out + oy*ors + ox*F; am (OH x OW x F, optional) gets the index (y*W + x)*F + c of
// each output's first maximum in (h, w) order. The scan is the reference's (strict >, so NaN and
// ties keep the earlier element): best = max_ps(v, best) is exactly "v > best ? v : best".
static AVX2 void pool_img(const Block *B, const float *in, float *out, ptrdiff_t ors, int32_t *am) {
    const int W = B->W, F = B->F;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int oy = 0; oy < B->OH; oy++)
        for (int ox = 0; ox < B->OW; ox++) {
            int y0, y1, x0, x1;
            pool_window(B, oy, ox, &y0, &y1, &x0, &x1);
            float *o = out + oy * ors + (ptrdiff_t)ox * F;
            int32_t *ai = am ? am + ((size_t)oy * B->OW + ox) * F : NULL;
            const int first = (y0 * W + x0) * F;
            if (y1 - y0 == 2 && x1 - x0 == 2) { // the common case, unrolled
                const float *p = in + first;
                const int d[4] = {0, F, W * F, W * F + F};
                for (int c = 0; c < F; c += 8) {
                    __m256 best = _mm256_loadu_ps(p + c);
                    const __m256i i0 = _mm256_add_epi32(_mm256_set1_epi32(first + c), lane);
                    __m256i bi = i0;
                    for (int q = 1; q < 4; q++) {
                        const __m256 v = _mm256_loadu_ps(p + d[q] + c);
                        if (ai)
                            bi = _mm256_blendv_epi8(bi, _mm256_add_epi32(i0, _mm256_set1_epi32(d[q])),
                                                    _mm256_castps_si256(_mm256_cmp_ps(v, best, _CMP_GT_OQ)));
                        best = _mm256_max_ps(v, best);
                    }
                    _mm256_storeu_ps(o + c, best);
                    if (ai) _mm256_storeu_si256((__m256i *)(ai + c), bi);
                }
                continue;
            }
            for (int c = 0; c < F; c += 8) {
                __m256 best = _mm256_loadu_ps(in + first + c);
                __m256i bi = _mm256_add_epi32(_mm256_set1_epi32(first + c), lane);
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        const int i = (y * W + x) * F + c;
                        const __m256 v = _mm256_loadu_ps(in + i);
                        if (ai)
                            bi = _mm256_blendv_epi8(bi, _mm256_add_epi32(_mm256_set1_epi32(i), lane),
                                                    _mm256_castps_si256(_mm256_cmp_ps(v, best, _CMP_GT_OQ)));
                        best = _mm256_max_ps(v, best);
                    }
                _mm256_storeu_ps(o + c, best);
                if (ai) _mm256_storeu_si256((__m256i *)(ai + c), bi);
            }
        }
}

// conv + bias + [relu] + 2x2 max pool of one image (H and W even, so every window is a whole
// 2x2 block): the pooled output (pixel (oy, ox) at out + oy*ors + ox*F) and, if am is not NULL,
// the argmax as pool_img writes them, without the conv output ever being stored.
static AVX2 void conv_pool_img(int H, int W, int C, int F, int K, int Wp, const float *in,
                               const int32_t *win, const int32_t *iota16, const float *wp,
                               const float *bias, int relu, float *out, ptrdiff_t ors, int32_t *am) {
    Tile t;
    t.aoff = win; t.boff = iota16; t.T = K; t.relu = relu; t.add = 0;
    for (int oy = 0; oy < H / 2; oy++)
        for (int ox = 0; ox < W / 2; ox++) {
            const int y = 2 * oy, x = 2 * ox;
            t.a[0] = in + ((size_t)y * Wp + x) * C;
            t.a[1] = t.a[0] + C;
            t.a[2] = t.a[0] + (size_t)Wp * C;
            t.a[3] = t.a[2] + C;
            float *o = out + oy * ors + (ptrdiff_t)ox * F;
            int32_t *ai = am ? am + ((size_t)oy * (W / 2) + ox) * F : NULL;
            for (int col0 = 0, nb; col0 < F; col0 += nb) {
                nb = COL_NB(F, col0);
                t.B = wp + (size_t)col0 * K;
                t.bias = bias + col0;
                t.c[0] = o + col0;
                t.c[1] = ai ? (float *)(ai + col0) : NULL;
                const int32_t first = (y * W + x) * F + col0;
                if (nb == 16) tile_pool_2(&t, first, W, F);
                else tile_pool_1(&t, first, W, F);
            }
        }
}

// One image's gradient w.r.t. the conv output (before relu and pool), written into dout
// ((H+2 dpad) x Wd x F, zero border) from dy (OH x OW x F, gradient w.r.t. the block output):
// relu backward keeps dy where the block output val (pixel (oy, ox) at val + oy*ors + ox*F) is
// > 0 (the max of relu outputs is > 0 exactly when the relu output at the argmax is), and pool
// backward sends it to the argmax of its window (windows tile the conv output, so every pixel is
// written once). Adds the image's sum over pixels to db (the bias gradient).
static AVX2 void dout_img(const TargetSimdKernels *kern, const Block *B, const float *dy, const float *val,
                          ptrdiff_t ors, const int32_t *am, float *dout, float *db) {
    const int H = B->H, W = B->W, F = B->F, dp = B->dpad, Wd = B->Wd;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 zero = _mm256_setzero_ps();
    if (dp) {
        const size_t row = (size_t)Wd * F;
        memset(dout, 0, (size_t)dp * row * sizeof(float));
        memset(dout + (size_t)(H + dp) * row, 0, (size_t)dp * row * sizeof(float));
        for (int y = 0; y < H; y++) {
            memset(dout + (size_t)(y + dp) * row, 0, (size_t)dp * F * sizeof(float));
            memset(dout + (size_t)(y + dp) * row + (size_t)(W + dp) * F, 0, (size_t)dp * F * sizeof(float));
        }
    }
    float *d0 = dout + ((size_t)dp * Wd + dp) * F; // pixel (0, 0)
    for (int oy = 0; oy < B->OH; oy++)
        for (int ox = 0; ox < B->OW; ox++) {
            const float *g = dy + ((size_t)oy * B->OW + ox) * F;
            const float *v = val + oy * ors + (ptrdiff_t)ox * F;
            int y0 = oy, y1 = oy + 1, x0 = ox, x1 = ox + 1;
            if (B->pk) pool_window(B, oy, ox, &y0, &y1, &x0, &x1);
            const int32_t *ai = B->pk ? am + ((size_t)oy * B->OW + ox) * F : NULL;
            if (ai && y1 - y0 == 2 && x1 - x0 == 2) { // the common case, unrolled
                const int first = (y0 * W + x0) * F, d[4] = {0, F, W * F, W * F + F};
                float *dst = d0 + ((size_t)y0 * Wd + x0) * F;
                if (kern->dout_win) {
                    kern->dout_win(F, W, Wd, B->relu, g, v, ai, first, dst, db);
                    continue;
                }
                const int dd[4] = {0, F, Wd * F, Wd * F + F};
                for (int c = 0; c < F; c += 8) {
                    __m256 gv = _mm256_loadu_ps(g + c);
                    if (B->relu) gv = _mm256_and_ps(gv, _mm256_cmp_ps(_mm256_loadu_ps(v + c), zero, _CMP_GT_OQ));
                    _mm256_storeu_ps(db + c, _mm256_add_ps(_mm256_loadu_ps(db + c), gv));
                    const __m256i amv = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(ai + c)),
                                                         _mm256_add_epi32(_mm256_set1_epi32(first + c), lane));
                    for (int q = 0; q < 4; q++) // amv = argmax - index of the window's first element
                        _mm256_storeu_ps(dst + dd[q] + c, _mm256_and_ps(gv, _mm256_castsi256_ps(
                                             _mm256_cmpeq_epi32(amv, _mm256_set1_epi32(d[q])))));
                }
                continue;
            }
            for (int c = 0; c < F; c += 8) {
                __m256 gv = _mm256_loadu_ps(g + c);
                if (B->relu) gv = _mm256_and_ps(gv, _mm256_cmp_ps(_mm256_loadu_ps(v + c), zero, _CMP_GT_OQ));
                _mm256_storeu_ps(db + c, _mm256_add_ps(_mm256_loadu_ps(db + c), gv));
                const __m256i amv = ai ? _mm256_loadu_si256((const __m256i *)(ai + c)) : lane;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        __m256 d = gv;
                        if (ai) {
                            const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((y * W + x) * F + c), lane);
                            d = _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(amv, idx)));
                        }
                        _mm256_storeu_ps(d0 + ((size_t)y * Wd + x) * F + c, d);
                    }
            }
        }
}

// ---- backward through a max pool, routed ----
// Max-pool backward sends each pooled gradient to one conv output pixel (the argmax), so 3/4 of
// a 2x2-pooled conv's output gradient dOut is exactly zero, and the dense weight- and
// input-gradient GEMMs spend 3/4 of their products on zeros. A sparse block instead lists, per
// image and filter, the nonzero routed gradients (pixel, g) and computes
//   dW_f[(ky, kx, c)] += sum over the list of g * in_pad[window of pixel + (ky, kx, c)]
//   dIn_pad[window of pixel + (ky, kx, c)] += g * W_f[(ky, kx, c)]
// For a fixed ky both (kx, c) runs are k*C contiguous floats, so every term is a vector FMA over
// a contiguous row. The sums are those of the dense path with the zero terms left out, in a fixed
// order (dW: per filter, pooled outputs in row-major order; dIn: per conv output pixel in
// row-major order, its filters ascending), so results stay deterministic.

// Fills r with the nonzero routed gradients of one image (relu mask applied: the block output
// val > 0) and adds each routed g to db[f] in pooled-output order, as dout_img does. Eight filters
// at a time (F % 8 == 0 on this path): the argmax slot, the window offset and the keep decision
// are computed in vectors, then the lanes are appended to their lists without branches (written
// always, counted when kept: the decisions are data and would be mispredicted half the time).
static AVX2 void route_img(const TargetSimdKernels *kern, const Block *B, const float *dy, const float *val,
                           ptrdiff_t ors, const int32_t *am, float *db, Route *r) {
    const int F = B->F, W = B->W, C = B->C, Wp = B->Wp, OW = B->OW, OHW = B->OH * B->OW;
    const int32_t qstride = B->K + 1;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 zero = _mm256_setzero_ps();
    int32_t pxv[8], qv[8], keepv[8];
    float gv[8];
    memset(r->fcnt, 0, (size_t)F * sizeof(int32_t));
    if (B->dpad) memset(r->qcnt, 0, (size_t)B->H * W * sizeof(int32_t));
    for (int o = 0; o < OHW; o++) {
        const int oy = o / OW, ox = o % OW;
        int y0, y1, x0, x1;
        pool_window(B, oy, ox, &y0, &y1, &x0, &x1);
        const int fast = y1 - y0 == 2 && x1 - x0 == 2; // 2x2: the slot from 2 compares, no division
        const float *go = dy + (size_t)o * F, *vo = val + oy * ors + (ptrdiff_t)ox * F;
        const int32_t *ao = am + (size_t)o * F;
        if (fast && kern->route_win) {
            const TargetRouteWin w = {F, W, C, Wp, OHW, B->relu, y0, x0, qstride, go, vo, ao, db};
            kern->route_win(r, &w);
            continue;
        }
        for (int f0 = 0; f0 < F; f0 += 8) {
            const __m256 g = _mm256_loadu_ps(go + f0);
            const __m256 pass = B->relu ? _mm256_cmp_ps(_mm256_loadu_ps(vo + f0), zero, _CMP_GT_OQ)
                                        : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
            _mm256_storeu_ps(db + f0, _mm256_add_ps(_mm256_loadu_ps(db + f0), _mm256_and_ps(pass, g)));
            const __m256 keep = _mm256_and_ps(pass, _mm256_cmp_ps(g, zero, _CMP_NEQ_UQ)); // NaN kept
            // d = (dy * W + dx) * F: the argmax relative to the window's first pixel, channel 0
            const __m256i d = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(ao + f0)),
                                               _mm256_add_epi32(_mm256_set1_epi32((y0 * W + x0) * F + f0), lane));
            if (fast) {
                const __m256i dyy = _mm256_srli_epi32(_mm256_cmpgt_epi32(d, _mm256_set1_epi32(W * F - 1)), 31);
                const __m256i rest = _mm256_sub_epi32(d, _mm256_mullo_epi32(dyy, _mm256_set1_epi32(W * F)));
                const __m256i dxx = _mm256_srli_epi32(_mm256_cmpgt_epi32(rest, _mm256_setzero_si256()), 31);
                const __m256i rel = _mm256_add_epi32(_mm256_mullo_epi32(dyy, _mm256_set1_epi32(Wp * C)),
                                                     _mm256_mullo_epi32(dxx, _mm256_set1_epi32(C)));
                _mm256_storeu_si256((__m256i *)pxv, _mm256_add_epi32(rel, _mm256_set1_epi32((y0 * Wp + x0) * C)));
                const __m256i qq = _mm256_add_epi32(_mm256_mullo_epi32(dyy, _mm256_set1_epi32(W)), dxx);
                _mm256_storeu_si256((__m256i *)qv, _mm256_add_epi32(qq, _mm256_set1_epi32(y0 * W + x0)));
            } else {
                int32_t dv[8];
                _mm256_storeu_si256((__m256i *)dv, d);
                for (int l = 0; l < 8; l++) {
                    const int32_t dyy = dv[l] / (W * F), dxx = (dv[l] - dyy * W * F) / F;
                    pxv[l] = ((y0 + dyy) * Wp + x0 + dxx) * C;
                    qv[l] = (y0 + dyy) * W + x0 + dxx;
                }
            }
            _mm256_storeu_ps(gv, g);
            _mm256_storeu_si256((__m256i *)keepv, _mm256_srli_epi32(_mm256_castps_si256(keep), 31));
            for (int l = 0; l < 8; l++) {
                const int f = f0 + l, e = f * OHW + r->fcnt[f];
                r->pix[e] = pxv[l];
                r->g[e] = gv[l];
                r->fcnt[f] += keepv[l];
            }
            if (!B->dpad) continue;
            for (int l = 0; l < 8; l++) {
                const int q = qv[l], eq = q * F + r->qcnt[q];
                r->qw[eq] = (f0 + l) * qstride;
                r->qg[eq] = gv[l];
                r->qcnt[q] += keepv[l];
            }
        }
    }
}

// acc (NV vectors) = sum over the entries of g[e] * a[pix[e] + 8v ...]; dst[8v ...] += acc.
// The accumulators are named variables (GCC -O2 does not unroll a loop over an array of them and
// would keep them in memory).
#define ACC_DECL(v) __m256 q##v = _mm256_setzero_ps()
#define ACC_FMA(v) if (NV > v) q##v = _mm256_fmadd_ps(ge, _mm256_loadu_ps(ae + 8 * v), q##v)
#define ACC_OUT(v) if (NV > v) _mm256_storeu_ps(dst + 8 * v, _mm256_add_ps(_mm256_loadu_ps(dst + 8 * v), q##v))
static AVX2 INLINE void gather_seg(const float *a, const int32_t *pix, const float *g, int n, float *dst,
                                   const int NV) {
    ACC_DECL(0); ACC_DECL(1); ACC_DECL(2); ACC_DECL(3); ACC_DECL(4); ACC_DECL(5); ACC_DECL(6); ACC_DECL(7);
    for (int e = 0; e < n; e++) {
        const __m256 ge = _mm256_broadcast_ss(g + e);
        const float *ae = a + pix[e];
        ACC_FMA(0); ACC_FMA(1); ACC_FMA(2); ACC_FMA(3); ACC_FMA(4); ACC_FMA(5); ACC_FMA(6); ACC_FMA(7);
    }
    ACC_OUT(0); ACC_OUT(1); ACC_OUT(2); ACC_OUT(3); ACC_OUT(4); ACC_OUT(5); ACC_OUT(6); ACC_OUT(7);
}

// gather_seg with the number of vectors (1..8) as a constant: the gather kernel (len <= 64)
static AVX2 void gather_avx2(const float *a, const int32_t *pix, const float *g, int n, float *dst, int len) {
    switch (len / 8) {
    case 8: gather_seg(a, pix, g, n, dst, 8); break;
    case 7: gather_seg(a, pix, g, n, dst, 7); break;
    case 6: gather_seg(a, pix, g, n, dst, 6); break;
    case 5: gather_seg(a, pix, g, n, dst, 5); break;
    case 4: gather_seg(a, pix, g, n, dst, 4); break;
    case 3: gather_seg(a, pix, g, n, dst, 3); break;
    case 2: gather_seg(a, pix, g, n, dst, 2); break;
    default: gather_seg(a, pix, g, n, dst, 1); break;
    }
}


// dwf (F x K, filter-major (ky, kx, c)) += the routed weight gradient of one image; in = the
// image's padded input. Each filter's segments of up to 64 floats of a window row are summed over
// its entries in 8 accumulators. (Measured: bands of pooled rows, to keep the input rows in L1,
// cost more in per-segment overhead than they save.)
static void sparse_dw(const TargetSimdKernels *kern, const Block *B, const float *in, const Route *r, float *dwf) {
    const int kC = B->k * B->C, rowC = B->Wp * B->C, seg = kern->seg;
    const int OHW = B->OH * B->OW;
    for (int f = 0; f < B->F; f++) {
        const int e0 = f * OHW, n = r->fcnt[f];
        if (!n) continue;
        for (int ky = 0; ky < B->k; ky++)
            for (int s0 = 0; s0 < kC; s0 += seg)
                kern->gather(in + (size_t)ky * rowC + s0, r->pix + e0, r->g + e0, n,
                             dwf + (size_t)f * B->K + (size_t)ky * kC + s0, kC - s0 >= seg ? seg : kC - s0);
    }
}

// dxpad ((H+k-1) x Wp x C) = the routed input gradient of one image (dxpad is zeroed here, or
// dx_row writes each row first as zeros): for each pixel group and ky, the k*C-float window row
// gets the sum over its filters of g * W_f's row ky, summed in registers a segment at a time (w =
// the layer's theta; the filter offsets play the part of gather_seg's pixel offsets), so each
// window row is read and written once per pixel.
// With a dx_row kernel for the shape, the loops run y, ky, x instead of y, x, ky: a padded row
// y + ky still gets its additions in pixel order (for one y only one ky reaches it), so every
// element sees the same sums in the same order. Row y + ky is first reached at y = 0 (rows
// 0..k-1) or at ky = k-1 (the others): that call starts the row from zeros.
static void sparse_dx(const TargetSimdKernels *kern, const Block *B, const float *w, const Route *r, float *dxpad) {
    const int kC = B->k * B->C, rowC = B->Wp * B->C, seg = kern->seg;
    if (kern->dx_row && B->C == kern->dx_C && kC == kern->dx_kC) {
        for (int y = 0; y < B->H; y++)
            for (int ky = 0; ky < B->k; ky++)
                kern->dx_row(dxpad + (size_t)(y + ky) * rowC, w + (size_t)ky * kC, r->qcnt + (size_t)y * B->W,
                             r->qw + (size_t)y * B->W * B->F, r->qg + (size_t)y * B->W * B->F, B->F, B->W,
                             y == 0 || ky == B->k - 1);
        return;
    }
    memset(dxpad, 0, B->in_img * sizeof(float));
    for (int y = 0, q = 0; y < B->H; y++)
        for (int x = 0; x < B->W; x++, q++) {
            const int n = r->qcnt[q];
            if (!n) continue;
            float *d = dxpad + (size_t)(y * B->Wp + x) * B->C;
            for (int ky = 0; ky < B->k; ky++)
                for (int s0 = 0; s0 < kC; s0 += seg)
                    kern->gather(w + (size_t)ky * kC + s0, r->qw + (size_t)q * B->F, r->qg + (size_t)q * B->F, n,
                                 d + (size_t)ky * rowC + s0, kC - s0 >= seg ? seg : kC - s0);
        }
}

// ---- packing and padding (plain C) ----

// W (F, K+1) filter-major, bias last -> wt: column blocks of W^T, K rows of stride 16 each.
static void pack_fwd(const Block *B, const float *w, float *wt, float *bias) {
    const int K = B->K, F = B->F;
    for (int col0 = 0, nb; col0 < F; col0 += nb) {
        nb = COL_NB(F, col0);
        float *dst = wt + (size_t)col0 * K;
        for (int t = 0; t < K; t++)
            for (int v = 0; v < nb; v++) dst[(size_t)t * 16 + v] = w[(size_t)(col0 + v) * (K + 1) + t];
    }
    for (int f = 0; f < F; f++) bias[f] = w[(size_t)f * (K + 1) + K];
}

// Flipped kernel for the input gradient: wf[(ky, kx, f)][c] = W[f][(k-1-ky, k-1-kx, c)], in
// column blocks (over c) of Kb rows of stride 16.
static void pack_flip(const Block *B, const float *w, float *wf) {
    const int K = B->K, Kb = B->Kb, C = B->C, F = B->F, k = B->k;
    for (int col0 = 0, nb; col0 < C; col0 += nb) {
        nb = COL_NB(C, col0);
        float *dst = wf + (size_t)col0 * Kb;
        for (int t = 0; t < Kb; t++) {
            const int ky = t / (k * F), kx = t / F % k, f = t % F;
            const float *src = w + (size_t)f * (K + 1) + ((size_t)(k - 1 - ky) * k + (k - 1 - kx)) * C + col0;
            for (int v = 0; v < nb; v++) dst[(size_t)t * 16 + v] = src[v];
        }
    }
}

// Zeroes the border (width p) of an (H+2p) x (W+2p) x C image.
static void zero_border(float *img, int H, int W, int C, int p) {
    if (!p) return;
    const size_t row = (size_t)(W + 2 * p) * C;
    memset(img, 0, (size_t)p * row * sizeof(float));
    memset(img + (size_t)(H + p) * row, 0, (size_t)p * row * sizeof(float));
    for (int y = 0; y < H; y++) {
        memset(img + (size_t)(y + p) * row, 0, (size_t)p * C * sizeof(float));
        memset(img + (size_t)(y + p) * row + (size_t)(W + p) * C, 0, (size_t)p * C * sizeof(float));
    }
}

// Block b's output for image i (slot s): interior origin and row stride.
static float *block_out(const Plan *P, int b, float *ws, int s, int i, ptrdiff_t *ors) {
    const Block *B = &P->b[b];
    if (b + 1 < P->nb) {
        const Block *N = &P->b[b + 1];
        *ors = (ptrdiff_t)N->Wp * B->F;
        return ws + N->in + (size_t)s * N->in_img + ((size_t)N->p * N->Wp + N->p) * B->F;
    }
    *ors = (ptrdiff_t)B->OW * B->F;
    return ws + P->fcin + (size_t)i * P->D;
}

// ---- one network ----

void target_avx2_net(const TargetSimdKernels *kern, const TargetArch *a, int M, int routed, float *ws,
                     const float *theta, int n, const float *images, const uint8_t *labels, float scale,
                     float *probs, double *loss, int *correct, float *dtheta) {
    Plan P;
    make_plan(a, M, routed, &P);
    const int train = dtheta != NULL;
    int32_t *iota = (int32_t *)(ws + P.iota);
    for (int b = 0; b < P.nb; b++) {
        const Block *B = &P.b[b];
        const float *w = theta + a->layers[B->layer].offset;
        pack_fwd(B, w, ws + B->wt, ws + B->bias);
        table_window(B->k, B->Wp, B->C, (int32_t *)(ws + B->fa));
        for (int t = 0; t < B->K; t++) iota[t] = 16 * t;
        if (!train) continue;
        table_pixels(B->H, B->W, B->Wp, B->C, 0, (int32_t *)(ws + B->pin));
        table_pixels(B->H, B->W, B->Wd, B->F, B->dpad, (int32_t *)(ws + B->pdo));
        if (B->dpad) {
            pack_flip(B, w, ws + B->wf);
            table_window(B->k, B->Wd, B->F, (int32_t *)(ws + B->ia));
            for (int t = 0; t < B->Kb; t++) iota[t] = 16 * t;
        }
    }
    // conv blocks, image by image
    for (int i = 0; i < n && P.nb; i++) {
        const int s = train ? i : 0;
        for (int b = 0; b < P.nb; b++) {
            const Block *B = &P.b[b];
            float *in = ws + B->in + (size_t)s * B->in_img;
            if (b == 0) {
                const float *x = images + (size_t)i * a->in_size;
                const size_t row = (size_t)B->Wp * B->C, wc = (size_t)B->W * B->C;
                zero_border(in, B->H, B->W, B->C, B->p);
                for (int y = 0; y < B->H; y++)
                    memcpy(in + (size_t)(y + B->p) * row + (size_t)B->p * B->C, x + y * wc, wc * sizeof(float));
            }
            ptrdiff_t ors;
            float *out = block_out(&P, b, ws, s, i, &ors);
            int32_t *am = B->pk && train ? (int32_t *)(ws + B->am) + (size_t)s * B->OH * B->OW * B->F : NULL;
            if (B->fused)
                kern->conv_pool(B->H, B->W, B->C, B->F, B->K, B->Wp, in, (const int32_t *)(ws + B->fa), iota,
                              ws + B->wt, ws + B->bias, B->relu, out, ors, am);
            else {
                float *co = B->pk ? ws + P.conv_out : out;
                kern->conv(B->H, B->W, B->C, B->F, B->K, B->Wp, in, (const int32_t *)(ws + B->fa), iota,
                           ws + B->wt, ws + B->bias, B->relu, co, B->pk ? (ptrdiff_t)B->W * B->F : ors);
                if (B->pk) pool_img(B, co, out, ors, am);
            }
            if (b + 1 < P.nb) {
                const Block *N = &P.b[b + 1];
                zero_border(ws + N->in + (size_t)s * N->in_img, N->H, N->W, N->C, N->p);
            }
        }
    }
    // fc tail on all images (reference functions)
    const float *x = P.nb ? ws + P.fcin : images;
    const float *cur_in = x;
    for (int i = P.fc0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        float *out = ws + P.act[i];
        if (op->type == OP_FC) target_fc_forward(op, n, cur_in, theta + a->layers[op->layer].offset, out);
        else target_relu_forward((size_t)n * op->out_c, cur_in, out);
        cur_in = out;
    }
    target_softmax_ce(n, a->classes, cur_in, labels, scale, probs, train ? ws + P.g[0] : NULL, loss, correct);
    if (!train) return;
    int cur = 0;
    for (int i = a->n_ops - 1; i >= P.fc0; i--) {
        const TargetOp *op = &a->ops[i];
        float *g = ws + P.g[cur];
        if (op->type == OP_RELU) { target_relu_backward((size_t)n * op->out_c, ws + P.act[i], g, g); continue; }
        const float *in = i > P.fc0 ? ws + P.act[i - 1] : x;
        const size_t off = a->layers[op->layer].offset;
        target_fc_backward(op, n, in, theta + off, g, dtheta + off, i > P.fc0 || P.nb ? ws + P.g[1 - cur] : NULL);
        cur = 1 - cur;
    }
    if (!P.nb) return;
    const float *dfc = ws + P.g[cur];
    // conv blocks backward, image by image; image 0 stores the weight gradients, the others add
    // (sparse blocks accumulate into a zeroed filter-major dW)
    for (int b = 0; b < P.nb; b++) {
        memset(ws + P.b[b].db, 0, (size_t)P.b[b].F * sizeof(float));
        if (P.b[b].sparse) memset(ws + P.b[b].dwt, 0, (size_t)P.b[b].K * P.b[b].F * sizeof(float));
    }
    for (int i = 0; i < n; i++)
        for (int b = P.nb - 1; b >= 0; b--) {
            const Block *B = &P.b[b];
            const float *dy = b == P.nb - 1 ? dfc + (size_t)i * P.D : ws + B->dy;
            ptrdiff_t ors;
            const float *val = block_out(&P, b, ws, i, i, &ors);
            const int32_t *am = B->pk ? (const int32_t *)(ws + B->am) + (size_t)i * B->OH * B->OW * B->F : NULL;
            const float *in = ws + B->in + (size_t)i * B->in_img;
            if (B->sparse) {
                Route r = route_map(B, ws + P.route);
                route_img(kern, B, dy, val, ors, am, ws + B->db, &r);
                sparse_dw(kern, B, in, &r, ws + B->dwt);
                if (b > 0) {
                    float *dxp = ws + P.dxpad, *dst = ws + P.b[b - 1].dy;
                    sparse_dx(kern, B, theta + a->layers[B->layer].offset, &r, dxp);
                    const size_t wc = (size_t)B->W * B->C;
                    for (int y = 0; y < B->H; y++) // interior of the padded gradient
                        memcpy(dst + y * wc, dxp + ((size_t)(y + B->p) * B->Wp + B->p) * B->C, wc * sizeof(float));
                }
                continue;
            }
            float *dout = ws + P.dout;
            dout_img(kern, B, dy, val, ors, am, dout, ws + B->db);
            const int32_t *pin = (const int32_t *)(ws + B->pin), *pdo = (const int32_t *)(ws + B->pdo);
            kern->conv_dw(B->H, B->W, B->C, B->F, B->k, B->Wp, in, pin, dout, pdo, ws + B->dwt, i > 0);
            if (b > 0)
                kern->conv(B->H, B->W, B->F, B->C, B->Kb, B->Wd, dout, (const int32_t *)(ws + B->ia), iota,
                           ws + B->wf, NULL, 0, ws + P.b[b - 1].dy, (ptrdiff_t)B->W * B->C);
        }
    for (int b = 0; b < P.nb; b++) {
        const Block *B = &P.b[b];
        float *dw = dtheta + a->layers[B->layer].offset;
        const float *dwt = ws + B->dwt, *db = ws + B->db;
        for (int f = 0; f < B->F; f++) {
            if (B->sparse) memcpy(dw + (size_t)f * (B->K + 1), dwt + (size_t)f * B->K, (size_t)B->K * sizeof(float));
            else for (int t = 0; t < B->K; t++) dw[(size_t)f * (B->K + 1) + t] = dwt[(size_t)t * B->F + f];
            dw[(size_t)f * (B->K + 1) + B->K] = db[f];
        }
    }
}

// ---- per-kernel timing (bench_target) ----

// Best seconds per call of fn over reps rounds of 8 calls.
#define TIME_BEST(reps, sec, call)                                                             \
    do {                                                                                       \
        call;                                                                                  \
        (sec) = 1e30;                                                                          \
        for (int r_ = 0; r_ < (reps); r_++) {                                                  \
            const double t0_ = ht_now();                                                       \
            for (int i_ = 0; i_ < 8; i_++) { call; }                                           \
            const double dt_ = (ht_now() - t0_) / 8;                                           \
            if (dt_ < (sec)) (sec) = dt_;                                                      \
        }                                                                                      \
    } while (0)

static int kt_add(TargetKernelTime *out, int n, int max, int b, const char *what, double flop, double sec) {
    if (n >= max) return n;
    XSNPRINTF(out[n].name, sizeof(out[n].name), "conv%d %s", b + 1, what);
    out[n].flop = flop;
    out[n].sec = sec;
    return n + 1;
}

int target_simd_kernel_times(const TargetSimdKernels *kern, const TargetArch *a, float *ws, int reps,
                             TargetKernelTime *out, int max) {
    Plan P;
    make_plan(a, 1, 0, &P); // one image slot, dense backward (the routed plan is larger)
    for (size_t i = 0; i < P.total; i++) ws[i] = (float)((i * 2654435761u >> 8) & 1023) / 1024.0f - 0.5f;
    int32_t *iota = (int32_t *)(ws + P.iota);
    int n = 0;
    for (int b = 0; b < P.nb; b++) {
        const Block *B = &P.b[b];
        if (!B->pk) continue; // the conv output buffer is sized for pooled blocks only
        const int32_t *fa = (const int32_t *)(ws + B->fa), *ia = (const int32_t *)(ws + B->ia);
        int32_t *pin = (int32_t *)(ws + B->pin), *pdo = (int32_t *)(ws + B->pdo);
        table_window(B->k, B->Wp, B->C, (int32_t *)(ws + B->fa));
        table_pixels(B->H, B->W, B->Wp, B->C, 0, pin);
        table_pixels(B->H, B->W, B->Wd, B->F, B->dpad, pdo);
        if (B->dpad) table_window(B->k, B->Wd, B->F, (int32_t *)(ws + B->ia));
        for (int t = 0; t < (B->K > B->Kb ? B->K : B->Kb); t++) iota[t] = 16 * t;
        const float *in = ws + B->in;
        const double hw = (double)B->H * B->W;
        double sec;
        if (B->fused) {
            int32_t *am = (int32_t *)(ws + B->am);
            TIME_BEST(reps, sec, kern->conv_pool(B->H, B->W, B->C, B->F, B->K, B->Wp, in, fa, iota, ws + B->wt,
                                                 ws + B->bias, B->relu, ws + P.conv_out, (ptrdiff_t)B->OW * B->F, am));
            n = kt_add(out, n, max, b, "forward+pool (fused)", 2.0 * hw * B->F * B->K, sec);
        } else {
            TIME_BEST(reps, sec, kern->conv(B->H, B->W, B->C, B->F, B->K, B->Wp, in, fa, iota, ws + B->wt,
                                            ws + B->bias, B->relu, ws + P.conv_out, (ptrdiff_t)B->W * B->F));
            n = kt_add(out, n, max, b, "forward", 2.0 * hw * B->F * B->K, sec);
        }
        TIME_BEST(reps, sec, kern->conv_dw(B->H, B->W, B->C, B->F, B->k, B->Wp, in, pin, ws + P.dout, pdo,
                                           ws + B->dwt, 1));
        n = kt_add(out, n, max, b, "weight gradient (dense)", 2.0 * hw * B->F * B->K, sec);
        if (B->dpad) {
            TIME_BEST(reps, sec, kern->conv(B->H, B->W, B->F, B->C, B->Kb, B->Wd, ws + P.dout, ia, iota, ws + B->wf,
                                            NULL, 0, ws + P.b[b - 1].dy, (ptrdiff_t)B->W * B->C));
            n = kt_add(out, n, max, b, "input gradient (dense)", 2.0 * hw * B->C * B->Kb, sec);
        }
        if (B->pk && B->C % 8 == 0) { // the routed weight gradient with every pooled output routed
            const int kC = B->k * B->C, rowC = B->Wp * B->C, OHW = B->OH * B->OW, seg = kern->seg;
            int32_t *pix = (int32_t *)(ws + P.conv_out); // OHW window offsets, then OHW gradients
            float *g = ws + P.conv_out + r16((size_t)OHW);
            for (int o = 0; o < OHW; o++) pix[o] = pin[(o * 7) % (B->H * B->W)];
            TIME_BEST(reps, sec, for (int f = 0; f < B->F; f++) for (int ky = 0; ky < B->k; ky++)
                                     for (int s0 = 0; s0 < kC; s0 += seg)
                                         kern->gather(in + (size_t)ky * rowC + s0, pix, g, OHW,
                                                      ws + B->dwt + (size_t)f * B->K + (size_t)ky * kC + s0,
                                                      kC - s0 >= seg ? seg : kC - s0));
            n = kt_add(out, n, max, b, "weight gradient (routed, all kept)", 2.0 * OHW * B->F * B->K, sec);
        }
        if (B->pk && B->dpad && B->C % 8 == 0) { // the routed input gradient, every pooled output routed
            const int HW = B->H * B->W;       // filter f of pooled output (oy, ox) routed to the pixel
            Route r = {0};                    // (2oy + (f+oy)%2, 2ox + (f/2+ox)%2) of its 2x2 window
            r.qcnt = XCALLOC((size_t)HW, sizeof(int32_t));
            r.qw = XMALLOC((size_t)HW * B->F * sizeof(int32_t));
            r.qg = XALLOC_FLOATS((size_t)HW * B->F);
            float *w = XALLOC_FLOATS((size_t)B->F * (B->K + 1)), *dxp = XALLOC_FLOATS(B->in_img);
            for (size_t i = 0; i < (size_t)B->F * (B->K + 1); i++) w[i] = ws[i % P.total];
            int routed = 0;
            for (int y = 0; y < B->H; y++)
                for (int x = 0; x < B->W; x++)
                    for (int f = 0; f < B->F; f++) {
                        const int oy = y / 2, ox = x / 2;
                        if (oy >= B->OH || ox >= B->OW || y != 2 * oy + (f + oy) % 2 || x != 2 * ox + (f / 2 + ox) % 2)
                            continue;
                        const int q = y * B->W + x, e = r.qcnt[q]++;
                        r.qw[(size_t)q * B->F + e] = f * (B->K + 1);
                        r.qg[(size_t)q * B->F + e] = 0.01f * (float)(f + 1);
                        routed++;
                    }
            TIME_BEST(reps, sec, sparse_dx(kern, B, w, &r, dxp));
            n = kt_add(out, n, max, b, "input gradient (routed, all kept)", 2.0 * routed * B->K, sec);
            free(r.qcnt); free(r.qw); free(r.qg); free(w); free(dxp);
        }
    }
    return n;
}

static const TargetSimdKernels AVX2_KERNELS = {"avx2", conv_img, conv_pool_img, conv_dw_img, gather_avx2, 64,
                                               NULL, 0, 0, NULL, NULL};

const TargetSimdKernels *target_avx2_kernels(void) { return &AVX2_KERNELS; }

#else // no AVX2 kernels in this build

int target_avx2_cpu_ok(void) { return 0; }
const TargetSimdKernels *target_avx2_kernels(void) { return NULL; }

void target_avx2_net(const TargetSimdKernels *kern, const TargetArch *a, int M, int routed, float *ws,
                     const float *theta, int n, const float *images, const uint8_t *labels, float scale,
                     float *probs, double *loss, int *correct, float *dtheta) {
    HT_FATAL("target: the AVX2 path is not compiled in this build");
}

int target_simd_kernel_times(const TargetSimdKernels *kern, const TargetArch *a, float *ws, int reps,
                             TargetKernelTime *out, int max) {
    return 0;
}

#endif
