// metrics.c: accuracy, per-class precision / recall / F1 and the confusion matrix.
#include "metrics.h"

#include <string.h>

void metrics_compute(const int *labels, const int *pred, int n, Metrics *m) {
    memset(m, 0, sizeof *m);
    for (int i = 0; i < n; i++) {
        int t = labels[i], p = pred[i];
        if (t < 0 || t >= NCLASSES || p < 0 || p >= NCLASSES) continue;
        m->confusion[t][p]++;
        m->support[t]++;
        m->predicted[p]++;
        m->correct += t == p;
        m->n++;
    }
    m->accuracy = m->n ? (double)m->correct / m->n : 0;
    for (int k = 0; k < NCLASSES; k++) {
        long tp = m->confusion[k][k];
        double p = m->predicted[k] ? (double)tp / m->predicted[k] : 0;
        double r = m->support[k] ? (double)tp / m->support[k] : 0;
        m->precision[k] = p;
        m->recall[k] = r;
        m->f1[k] = p + r > 0 ? 2 * p * r / (p + r) : 0;
        if (m->support[k] || m->predicted[k]) {
            m->nclasses_present++;
            m->macro_precision += p;
            m->macro_recall += r;
            m->macro_f1 += m->f1[k];
        }
        m->weighted_f1 += m->f1[k] * (double)m->support[k];
    }
    if (m->nclasses_present) {
        m->macro_precision /= m->nclasses_present;
        m->macro_recall /= m->nclasses_present;
        m->macro_f1 /= m->nclasses_present;
    }
    if (m->n) m->weighted_f1 /= (double)m->n;
}
