// toy.h: the paper's toy problem (§4.1, Fig. 1): a generator maps z in [-1,1] (dim 1) to a 2-D
// point; "accuracy" is the negative log density of a Gaussian mixture; diversity is the L2
// Kozachenko–Leonenko entropy; an l2 penalty replaces gauge fixing.
#ifndef HT_TOY_H
#define HT_TOY_H

#include "config.h"

// log of the mixture density at x (2): equal weights, isotropic sigma.
double toy_log_density(const Job *job, const float *x);

// For n points x (n, 2): returns sum_i [-log p(x_i) ] and adds scale_nll * d(-log p)/dx_i +
// scale_l2 * 2 x_i into grad (n, 2) when grad != NULL. *l2_sum receives sum_i |x_i|^2.
double toy_nll_grad(const Job *job, const float *x, int n, double scale_nll, double scale_l2,
                    float *grad, double *l2_sum);

#endif
