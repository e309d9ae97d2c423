// gradcam.h: Grad-CAM (Selvaraju et al. 2017): where in a face a network looks for a class.
//
// For a spatial feature map A (C x H x W, the output of one top-level layer) and the class
// score y (the logit, before softmax):
//   a_c = mean over (h, w) of dy/dA_c(h, w)           per channel
//   cam = ReLU(sum_c a_c A_c)                           H x W
// computed with an eval-mode forward and net_backward of dy = one-hot(class). The network
// must not be batchnorm-folded (folding merges layers); load it with net_load for this.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model.h"

// The last top-level layer whose output is spatial (h > 1 and w > 1); -1 when there is none.
int gradcam_default_layer(const Net *net);

// Grad-CAM of n faces (n, in.h, in.w) 8-bit gray at top-level layer `layer`. target: the class
// per face, or NULL for the network's own prediction. Writes cam (n, H, W) of that layer's
// shape (may be all zero), and, when not NULL, pred (n) the predicted class and probs (n, k)
// the softmax. Reserves gradient buffers on net (net_reserve with_grads) and leaves parameter
// gradients dirty. 0, or -1 with the reason in err (folded net, bad layer, out of memory).
int gradcam(Net *net, int layer, const uint8_t *faces, int n, const int *target, float *cam, int *pred,
            float *probs, char *err, size_t errlen);
