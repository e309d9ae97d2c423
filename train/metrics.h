// metrics.h: classification figures from labels and predictions (emocam-train eval).
//
// Conventions (scikit-learn's, zero_division=0):
//   precision_k = TP_k / predicted_k   (0 when nothing was predicted as k)
//   recall_k    = TP_k / support_k     (0 when k has no image)
//   f1_k        = 2 p r / (p + r)      (0 when p + r = 0)
//   macro_*     = the plain mean over the classes present (in the labels or the predictions);
//   weighted_f1 = the mean of f1_k weighted by support_k.
#pragma once
#include "data.h"

typedef struct {
    long n, correct;
    long confusion[NCLASSES][NCLASSES];   // [true][predicted]
    long support[NCLASSES];               // images per true class
    long predicted[NCLASSES];             // images per predicted class
    double accuracy;
    double precision[NCLASSES], recall[NCLASSES], f1[NCLASSES];
    double macro_precision, macro_recall, macro_f1, weighted_f1;
    int nclasses_present;
} Metrics;

// Labels and predictions are 0..NCLASSES-1 (others are counted in neither).
void metrics_compute(const int *labels, const int *pred, int n, Metrics *m);
