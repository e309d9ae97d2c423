// refinit.c: see refinit.h.
#include "refinit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

uint32_t refinit_hash(uint32_t stream, uint32_t i) {
    uint32_t h = stream * 0x9E3779B1u + i * 0x85EBCA77u + 0x165667B1u;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    return h;
}

double refinit_uniform(uint32_t stream, uint32_t i) {
    return (double)(refinit_hash(stream, i) >> 8) * (2.0 / 16777216.0) - 1.0;
}

int refinit_net(Net *net, char *err, size_t errlen) {
    for (int t = 0; t < net->ntensors; t++) {
        const Tensor *ts = &net->tensors[t];
        const char *dot = strrchr(ts->name, '.');
        const char *kind = dot ? dot + 1 : ts->name;
        double scale = 0, shift = 0;
        if (strcmp(kind, "w") == 0)
            scale = 1.0 / sqrt((double)(ts->count / (size_t)ts->dims[0]));
        else if (!strcmp(kind, "b") || !strcmp(kind, "beta") || !strcmp(kind, "running_mean"))
            scale = 0.2;
        else if (strcmp(kind, "gamma") == 0)
            scale = 0.25, shift = 1;
        else if (strcmp(kind, "running_var") == 0)
            scale = 0.5, shift = 1;
        else {
            snprintf(err, errlen, "refinit: no rule for tensor %s", ts->name);
            return -1;
        }
        real *p = net_tensor_data(net, ts);
        for (size_t i = 0; i < ts->count; i++) {
            double u = refinit_uniform((uint32_t)t, (uint32_t)i);
            // the shifted forms are exact in double, so contraction cannot change them
            p[i] = (real)(float)(shift != 0 ? shift + scale * u : u * scale);
        }
    }
    return 0;
}
