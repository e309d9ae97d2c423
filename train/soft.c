// soft.c: soft targets for knowledge distillation, read from the predictions.csv that
// `emocam-train eval --set train --out DIR` writes (a teacher's probabilities for every
// training image), matched to the data set's images by name.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "data.h"

typedef struct {
    const char *name;
    int idx;
} NameIdx;

static int by_name(const void *a, const void *b) {
    return strcmp(((const NameIdx *)a)->name, ((const NameIdx *)b)->name);
}

// One CSV field holding the image's name, unquoted in place ("a ""b""" -> a "b"). Returns the
// text after the field's closing quote (or s itself when not quoted), NULL when unterminated.
static char *unquote(char *s) {
    if (*s != '"') return s;
    char *r = s + 1, *w = s;
    for (;;) {
        if (!*r) return NULL;
        if (*r == '"') {
            if (r[1] != '"') break;
            r++;
        }
        *w++ = *r++;
    }
    *w = 0;
    return r + 1;
}

int soft_targets_load(const char *path, const Dataset *d, real *soft, uint8_t *has, char *err,
                      size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    NameIdx *ix = malloc(sizeof *ix * (size_t)(d->n > 0 ? d->n : 1));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = -1, lineno = 0;
    if (!ix) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; i < d->n; i++) ix[i] = (NameIdx){dataset_name(d, i), i};
    qsort(ix, (size_t)d->n, sizeof *ix, by_name);
    memset(has, 0, (size_t)d->n);
    while ((got = getline(&line, &cap, f)) > 0) {
        size_t len = (size_t)got;
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (lineno == 1) {
            if (strncmp(line, "name,label,predicted,p_", 23)) {
                snprintf(err, errlen,
                         "%s:1: not a predictions.csv (want the header name,label,predicted,p_angry,... "
                         "that emocam-train eval --out writes)",
                         path);
                goto done;
            }
            continue;
        }
        // The name may hold commas (quoted); the 2 + NCLASSES numbers after it never do.
        char *p = line + len, *num[2 + NCLASSES];
        for (int k = 2 + NCLASSES - 1; k >= 0; k--) {
            while (p > line && p[-1] != ',') p--;
            if (p == line) {
                snprintf(err, errlen, "%s:%d: want a name, a label, a prediction and %d probabilities",
                         path, lineno, NCLASSES);
                goto done;
            }
            num[k] = p;
            *--p = 0;
        }
        char *name = line, *after = unquote(line);
        if (!after || (after != line && *after)) {
            snprintf(err, errlen, "%s:%d: a badly quoted name", path, lineno);
            goto done;
        }
        char *end;
        errno = 0;
        long label = strtol(num[0], &end, 10);
        if (end == num[0] || *end || label < 0 || label >= NCLASSES) {
            snprintf(err, errlen, "%s:%d: label '%s': want 0..%d", path, lineno, num[0], NCLASSES - 1);
            goto done;
        }
        real q[NCLASSES];
        double sum = 0;
        for (int k = 0; k < NCLASSES; k++) {
            double v = strtod(num[2 + k], &end);
            if (end == num[2 + k] || *end || !(v >= 0 && v <= 1)) {
                snprintf(err, errlen, "%s:%d: probability '%s' of %s: want a number in [0, 1]", path,
                         lineno, num[2 + k], CLASS_NAMES[k]);
                goto done;
            }
            q[k] = (real)v;
            sum += v;
        }
        if (fabs(sum - 1) > 1e-3) {   // eval prints 5 decimals: rounding moves the sum by < 4e-5
            snprintf(err, errlen, "%s:%d: the probabilities sum to %.5f, not 1", path, lineno, sum);
            goto done;
        }
        NameIdx key = {name, 0}, *hit = bsearch(&key, ix, (size_t)d->n, sizeof *ix, by_name);
        if (!hit) continue;   // an image this data set does not hold (e.g. a PublicTest row)
        if (d->labels[hit->idx] != (int)label) {
            snprintf(err, errlen,
                     "%s:%d: %s has label %ld here but %d (%s) in the data: made from other data?",
                     path, lineno, name, label, d->labels[hit->idx], CLASS_NAMES[d->labels[hit->idx]]);
            goto done;
        }
        if (has[hit->idx]) {
            snprintf(err, errlen, "%s:%d: %s a second time", path, lineno, name);
            goto done;
        }
        for (int k = 0; k < NCLASSES; k++) soft[(size_t)hit->idx * NCLASSES + k] = (real)(q[k] / sum);
        has[hit->idx] = 1;
    }
    if (ferror(f) || !feof(f)) {   // a read error, or getline out of memory
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (lineno == 0) {
        snprintf(err, errlen, "%s: empty, not a predictions.csv", path);
        goto done;
    }
    rc = 0;
done:
    free(ix);
    free(line);
    fclose(f);
    return rc;
}
