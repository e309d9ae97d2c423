// faces.c: Haar detection on a downscaled frame, FER2013-style 48x48 crops, and an IoU
// tracker with smoothed probabilities (see faces.h).
#include "faces.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- detection

struct Detector {
    CvCascade *cascade;
    DetectorConfig cfg;
};

DetectorConfig detector_defaults(void) {
    return (DetectorConfig){.cascade = NULL, .scale = 0, .scale_factor = 1.1, .min_neighbors = 5,
                            .min_size = 30, .equalize = 1};
}

Detector *detector_open(const DetectorConfig *cfg, char *err, size_t errlen) {
    DetectorConfig c = cfg ? *cfg : detector_defaults();
    const char *path = c.cascade ? c.cascade : DETECTOR_CASCADE;
    if (!(c.scale >= 0 && c.scale <= 1) || !(c.scale_factor > 1) || c.min_neighbors < 0 ||
        c.min_size < 0) {
        if (err && errlen) snprintf(err, errlen, "%s: bad detector settings (scale %g, scale factor %g, neighbours %d, min size %d)",
                 path, c.scale, c.scale_factor, c.min_neighbors, c.min_size);
        return NULL;
    }
    Detector *d = calloc(1, sizeof *d);
    if (!d) {
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    d->cascade = cv_cascade_open(path, err, errlen);
    if (!d->cascade) {
        if (!c.cascade && err && errlen && strstr(err, "cannot open"))   // say where the default comes from
            snprintf(err, errlen, "%s: missing (install Debian's opencv-data, or name a cascade file)", path);
        free(d);
        return NULL;
    }
    d->cfg = c;
    d->cfg.cascade = NULL;   // not kept: the caller's string may go away
    return d;
}

double detector_scale(const Detector *d, int frame_w) {
    if (d->cfg.scale > 0) return d->cfg.scale;
    return frame_w > DETECT_WIDTH ? (double)DETECT_WIDTH / frame_w : 1.0;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

int detector_find(Detector *d, const Image *frame, Box *boxes, int max) {
    if (!d || !frame || !frame->px || frame->w <= 0 || frame->h <= 0 || max < 0 || (max && !boxes))
        return -1;
    double s = detector_scale(d, frame->w);
    int sw = (int)lround(frame->w * s), sh = (int)lround(frame->h * s);
    if (sw < 1 || sh < 1) return 0;   // nothing left to search
    Image gray = {0}, small = {0};
    const Image *g = frame;
    int rc = -1;
    if (frame->ch != 1) {
        if (cv_convert(frame, &gray, 1)) goto done;
        g = &gray;
    }
    if (sw != frame->w || sh != frame->h) {
        if (cv_resize(g, &small, sw, sh, CV_RESIZE_AREA)) goto done;
        g = &small;
    } else if (d->cfg.equalize && g == frame) {   // equalised in place below: not the caller's
        if (cv_convert(frame, &small, 1)) goto done;
        g = &small;
    }
    if (d->cfg.equalize && cv_equalize((Image *)g)) goto done;
    int min_small = (int)lround(d->cfg.min_size * s);
    int n = cv_cascade_detect(d->cascade, g, d->cfg.scale_factor, d->cfg.min_neighbors, min_small,
                              boxes, max);
    if (n < 0) goto done;
    if (n > max) n = max;
    double fx = (double)frame->w / sw, fy = (double)frame->h / sh;   // 1 at scale 1: exact
    for (int i = 0; i < n; i++) {
        Box b = boxes[i];
        int x0 = clampi((int)lround(b.x * fx), 0, frame->w), y0 = clampi((int)lround(b.y * fy), 0, frame->h);
        int x1 = clampi((int)lround((b.x + b.w) * fx), 0, frame->w);
        int y1 = clampi((int)lround((b.y + b.h) * fy), 0, frame->h);
        boxes[i] = (Box){x0, y0, x1 - x0, y1 - y0};
    }
    rc = n;
done:
    image_free(&gray);
    image_free(&small);
    return rc;
}

void detector_close(Detector *d) {
    if (!d) return;
    cv_cascade_close(d->cascade);
    free(d);
}

// ---- the 48x48 crop

int face_crop48(const Image *frame, Box b, double margin, uint8_t out[48 * 48]) {
    if (!frame || !frame->px || !out || !(margin >= 0 && margin < 10)) return -1;
    double mx = margin * b.w, my = margin * b.h;
    int x0 = clampi((int)lround(b.x - mx), 0, frame->w), y0 = clampi((int)lround(b.y - my), 0, frame->h);
    int x1 = clampi((int)lround(b.x + b.w + mx), 0, frame->w);
    int y1 = clampi((int)lround(b.y + b.h + my), 0, frame->h);
    if (x1 <= x0 || y1 <= y0) return -1;
    // a view of the box inside the frame (no copy)
    Image roi = {.w = x1 - x0, .h = y1 - y0, .ch = frame->ch, .stride = frame->stride,
                 .px = frame->px + (size_t)y0 * frame->stride + (size_t)x0 * frame->ch};
    Image gray = {0}, face = {0};
    int rc = -1;
    if (cv_convert(&roi, &gray, 1) == 0 && cv_resize(&gray, &face, 48, 48, CV_RESIZE_AREA) == 0 &&
        cv_equalize(&face) == 0) {
        memcpy(out, face.px, 48 * 48);   // tightly packed: stride 48
        rc = 0;
    }
    image_free(&gray);
    image_free(&face);
    return rc;
}

// ---- tracking

struct Tracker {
    TrackerConfig cfg;
    Track *tracks;   // (n) alive
    int n, cap;
    Track *out;      // (out_cap) this frame's, in box order
    int out_cap;
    int next_id;
    int *used;       // (used_cap) per track: matched this frame
    int used_cap;
};

TrackerConfig tracker_defaults(void) {
    return (TrackerConfig){.smoothing = 0.6, .min_iou = 0.3, .max_missed = 5};
}

Tracker *tracker_new(const TrackerConfig *cfg) {
    Tracker *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cfg = cfg ? *cfg : tracker_defaults();
    if (!(t->cfg.smoothing >= 0 && t->cfg.smoothing <= 1)) t->cfg.smoothing = 0;
    if (t->cfg.max_missed < 0) t->cfg.max_missed = 0;
    t->next_id = 1;
    return t;
}

void tracker_free(Tracker *t) {
    if (!t) return;
    free(t->tracks);
    free(t->out);
    free(t->used);
    free(t);
}

int tracker_count(const Tracker *t) { return t ? t->n : 0; }

static double box_iou(Box a, Box b) {
    double ix = fmin(a.x + a.w, b.x + b.w) - fmax(a.x, b.x);
    double iy = fmin(a.y + a.h, b.y + b.h) - fmax(a.y, b.y);
    if (ix <= 0 || iy <= 0) return 0;
    double inter = ix * iy, uni = (double)a.w * a.h + (double)b.w * b.h - inter;
    return uni > 0 ? inter / uni : 0;
}

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

typedef struct {
    double iou;
    int track, box;
} Pair;

static int pair_cmp(const void *a, const void *b) {
    const Pair *p = a, *q = b;
    if (p->iou != q->iou) return p->iou < q->iou ? 1 : -1;   // highest first
    if (p->track != q->track) return p->track - q->track;    // then stable: older track, first box
    return p->box - q->box;
}

static int argmax7(const float *p) {
    int k = 0;
    for (int i = 1; i < TRACK_CLASSES; i++)
        if (p[i] > p[k]) k = i;
    return k;
}

int tracker_update(Tracker *t, const Box *boxes, const float *probs, int n, const Track **tracks) {
    if (!t || n < 0 || (n && !boxes) || !tracks) return -1;
    // room for every track this frame could end with, its outputs and the candidate pairs
    if (grow((void **)&t->tracks, &t->cap, t->n + n, sizeof(Track)) ||
        grow((void **)&t->out, &t->out_cap, n, sizeof(Track)) ||
        grow((void **)&t->used, &t->used_cap, t->n + n, sizeof(int)))
        return -1;
    Pair *pairs = NULL;
    int np = 0;
    if (t->n && n) {
        pairs = malloc((size_t)t->n * n * sizeof *pairs);
        if (!pairs) return -1;
        for (int i = 0; i < t->n; i++)
            for (int j = 0; j < n; j++) {
                double v = box_iou(t->tracks[i].box, boxes[j]);
                if (v > 0 && v >= t->cfg.min_iou) pairs[np++] = (Pair){v, i, j};
            }
        qsort(pairs, (size_t)np, sizeof *pairs, pair_cmp);
    }
    int *box_track = t->used + t->n;   // (n) per box: its track, -1 for none yet
    for (int j = 0; j < n; j++) box_track[j] = -1;
    for (int i = 0; i < t->n; i++) t->used[i] = 0;
    for (int k = 0; k < np; k++) {
        Pair p = pairs[k];
        if (t->used[p.track] || box_track[p.box] >= 0) continue;
        t->used[p.track] = 1;
        box_track[p.box] = p.track;
    }
    free(pairs);
    // age the tracks that were not matched; forget the ones missed too long
    int old_n = t->n;
    for (int i = 0; i < old_n; i++)
        if (!t->used[i]) t->tracks[i].missed++;
    // continue the matched tracks, start new ones
    float a = (float)t->cfg.smoothing;
    for (int j = 0; j < n; j++) {
        const float *p = probs ? probs + (size_t)j * TRACK_CLASSES : NULL;
        Track *tr;
        if (box_track[j] >= 0) {
            tr = &t->tracks[box_track[j]];
            if (p) {
                for (int c = 0; c < TRACK_CLASSES; c++) {
                    tr->probs[c] = tr->label < 0 ? p[c] : a * tr->probs[c] + (1 - a) * p[c];
                    tr->raw[c] = p[c];
                }
            }
            tr->age++;
        } else {
            tr = &t->tracks[t->n++];
            memset(tr, 0, sizeof *tr);
            tr->id = t->next_id++;
            tr->label = -1;
            if (p) {
                memcpy(tr->probs, p, sizeof tr->probs);
                memcpy(tr->raw, p, sizeof tr->raw);
            }
            tr->age = 1;
        }
        tr->box = boxes[j];
        tr->missed = 0;
        if (p) tr->label = argmax7(tr->probs);
        t->out[j] = *tr;
    }
    int w = 0;
    for (int i = 0; i < t->n; i++)
        if (t->tracks[i].missed <= t->cfg.max_missed) t->tracks[w++] = t->tracks[i];
    t->n = w;
    *tracks = t->out;
    return n;
}
