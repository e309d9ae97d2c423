// test_metrics.c: metrics_compute (train/metrics.h) on a hand-made set of predictions, against
// figures worked out by hand (scikit-learn's conventions: zero_division=0, macro averages over
// the classes present in the labels or the predictions).
//
//   labels 0 0 0 1 1 2 2 2 2 3
//   pred   0 0 1 1 2 2 2 0 4 3      (4 is predicted but never true; 5 and 6 appear nowhere)
//
//   class  TP  support  predicted  precision  recall  F1
//   0      2   3        3          2/3        2/3     2/3
//   1      1   2        2          1/2        1/2     1/2
//   2      2   4        3          2/3        1/2     4/7
//   3      1   1        1          1          1       1
//   4      0   0        1          0          0       0
//   accuracy 6/10; macro over the 5 present classes: F1 (2/3 + 1/2 + 4/7 + 1 + 0) / 5,
//   precision (2/3 + 1/2 + 2/3 + 1) / 5, recall (2/3 + 1/2 + 1/2 + 1) / 5;
//   weighted F1 (3 * 2/3 + 2 * 1/2 + 4 * 4/7 + 1) / 10.
#include <math.h>

#include "metrics.h"
#include "testutil.h"

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

int main(void) {
    const int labels[10] = {0, 0, 0, 1, 1, 2, 2, 2, 2, 3};
    const int pred[10] = {0, 0, 1, 1, 2, 2, 2, 0, 4, 3};
    Metrics m;
    metrics_compute(labels, pred, 10, &m);
    CHECK(m.n == 10 && m.correct == 6 && near(m.accuracy, 0.6), "accuracy %g (%ld of %ld)", m.accuracy,
          m.correct, m.n);
    const long conf[NCLASSES][NCLASSES] = {
        {2, 1, 0, 0, 0, 0, 0},
        {0, 1, 1, 0, 0, 0, 0},
        {1, 0, 2, 0, 1, 0, 0},
        {0, 0, 0, 1, 0, 0, 0},
        {0},
        {0},
        {0},
    };
    for (int t = 0; t < NCLASSES; t++)
        for (int p = 0; p < NCLASSES; p++)
            CHECK(m.confusion[t][p] == conf[t][p], "confusion[%d][%d] = %ld, want %ld", t, p,
                  m.confusion[t][p], conf[t][p]);
    const long support[NCLASSES] = {3, 2, 4, 1, 0, 0, 0}, predicted[NCLASSES] = {3, 2, 3, 1, 1, 0, 0};
    const double prec[NCLASSES] = {2.0 / 3, 0.5, 2.0 / 3, 1, 0, 0, 0};
    const double rec[NCLASSES] = {2.0 / 3, 0.5, 0.5, 1, 0, 0, 0};
    const double f1[NCLASSES] = {2.0 / 3, 0.5, 4.0 / 7, 1, 0, 0, 0};
    for (int k = 0; k < NCLASSES; k++) {
        CHECK(m.support[k] == support[k], "support[%d] = %ld", k, m.support[k]);
        CHECK(m.predicted[k] == predicted[k], "predicted[%d] = %ld", k, m.predicted[k]);
        CHECK(near(m.precision[k], prec[k]), "precision[%d] = %g, want %g", k, m.precision[k], prec[k]);
        CHECK(near(m.recall[k], rec[k]), "recall[%d] = %g, want %g", k, m.recall[k], rec[k]);
        CHECK(near(m.f1[k], f1[k]), "f1[%d] = %g, want %g", k, m.f1[k], f1[k]);
    }
    CHECK(m.nclasses_present == 5, "%d classes present", m.nclasses_present);
    double mf1 = (2.0 / 3 + 0.5 + 4.0 / 7 + 1 + 0) / 5, mp = (2.0 / 3 + 0.5 + 2.0 / 3 + 1) / 5;
    double mr = (2.0 / 3 + 0.5 + 0.5 + 1) / 5, wf1 = (3 * 2.0 / 3 + 2 * 0.5 + 4 * 4.0 / 7 + 1) / 10;
    CHECK(near(m.macro_f1, mf1), "macro F1 %.12f, want %.12f", m.macro_f1, mf1);
    CHECK(near(m.macro_precision, mp), "macro precision %.12f, want %.12f", m.macro_precision, mp);
    CHECK(near(m.macro_recall, mr), "macro recall %.12f, want %.12f", m.macro_recall, mr);
    CHECK(near(m.weighted_f1, wf1), "weighted F1 %.12f, want %.12f", m.weighted_f1, wf1);
    CHECK(near(mf1, 0.547619047619) && fabs(wf1 - 0.628571428571) < 1e-11, "the hand figures themselves");

    // all right; all wrong; nothing; out-of-range entries are left out
    const int same[4] = {6, 5, 6, 0}, other[4] = {5, 6, 5, 1}, bad[3] = {7, -1, 2};
    metrics_compute(same, same, 4, &m);
    CHECK(near(m.accuracy, 1) && near(m.macro_f1, 1) && near(m.weighted_f1, 1) && m.nclasses_present == 3,
          "perfect: acc %g macro F1 %g", m.accuracy, m.macro_f1);
    metrics_compute(same, other, 4, &m);
    CHECK(m.correct == 0 && near(m.macro_f1, 0) && m.nclasses_present == 4, "all wrong: %ld right",
          m.correct);
    metrics_compute(same, same, 0, &m);
    CHECK(m.n == 0 && near(m.accuracy, 0) && near(m.macro_f1, 0), "empty");
    metrics_compute(bad, same, 3, &m);
    CHECK(m.n == 1 && m.confusion[2][6] == 1, "out-of-range labels counted: n %ld", m.n);
    return test_result("test_metrics");
}
