#include "toy.h"

#include <math.h>
#include <stddef.h>

// log sum_k exp(a_k) computed stably, with responsibilities r_k = exp(a_k - lse) when r != NULL.
static double logsumexp(const double *a, int n, double *r) {
    double mx = a[0];
    for (int k = 1; k < n; k++) if (a[k] > mx) mx = a[k];
    double s = 0.0;
    for (int k = 0; k < n; k++) s += exp(a[k] - mx);
    const double lse = mx + log(s);
    if (r) for (int k = 0; k < n; k++) r[k] = exp(a[k] - lse);
    return lse;
}

static double log_density_resp(const Job *job, const float *x, double *resp) {
    const int K = job->toy_n_mix > 0 ? job->toy_n_mix : 1;
    const double s2 = job->toy_sigma * job->toy_sigma;
    const double log_norm = -log(2.0 * 3.14159265358979323846 * s2) - log((double)K);
    double a[HT_MAX_MIX];
    for (int k = 0; k < K; k++) {
        const double dx = x[0] - job->toy_means[k][0], dy = x[1] - job->toy_means[k][1];
        a[k] = -(dx * dx + dy * dy) / (2.0 * s2);
    }
    return log_norm + logsumexp(a, K, resp);
}

double toy_log_density(const Job *job, const float *x) { return log_density_resp(job, x, NULL); }

double toy_nll_grad(const Job *job, const float *x, int n, double scale_nll, double scale_l2,
                    float *grad, double *l2_sum) {
    const int K = job->toy_n_mix;
    const double s2 = job->toy_sigma * job->toy_sigma;
    double nll = 0.0, l2 = 0.0;
    for (int i = 0; i < n; i++) {
        const float *xi = x + 2 * i;
        double resp[HT_MAX_MIX];
        nll -= log_density_resp(job, xi, resp);
        l2 += (double)xi[0] * xi[0] + (double)xi[1] * xi[1];
        if (!grad) continue;
        for (int d = 0; d < 2; d++) { // d(-log p)/dx = sum_k r_k (x - mu_k) / sigma^2
            double g = 0.0;
            for (int k = 0; k < K; k++) g += resp[k] * (xi[d] - job->toy_means[k][d]) / s2;
            grad[2 * i + d] += (float)(scale_nll * g + scale_l2 * 2.0 * xi[d]);
        }
    }
    if (l2_sum) *l2_sum = l2;
    return nll;
}
