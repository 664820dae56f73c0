// target_bf16.c: bf16 evaluation of the target network (forward pass only, never a gradient), for
// x86-64 CPUs with AVX512_BF16, selected by target.c for target_forward when the evaluation
// precision is bf16 (job key "eval_precision", HT_EVAL_PRECISION). The float32 implementations stay
// the reference; this one changes the numerics (docs/performance.md, "bf16 evaluation").
//
// Per conv block (conv [relu] [2x2 max pool]), one image at a time:
//   input   the block's input, zero-padded, NHWC, in bf16 (round to nearest even): the image is
//           converted when it is copied in, a later block's input is written in bf16 by the
//           previous block's epilogue;
//   weights packed once per call in bf16: column blocks of 16 filters; within a block, for each
//           kernel row ky and pair j of the row's k*C reduction elements (kx, c), 32 bf16 =
//           16 filters x the pair (element 2j, element 2j + 1); an odd k*C ends with a pair whose
//           second weight is 0;
//   product tiles of up to 12 output pixels (4 per pool window, 3 windows) x 32 (or 16) filters:
//           per pair, one broadcast of the pixel's two adjacent bf16 inputs (32 bits) and one
//           vdpbf16ps per 16 filters, which adds both products to a float32 accumulator. Pairs
//           are adjacent in the padded input (element 2j of window row ky of pixel (y, x) is at
//           ((y + ky) Wp + x) C + 2j), so each broadcast is one 32-bit load; with C odd the second
//           element of the last pair is the next pixel's first channel (or the zero border / two
//           zero elements after the buffer), times weight 0 (0 when that input is finite; an
//           Inf or NaN there would make the sum NaN: inputs are images and finite activations);
//   epilogue float32: + bias, [relu], [max of the 2x2 window], then stored in bf16 into the next
//           block's padded input, or in float32 into the fc input after the last block.
// The fc layers and the softmax run in float32 on all images with target.c's reference functions.
//
// Numerics: each product of a bf16 input and a bf16 weight is exact in float32, the sums are
// float32 (vdpbf16ps: no MXCSR, round to nearest even; denormal inputs and outputs count as zero).
// The error against float32 evaluation is the bf16 rounding of inputs, weights and activations
// (relative 2^-9 each); tests/test_bf16.c states and checks the tolerances.
#include "target_bf16.h"

#include <string.h>

#include "common.h"
#include "target.h"
#include "target_avx2.h"
#include "target_avx512.h"

// ---- plan (plain C) ----

typedef struct {
    int layer;            // the conv's layer
    int H, W, C, F, k, p; // input H x W x C, conv output H x W x F (SAME, stride 1), kernel k, pad p
    int Wp;               // padded input width W + 2p
    int relu, pool;       // followed by relu; by a 2x2 max pool (0: none)
    int OH, OW;           // block output
    int kC, kC2;          // reduction elements per kernel row (k*C) and their pairs (ceil(kC/2))
    int NB;               // column blocks of 16 filters (packed weights and bias padded to 16 NB)
    size_t in_elems;      // bf16 elements of the padded input image ((H+2p) Wp C, + 2 zero after)
    size_t in, wp, bias;  // ws offsets (floats): padded bf16 input, packed bf16 weights, bias
    int ntiles;           // product tiles per image (see block_img)
    size_t tab;           // ws (int32): per tile, MR_MAX input offsets, then MR_MAX output offsets
} BBlock;

typedef struct {
    int nb;               // conv blocks
    BBlock b[HT_MAX_OPS];
    int fc0;              // first fc op
    size_t D;             // fc input features
    size_t fcin;          // ws: fc input (M x D), float32
    size_t act[HT_MAX_OPS]; // ws: output of fc op i (relu ops share it)
    size_t total;
} BPlan;

#define MR_MAX 12 // rows (output pixels) of a product tile

static size_t r16(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t bf16_floats(size_t elems) { return r16((elems + 1) / 2); }

int target_bf16_arch_ok(const TargetArch *a, const char **why) {
    const char *w = NULL;
    if (!target_avx2_arch_ok(a, &w)) {
        if (why) *why = w;
        return 0;
    }
    for (int i = 0; i < a->n_ops && !w; i++) {
        const TargetOp *op = &a->ops[i];
        if (op->type == OP_MAXPOOL && (op->kernel != 2 || op->in_h % 2 || op->in_w % 2))
            w = "a max pool that is not 2x2 over an even height and width";
    }
    if (why) *why = w;
    return w == NULL;
}

static void make_plan(const TargetArch *a, int M, BPlan *P) {
    memset(P, 0, sizeof(*P));
    int i = 0;
    size_t off = 0;
    while (a->ops[i].type == OP_CONV) {
        BBlock *B = &P->b[P->nb++];
        const TargetOp *op = &a->ops[i++];
        B->layer = op->layer;
        B->H = op->in_h; B->W = op->in_w; B->C = op->in_c; B->F = op->out_c; B->k = op->kernel;
        B->p = (B->k - 1) / 2; B->Wp = B->W + 2 * B->p;
        B->OH = B->H; B->OW = B->W;
        if (a->ops[i].type == OP_RELU) { B->relu = 1; i++; }
        if (a->ops[i].type == OP_MAXPOOL) { B->pool = 2; B->OH = B->H / 2; B->OW = B->W / 2; i++; }
        B->kC = B->k * B->C; B->kC2 = (B->kC + 1) / 2;
        B->NB = (B->F + 15) / 16;
        B->in_elems = (size_t)(B->H + 2 * B->p) * B->Wp * B->C + 2;
        B->in = off; off += bf16_floats(B->in_elems);
        B->wp = off; off += (size_t)B->NB * 16 * B->k * B->kC2; // NB*16 filters x k*kC2 pairs x 2 bf16
        B->bias = off; off += (size_t)B->NB * 16;
        B->ntiles = (B->OH * B->OW + MR_MAX / (B->pool ? 4 : 1) - 1) / (MR_MAX / (B->pool ? 4 : 1));
        B->tab = off; off += r16((size_t)B->ntiles * 2 * MR_MAX);
    }
    P->fc0 = i;
    P->D = P->nb ? (size_t)P->b[P->nb - 1].OH * P->b[P->nb - 1].OW * P->b[P->nb - 1].F : (size_t)a->in_size;
    P->fcin = off; if (P->nb) off += r16((size_t)M * P->D);
    for (; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        if (op->type == OP_RELU) { P->act[i] = P->act[i - 1]; continue; }
        P->act[i] = off; off += r16((size_t)M * op->out_c);
    }
    P->total = off;
}

size_t target_bf16_ws_floats(const TargetArch *a, int max_images) {
    BPlan P;
    make_plan(a, max_images, &P);
    return P.total;
}

float target_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u; // NaN: quiet, stays NaN
    else u += 0x7fffu + ((u >> 16) & 1u);                  // round to nearest even (Inf stays Inf)
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof(x));
    return x;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <immintrin.h>

#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))
#define INLINE inline __attribute__((always_inline))

int target_bf16_cpu_ok(void) {
    if (!target_avx512_cpu_ok()) return 0; // also checks that the OS saves the zmm state
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0; // a: the last subleaf of leaf 7
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1u; // AVX512_BF16
}

// ---- conversion ----

// 16 floats -> 16 bf16 (round to nearest even; the truncating fault drops the low 16 bits).
static BF16 INLINE __m256i cvt16(__m512 y, int trunc) {
    if (trunc) return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(y), 16));
    return (__m256i)_mm512_cvtneps_pbh(y);
}

// dst[0..n) = bf16(src[0..n)).
static BF16 void cvt_row(uint16_t *dst, const float *src, int n, int trunc) {
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(dst + i, m, cvt16(_mm512_maskz_loadu_ps(m, src + i), trunc));
    }
}

// W (F, K+1) filter-major, bias last -> wp (see the top of the file) and bias (NB*16, zeros past F).
// fault DROP_PAIR is the kernel's, not the packing's.
static BF16 void pack_weights(const BBlock *B, const float *w, uint16_t *wp, float *bias, int trunc) {
    const int K = B->k * B->kC, kC = B->kC;
    float tmp[32];
    for (int cb = 0; cb < B->NB; cb++)
        for (int ky = 0; ky < B->k; ky++)
            for (int j = 0; j < B->kC2; j++) {
                for (int v = 0; v < 16; v++) {
                    const int f = cb * 16 + v, e0 = 2 * j, e1 = 2 * j + 1;
                    const float *wf = w + (size_t)f * (K + 1) + (size_t)ky * kC;
                    tmp[2 * v] = f < B->F ? wf[e0] : 0.0f;
                    tmp[2 * v + 1] = f < B->F && e1 < kC ? wf[e1] : 0.0f;
                }
                uint16_t *dst = wp + (((size_t)cb * B->k + ky) * B->kC2 + j) * 32;
                _mm256_storeu_si256((__m256i *)dst, cvt16(_mm512_loadu_ps(tmp), trunc));
                _mm256_storeu_si256((__m256i *)(dst + 16), cvt16(_mm512_loadu_ps(tmp + 16), trunc));
            }
    for (int f = 0; f < B->NB * 16; f++) bias[f] = f < B->F ? w[(size_t)f * (K + 1) + K] : 0.0f;
}

// ---- the micro-kernel ----

typedef struct {
    const uint16_t *in;        // the padded bf16 input
    const int32_t *aoff;       // row r: its pixel's window origin at in + aoff[r]
    const uint16_t *B;         // the first column block's packed weights (pair s of row ky at + 32 (ky kC2 + s))
    ptrdiff_t bstep;           // elements from one column block to the next
    ptrdiff_t rs;              // elements from one input row to the next (Wp C)
    int k, kC2, jn;            // kernel rows, pairs per row, pairs summed per row (kC2; fewer: fault)
    char *out;                 // the output at the tile's first column
    const int32_t *doff;       // plain tile: row r's output, pool tile: window w's, at element doff[.] of out
    int bf16, trunc;           // output in bf16 (else float32), truncating conversion (fault)
    const float *bias;         // the first column block's bias (16 NV floats)
    int relu;
    __mmask16 m0, m1;          // lanes stored in column blocks 0 and 1
} BTile;

static INLINE int32_t ld32(const uint16_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

// Accumulators c<r><v>, rows r < MR, column blocks v < NV, named (kept in registers).
#define BROW_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps();      \
                     const uint16_t *p##r = t->in + t->aoff[MR > r ? r : 0]
#define BROW_DP(r) if (MR > r) { const __m512bh x = (__m512bh)_mm512_set1_epi32(ld32(p##r + 2 * j)); \
                     c##r##0 = _mm512_dpbf16_ps(c##r##0, x, b0);                                \
                     if (NV > 1) c##r##1 = _mm512_dpbf16_ps(c##r##1, x, b1); }
#define BROW_NEXT(r) if (MR > r) p##r += rs
#define BTILE_ACCUMULATE(t)                                                                        \
    BROW_DECL(0); BROW_DECL(1); BROW_DECL(2); BROW_DECL(3); BROW_DECL(4); BROW_DECL(5);            \
    BROW_DECL(6); BROW_DECL(7); BROW_DECL(8); BROW_DECL(9); BROW_DECL(10); BROW_DECL(11);          \
    {                                                                                              \
        const ptrdiff_t rs = (t)->rs, bs = (t)->bstep;                                             \
        const int kC2 = (t)->kC2, jn = (t)->jn;                                                    \
        for (int ky = 0; ky < (t)->k; ky++) {                                                      \
            const uint16_t *Bk = (t)->B + (ptrdiff_t)ky * kC2 * 32;                                \
            for (int j = 0; j < jn; j++) {                                                         \
                const __m512bh b0 = (__m512bh)_mm512_loadu_si512(Bk + 32 * j);                     \
                const __m512bh b1 = NV > 1 ? (__m512bh)_mm512_loadu_si512(Bk + bs + 32 * j) : b0;  \
                BROW_DP(0) BROW_DP(1) BROW_DP(2) BROW_DP(3) BROW_DP(4) BROW_DP(5)                  \
                BROW_DP(6) BROW_DP(7) BROW_DP(8) BROW_DP(9) BROW_DP(10) BROW_DP(11)                \
            }                                                                                      \
            BROW_NEXT(0); BROW_NEXT(1); BROW_NEXT(2); BROW_NEXT(3); BROW_NEXT(4); BROW_NEXT(5);    \
            BROW_NEXT(6); BROW_NEXT(7); BROW_NEXT(8); BROW_NEXT(9); BROW_NEXT(10); BROW_NEXT(11);  \
        }                                                                                          \
    }

// Column block v of the output at element e (float32 or bf16 elements) gets y in lanes m.
static BF16 INLINE void store_out(const BTile *t, int32_t e, int v, __m512 y, __mmask16 m) {
    if (t->bf16) _mm256_mask_storeu_epi16((uint16_t *)t->out + e + 16 * v, m, cvt16(y, t->trunc));
    else _mm512_mask_storeu_ps((float *)t->out + e + 16 * v, m, y);
}

static BF16 INLINE __m512 bias_relu(__m512 y, __m512 bias, int relu) {
    y = _mm512_add_ps(y, bias);
    return relu ? _mm512_max_ps(y, _mm512_setzero_ps()) : y; // max(NaN, 0) = 0, as the reference
}

// Plain tile: MR output pixels.
#define BROW_OUT(r) if (MR > r) { store_out(t, t->doff[r], 0, bias_relu(c##r##0, bias0, relu), t->m0); \
                     if (NV > 1) store_out(t, t->doff[r], 1, bias_relu(c##r##1, bias1, relu), t->m1); }
static BF16 INLINE void tile_body(const BTile *t, const int MR, const int NV) {
    BTILE_ACCUMULATE(t)
    const int relu = t->relu;
    const __m512 bias0 = _mm512_loadu_ps(t->bias), bias1 = NV > 1 ? _mm512_loadu_ps(t->bias + 16) : bias0;
    BROW_OUT(0) BROW_OUT(1) BROW_OUT(2) BROW_OUT(3) BROW_OUT(4) BROW_OUT(5)
    BROW_OUT(6) BROW_OUT(7) BROW_OUT(8) BROW_OUT(9) BROW_OUT(10) BROW_OUT(11)
}

// The maximum of a 2x2 window's 4 outputs (rows in (h, w) order), the reference's scan:
// max_ps(v, best) is "v > best ? v : best" (ties and NaN keep the earlier pixel).
static BF16 INLINE __m512 max4(__m512 y0, __m512 y1, __m512 y2, __m512 y3, __m512 bias, int relu) {
    __m512 best = bias_relu(y0, bias, relu);
    best = _mm512_max_ps(bias_relu(y1, bias, relu), best);
    best = _mm512_max_ps(bias_relu(y2, bias, relu), best);
    return _mm512_max_ps(bias_relu(y3, bias, relu), best);
}

// Pool tile: WIN 2x2 windows, rows 4w..4w+3 the pixels of window w.
#define BWIN_OUT(w, ra, rb, rc, rd)                                                                  \
    if (WIN > w) {                                                                                   \
        store_out(t, t->doff[w], 0, max4(c##ra##0, c##rb##0, c##rc##0, c##rd##0, bias0, relu), t->m0); \
        if (NV > 1) store_out(t, t->doff[w], 1, max4(c##ra##1, c##rb##1, c##rc##1, c##rd##1, bias1, relu), t->m1); \
    }
static BF16 INLINE void tile_pool_body(const BTile *t, const int WIN, const int NV) {
    const int MR = 4 * WIN;
    BTILE_ACCUMULATE(t)
    const int relu = t->relu;
    const __m512 bias0 = _mm512_loadu_ps(t->bias), bias1 = NV > 1 ? _mm512_loadu_ps(t->bias + 16) : bias0;
    BWIN_OUT(0, 0, 1, 2, 3)
    BWIN_OUT(1, 4, 5, 6, 7)
    BWIN_OUT(2, 8, 9, 10, 11)
}

typedef void (*BTileFn)(const BTile *);
#define DEF_TILE(MR, NV) static BF16 void tile_##MR##_##NV(const BTile *t) { tile_body(t, MR, NV); }
#define DEF_TILES(MR) DEF_TILE(MR, 1) DEF_TILE(MR, 2)
DEF_TILES(1) DEF_TILES(2) DEF_TILES(3) DEF_TILES(4) DEF_TILES(5) DEF_TILES(6)
DEF_TILES(7) DEF_TILES(8) DEF_TILES(9) DEF_TILES(10) DEF_TILES(11) DEF_TILES(12)
static const BTileFn TILES[MR_MAX + 1][2] = {
    {NULL, NULL}, {tile_1_1, tile_1_2}, {tile_2_1, tile_2_2}, {tile_3_1, tile_3_2}, {tile_4_1, tile_4_2},
    {tile_5_1, tile_5_2}, {tile_6_1, tile_6_2}, {tile_7_1, tile_7_2}, {tile_8_1, tile_8_2},
    {tile_9_1, tile_9_2}, {tile_10_1, tile_10_2}, {tile_11_1, tile_11_2}, {tile_12_1, tile_12_2}};
#define DEF_PTILE(WIN, NV) static BF16 void ptile_##WIN##_##NV(const BTile *t) { tile_pool_body(t, WIN, NV); }
DEF_PTILE(1, 1) DEF_PTILE(1, 2) DEF_PTILE(2, 1) DEF_PTILE(2, 2) DEF_PTILE(3, 1) DEF_PTILE(3, 2)
static const BTileFn PTILES[4][2] = {
    {NULL, NULL}, {ptile_1_1, ptile_1_2}, {ptile_2_1, ptile_2_2}, {ptile_3_1, ptile_3_2}};

// Lanes of column block cb of F filters: 16, or 8 for the last block of F = 8 mod 16.
static INLINE __mmask16 block_mask(int F, int cb) { return F - 16 * cb >= 16 ? (__mmask16)0xffff : (__mmask16)0x00ff; }

// Block B's tile tables (B->tab): tile T covers outputs q = T*gmax .. (gmax per tile: 12 pixels, or
// 3 pool windows of 4 pixels); row r's pixel (y, x) has its window origin at element (y Wp + x) C
// of the padded input (the window's first row starts there: the pad shifts SAME's centre), and
// output q = (oy, ox) is at element oy ors + ox F of the block output.
static void build_tables(const BBlock *B, ptrdiff_t ors, int32_t *tab) {
    const int per = B->pool ? 4 : 1, gmax = MR_MAX / per, nout = B->OH * B->OW;
    for (int T = 0; T < B->ntiles; T++) {
        int32_t *aoff = tab + (size_t)T * 2 * MR_MAX, *doff = aoff + MR_MAX;
        for (int u = 0; u < gmax; u++) {
            const int q = T * gmax + u < nout ? T * gmax + u : nout - 1; // (rows past the end: unused)
            const int oy = q / B->OW, ox = q % B->OW;
            doff[u] = (int32_t)(oy * ors + (ptrdiff_t)ox * B->F);
            for (int s = 0; s < per; s++) {
                const int y = B->pool ? 2 * oy + s / 2 : oy, x = B->pool ? 2 * ox + s % 2 : ox;
                aoff[u * per + s] = (int32_t)(((ptrdiff_t)y * B->Wp + x) * B->C);
            }
        }
    }
}

// One image through block B: in (the padded bf16 input), the block output pixel (oy, ox) at
// out + (oy ors + ox F) elements (tables of build_tables with this ors), bf16 (out_bf16) or float32.
static void block_img(const BBlock *B, const int32_t *tab, const uint16_t *in, const uint16_t *wp, const float *bias,
                      void *out, int out_bf16, TargetBf16Fault fault) {
    BTile t;
    t.in = in;
    t.rs = (ptrdiff_t)B->Wp * B->C;
    t.k = B->k; t.kC2 = B->kC2; t.jn = fault == TARGET_BF16_FAULT_DROP_PAIR ? B->kC2 - 1 : B->kC2;
    t.bstep = (ptrdiff_t)B->k * B->kC2 * 32;
    t.bf16 = out_bf16; t.trunc = fault == TARGET_BF16_FAULT_TRUNCATE; t.relu = B->relu;
    const size_t es = out_bf16 ? sizeof(uint16_t) : sizeof(float);
    const int gmax = MR_MAX / (B->pool ? 4 : 1), nout = B->OH * B->OW;
    for (int T = 0; T < B->ntiles; T++) {
        const int g = nout - T * gmax < gmax ? nout - T * gmax : gmax;
        t.aoff = tab + (size_t)T * 2 * MR_MAX;
        t.doff = t.aoff + MR_MAX;
        for (int cb = 0, nv; cb < B->NB; cb += nv) {
            nv = B->NB - cb >= 2 ? 2 : 1;
            t.B = wp + (size_t)cb * t.bstep;
            t.bias = bias + 16 * cb;
            t.m0 = block_mask(B->F, cb);
            t.m1 = nv > 1 ? block_mask(B->F, cb + 1) : 0;
            t.out = (char *)out + (size_t)16 * cb * es;
            (B->pool ? PTILES[g][nv - 1] : TILES[g][nv - 1])(&t);
        }
    }
}

// ---- one network ----

void target_bf16_forward_net(const TargetArch *a, int M, float *ws, const float *theta, int n,
                             const float *images, float *probs, TargetBf16Fault fault) {
    // (the caller checked target_bf16_cpu_ok and target_bf16_arch_ok: target_set_eval_precision)
    BPlan P;
    make_plan(a, M, &P);
    const int trunc = fault == TARGET_BF16_FAULT_TRUNCATE;
    for (int b = 0; b < P.nb; b++) {
        const BBlock *B = &P.b[b];
        pack_weights(B, theta + a->layers[B->layer].offset, (uint16_t *)(ws + B->wp), ws + B->bias, trunc);
        build_tables(B, b + 1 < P.nb ? (ptrdiff_t)P.b[b + 1].Wp * P.b[b + 1].C : (ptrdiff_t)B->OW * B->F,
                     (int32_t *)(ws + B->tab));
        memset(ws + B->in, 0, B->in_elems * sizeof(uint16_t)); // the zero border and the 2 after
    }
    for (int i = 0; i < n && P.nb; i++) {
        const BBlock *B0 = &P.b[0];
        uint16_t *in0 = (uint16_t *)(ws + B0->in);
        const float *x = images + (size_t)i * a->in_size;
        const size_t wc = (size_t)B0->W * B0->C;
        for (int y = 0; y < B0->H; y++)
            cvt_row(in0 + ((size_t)(y + B0->p) * B0->Wp + B0->p) * B0->C, x + y * wc, (int)wc, trunc);
        for (int b = 0; b < P.nb; b++) {
            const BBlock *B = &P.b[b];
            const uint16_t *in = (const uint16_t *)(ws + B->in);
            if (b + 1 < P.nb) { // bf16, into the next block's padded input
                const BBlock *N = &P.b[b + 1];
                uint16_t *nin = (uint16_t *)(ws + N->in) + ((size_t)N->p * N->Wp + N->p) * N->C;
                block_img(B, (const int32_t *)(ws + B->tab), in, (const uint16_t *)(ws + B->wp), ws + B->bias, nin, 1,
                          fault);
            } else
                block_img(B, (const int32_t *)(ws + B->tab), in, (const uint16_t *)(ws + B->wp), ws + B->bias,
                          ws + P.fcin + (size_t)i * P.D, 0, fault);
        }
    }
    // fc tail on all images, float32 (reference functions)
    const float *cur = P.nb ? ws + P.fcin : images;
    for (int i = P.fc0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        float *out = ws + P.act[i];
        if (op->type == OP_FC) target_fc_forward(op, n, cur, theta + a->layers[op->layer].offset, out);
        else target_relu_forward((size_t)n * op->out_c, cur, out);
        cur = out;
    }
    target_softmax_ce(n, a->classes, cur, NULL, 0.0f, probs, NULL, NULL, NULL);
}

#else // no bf16 kernels in this build

int target_bf16_cpu_ok(void) { return 0; }

void target_bf16_forward_net(const TargetArch *a, int M, float *ws, const float *theta, int n,
                             const float *images, float *probs, TargetBf16Fault fault) {
    HT_FATAL("target: the bf16 evaluation is not compiled in this build");
}

#endif
