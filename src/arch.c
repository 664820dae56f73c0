#include "arch.h"

#include <string.h>

#include "common.h"

static int out_same(int in, int stride) { return (in + stride - 1) / stride; }

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
        op->out_h = out_same(op->in_h, kernel); op->out_w = out_same(op->in_w, kernel);
        op->out_c = op->in_c; break;
    }
    if (type == OP_CONV || type == OP_FC) {
        TargetLayer *l = &a->layers[a->n_layers];
        l->filters = out_c;
        l->in_channels = op->in_c;
        l->fan_in = type == OP_CONV ? kernel * kernel * op->in_c : op->in_h * op->in_w * op->in_c;
        l->offset = a->n_weights;
        l->size = (size_t)l->filters * (size_t)(l->fan_in + 1);
        l->op = a->n_ops;
        op->layer = a->n_layers++;
        a->n_weights += l->size;
    }
    size_t in = (size_t)op->in_h * op->in_w * op->in_c, out = (size_t)op->out_h * op->out_w * op->out_c;
    if (in > a->max_act) a->max_act = in;
    if (out > a->max_act) a->max_act = out;
    a->n_ops++;
}

void arch_build_target(TargetArch *a, const Job *job) {
    memset(a, 0, sizeof(*a));
    a->in_h = job->input_h; a->in_w = job->input_w; a->in_c = job->input_c;
    a->in_size = a->in_h * a->in_w * a->in_c;
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
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->offset = *total;
    v->ndim = d1 > 0 ? 2 : 1;
    v->shape[0] = d0;
    v->shape[1] = d1 > 0 ? d1 : 0;
    v->size = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    *total += v->size;
    return (*n)++;
}

static void build_mlp(MlpArch *m, ParamTable *t, const char *name, int in, const int *hidden,
                      int n_hidden, int out) {
    char buf[HT_NAME_MAX + 32];
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->n_dense = n_hidden + 1;
    m->dims[0] = in;
    for (int i = 0; i < n_hidden; i++) m->dims[i + 1] = hidden[i];
    m->dims[n_hidden + 1] = out;
    for (int i = 0; i < m->n_dense; i++) {
        snprintf(buf, sizeof(buf), "%s/dense%d/kernel", name, i);
        m->kernel[i] = add_view(t->views, &t->n_views, &t->n_params, buf, m->dims[i], m->dims[i + 1]);
        t->n_weights += (size_t)m->dims[i] * m->dims[i + 1];
        if (i == m->n_dense - 1) { m->gamma[i] = m->beta[i] = m->mean[i] = m->var[i] = -1; continue; }
        snprintf(buf, sizeof(buf), "%s/bn%d/gamma", name, i);
        m->gamma[i] = add_view(t->views, &t->n_views, &t->n_params, buf, m->dims[i + 1], 0);
        snprintf(buf, sizeof(buf), "%s/bn%d/beta", name, i);
        m->beta[i] = add_view(t->views, &t->n_views, &t->n_params, buf, m->dims[i + 1], 0);
        snprintf(buf, sizeof(buf), "%s/bn%d/moving_mean", name, i);
        m->mean[i] = add_view(t->stats, &t->n_stats, &t->n_stat, buf, m->dims[i + 1], 0);
        snprintf(buf, sizeof(buf), "%s/bn%d/moving_var", name, i);
        m->var[i] = add_view(t->stats, &t->n_stats, &t->n_stat, buf, m->dims[i + 1], 0);
    }
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
        h->gen_out[l] = s->per_filter ? t->layers[l].fan_in + 1 : (int)t->layers[l].size;
        h->n_codes += h->gen_codes[l];
    }
    h->n_gens = t->n_layers;
    build_mlp(&h->extractor, &h->table, "extractor", job->z_dim, job->ext_hidden, job->n_ext_hidden,
              h->n_codes * job->code_size);
    for (int l = 0; l < t->n_layers; l++) {
        const LayerSpec *s = &job->layers[t->layers[l].op];
        char name[32];
        snprintf(name, sizeof(name), "gen%d", l + 1);
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
