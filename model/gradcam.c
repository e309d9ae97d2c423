// gradcam.c: Grad-CAM over one top-level layer (see gradcam.h).
#include "gradcam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CAM_BATCH = 32 };

int gradcam_default_layer(const Net *net) {
    for (int i = net_nlayers(net) - 1; i >= 0; i--) {
        Shape s;
        net_layer_info(net, i, &s);
        if (s.h > 1 && s.w > 1) return i;
    }
    return -1;
}

int gradcam(Net *net, int layer, const uint8_t *faces, int n, const int *target, float *cam, int *pred,
            float *probs, char *err, size_t errlen) {
    Shape s;
    if (net->folded) {
        snprintf(err, errlen, "%s: Grad-CAM needs the unfolded network (load it with net_load)", net->file);
        return -1;
    }
    if (!net_layer_info(net, layer, &s) || layer == net_nlayers(net) - 1) {
        snprintf(err, errlen, "%s: no layer %d for Grad-CAM (the network has %d; the last cannot be used)",
                 net->file, layer, net_nlayers(net));
        return -1;
    }
    int k = (int)shape_size(net->out), batch = n < CAM_BATCH ? n : CAM_BATCH;
    if (n <= 0) return 0;
    long in = shape_size(net->in), hw = (long)s.h * s.w;
    real *x = real_alloc((size_t)batch * in), *dy = real_alloc((size_t)batch * k);
    real *p = real_alloc((size_t)batch * k);
    int rc = -1;
    if (!x || !dy || !p || net_reserve(net, batch > net->nmax ? batch : net->nmax, 1, err, errlen)) {
        if (!x || !dy || !p) snprintf(err, errlen, "%s: out of memory for Grad-CAM", net->file);
        goto out;
    }
    for (int i0 = 0; i0 < n; i0 += batch) {
        int m = n - i0 < batch ? n - i0 : batch;
        net_preprocess(net, faces + (size_t)i0 * in, m, x);
        const real *logits = net_forward(net, x, m, 0, NULL);
        if (!logits) {
            snprintf(err, errlen, "%s: out of memory for Grad-CAM", net->file);
            goto out;
        }
        softmax(logits, m, k, p);
        memset(dy, 0, (size_t)m * k * sizeof *dy);
        for (int j = 0; j < m; j++) {
            int best = 0;
            for (int c = 1; c < k; c++)
                if (logits[j * k + c] > logits[j * k + best]) best = c;
            if (pred) pred[i0 + j] = best;
            if (probs)
                for (int c = 0; c < k; c++) probs[(size_t)(i0 + j) * k + c] = (float)p[j * k + c];
            int t = target ? target[i0 + j] : best;
            if (t < 0 || t >= k) {
                snprintf(err, errlen, "%s: Grad-CAM target class %d is not 0..%d", net->file, t, k - 1);
                goto out;
            }
            dy[j * k + t] = 1;
        }
        net_backward(net, x, dy, NULL, m, NULL);
        const real *A = net_layer_output(net, layer), *G = net_layer_grad(net, layer);
        if (!A || !G) {
            snprintf(err, errlen, "%s: layer %d has no gradient for Grad-CAM", net->file, layer);
            goto out;
        }
        for (int j = 0; j < m; j++) {
            const real *a = A + (size_t)j * s.c * hw, *g = G + (size_t)j * s.c * hw;
            float *o = cam + (size_t)(i0 + j) * hw;
            for (long q = 0; q < hw; q++) o[q] = 0;
            for (int c = 0; c < s.c; c++) {
                double w = 0;
                for (long q = 0; q < hw; q++) w += g[c * hw + q];
                w /= (double)hw;
                for (long q = 0; q < hw; q++) o[q] += (float)(w * a[c * hw + q]);
            }
            for (long q = 0; q < hw; q++)
                if (!(o[q] > 0)) o[q] = 0;
        }
    }
    rc = 0;
out:
    free(x);
    free(dy);
    free(p);
    return rc;
}
