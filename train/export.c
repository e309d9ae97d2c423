// export.c: emocam-train export, a weights file rewritten with its tensors in float16 (half
// the size, for shipping in assets/) or back in float32.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "model.h"

static const char *const HELP =
    "usage: emocam-train export IN.weights OUT.weights [--f16 | --f32]\n"
    "\n"
    "Rewrite a weights file with every tensor stored as float16 (--f16, the default: half the\n"
    "bytes; each value rounded to 11 significant bits, about 3 decimal digits) or float32\n"
    "(--f32). emocam and emocam-train read either. Prints both sizes and the largest change of\n"
    "a value, relative to the largest magnitude in its tensor. OUT may be IN; it is written\n"
    "under a temporary name and renamed when complete. Training checkpoints stay float32.\n"
    "\n"
    "  --f16        store float16 (default); a value beyond +-65504 is refused\n"
    "  --f32        store float32\n"
    "  -h, --help   this text\n"
    "\n"
    "Exit status: 0 done, 1 a file could not be read or written, 2 bad usage.\n";

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int export_main(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int f16 = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP, stdout);
            return 0;
        }
        if (!strcmp(a, "--f16") || !strcmp(a, "--f32")) {
            f16 = a[3] == '1';
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "emocam-train export: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "emocam-train export: '%s': give one IN and one OUT (see --help)\n", a);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "emocam-train export: missing %s (see --help)\n",
                in ? "OUT.weights" : "IN.weights and OUT.weights");
        return 2;
    }
    char err[EMO_ERRLEN];
    Net *a = net_load(in, err, sizeof err);
    if (!a) {
        fprintf(stderr, "emocam-train export: %s\n", err);
        return 1;
    }
    long long before = file_size(in);
    Net *b = NULL;
    int rc = 1;
    if (net_save_as(a, out, f16, err, sizeof err) || !(b = net_load(out, err, sizeof err))) {
        fprintf(stderr, "emocam-train export: %s\n", err);
        goto out;
    }
    double worst = 0;   // the largest change, relative to its tensor's largest magnitude
    for (int t = 0; t < a->ntensors; t++) {
        const real *x = net_tensor_data(a, &a->tensors[t]), *y = net_tensor_data(b, &b->tensors[t]);
        double top = 0, d = 0;
        for (size_t j = 0; j < a->tensors[t].count; j++) {
            top = fmax(top, fabs((double)x[j]));
            d = fmax(d, fabs((double)y[j] - x[j]));
        }
        if (top > 0) worst = fmax(worst, d / top);
    }
    printf("%s (%lld bytes) -> %s (%lld bytes, %s): largest change %.2g of a tensor's largest "
           "value\n",
           in, before, out, file_size(out), f16 ? "float16" : "float32", worst);
    rc = 0;
out:
    net_free(a);
    net_free(b);
    return rc;
}
