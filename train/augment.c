// augment.c: face augmentation and the double-buffered batch producer. See augment.h.
#include "augment.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

static const float DEG = 0.017453292519943295f;

// ---------------------------------------------------------------- configuration

AugConfig aug_config_none(void) {
    AugConfig c = aug_config_default();
    c.p_flip = c.p_rotate = c.p_translate = c.p_scale = c.p_shear = 0;
    c.p_crop = c.p_brightness = c.p_contrast = c.p_erase = 0;
    return c;
}

AugConfig aug_config_default(void) {
    return (AugConfig){
        .p_flip = 0.5f,
        .p_rotate = 1, .rotate_deg = 15,
        .p_translate = 1, .translate = 0.1f,
        .p_scale = 1, .scale_min = 0.9f, .scale_max = 1.1f,
        .p_shear = 1, .shear_deg = 10,
        .border = AUG_BORDER_CONSTANT, .fill = 0,
        .p_crop = 0, .crop_pad = 4, .crop_reflect = 0,
        .p_brightness = 1, .brightness = 0.2f,
        .p_contrast = 1, .contrast = 0.2f,
        .p_erase = 0.1f, .erase_area_min = 0.02f, .erase_area_max = 0.33f,
        .erase_ratio_min = 0.3f, .erase_ratio_max = 3.3f, .erase_value = 0,
    };
}

typedef struct {
    const char *name;
    size_t off;
    int is_int;
    float lo, hi;
} Field;

#define F(name, lo, hi) {#name, offsetof(AugConfig, name), 0, lo, hi}
#define I(name, lo, hi) {#name, offsetof(AugConfig, name), 1, lo, hi}
static const Field FIELDS[] = {
    F(p_flip, 0, 1),
    F(p_rotate, 0, 1),        F(rotate_deg, 0, 180),
    F(p_translate, 0, 1),     F(translate, 0, 1),
    F(p_scale, 0, 1),         F(scale_min, 0.01f, 10), F(scale_max, 0.01f, 10),
    F(p_shear, 0, 1),         F(shear_deg, 0, 60),
    I(border, 0, 2),          F(fill, 0, 255),
    F(p_crop, 0, 1),          I(crop_pad, 0, 32),      I(crop_reflect, 0, 1),
    F(p_brightness, 0, 1),    F(brightness, 0, 10),
    F(p_contrast, 0, 1),      F(contrast, 0, 10),
    F(p_erase, 0, 1),         F(erase_area_min, 0, 1), F(erase_area_max, 0, 1),
    F(erase_ratio_min, 0.01f, 100), F(erase_ratio_max, 0.01f, 100), F(erase_value, -1, 255),
};
#undef F
#undef I
enum { NFIELDS = sizeof FIELDS / sizeof FIELDS[0] };

int aug_config_parse(AugConfig *c, const char *spec, char *err, size_t errlen) {
    AugConfig t = *c;
    const char *p = spec;
    int first = 1;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[128];
        if (len == 0 || len >= sizeof item) {
            ERR("aug: bad item '%.*s' in '%s'", (int)(len > 40 ? 40 : len), p, spec);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = 0;
        p += len + (end ? 1 : 0);
        char *eq = strchr(item, '=');
        if (!eq) {
            if (first && !strcmp(item, "none")) t = aug_config_none();
            else if (first && !strcmp(item, "default")) t = aug_config_default();
            else {
                ERR("aug: '%s' is not key=value (or the preset none/default, first)", item);
                return -1;
            }
            first = 0;
            continue;
        }
        first = 0;
        *eq = 0;
        const Field *f = NULL;
        for (int i = 0; i < NFIELDS; i++)
            if (!strcmp(item, FIELDS[i].name)) f = &FIELDS[i];
        if (!f) {
            ERR("aug: unknown key '%s'", item);
            return -1;
        }
        char *e;
        double v = strtod(eq + 1, &e);
        if (e == eq + 1 || *e || !isfinite(v)) {
            ERR("aug: %s='%s' is not a number", item, eq + 1);
            return -1;
        }
        if (v < f->lo || v > f->hi || (f->is_int && v != floor(v))) {
            ERR("aug: %s=%s is out of range (%s %g..%g)", item, eq + 1, f->is_int ? "an integer" : "",
                (double)f->lo, (double)f->hi);
            return -1;
        }
        if (f->is_int) *(int *)((char *)&t + f->off) = (int)v;
        else *(float *)((char *)&t + f->off) = (float)v;
    }
    if (t.scale_min > t.scale_max || t.erase_area_min > t.erase_area_max ||
        t.erase_ratio_min > t.erase_ratio_max) {
        ERR("aug: a range has its minimum above its maximum (scale, erase_area or erase_ratio)");
        return -1;
    }
    *c = t;
    return 0;
}

int aug_config_format(const AugConfig *c, char *buf, size_t len) {
    int total = 0;
    for (int i = 0; i < NFIELDS; i++) {
        const void *at = (const char *)c + FIELDS[i].off;
        char one[64];
        if (FIELDS[i].is_int) snprintf(one, sizeof one, "%s%s=%d", i ? "," : "", FIELDS[i].name, *(const int *)at);
        else snprintf(one, sizeof one, "%s%s=%g", i ? "," : "", FIELDS[i].name, (double)*(const float *)at);
        int k = (int)strlen(one);
        if (buf && (size_t)total + k < len) memcpy(buf + total, one, (size_t)k + 1);
        else if (buf && len && (size_t)total < len) buf[total] = 0;
        total += k;
    }
    if (buf && len && NFIELDS == 0) buf[0] = 0;
    return total;
}

// ---------------------------------------------------------------- sampling

static int border_index(int i, int n, int border) {   // -1: outside (constant border)
    if (i >= 0 && i < n) return i;
    if (border == AUG_BORDER_REPLICATE) return i < 0 ? 0 : n - 1;
    if (border == AUG_BORDER_REFLECT) {
        if (n == 1) return 0;
        int period = 2 * (n - 1);
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - i;
    }
    return -1;
}

static float pixel(const float *src, int w, int h, int x, int y, int border, float fill) {
    int xi = border_index(x, w, border), yi = border_index(y, h, border);
    return xi < 0 || yi < 0 ? fill : src[yi * w + xi];
}

float aug_bilinear(const float *src, int w, int h, float x, float y, int border, float fill) {
    // far outside (or NaN): keep the integer conversion defined
    if (!(x > -1e6f && x < 1e6f && y > -1e6f && y < 1e6f)) return border == AUG_BORDER_CONSTANT ? fill : src[0];
    float xf = floorf(x), yf = floorf(y), fx = x - xf, fy = y - yf;
    int x0 = (int)xf, y0 = (int)yf;
    if (x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h) {   // the common case: inside
        const float *p = src + y0 * w + x0;
        float top = p[0] + fx * (p[1] - p[0]), bot = p[w] + fx * (p[w + 1] - p[w]);
        return top + fy * (bot - top);
    }
    float v00 = pixel(src, w, h, x0, y0, border, fill), v01 = pixel(src, w, h, x0 + 1, y0, border, fill);
    float v10 = pixel(src, w, h, x0, y0 + 1, border, fill), v11 = pixel(src, w, h, x0 + 1, y0 + 1, border, fill);
    float top = v00 + fx * (v01 - v00), bot = v10 + fx * (v11 - v10);
    return top + fy * (bot - top);
}

void aug_affine_sample(const float *src, float *dst, int w, int h, const float a[6], int border, float fill) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            dst[y * w + x] = aug_bilinear(src, w, h, a[0] * x + a[1] * y + a[2],
                                          a[3] * x + a[4] * y + a[5], border, fill);
}

static float uniform(Rng *r, float lo, float hi) { return lo + (hi - lo) * rng_uniform(r); }
static int coin(Rng *r, float p) { return rng_uniform(r) < p; }

// ---------------------------------------------------------------- augmentation

void augment_f32(const AugConfig *c, Rng *r, const float *src, float *dst, int w, int h) {
    float a[AUG_MAX_PIXELS], b[AUG_MAX_PIXELS];
    int np = w * h;
    if (w <= 0 || h <= 0 || np > AUG_MAX_PIXELS) return;
    memcpy(a, src, (size_t)np * sizeof *a);

    // 1. geometry: output = c + t + R Sh S F (source - c), sampled through its inverse
    int flip = coin(r, c->p_flip);
    int rot = coin(r, c->p_rotate);
    float angle = rot ? uniform(r, -c->rotate_deg, c->rotate_deg) * DEG : 0;
    int tr = coin(r, c->p_translate);
    float tx = tr ? roundf(uniform(r, -c->translate, c->translate) * w) : 0;
    float ty = tr ? roundf(uniform(r, -c->translate, c->translate) * h) : 0;
    int sc = coin(r, c->p_scale);
    float s = sc ? uniform(r, c->scale_min, c->scale_max) : 1;
    int sh = coin(r, c->p_shear);
    float shear = sh ? uniform(r, -c->shear_deg, c->shear_deg) * DEG : 0;
    if (flip || rot || tr || sc || sh) {
        float cs = cosf(angle), sn = sinf(angle), k = tanf(shear);
        // M = R * Sh * S, Sh = [1 k; 0 1]
        float m00 = s * cs, m01 = s * (cs * k - sn), m10 = s * sn, m11 = s * (sn * k + cs);
        float det = m00 * m11 - m01 * m10;
        float i00 = m11 / det, i01 = -m01 / det, i10 = -m10 / det, i11 = m00 / det;
        if (flip) i00 = -i00, i01 = -i01;   // F^-1 = F = diag(-1, 1), applied last
        float cx = (w - 1) * 0.5f, cy = (h - 1) * 0.5f, ox = cx + tx, oy = cy + ty;
        float m[6] = {i00, i01, cx - i00 * ox - i01 * oy, i10, i11, cy - i10 * ox - i11 * oy};
        aug_affine_sample(a, b, w, h, m, c->border, c->fill);
        memcpy(a, b, (size_t)np * sizeof *a);
    }

    // 2. random crop from the padded image: an integer shift
    if (coin(r, c->p_crop) && c->crop_pad > 0) {
        int pad = c->crop_pad;
        int ox = rng_int(r, 2 * pad + 1) - pad, oy = rng_int(r, 2 * pad + 1) - pad;
        int border = c->crop_reflect ? AUG_BORDER_REFLECT : AUG_BORDER_CONSTANT;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) b[y * w + x] = pixel(a, w, h, x + ox, y + oy, border, 0);
        memcpy(a, b, (size_t)np * sizeof *a);
    }

    // 3. brightness, then contrast (each clamped, as torchvision's ColorJitter)
    if (coin(r, c->p_brightness)) {
        float f = uniform(r, fmaxf(0, 1 - c->brightness), 1 + c->brightness);
        for (int i = 0; i < np; i++) a[i] = fminf(255, fmaxf(0, a[i] * f));
    }
    if (coin(r, c->p_contrast)) {
        float f = uniform(r, fmaxf(0, 1 - c->contrast), 1 + c->contrast);
        double sum = 0;
        for (int i = 0; i < np; i++) sum += a[i];
        float mean = (float)(sum / np);
        for (int i = 0; i < np; i++) a[i] = fminf(255, fmaxf(0, mean + f * (a[i] - mean)));
    }

    // 4. random erasing
    if (coin(r, c->p_erase)) {
        float lr0 = logf(c->erase_ratio_min), lr1 = logf(c->erase_ratio_max);
        for (int attempt = 0; attempt < 10; attempt++) {
            float area = np * uniform(r, c->erase_area_min, c->erase_area_max);
            float ratio = expf(uniform(r, lr0, lr1));
            int eh = (int)lroundf(sqrtf(area * ratio)), ew = (int)lroundf(sqrtf(area / ratio));
            if (!(eh < h && ew < w) || eh < 1 || ew < 1) continue;
            int y0 = rng_int(r, h - eh + 1), x0 = rng_int(r, w - ew + 1);
            for (int y = y0; y < y0 + eh; y++)
                for (int x = x0; x < x0 + ew; x++)
                    a[y * w + x] = c->erase_value < 0 ? 255 * rng_uniform(r) : c->erase_value;
            break;
        }
    }

    for (int i = 0; i < np; i++) dst[i] = fminf(255, fmaxf(0, a[i]));
}

void augment_u8(const AugConfig *c, Rng *r, const uint8_t *src, uint8_t *dst, int w, int h) {
    float f[AUG_MAX_PIXELS] = {0};   // (zeroed only to quiet gcc's maybe-uninitialized)
    int np = w * h;
    if (w <= 0 || h <= 0 || np > AUG_MAX_PIXELS) return;
    for (int i = 0; i < np; i++) f[i] = src[i];
    augment_f32(c, r, f, f, w, h);
    for (int i = 0; i < np; i++) dst[i] = (uint8_t)(f[i] + 0.5f);   // f is clamped to 0..255
}

// ---------------------------------------------------------------- batches

enum { PURPOSE_SHUFFLE = 1, PURPOSE_SAMPLE = 2, PURPOSE_AUGMENT = 3 };

static uint64_t mix(uint64_t a, uint64_t b) {   // splitmix64's finaliser over a and b
    uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void stream(Rng *r, uint64_t seed, int epoch, int purpose, long k) {
    rng_seed(r, mix(mix(mix(seed, (uint64_t)epoch), (uint64_t)purpose), (uint64_t)k));
}

static int epoch_len(const BatchConfig *cfg) {
    return cfg->weights && cfg->epoch_samples > 0 ? cfg->epoch_samples : cfg->n;
}

static int per_epoch_batches(const BatchConfig *cfg) {
    int len = epoch_len(cfg);
    return cfg->drop_last ? len / cfg->batch : (len + cfg->batch - 1) / cfg->batch;
}

// Draw from the cumulative weights cum (n, increasing, cum[n-1] > 0).
static int draw(const double *cum, int n, Rng *r) {
    double u = (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0) * cum[n - 1];
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cum[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static int order_with(const BatchConfig *cfg, const double *cum, int epoch, int *order, int len) {
    int count = epoch_len(cfg);
    if (count > len) count = len;
    Rng r;
    if (cfg->weights) {
        stream(&r, cfg->seed, epoch, PURPOSE_SAMPLE, 0);
        for (int i = 0; i < count; i++) order[i] = draw(cum, cfg->n, &r);
        return count;
    }
    for (int i = 0; i < count; i++) order[i] = i;
    if (cfg->shuffle) {
        stream(&r, cfg->seed, epoch, PURPOSE_SHUFFLE, 0);
        for (int i = count - 1; i > 0; i--) {
            int j = rng_int(&r, i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    return count;
}

static double *cumulative(const BatchConfig *cfg) {
    double *cum = malloc((size_t)cfg->n * sizeof *cum), acc = 0;
    if (!cum) return NULL;
    for (int i = 0; i < cfg->n; i++) cum[i] = acc += cfg->weights[i];
    return cum;
}

int batch_epoch_order(const BatchConfig *cfg, int epoch, int *order, int len) {
    double *cum = NULL;
    if (cfg->weights && !(cum = cumulative(cfg))) return 0;
    int count = order_with(cfg, cum, epoch, order, len);
    free(cum);
    return count;
}

void batch_fill(const BatchConfig *cfg, const int *order, int count, int epoch, int index, Batch *b) {
    int start = index * cfg->batch, end = start + cfg->batch < count ? start + cfg->batch : count;
    b->n = end > start ? end - start : 0;
    b->epoch = epoch;
    b->index = index;
    for (int k = 0; k < b->n; k++) {
        int id = cfg->idx[order[start + k]];
        uint8_t *px = b->pixels + (size_t)k * FACE_PIXELS;
        b->ids[k] = id;
        b->labels[k] = cfg->data->labels[id];
        memcpy(px, dataset_face(cfg->data, id), FACE_PIXELS);
        if (cfg->aug) {
            Rng r;
            stream(&r, cfg->seed, epoch, PURPOSE_AUGMENT, start + k);
            augment_u8(cfg->aug, &r, px, px, FACE_W, FACE_H);
        }
    }
    if (cfg->net && b->x) net_preprocess(cfg->net, b->pixels, b->n, b->x);
}

void sampler_class_weights(const Dataset *d, const int *idx, int n, float *w) {
    long counts[NCLASSES];
    dataset_count(d, idx, n, counts);
    for (int i = 0; i < n; i++) w[i] = 1.0f / (float)counts[d->labels[idx[i]]];
}

// ---------------------------------------------------------------- the producer

struct BatchProducer {
    BatchConfig cfg;
    AugConfig aug;
    double *cum;               // (n) cumulative weights, or NULL
    int bpe;                   // batches per epoch
    Batch slot[2];
    // the worker's own state
    int *order, order_epoch, order_count;
    int fill_epoch, fill_batch, fill_slot;
    // shared, under mu
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready[2];              // filled, not yet handed out
    int held;                  // the slot the consumer holds, or -1
    int take_slot;             // the slot producer_next takes next
    int next_epoch, next_batch;
    int stop, started;
    pthread_t th;
};

static void batch_release(Batch *b) {
    free(b->ids);
    free(b->labels);
    free(b->pixels);
    free(b->x);
    memset(b, 0, sizeof *b);
}

static int batch_alloc(Batch *b, int cap, int with_x) {
    memset(b, 0, sizeof *b);
    b->ids = malloc((size_t)cap * sizeof *b->ids);
    b->labels = malloc((size_t)cap * sizeof *b->labels);
    b->pixels = malloc((size_t)cap * FACE_PIXELS);
    b->x = with_x ? malloc((size_t)cap * FACE_PIXELS * sizeof *b->x) : NULL;
    return b->ids && b->labels && b->pixels && (!with_x || b->x) ? 0 : -1;
}

static void *worker(void *arg) {
    BatchProducer *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        int s = p->fill_slot;
        while (!p->stop && (p->ready[s] || p->held == s)) pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) break;
        pthread_mutex_unlock(&p->mu);
        if (p->order_epoch != p->fill_epoch) {
            p->order_count = order_with(&p->cfg, p->cum, p->fill_epoch, p->order, epoch_len(&p->cfg));
            p->order_epoch = p->fill_epoch;
        }
        batch_fill(&p->cfg, p->order, p->order_count, p->fill_epoch, p->fill_batch, &p->slot[s]);
        if (++p->fill_batch == p->bpe) p->fill_batch = 0, p->fill_epoch++;
        pthread_mutex_lock(&p->mu);
        p->ready[s] = 1;
        p->fill_slot = s ^ 1;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

BatchProducer *producer_new(const BatchConfig *cfg, int start_epoch, int start_batch, char *err,
                            size_t errlen) {
    if (!cfg->data || !cfg->idx || cfg->n <= 0 || cfg->batch <= 0) {
        ERR("batches: need data, indices (n > 0) and a batch size > 0");
        return NULL;
    }
    for (int i = 0; i < cfg->n; i++)
        if (cfg->idx[i] < 0 || cfg->idx[i] >= cfg->data->n) {
            ERR("batches: index %d (%d) is outside the data set of %d images", i, cfg->idx[i], cfg->data->n);
            return NULL;
        }
    if (cfg->weights) {
        double sum = 0;
        for (int i = 0; i < cfg->n; i++) {
            if (!(cfg->weights[i] >= 0) || !isfinite(cfg->weights[i])) {
                ERR("batches: sample weight %d is %g (must be finite and >= 0)", i, (double)cfg->weights[i]);
                return NULL;
            }
            sum += cfg->weights[i];
        }
        if (!(sum > 0)) {
            ERR("batches: the sample weights sum to 0");
            return NULL;
        }
    }
    if (cfg->net && (cfg->net->in.c != 1 || cfg->net->in.h != FACE_H || cfg->net->in.w != FACE_W)) {
        ERR("batches: the network takes %dx%dx%d input, the faces are 1x48x48", cfg->net->in.c,
            cfg->net->in.h, cfg->net->in.w);
        return NULL;
    }
    if (per_epoch_batches(cfg) == 0) {
        ERR("batches: %d samples per epoch make no full batch of %d", epoch_len(cfg), cfg->batch);
        return NULL;
    }
    if (start_epoch < 0 || start_batch < 0 || start_batch >= per_epoch_batches(cfg)) {
        ERR("batches: cannot start at epoch %d, batch %d (%d batches per epoch)", start_epoch,
            start_batch, per_epoch_batches(cfg));
        return NULL;
    }
    BatchProducer *p = calloc(1, sizeof *p);
    if (!p) {
        ERR("batches: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    if (cfg->aug) {
        p->aug = *cfg->aug;
        p->cfg.aug = &p->aug;
    }
    p->bpe = per_epoch_batches(cfg);
    p->order = malloc((size_t)epoch_len(cfg) * sizeof *p->order);
    int bad = !p->order || (cfg->weights && !(p->cum = cumulative(cfg)));
    for (int s = 0; s < 2; s++) bad |= batch_alloc(&p->slot[s], cfg->batch, cfg->net != NULL);
    if (bad) {
        ERR("batches: out of memory");
        producer_free(p);
        return NULL;
    }
    p->order_epoch = -1;
    p->fill_epoch = p->next_epoch = start_epoch;
    p->fill_batch = p->next_batch = start_batch;
    p->held = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->th, NULL, worker, p) != 0) {
        ERR("batches: cannot start the worker thread");
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        for (int s = 0; s < 2; s++) batch_release(&p->slot[s]);
        free(p->order);
        free(p->cum);
        free(p);
        return NULL;
    }
    p->started = 1;
    return p;
}

const Batch *producer_next(BatchProducer *p) {
    pthread_mutex_lock(&p->mu);
    if (p->held >= 0) {
        p->held = -1;
        pthread_cond_broadcast(&p->cv);
    }
    int s = p->take_slot;
    while (!p->ready[s]) pthread_cond_wait(&p->cv, &p->mu);
    p->ready[s] = 0;
    p->held = s;
    p->take_slot = s ^ 1;
    if (++p->next_batch == p->bpe) p->next_batch = 0, p->next_epoch++;
    pthread_mutex_unlock(&p->mu);
    return &p->slot[s];
}

int producer_batches_per_epoch(const BatchProducer *p) { return p->bpe; }

BatchState producer_state(const BatchProducer *p) {
    BatchProducer *q = (BatchProducer *)p;   // the lock only
    pthread_mutex_lock(&q->mu);
    BatchState s = {p->cfg.seed, p->next_epoch, p->next_batch};
    pthread_mutex_unlock(&q->mu);
    return s;
}

void producer_free(BatchProducer *p) {
    if (!p) return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->th, NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    for (int s = 0; s < 2; s++) batch_release(&p->slot[s]);
    free(p->order);
    free(p->cum);
    free(p);
}
