// conv_igemm.cu: implicit-GEMM conv + bias + ReLU + 2x2 max pool blocks (see conv_igemm.cuh).
#include "conv_igemm.cuh"

#include <string.h>

#define IG_TK 16        // reduction chunk held in shared memory (forward and dIn)
#define IG_MAXROWS 256  // conv pixels of one forward tile (4 per pooled window, TPX <= 64)
#define IG_POOL 2       // pool window = stride (the only one these kernels run)
#define IG_OUTSIDE (-(1 << 28))
#define IG_DW_O 32      // pooled positions per dW chunk // row "y" of a pixel outside the image: y + dy never lands inside

// Four floats read with one 16-byte load (a thread's 4 window pixels or 4 filters).
struct alignas(16) IgF4 { float v[4]; };

// Geometry of one conv block, all 32-bit (igemm_check_sizes bounds every product used).
typedef struct {
    int H, W, C, k, pad, F, K, kp; // conv input, kernel, filters, fan_in, packed row length
    int OH, OW, py, px;            // pooled output and pool padding (TensorFlow SAME)
    int n_img, n_pool;             // images per network, pooled positions per network
} IgGeom;

static IgGeom make_geom(const TargetOp *conv, const TargetOp *pool, int n_img, int kp) {
    IgGeom g;
    g.H = conv->in_h; g.W = conv->in_w; g.C = conv->in_c; g.k = conv->kernel; g.pad = (conv->kernel - 1) / 2;
    g.F = conv->out_c; g.K = conv->kernel * conv->kernel * conv->in_c; g.kp = kp;
    g.OH = pool->out_h; g.OW = pool->out_w;
    g.py = (pool->out_h * IG_POOL - pool->in_h) / 2; g.px = (pool->out_w * IG_POOL - pool->in_w) / 2;
    g.n_img = n_img; g.n_pool = n_img * g.OH * g.OW;
    return g;
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

int igemm_arch_fits(const TargetArch *a, char *why, size_t why_len) {
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        if (op->type != OP_CONV) continue;
        const TargetOp *r = i + 1 < a->n_ops ? &a->ops[i + 1] : NULL, *p = i + 2 < a->n_ops ? &a->ops[i + 2] : NULL;
        if (!r || r->type != OP_RELU || !p || p->type != OP_MAXPOOL) {
            snprintf(why, why_len, "conv op %d is not followed by relu and maxpool", i);
            return 0;
        }
        if (p->kernel != IG_POOL) {
            snprintf(why, why_len, "the max pool after conv op %d has window %d (the kernels run 2 only)", i,
                     p->kernel);
            return 0;
        }
        if (op->kernel < 1 || op->kernel % 2 == 0 || op->out_h != op->in_h || op->out_w != op->in_w) {
            snprintf(why, why_len, "conv op %d is not SAME with an odd kernel (kernel %d)", i, op->kernel);
            return 0;
        }
    }
    return 1;
}

void igemm_pack_init(IgemmPack *p, const TargetArch *a) {
    memset(p, 0, sizeof(*p));
    size_t off = 0;
    for (int l = 0; l < a->n_layers; l++) {
        if (a->ops[a->layers[l].op].type != OP_CONV) continue;
        const TargetLayer *L = &a->layers[l];
        p->kp[l] = (int)round_up((size_t)L->fan_in, 4);
        p->off[l] = off;
        off += round_up((size_t)L->filters * p->kp[l] + L->filters, 32);
    }
    p->stride = off ? off : 32;
}

void igemm_check_sizes(const TargetOp *conv, int n_nets, int n_img) {
    const size_t px = (size_t)n_img * conv->in_h * conv->in_w;
    const size_t ch = (size_t)(conv->in_c > conv->out_c ? conv->in_c : conv->out_c);
    const size_t K = (size_t)conv->kernel * conv->kernel * conv->in_c;
    HT_CHECK(px * ch < (size_t)INT32_MAX && K * conv->out_c < (size_t)INT32_MAX,
             "igemm conv: %d images of %dx%dx%d (filters %d) per network overflow 32-bit indices", n_img,
             conv->in_h, conv->in_w, conv->in_c, conv->out_c);
    HT_CHECK(n_nets >= 1 && n_nets <= 65535, "igemm conv: %d networks per call (grid y/z hold 1..65535)", n_nets);
}

// ---------------------------------------------------------------- packing

// One thread per packed float of one layer block: (net, f, j) with j < kp + (bias slot handled apart).
__global__ void ig_pack_kernel(const float *theta, size_t theta_stride, size_t layer_off, int F, int K, int kp,
                               float *wpack, size_t pack_stride, size_t pack_off) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x; // within the layer block: f * kp + j, then F biases
    const int b = blockIdx.y;
    const int n = F * kp + F;
    if (e >= n) return;
    const float *src = theta + (size_t)b * theta_stride + layer_off;
    float v;
    if (e < F * kp) {
        const int f = e / kp, j = e - f * kp;
        v = j < K ? src[f * (K + 1) + j] : 0.0f;
    } else {
        v = src[(e - F * kp) * (K + 1) + K];
    }
    wpack[(size_t)b * pack_stride + pack_off + e] = v;
}

__global__ void ig_unpack_kernel(const float *dwpack, size_t pack_stride, size_t pack_off, int F, int K, int kp,
                                 float *dtheta, size_t dtheta_stride, size_t layer_off) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x; // f * (K + 1) + j of the flat layer
    const int b = blockIdx.y;
    if (e >= F * (K + 1)) return;
    const int f = e / (K + 1), j = e - f * (K + 1);
    const float *src = dwpack + (size_t)b * pack_stride + pack_off;
    dtheta[(size_t)b * dtheta_stride + layer_off + e] = j < K ? src[f * kp + j] : src[F * kp + f];
}

void igemm_pack_weights(cudaStream_t st, const IgemmPack *p, const TargetArch *a, int n_nets, const float *theta,
                        size_t theta_stride, float *wpack) {
    HT_CHECK(n_nets >= 1 && n_nets <= 65535, "igemm pack: %d networks per call (grid y holds 1..65535)", n_nets);
    for (int l = 0; l < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        if (a->ops[L->op].type != OP_CONV) continue;
        const int n = L->filters * p->kp[l] + L->filters;
        dim3 grid(grid_for((size_t)n), (unsigned)n_nets);
        ig_pack_kernel<<<grid, HT_BLOCK, 0, st>>>(theta, theta_stride, L->offset, L->filters, L->fan_in, p->kp[l],
                                                 wpack, p->stride, p->off[l]);
        LAUNCH_CHECK("ig_pack_kernel");
    }
}

void igemm_unpack_grads(cudaStream_t st, const IgemmPack *p, const TargetArch *a, int n_nets, const float *dwpack,
                        float *dtheta, size_t dtheta_stride) {
    HT_CHECK(n_nets >= 1 && n_nets <= 65535, "igemm unpack: %d networks per call (grid y holds 1..65535)", n_nets);
    for (int l = 0; l < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        if (a->ops[L->op].type != OP_CONV) continue;
        dim3 grid(grid_for(L->size), (unsigned)n_nets);
        ig_unpack_kernel<<<grid, HT_BLOCK, 0, st>>>(dwpack, p->stride, p->off[l], L->filters, L->fan_in, p->kp[l],
                                                   dtheta, dtheta_stride, L->offset);
        LAUNCH_CHECK("ig_unpack_kernel");
    }
}

// ---------------------------------------------------------------- forward

// Pixel table of conv rows r = 4 * (pooled window) + (wy * 2 + wx) for pooled positions o0...:
// pix = img*H*W + y*W + x of the conv pixel, y (IG_OUTSIDE when the window position lies in the
// pool's padding or past the last pooled position), x.
__device__ __forceinline__ void ig_row(const IgGeom &g, int o, int wdx, int *pix, int *y, int *x) {
    *pix = 0; *y = IG_OUTSIDE; *x = 0;
    if (o >= g.n_pool) return;
    const int per_img = g.OH * g.OW;
    const int img = o / per_img, rem = o - img * per_img;
    const int oy = rem / g.OW, ox = rem - oy * g.OW;
    const int yy = oy * IG_POOL - g.py + (wdx >> 1), xx = ox * IG_POOL - g.px + (wdx & 1);
    if (yy < 0 || yy >= g.H || xx < 0 || xx >= g.W) return;
    *pix = (img * g.H + yy) * g.W + xx;
    *y = yy; *x = xx;
}

// Block (TPX, TFY): TPX pooled windows (4 * TPX conv pixels) x 4 * TFY filters; grid (pooled tiles,
// filter tiles, networks). Thread (tx, ty): window tx, filters 4 ty .. 4 ty + 3.
__global__ void ig_fwd_kernel(IgGeom g, const float *in, size_t in_stride, const float *w, size_t w_stride,
                              float *out, int32_t *argmax) {
    alignas(16) __shared__ float s_in[IG_TK][IG_MAXROWS + 4]; // (k chunk, conv pixel)
    alignas(16) __shared__ float s_w[IG_TK][32];              // (k chunk, filter of the tile)
    __shared__ int s_pix[IG_MAXROWS], s_y[IG_MAXROWS], s_x[IG_MAXROWS];
    const int tx = threadIdx.x, ty = threadIdx.y, nt = blockDim.x * blockDim.y, tid = ty * blockDim.x + tx;
    const int rows = 4 * blockDim.x, ft = 4 * blockDim.y;
    const int o0 = blockIdx.x * blockDim.x, f0 = blockIdx.y * ft, net = blockIdx.z;
    const float *inb = in + (size_t)net * in_stride;
    const float *wb = w + (size_t)net * w_stride;
    for (int r = tid; r < rows; r += nt) ig_row(g, o0 + (r >> 2), r & 3, &s_pix[r], &s_y[r], &s_x[r]);
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    __syncthreads();
    for (int k0 = 0; k0 < g.K; k0 += IG_TK) {
        { // gather: thread column j (one tap decomposition per chunk), rows tid/16 + step
            const int j = tid & (IG_TK - 1), kk = k0 + j;
            int dy = 0, dx = 0, koff = 0;
            const int kin = kk < g.K;
            if (kin) {
                const int c = kk % g.C, t = kk / g.C, kx = t % g.k, ky = t / g.k;
                dy = ky - g.pad; dx = kx - g.pad; koff = c;
            }
            for (int r = tid / IG_TK; r < rows; r += nt / IG_TK) {
                const int y = s_y[r] + dy, x = s_x[r] + dx;
                float v = 0.0f;
                if (kin && (unsigned)y < (unsigned)g.H && (unsigned)x < (unsigned)g.W)
                    v = inb[(s_pix[r] + dy * g.W + dx) * g.C + koff];
                s_in[j][r] = v;
            }
        }
        for (int e = tid; e < ft * IG_TK; e += nt) { // weights: (filter, k) -> s_w[k][filter]
            const int fl = e / IG_TK, j = e - fl * IG_TK, f = f0 + fl, kk = k0 + j;
            s_w[j][fl] = f < g.F && kk < g.K ? wb[f * g.kp + kk] : 0.0f;
        }
        __syncthreads();
        for (int j = 0; j < IG_TK; j++) { // one 16-byte shared load each (rows of 260 and 32 floats: aligned)
            const IgF4 a = *reinterpret_cast<const IgF4 *>(&s_in[j][4 * tx]);
            const IgF4 b = *reinterpret_cast<const IgF4 *>(&s_w[j][4 * ty]); // the same for a warp: broadcast
            for (int i = 0; i < 4; i++)
                for (int q = 0; q < 4; q++) acc[i][q] = fmaf(a.v[i], b.v[q], acc[i][q]);
        }
        __syncthreads();
    }
    // epilogue: bias, ReLU, max over the window's pixels inside the image (first maximum wins)
    const int o = o0 + tx;
    if (o >= g.n_pool) return;
    for (int q = 0; q < 4; q++) {
        const int f = f0 + 4 * ty + q;
        if (f >= g.F) break;
        const float bias = wb[g.F * g.kp + f];
        float best = 0.0f;
        int bi = -1;
        for (int i = 0; i < 4; i++) {
            const int r = 4 * tx + i;
            if (s_y[r] == IG_OUTSIDE) continue;
            float v = acc[i][q] + bias;
            v = v > 0.0f ? v : 0.0f;
            if (bi < 0 || v > best) { best = v; bi = r; }
        }
        const size_t e = ((size_t)net * g.n_pool + o) * g.F + f;
        out[e] = best;
        argmax[e] = s_pix[bi] * g.F + f;
    }
}

void igemm_conv_pool_forward(cudaStream_t st, const TargetOp *conv, const TargetOp *pool, int n_nets, int n_img,
                             const float *in, size_t in_stride, const float *w, int kp, size_t w_stride, float *out,
                             int32_t *argmax) {
    igemm_check_sizes(conv, n_nets, n_img);
    const IgGeom g = make_geom(conv, pool, n_img, kp);
    int tfy = 1; // filter groups of 4 per block: the power of two >= F/4, at most 8
    while (tfy < 8 && 4 * tfy < g.F) tfy *= 2;
    const int tpx = tfy == 8 ? 32 : 64; // pooled windows per block: 256 threads, or 64..256 for few filters
    dim3 block((unsigned)tpx, (unsigned)tfy);
    dim3 grid((unsigned)((g.n_pool + tpx - 1) / tpx), (unsigned)((g.F + 4 * tfy - 1) / (4 * tfy)), (unsigned)n_nets);
    ig_fwd_kernel<<<grid, block, 0, st>>>(g, in, in_stride, w, w_stride, out, argmax);
    LAUNCH_CHECK("ig_fwd_kernel");
}

// ---------------------------------------------------------------- backward

// dW's grid: n_kt weight tiles of 32 times n_split splits of the pooled positions, each of
// `chunks` chunks of IG_DW_O positions. Layers with few weights (the first conv: fan_in 25, one
// tile) would otherwise have one block per network and filter tile, a few dozen blocks on a GPU
// with ~132 SMs: the positions are split until there are about IG_DW_BLOCKS blocks, keeping at
// least IG_DW_MIN_CHUNKS chunks per split.
#define IG_DW_BLOCKS 512
#define IG_DW_MIN_CHUNKS 8
typedef struct { int n_kt, n_split, chunks; } IgSplit;

static IgSplit dw_split(const TargetOp *conv, const TargetOp *pool, int n_nets, int n_img) {
    IgSplit s;
    const int K = conv->kernel * conv->kernel * conv->in_c, F = conv->out_c;
    const int n_pool = n_img * pool->out_h * pool->out_w;
    const int n_chunks = (n_pool + IG_DW_O - 1) / IG_DW_O;
    s.n_kt = (K + 31) / 32;
    const long base = (long)s.n_kt * ((F + 31) / 32) * n_nets;
    int want = (int)((IG_DW_BLOCKS + base - 1) / base), most = n_chunks / IG_DW_MIN_CHUNKS;
    s.n_split = want < most ? want : most;
    if (s.n_split < 1) s.n_split = 1;
    s.chunks = (n_chunks + s.n_split - 1) / s.n_split;
    s.n_split = (n_chunks + s.chunks - 1) / s.chunks; // no empty split
    return s;
}

size_t igemm_dw_scratch_floats(const TargetOp *conv, const TargetOp *pool, int n_nets, int n_img) {
    const IgSplit s = dw_split(conv, pool, n_nets, n_img);
    if (s.n_split == 1) return 0;
    const int K = conv->kernel * conv->kernel * conv->in_c;
    return (size_t)s.n_split * n_nets * conv->out_c * ((K + 3) / 4 * 4);
}

// dW: block (32, 8), grid (weight tiles of 32 x splits, filter tiles of 32, networks). Split s sums
// the pooled positions of its chunks [s * chunks_per_split, ...) and writes network net's dW to
// dw + net * dw_stride (one split) or its partial sums to dw + (s * n_nets + net) * dw_stride
// (several; summed in split order by ig_dw_reduce_kernel: deterministic). Thread (tx, ty):
// weight kk = 32 bx + tx (one tap decomposition for the whole block), filters 32 by + ty + 8 q.
// Per chunk of 32 pooled positions: the 4 window pixels x 32 weights of the input, and per
// (position, filter) the routed gradient (0 where ReLU or the pool blocks it) and which of the 4
// window pixels is its argmax. One multiply-add per (position, filter, weight): only the nonzero
// entries of the conv-output gradient are visited.
__global__ void ig_dw_kernel(IgGeom g, int n_kt, int chunks_per_split, const float *in, size_t in_stride,
                             const float *out, const int32_t *argmax, const float *dout, float *dw, size_t dw_stride) {
    __shared__ float s_xt[4 * IG_DW_O][33];       // (window pixel, weight)
    __shared__ float s_g[IG_DW_O][32];            // (pooled position, filter) routed gradient
    __shared__ int s_a[IG_DW_O][32];              // its window pixel 0..3
    __shared__ int s_pix[4 * IG_DW_O], s_y[4 * IG_DW_O], s_x[4 * IG_DW_O];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 32 + tx;
    const int split = blockIdx.x / n_kt, kk = (blockIdx.x - split * n_kt) * 32 + tx, fb = blockIdx.y * 32;
    const int net = blockIdx.z;
    const float *inb = in + (size_t)net * in_stride;
    const size_t pbase = (size_t)net * g.n_pool * g.F; // this network's pooled tensors
    const int kin = kk < g.K;
    int dy = 0, dx = 0, c = 0;
    if (kin) {
        const int t = kk / g.C, kx = t % g.k, ky = t / g.k;
        c = kk % g.C; dy = ky - g.pad; dx = kx - g.pad;
    }
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const int o_begin = split * chunks_per_split * IG_DW_O;
    const int o_end = min(g.n_pool, o_begin + chunks_per_split * IG_DW_O);
    for (int o0 = o_begin; o0 < o_end; o0 += IG_DW_O) {
        if (tid < 4 * IG_DW_O) ig_row(g, o0 + (tid >> 2), tid & 3, &s_pix[tid], &s_y[tid], &s_x[tid]);
        __syncthreads();
        for (int e = tid; e < IG_DW_O * 32; e += 256) {
            const int ol = e >> 5, fl = e & 31, o = o0 + ol, f = fb + fl;
            float gv = 0.0f;
            int wi = 0;
            if (o < g.n_pool && f < g.F) {
                const size_t idx = pbase + (size_t)o * g.F + f;
                if (out[idx] > 0.0f) {
                    const int a = argmax[idx];
                    for (int i = 0; i < 4; i++)
                        if (s_y[4 * ol + i] != IG_OUTSIDE && s_pix[4 * ol + i] * g.F + f == a) wi = i;
                    gv = dout[idx];
                }
            }
            s_g[ol][fl] = gv;
            s_a[ol][fl] = wi;
        }
        for (int r = ty; r < 4 * IG_DW_O; r += 8) {
            const int y = s_y[r] + dy, x = s_x[r] + dx;
            float v = 0.0f;
            if (kin && (unsigned)y < (unsigned)g.H && (unsigned)x < (unsigned)g.W)
                v = inb[(s_pix[r] + dy * g.W + dx) * g.C + c];
            s_xt[r][tx] = v;
        }
        __syncthreads();
        const int nol = min(IG_DW_O, o_end - o0);
        for (int q = 0; q < 4; q++) {
            const int fl = ty + 8 * q;
            if (fb + fl >= g.F) break; // warp-uniform (ty is the same across a warp)
            float s = acc[q];
            for (int ol = 0; ol < nol; ol++) s = fmaf(s_g[ol][fl], s_xt[4 * ol + s_a[ol][fl]][tx], s);
            acc[q] = s;
        }
        __syncthreads();
    }
    if (!kin) return;
    float *dwb = dw + ((size_t)split * gridDim.z + net) * dw_stride;
    for (int q = 0; q < 4; q++) {
        const int f = fb + ty + 8 * q;
        if (f < g.F) dwb[f * g.kp + kk] = acc[q];
    }
}

// dw[net][f * kp + kk] = sum over splits s (in order) of part[(s * n_nets + net)][f * kp + kk].
__global__ void ig_dw_reduce_kernel(int F, int K, int kp, int n_split, int n_nets, const float *part, size_t part_stride,
                                    float *dw, size_t dw_stride) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x, net = blockIdx.y;
    if (e >= F * K) return;
    const int f = e / K, o = f * kp + (e - f * K);
    float s = 0.0f;
    for (int sp = 0; sp < n_split; sp++) s += part[((size_t)sp * n_nets + net) * part_stride + o];
    dw[(size_t)net * dw_stride + o] = s;
}

// dbias[f] = sum over pooled positions of the routed gradient, in double; one block per (filter, network).
__global__ void ig_dbias_kernel(IgGeom g, const float *out, const float *dout, float *dw, size_t dw_stride) {
    __shared__ double sh[HT_BLOCK];
    const int f = blockIdx.x, net = blockIdx.y;
    const size_t pbase = (size_t)net * g.n_pool * g.F;
    double s = 0.0;
    for (int o = threadIdx.x; o < g.n_pool; o += HT_BLOCK) {
        const size_t idx = pbase + (size_t)o * g.F + f;
        if (out[idx] > 0.0f) s += dout[idx];
    }
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) dw[(size_t)net * dw_stride + g.F * g.kp + f] = (float)s;
}

// dIn, gather form: block (32, 8), grid (pixel tiles of 64, channel tiles of 32, networks).
// Thread (tx, ty): channel 32 by + tx, input pixels 64 bx + ty + 8 i. Reduction over
// r = (ky * k + kx) * F + f in chunks of IG_TK: the conv-output gradient at pixel (y - ky + pad,
// x - kx + pad), filter f, is routed on the fly (nonzero only at its pool window's argmax, with a
// positive pooled value).
__global__ void ig_din_kernel(IgGeom g, const float *w, size_t w_stride, const float *out, const int32_t *argmax,
                              const float *dout, float *din) {
    __shared__ float s_d[IG_TK][64 + 4]; // (r, pixel)
    __shared__ float s_w[IG_TK][32];     // (r, channel)
    __shared__ int s_img[64], s_y[64], s_x[64];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 32 + tx;
    const int p0 = blockIdx.x * 64, c0 = blockIdx.y * 32, net = blockIdx.z;
    const int R = g.k * g.k * g.F, n_px = g.n_img * g.H * g.W;
    const float *wb = w + (size_t)net * w_stride;
    const size_t pbase = (size_t)net * g.n_pool * g.F;
    if (tid < 64) {
        const int p = p0 + tid;
        s_img[tid] = 0; s_y[tid] = IG_OUTSIDE; s_x[tid] = 0;
        if (p < n_px) {
            const int img = p / (g.H * g.W), rem = p - img * g.H * g.W, y = rem / g.W;
            s_img[tid] = img; s_y[tid] = y; s_x[tid] = rem - y * g.W;
        }
    }
    float acc[8];
    for (int i = 0; i < 8; i++) acc[i] = 0.0f;
    __syncthreads();
    for (int r0 = 0; r0 < R; r0 += IG_TK) {
        {
            const int j = tid & (IG_TK - 1), r = r0 + j;
            int f = 0, ky = 0, kx = 0;
            const int rin = r < R;
            if (rin) { f = r % g.F; const int t = r / g.F; kx = t % g.k; ky = t / g.k; }
            for (int q = tid / IG_TK; q < 64; q += 256 / IG_TK) {
                const int oy = s_y[q] - ky + g.pad, ox = s_x[q] - kx + g.pad;
                float v = 0.0f;
                if (rin && (unsigned)oy < (unsigned)g.H && (unsigned)ox < (unsigned)g.W) {
                    const int img = s_img[q];
                    const int poy = (oy + g.py) / IG_POOL, pox = (ox + g.px) / IG_POOL;
                    const size_t idx = pbase + ((size_t)(img * g.OH + poy) * g.OW + pox) * g.F + f;
                    if (argmax[idx] == ((img * g.H + oy) * g.W + ox) * g.F + f && out[idx] > 0.0f) v = dout[idx];
                }
                s_d[j][q] = v;
            }
        }
        for (int e = tid; e < IG_TK * 32; e += 256) {
            const int j = e >> 5, cl = e & 31, r = r0 + j, c = c0 + cl;
            float v = 0.0f;
            if (r < R && c < g.C) {
                const int f = r % g.F, t = r / g.F;
                v = wb[f * g.kp + t * g.C + c]; // t = ky * k + kx: tap-major, as the fan_in order (ky, kx, c)
            }
            s_w[j][cl] = v;
        }
        __syncthreads();
        for (int j = 0; j < IG_TK; j++) {
            const float wv = s_w[j][tx];
            for (int i = 0; i < 8; i++) acc[i] = fmaf(s_d[j][ty + 8 * i], wv, acc[i]);
        }
        __syncthreads();
    }
    const int c = c0 + tx;
    if (c >= g.C) return;
    for (int i = 0; i < 8; i++) {
        const int p = p0 + ty + 8 * i;
        if (p < n_px) din[((size_t)net * n_px + p) * g.C + c] = acc[i];
    }
}

void igemm_conv_pool_backward(cudaStream_t st, const TargetOp *conv, const TargetOp *pool, int n_nets, int n_img,
                              const float *in, size_t in_stride, const float *w, int kp, size_t w_stride,
                              const float *out, const int32_t *argmax, const float *dout, float *dw,
                              size_t dw_stride, float *din, float *scratch) {
    igemm_check_sizes(conv, n_nets, n_img);
    const IgGeom g = make_geom(conv, pool, n_img, kp);
    dim3 b2(32, 8);
    const IgSplit sp = dw_split(conv, pool, n_nets, n_img);
    dim3 gw((unsigned)(sp.n_kt * sp.n_split), (unsigned)((g.F + 31) / 32), (unsigned)n_nets);
    if (sp.n_split == 1) {
        ig_dw_kernel<<<gw, b2, 0, st>>>(g, sp.n_kt, sp.chunks, in, in_stride, out, argmax, dout, dw, dw_stride);
        LAUNCH_CHECK("ig_dw_kernel");
    } else {
        HT_CHECK(scratch, "igemm conv backward: %d networks need %zu floats of dW scratch (igemm_dw_scratch_floats)",
                 n_nets, igemm_dw_scratch_floats(conv, pool, n_nets, n_img));
        const size_t ps = (size_t)g.F * g.kp;
        ig_dw_kernel<<<gw, b2, 0, st>>>(g, sp.n_kt, sp.chunks, in, in_stride, out, argmax, dout, scratch, ps);
        LAUNCH_CHECK("ig_dw_kernel");
        dim3 gr(grid_for((size_t)g.F * g.K), (unsigned)n_nets);
        ig_dw_reduce_kernel<<<gr, HT_BLOCK, 0, st>>>(g.F, g.K, g.kp, sp.n_split, n_nets, scratch, ps, dw, dw_stride);
        LAUNCH_CHECK("ig_dw_reduce_kernel");
    }
    dim3 gb((unsigned)g.F, (unsigned)n_nets);
    ig_dbias_kernel<<<gb, HT_BLOCK, 0, st>>>(g, out, dout, dw, dw_stride);
    LAUNCH_CHECK("ig_dbias_kernel");
    if (!din) return;
    const int n_px = n_img * g.H * g.W;
    dim3 gd((unsigned)((n_px + 63) / 64), (unsigned)((g.C + 31) / 32), (unsigned)n_nets);
    ig_din_kernel<<<gd, b2, 0, st>>>(g, w, w_stride, out, argmax, dout, din);
    LAUNCH_CHECK("ig_din_kernel");
}
