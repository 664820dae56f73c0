#include "arch.h"

#include <limits.h>
#include <string.h>

#include "common.h"

static int out_same(int in, int stride) { return (in + stride - 1) / stride; }

// Counts the kernels keep in int (a filter's fan-in, one image's activation, a generator's
// output width, a layer's or a network's weights): larger values are rejected up front.
#define COUNT_MAX ((size_t)INT_MAX)

static const char *op_name(OpType t) {
    static const char *const names[] = {"conv", "fc", "relu", "maxpool"};
    return (unsigned)t <= OP_MAXPOOL ? names[t] : "unknown";
}

// Checks one image's activation h x w x c against COUNT_MAX; returns it.
static size_t act_size(int h, int w, int c, int index, const char *which) {
    const size_t hw = XMUL(h, w, "job: target.layers[%d]: %s activation %d x %d", index, which, h, w);
    const size_t n = XMUL(hw, c, "job: target.layers[%d]: %s activation %d x %d x %d", index, which, h, w, c);
    HT_CHECK(n <= COUNT_MAX, "job: target.layers[%d]: the %s activation of one image, %d x %d x %d = "
             "%zu floats, exceeds the limit of %zu (reduce \"filters\" or the input size)",
             index, which, h, w, c, n, COUNT_MAX);
    return n;
}

// Fan-in (weights per filter, bias excluded) of a conv or fc op, checked.
static size_t op_fan_in(const TargetOp *op, int index) {
    if (op->type == OP_FC) return act_size(op->in_h, op->in_w, op->in_c, index, "input");
    const size_t kk = XMUL(op->kernel, op->kernel, "job: target.layers[%d]: kernel %d x %d", index,
                           op->kernel, op->kernel);
    const size_t n = XMUL(kk, op->in_c, "job: target.layers[%d]: kernel %d x %d x %d input channels",
                          index, op->kernel, op->kernel, op->in_c);
    HT_CHECK(n < COUNT_MAX, "job: target.layers[%d] (conv): kernel %d x %d x %d input channels = %zu "
             "weights per filter exceed the limit of %zu", index, op->kernel, op->kernel, op->in_c,
             n, COUNT_MAX - 1);
    return n;
}

static void add_layer(TargetArch *a, TargetOp *op, int out_c) {
    const int index = a->n_ops;
    TargetLayer *l = &a->layers[a->n_layers];
    const size_t fan_in = op_fan_in(op, index);
    l->filters = out_c;
    l->in_channels = op->in_c;
    l->fan_in = (int)fan_in;
    l->offset = a->n_weights;
    l->size = XMUL(out_c, fan_in + 1, "job: target.layers[%d] (%s): %d %s x %zu weights each",
                   index, op_name(op->type), out_c, op->type == OP_CONV ? "filters" : "units", fan_in + 1);
    HT_CHECK(l->size <= COUNT_MAX, "job: target.layers[%d] (%s): %d %s x %zu weights each (fan-in %zu "
             "+ bias) = %zu weights exceed the limit of %zu per layer", index, op_name(op->type), out_c,
             op->type == OP_CONV ? "filters" : "units", fan_in + 1, fan_in, l->size, COUNT_MAX);
    l->op = a->n_ops;
    op->layer = a->n_layers++;
    a->n_weights = XADD(a->n_weights, l->size, "job: target.layers[%d]: weights of the network", index);
    HT_CHECK(a->n_weights <= COUNT_MAX, "job: target.layers: the generated network has %zu weights "
             "(up to target.layers[%d]), more than the limit of %zu", a->n_weights, index, COUNT_MAX);
}

static void add_op(TargetArch *a, OpType type, int kernel, int out_c) {
    HT_CHECK(a->n_ops < HT_MAX_OPS, "target network has more than %d ops", HT_MAX_OPS);
    TargetOp *op = &a->ops[a->n_ops];
    const TargetOp *prev = a->n_ops ? &a->ops[a->n_ops - 1] : NULL;
    op->type = type;
    op->kernel = kernel;
    op->layer = -1;
    op->in_h = prev ? prev->out_h : a->in_h;
    op->in_w = prev ? prev->out_w : a->in_w;
    op->in_c = prev ? prev->out_c : a->in_c;
    switch (type) {
    case OP_CONV:
        op->out_h = op->in_h; op->out_w = op->in_w; op->out_c = out_c; break;
    case OP_FC:
        op->out_h = 1; op->out_w = 1; op->out_c = out_c; break;
    case OP_RELU:
        op->out_h = op->in_h; op->out_w = op->in_w; op->out_c = op->in_c; break;
    case OP_MAXPOOL:
        HT_CHECK(kernel >= 1, "job: target.layers[%d] (maxpool): window %d must be >= 1", a->n_ops, kernel);
        op->out_h = out_same(op->in_h, kernel); op->out_w = out_same(op->in_w, kernel);
        op->out_c = op->in_c; break;
    }
    if (type == OP_CONV || type == OP_FC) add_layer(a, op, out_c);
    const size_t in = act_size(op->in_h, op->in_w, op->in_c, a->n_ops, "input");
    const size_t out = act_size(op->out_h, op->out_w, op->out_c, a->n_ops, "output");
    if (in > a->max_act) a->max_act = in;
    if (out > a->max_act) a->max_act = out;
    a->n_ops++;
}

void arch_build_target(TargetArch *a, const Job *job) {
    memset(a, 0, sizeof(*a));
    a->in_h = job->input_h; a->in_w = job->input_w; a->in_c = job->input_c;
    a->in_size = (int)act_size(a->in_h, a->in_w, a->in_c, 0, "input");
    a->classes = job->classes;
    for (int i = 0; i < job->n_layers; i++) {
        const LayerSpec *s = &job->layers[i];
        add_op(a, s->type, s->kernel, s->filters);
    }
    HT_CHECK(a->n_layers >= 1, "job: target.layers has no conv or fc layer");
    const TargetOp *last = &a->ops[a->n_ops - 1];
    HT_CHECK(last->type == OP_FC && last->out_c == a->classes,
             "job: the last entry of target.layers must be an fc layer with %d units "
             "(target.classes); softmax is implied", a->classes);
}

// ---- parameter table ----

static int add_view(ParamView *views, int *n, size_t *total, const char *name, int d0, int d1) {
    HT_CHECK(*n < HT_MAX_VIEWS, "too many parameter tensors (max %d)", HT_MAX_VIEWS);
    ParamView *v = &views[*n];
    XSNPRINTF(v->name, sizeof(v->name), "%s", name);
    v->offset = *total;
    v->ndim = d1 > 0 ? 2 : 1;
    v->shape[0] = d0;
    v->shape[1] = d1 > 0 ? d1 : 0;
    v->size = XMUL(d0, d1 > 0 ? d1 : 1, "hypernetwork tensor %s: %d x %d", name, d0, d1);
    *total = XADD(*total, v->size, "hypernetwork parameters up to %s", name);
    return (*n)++;
}

static void build_mlp(MlpArch *m, ParamTable *t, const char *name, int in, const int *hidden,
                      int n_hidden, int out) {
    char buf[HT_NAME_MAX];
    XSNPRINTF(m->name, sizeof(m->name), "%s", name);
    m->n_dense = n_hidden + 1;
    m->dims[0] = in;
    for (int i = 0; i < n_hidden; i++) m->dims[i + 1] = hidden[i];
    m->dims[n_hidden + 1] = out;
    for (int i = 0; i < m->n_dense; i++) {
        XSNPRINTF(buf, sizeof(buf), "%s/dense%d/kernel", name, i);
        m->kernel[i] = add_view(t->views, &t->n_views, &t->n_params, buf, m->dims[i], m->dims[i + 1]);
        t->n_weights = XADD(t->n_weights, t->views[m->kernel[i]].size, "hypernetwork weights up to %s", buf);
        if (i == m->n_dense - 1) { m->gamma[i] = m->beta[i] = m->mean[i] = m->var[i] = -1; continue; }
        XSNPRINTF(buf, sizeof(buf), "%s/bn%d/gamma", name, i);
        m->gamma[i] = add_view(t->views, &t->n_views, &t->n_params, buf, m->dims[i + 1], 0);
        XSNPRINTF(buf, sizeof(buf), "%s/bn%d/beta", name, i);
        m->beta[i] = add_view(t->views, &t->n_views, &t->n_params, buf, m->dims[i + 1], 0);
        XSNPRINTF(buf, sizeof(buf), "%s/bn%d/moving_mean", name, i);
        m->mean[i] = add_view(t->stats, &t->n_stats, &t->n_stat, buf, m->dims[i + 1], 0);
        XSNPRINTF(buf, sizeof(buf), "%s/bn%d/moving_var", name, i);
        m->var[i] = add_view(t->stats, &t->n_stats, &t->n_stat, buf, m->dims[i + 1], 0);
    }
}

// Output width of generator l (one row per code): fan_in + 1 per filter, or the whole layer.
static int gen_out_width(const TargetLayer *tl, int per_filter, int l) {
    const size_t n = per_filter ? (size_t)tl->fan_in + 1 : tl->size;
    HT_CHECK(n <= COUNT_MAX, "job: target.layers[%d]: generator %d would output %zu values per code, "
             "more than the limit of %zu (set \"per_filter\": true or make the layer smaller)",
             tl->op, l + 1, n, COUNT_MAX);
    return (int)n;
}

void arch_build_hyper(HyperArch *h, const Job *job, const TargetArch *t) {
    memset(h, 0, sizeof(*h));
    h->z_dim = job->z_dim;
    h->code_size = job->code_size;
    if (job->task == TASK_TOY) {
        build_mlp(&h->extractor, &h->table, "generator", job->z_dim, job->toy_hidden,
                  job->n_toy_hidden, 2);
        return;
    }
    for (int l = 0; l < t->n_layers; l++) {
        const LayerSpec *s = &job->layers[t->layers[l].op];
        h->gen_code_offset[l] = h->n_codes;
        h->gen_codes[l] = s->per_filter ? t->layers[l].filters : 1;
        h->gen_out[l] = gen_out_width(&t->layers[l], s->per_filter, l);
        HT_CHECK((size_t)h->n_codes + (size_t)h->gen_codes[l] <= COUNT_MAX,
                 "job: target.layers: more than %zu codes", COUNT_MAX);
        h->n_codes += h->gen_codes[l];
    }
    h->n_gens = t->n_layers;
    const size_t ext_out = XMUL(h->n_codes, job->code_size, "job: %d codes x \"code_size\" %d",
                                h->n_codes, job->code_size);
    HT_CHECK(ext_out <= COUNT_MAX, "job: the extractor would output %d codes x \"code_size\" %d = %zu "
             "values per sample, more than the limit of %zu (reduce \"code_size\" or the filters of "
             "per-filter layers)", h->n_codes, job->code_size, ext_out, COUNT_MAX);
    build_mlp(&h->extractor, &h->table, "extractor", job->z_dim, job->ext_hidden, job->n_ext_hidden,
              (int)ext_out);
    for (int l = 0; l < t->n_layers; l++) {
        const LayerSpec *s = &job->layers[t->layers[l].op];
        char name[32];
        XSNPRINTF(name, sizeof(name), "gen%d", l + 1);
        build_mlp(&h->gens[l], &h->table, name, job->code_size, s->gen_hidden, s->n_gen_hidden,
                  h->gen_out[l]);
    }
}

void arch_print(const HyperArch *h, const TargetArch *t, FILE *out) {
    const ParamTable *pt = &h->table;
    fprintf(out, "hypernetwork: %zu trainable parameters (%zu weights + %zu batch-norm scales/offsets), "
                 "%zu batch-norm running statistics\n",
            pt->n_params, pt->n_weights, pt->n_params - pt->n_weights, pt->n_stat);
    if (t && t->n_layers) {
        fprintf(out, "target network: %zu weights per generated network (", t->n_weights);
        for (int l = 0; l < t->n_layers; l++)
            fprintf(out, "%s%zu", l ? " + " : "", t->layers[l].size);
        fprintf(out, ")\n");
    }
}
