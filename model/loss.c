// loss.c: softmax and softmax cross-entropy with class weights and label smoothing,
// matching torch.nn.functional.cross_entropy(weight=cw, label_smoothing=eps).
#include <math.h>

#include "model.h"

void softmax(const real *logits, int n, int k, real *probs) {
    for (int i = 0; i < n; i++) {
        const real *z = logits + (size_t)i * k;
        real *p = probs + (size_t)i * k;
        double mx = z[0], s = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > mx) mx = z[j];
        for (int j = 0; j < k; j++) s += exp((double)z[j] - mx);
        for (int j = 0; j < k; j++) p[j] = (real)(exp((double)z[j] - mx) / s);
    }
}

// Per sample i with target t: loss_i = (1-eps) w_t (-log p_t) + eps/k sum_j w_j (-log p_j).
// The batch loss is sum_i loss_i / sum_i w_{t_i}.
double softmax_xent(const real *logits, const int *labels, int n, int k, const real *cw,
                    real eps, real *probs, real *dlogits) {
    double total = 0, wsum = 0;
    for (int i = 0; i < n; i++) wsum += cw ? cw[labels[i]] : 1;
    if (wsum <= 0) wsum = 1;
    double swall = 0;   // sum_j w_j
    for (int j = 0; j < k; j++) swall += cw ? cw[j] : 1;
    for (int i = 0; i < n; i++) {
        const real *z = logits + (size_t)i * k;
        int t = labels[i];
        double mx = z[0], s = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > mx) mx = z[j];
        for (int j = 0; j < k; j++) s += exp((double)z[j] - mx);
        double lse = mx + log(s), wt = cw ? cw[t] : 1, li = (1 - eps) * wt * (lse - z[t]);
        for (int j = 0; j < k; j++) li += eps / k * (cw ? cw[j] : 1) * (lse - z[j]);
        total += li;
        for (int j = 0; j < k; j++) {
            double p = exp((double)z[j] - lse), wj = cw ? cw[j] : 1;
            if (probs) probs[(size_t)i * k + j] = (real)p;
            // d loss_i / d z_j = p_j ((1-eps) w_t + eps/k sum w) - (1-eps) w_t [j==t] - eps/k w_j
            double g = p * ((1 - eps) * wt + eps / k * swall) - eps / k * wj;
            if (j == t) g -= (1 - eps) * wt;
            if (dlogits) dlogits[(size_t)i * k + j] = (real)(g / wsum);
        }
    }
    return total / wsum;
}

// Per sample i with target distribution q_i: loss_i = sum_j w_j q_ij (-log p_ij); the batch
// loss is sum_i loss_i / n (PyTorch's mean for probability targets: not divided by weights).
double softmax_xent_probs(const real *logits, const real *target, int n, int k, const real *cw,
                          real *probs, real *dlogits) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const real *z = logits + (size_t)i * k, *q = target + (size_t)i * k;
        double mx = z[0], s = 0, wq = 0;   // wq = sum_j w_j q_ij
        for (int j = 1; j < k; j++)
            if (z[j] > mx) mx = z[j];
        for (int j = 0; j < k; j++) s += exp((double)z[j] - mx);
        double lse = mx + log(s);
        for (int j = 0; j < k; j++) {
            double wj = cw ? cw[j] : 1;
            total += wj * q[j] * (lse - z[j]);
            wq += wj * q[j];
        }
        for (int j = 0; j < k; j++) {
            double p = exp((double)z[j] - lse);
            if (probs) probs[(size_t)i * k + j] = (real)p;
            // d loss_i / d z_j = p_j sum_m w_m q_im - w_j q_ij
            if (dlogits) dlogits[(size_t)i * k + j] = (real)((p * wq - (cw ? cw[j] : 1) * q[j]) / n);
        }
    }
    return n > 0 ? total / n : 0;
}
