// ensemble.c: ensemble lists, and classifying faces with several networks (see ensemble.h).
#include "ensemble.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ENS_BATCH = 128 };   // views per forward pass

static char *dupstr(const char *s) {
    size_t len = strlen(s) + 1;
    char *d = malloc(len);
    if (d) memcpy(d, s, len);
    return d;
}

// The folder part of a path ("." when it has none); malloc'd.
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dupstr(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, path, len);
    d[len] = 0;
    return d;
}

// dir/rel, or rel itself when it is absolute; malloc'd.
static char *join(const char *dir, const char *rel) {
    if (rel[0] == '/' || !dir) return dupstr(rel);
    size_t len = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, rel);
    return p;
}

// Read a whole file (NUL-terminated). NULL with the reason in err.
static char *read_text(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *nb = cap < ((size_t)1 << 26) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                snprintf(err, errlen, "%s: too large for an ensemble list", path);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

void ensemble_free(Ensemble *e) {
    if (!e) return;
    for (int i = 0; i < e->n; i++) {
        net_free(e->m[i].net);
        free(e->m[i].path);
    }
    free(e->m);
    net_scratch_free(&e->scratch);
    free(e->source);
    free(e);
}

// Load one member's weights, check its shapes, fold it, give it the ensemble's scratch
// buffers (the members run one after another). 0 or -1 (err says why).
static int member_load(Ensemble *e, EnsembleMember *m, char *err, size_t errlen) {
    m->net = net_load(m->path, err, errlen);
    if (!m->net) return -1;
    const Net *n = m->net;
    if (n->in.c != 1 || n->in.h != ENS_FACE || n->in.w != ENS_FACE || n->out.c != ENS_CLASSES ||
        n->out.h != 1 || n->out.w != 1) {
        snprintf(err, errlen, "%s: the network maps %dx%dx%d to %dx%dx%d, not 1x%dx%d faces to %d classes",
                 m->path, n->in.c, n->in.h, n->in.w, n->out.c, n->out.h, n->out.w, ENS_FACE, ENS_FACE,
                 ENS_CLASSES);
        return -1;
    }
    net_fold_bn(m->net);
    return net_use_scratch(m->net, &e->scratch, err, errlen);
}

static Ensemble *ensemble_new(const char *source) {
    Ensemble *e = calloc(1, sizeof *e);
    if (e && !(e->source = dupstr(source))) {
        free(e);
        e = NULL;
    }
    return e;
}

static int push_member(Ensemble *e, int *cap) {
    if (e->n < *cap) return 0;
    int nc = *cap ? 2 * *cap : 4;
    EnsembleMember *m = realloc(e->m, (size_t)nc * sizeof *m);
    if (!m) return -1;
    e->m = m;
    *cap = nc;
    return 0;
}

Ensemble *ensemble_parse(const char *text, const char *file, const char *dir, char *err, size_t errlen) {
    Ensemble *e = ensemble_new(file);
    char *copy = dupstr(text);
    int cap = 0, line = 0, tta_line = 0;
    if (!e || !copy) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto fail;
    }
    for (char *s = copy, *next; s; s = next) {
        line++;
        next = strchr(s, '\n');
        if (next) *next++ = 0;
        for (char *p = s; *p; p++)   // a comment: '#' at the start or after a blank
            if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
                *p = 0;
                break;
            }
        char *tok[4];
        int nt = 0;
        for (char *p = s; *p;) {
            while (*p == ' ' || *p == '\t' || *p == '\r') p++;
            if (!*p) break;
            if (nt == 4) break;
            tok[nt++] = p;
            while (*p && *p != ' ' && *p != '\t' && *p != '\r') p++;
            if (*p) *p++ = 0;
        }
        if (nt == 0) continue;
        if (nt == 2 && !strcmp(tok[0], "tta")) {   // the augmentation the weights were chosen for
            if (tta_line) {
                snprintf(err, errlen, "%s:%d: tta is already given at line %d", file, line,
                         tta_line);
                goto fail;
            }
            if ((e->tta = ensemble_tta_parse(tok[1])) < 0) {
                snprintf(err, errlen, "%s:%d: tta '%s': want none, flip or crops", file, line,
                         tok[1]);
                goto fail;
            }
            tta_line = line;
            continue;
        }
        if (nt < 2 || nt > 3) {
            snprintf(err, errlen, "%s:%d: expected 'WEIGHT PATH [tta=VIEWS]', got %s", file,
                     line, nt == 1 ? "one field" : "more than three fields");
            goto fail;
        }
        int own = -1;   // the member's own tta=
        if (nt == 3 && (strncmp(tok[2], "tta=", 4) || (own = ensemble_tta_parse(tok[2] + 4)) < 0)) {
            snprintf(err, errlen, "%s:%d: '%s': want tta=none, tta=flip or tta=crops", file, line,
                     tok[2]);
            goto fail;
        }
        char *end;
        errno = 0;
        double w = strtod(tok[0], &end);
        if (end == tok[0] || *end || errno || !isfinite(w) || w <= 0) {
            snprintf(err, errlen, "%s:%d: weight '%s' is not a number > 0", file, line, tok[0]);
            goto fail;
        }
        if (push_member(e, &cap)) {
            snprintf(err, errlen, "%s: out of memory", file);
            goto fail;
        }
        EnsembleMember *m = &e->m[e->n];
        *m = (EnsembleMember){NULL, w, join(dir ? dir : ".", tok[1]), line, own, own >= 0};
        if (!m->path) {
            snprintf(err, errlen, "%s: out of memory", file);
            goto fail;
        }
        e->n++;
        for (int i = 0; i < e->n - 1; i++)
            if (!strcmp(e->m[i].path, m->path)) {
                snprintf(err, errlen, "%s:%d: '%s' is already listed at line %d", file, line, tok[1],
                         e->m[i].line);
                goto fail;
            }
        char why[EMO_ERRLEN];
        if (member_load(e, m, why, sizeof why)) {
            snprintf(err, errlen, "%s:%d: %s", file, line, why);
            goto fail;
        }
        e->wsum += w;
    }
    if (e->n == 0) {
        snprintf(err, errlen, "%s: no members (want lines of 'WEIGHT PATH')", file);
        goto fail;
    }
    for (int i = 0; i < e->n; i++)   // the tta line may come after the members
        if (!e->m[i].own_tta) e->m[i].tta = e->tta;
    free(copy);
    return e;
fail:
    free(copy);
    ensemble_free(e);
    return NULL;
}

Ensemble *ensemble_load(const char *path, char *err, size_t errlen) {
    size_t len;
    char *text = read_text(path, &len, err, errlen);
    if (!text) return NULL;
    Ensemble *e = NULL;
    if (len >= 8 && !memcmp(text, "EMOCAMTF", 8)) {   // a single weights file
        free(text);
        int cap = 0;
        e = ensemble_new(path);
        if (!e || push_member(e, &cap)) {
            snprintf(err, errlen, "%s: out of memory", path);
            ensemble_free(e);
            return NULL;
        }
        e->m[0] = (EnsembleMember){NULL, 1.0, dupstr(path), 0, ENS_TTA_NONE, 0};
        e->n = 1;
        if (!e->m[0].path) {
            snprintf(err, errlen, "%s: out of memory", path);
        } else if (!member_load(e, &e->m[0], err, errlen)) {
            e->wsum = 1;
            return e;
        }
        ensemble_free(e);
        return NULL;
    }
    if (memchr(text, 0, len)) {
        snprintf(err, errlen, "%s: neither a weights file nor an ensemble list (binary data)", path);
        free(text);
        return NULL;
    }
    char *dir = dir_of(path);
    if (dir) e = ensemble_parse(text, path, dir, err, errlen);
    else snprintf(err, errlen, "%s: out of memory", path);
    free(dir);
    free(text);
    return e;
}

// ---- test-time augmentation
int ensemble_tta_views(int tta) {
    return tta == ENS_TTA_NONE ? 1 : tta == ENS_TTA_FLIP ? 2 : tta == ENS_TTA_CROPS ? 10 : 0;
}

static const char *const TTA_NAMES[] = {"none", "flip", "crops"};

int ensemble_tta_parse(const char *s) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, TTA_NAMES[i])) return i;
    return -1;
}

const char *ensemble_tta_name(int tta) { return tta >= 0 && tta < 3 ? TTA_NAMES[tta] : "?"; }

static inline int reflect(int i, int n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return i;
}

void ensemble_tta_view(const uint8_t *face, int tta, int v, uint8_t *dst) {
    // Crop k > 0 of the padded 56x56 image starts at OFF[k-1], i.e. at OFF - PAD in the face.
    static const int OFF[4][2] = {
        {0, 0}, {2 * ENS_TTA_PAD, 0}, {0, 2 * ENS_TTA_PAD}, {2 * ENS_TTA_PAD, 2 * ENS_TTA_PAD}};
    int crop = v / 2, flip = v & 1, ox = 0, oy = 0;
    if (tta == ENS_TTA_CROPS && crop > 0 && crop <= 4) {
        ox = OFF[crop - 1][0] - ENS_TTA_PAD;
        oy = OFF[crop - 1][1] - ENS_TTA_PAD;
    }
    for (int y = 0; y < ENS_FACE; y++) {
        const uint8_t *row = face + (size_t)reflect(y + oy, ENS_FACE) * ENS_FACE;
        uint8_t *d = dst + (size_t)y * ENS_FACE;
        for (int x = 0; x < ENS_FACE; x++) {
            int cx = flip ? ENS_FACE - 1 - x : x;   // x within the crop, mirrored
            d[x] = row[reflect(cx + ox, ENS_FACE)];
        }
    }
}

int ensemble_member_tta(const Ensemble *e, int k, int tta) {
    return tta == ENS_TTA_LIST ? e->m[k].tta : tta;
}

int ensemble_uniform_tta(const Ensemble *e, int tta) {
    int t = ensemble_member_tta(e, 0, tta);
    for (int k = 1; k < e->n; k++)
        if (ensemble_member_tta(e, k, tta) != t) return ENS_TTA_LIST;
    return t;
}

int ensemble_views(const Ensemble *e, int tta) {
    int v = 0;
    for (int k = 0; k < e->n; k++) v += ensemble_tta_views(ensemble_member_tta(e, k, tta));
    return v;
}

// ---- prediction
// Every face's views are made once, as many as the member that sees the most wants (the
// views are nested: crops' first two are flip's), and each member takes the first of them
// that it sees.
int ensemble_predict(Ensemble *e, const uint8_t *faces, int n, float *probs, int tta) {
    int tmax = ENS_TTA_NONE;
    for (int k = 0; k < e->n; k++) {
        int t = ensemble_member_tta(e, k, tta);
        if (!ensemble_tta_views(t)) return -1;
        if (t > tmax) tmax = t;
    }
    int nv = ensemble_tta_views(tmax);
    if (n < 0) return -1;
    if (n == 0) return 0;
    int per = ENS_BATCH / nv > 0 ? ENS_BATCH / nv : 1;   // faces per pass
    if (per > n) per = n;
    const size_t px = (size_t)ENS_FACE * ENS_FACE;
    size_t nviews = (size_t)per * nv;
    uint8_t *views = malloc(nviews * px);
    real *x = real_alloc(nviews * px), *p = real_alloc(nviews * ENS_CLASSES);
    double *acc = malloc((size_t)per * ENS_CLASSES * sizeof *acc);
    int rc = -1;
    if (!views || !x || !p || !acc) goto out;
    for (int i0 = 0; i0 < n; i0 += per) {
        int m = n - i0 < per ? n - i0 : per;
        for (int j = 0; j < m; j++)
            for (int v = 0; v < nv; v++)
                ensemble_tta_view(faces + (size_t)(i0 + j) * px, tmax, v,
                                  views + ((size_t)j * nv + v) * px);
        memset(acc, 0, (size_t)m * ENS_CLASSES * sizeof *acc);
        for (int k = 0; k < e->n; k++) {
            Net *net = e->m[k].net;
            int kv = ensemble_tta_views(ensemble_member_tta(e, k, tta));   // views 0 .. kv-1
            for (int j = 0; j < m; j++)
                net_preprocess(net, views + (size_t)j * nv * px, kv, x + (size_t)j * kv * px);
            const real *logits = net_forward(net, x, m * kv, 0, NULL);
            if (!logits) goto out;
            softmax(logits, m * kv, ENS_CLASSES, p);
            double w = e->m[k].weight / e->wsum / kv;
            for (int j = 0; j < m; j++)
                for (int v = 0; v < kv; v++)
                    for (int c = 0; c < ENS_CLASSES; c++)
                        acc[j * ENS_CLASSES + c] += w * p[((size_t)j * kv + v) * ENS_CLASSES + c];
        }
        for (int i = 0; i < m * ENS_CLASSES; i++) probs[(size_t)i0 * ENS_CLASSES + i] = (float)acc[i];
    }
    rc = 0;
out:
    free(views);
    free(x);
    free(p);
    free(acc);
    return rc;
}
