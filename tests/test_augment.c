// test_augment.c: each augmentation alone (shape, value range, same seed same result, changes
// the face at p 1, leaves it exactly alone at p 0), the identities (flip twice, rotation by 0,
// the identity map), the bilinear sampler, the config parser, and the batch producer (same seed
// same batches whatever the thread timing, resume from (epoch, batch), epoch coverage, the
// weighted sampler).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "augment.h"
#include "testutil.h"

enum { W = FACE_W, H = FACE_H, N = FACE_PIXELS };

// A face with structure in both directions and values across 0..255.
static void pattern(uint8_t *px) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) px[y * W + x] = (uint8_t)((x * 5 + y * 3 + (x * y) % 17 * 7) % 256);
}

static int differs(const uint8_t *a, const uint8_t *b) {
    int n = 0;
    for (int i = 0; i < N; i++) n += a[i] != b[i];
    return n;
}

typedef struct {
    const char *name;
    AugConfig cfg;   // only this transform on, p 1
    float *p;        // its probability inside cfg (to set 0)
} One;

static void test_each(void) {
    uint8_t src[N], a[N], b[N], c[N];
    pattern(src);
    AugConfig base = aug_config_none();
    One ones[10];
    int n = 0;
#define ONE(nm, field, ...)                    \
    do {                                       \
        ones[n].name = nm;                     \
        ones[n].cfg = base;                    \
        ones[n].cfg.field = 1;                 \
        __VA_ARGS__;                           \
        ones[n].p = &ones[n].cfg.field;        \
        n++;                                   \
    } while (0)
    ONE("flip", p_flip);
    ONE("rotate", p_rotate);
    ONE("translate", p_translate);
    ONE("scale", p_scale);
    ONE("shear", p_shear);
    ONE("crop zero", p_crop, ones[n].cfg.crop_reflect = 0);
    ONE("crop reflect", p_crop, ones[n].cfg.crop_reflect = 1);
    ONE("brightness", p_brightness);
    ONE("contrast", p_contrast);
    ONE("erase", p_erase, ones[n].cfg.erase_area_min = 0.1f);
#undef ONE
    for (int k = 0; k < n; k++) {
        One *o = &ones[k];
        // changes the face at p 1 (some draws may be tiny: ask for a clear change in most)
        int changed = 0;
        for (uint64_t s = 0; s < 20; s++) {
            Rng r;
            rng_seed(&r, s);
            augment_u8(&o->cfg, &r, src, a, W, H);
            changed += differs(src, a) > 20;
        }
        CHECK(changed >= 15, "%s at p 1 changed only %d of 20 faces", o->name, changed);
        // same seed, same result; another seed, another result
        Rng r1, r2, r3;
        rng_seed(&r1, 99);
        rng_seed(&r2, 99);
        augment_u8(&o->cfg, &r1, src, a, W, H);
        augment_u8(&o->cfg, &r2, src, b, W, H);
        CHECK(!differs(a, b), "%s: same seed, other result", o->name);
        int other = 0;
        for (uint64_t s = 100; s < 105; s++) {
            rng_seed(&r3, s);
            augment_u8(&o->cfg, &r3, src, c, W, H);
            other += differs(a, c) > 0;
        }
        if (strcmp(o->name, "flip")) CHECK(other > 0, "%s: other seeds, same result", o->name);
        // float version: the value range holds for extreme input
        float f[N], g[N];
        for (int i = 0; i < N; i++) f[i] = (i % 3) ? 0 : 255;
        rng_seed(&r1, 5);
        augment_f32(&o->cfg, &r1, f, g, W, H);
        int in_range = 1;
        for (int i = 0; i < N; i++) in_range &= g[i] >= 0 && g[i] <= 255;
        CHECK(in_range, "%s: values outside 0..255", o->name);
        // in place gives the same as out of place
        memcpy(b, src, N);
        rng_seed(&r1, 99);
        augment_u8(&o->cfg, &r1, b, b, W, H);
        CHECK(!differs(a, b), "%s: in place differs", o->name);
        // p 0: exactly the input
        *o->p = 0;
        rng_seed(&r1, 99);
        augment_u8(&o->cfg, &r1, src, a, W, H);
        CHECK(!differs(src, a), "%s at p 0 changed the face", o->name);
    }

    // everything at once: range, determinism
    AugConfig all = aug_config_default();
    all.p_crop = 0.5f;
    Rng r1, r2;
    rng_seed(&r1, 7);
    rng_seed(&r2, 7);
    for (int i = 0; i < 50; i++) {
        augment_u8(&all, &r1, src, a, W, H);
        augment_u8(&all, &r2, src, b, W, H);
        CHECK(!differs(a, b), "defaults: same seed, other result (%d)", i);
    }
    // all probabilities 0: untouched
    AugConfig none = aug_config_none();
    rng_seed(&r1, 7);
    augment_u8(&none, &r1, src, a, W, H);
    CHECK(!differs(src, a), "none changed the face");
}

static void test_identities(void) {
    uint8_t src[N], a[N], b[N];
    pattern(src);
    Rng r;
    rng_seed(&r, 1);
    AugConfig c = aug_config_none();
    c.p_flip = 1;
    augment_u8(&c, &r, src, a, W, H);
    int mirrored = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) mirrored &= a[y * W + x] == src[y * W + W - 1 - x];
    CHECK(mirrored, "flip is not a mirror image");
    augment_u8(&c, &r, a, b, W, H);
    CHECK(!differs(src, b), "flip twice is not the identity");

    // rotation by 0 (and scale 1, shear 0, translation 0) through the sampler: the identity
    c = aug_config_none();
    c.p_rotate = c.p_scale = c.p_shear = c.p_translate = 1;
    c.rotate_deg = c.shear_deg = c.translate = 0;
    c.scale_min = c.scale_max = 1;
    float f[N], g[N];
    for (int i = 0; i < N; i++) f[i] = src[i] * 0.9f + 0.25f;   // inside 0..255: no clamping
    augment_f32(&c, &r, f, g, W, H);
    float worst = 0;
    for (int i = 0; i < N; i++) worst = fmaxf(worst, fabsf(f[i] - g[i]));
    CHECK(worst < 1e-3f, "rotation by 0 is off by %g", (double)worst);

    // a 90 degree rotation map moves pixels exactly
    const float cx = (W - 1) * 0.5f, cy = (H - 1) * 0.5f;
    float rot[6] = {0, 1, cx - cy, -1, 0, cy + cx};   // dst(x, y) = src(y, W-1-x) rotated
    aug_affine_sample(f, g, W, H, rot, AUG_BORDER_CONSTANT, 0);
    worst = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) worst = fmaxf(worst, fabsf(g[y * W + x] - f[(W - 1 - x) * W + y]));
    CHECK(worst < 1e-3f, "a 90 degree map is off by %g", (double)worst);

    // an integer translation map is an exact shift, with the fill outside
    float sh[6] = {1, 0, -3, 0, 1, 2};   // dst(x, y) = src(x - 3, y + 2)
    aug_affine_sample(f, g, W, H, sh, AUG_BORDER_CONSTANT, 7);
    int ok = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int sx = x - 3, sy = y + 2;
            float want = sx >= 0 && sy < H ? f[sy * W + sx] : 7;
            ok &= fabsf(g[y * W + x] - want) < 1e-4f;
        }
    CHECK(ok, "integer shift");

    // the bilinear sampler: midpoints average, borders
    float sq[4] = {0, 10, 20, 30};
    CHECK(fabsf(aug_bilinear(sq, 2, 2, 0.5f, 0.5f, AUG_BORDER_CONSTANT, 0) - 15) < 1e-5f, "centre");
    CHECK(fabsf(aug_bilinear(sq, 2, 2, 0.25f, 0, AUG_BORDER_CONSTANT, 0) - 2.5f) < 1e-5f, "edge");
    CHECK(fabsf(aug_bilinear(sq, 2, 2, -1, 0, AUG_BORDER_CONSTANT, 99) - 99) < 1e-5f, "constant outside");
    CHECK(fabsf(aug_bilinear(sq, 2, 2, -0.5f, 0, AUG_BORDER_CONSTANT, 0) - 0) < 1e-5f, "half outside");
    CHECK(fabsf(aug_bilinear(sq, 2, 2, -0.5f, 0, AUG_BORDER_REPLICATE, 0) - 0) < 1e-5f, "replicate");
    CHECK(fabsf(aug_bilinear(sq, 2, 2, -1, 0, AUG_BORDER_REFLECT, 0) - 10) < 1e-5f, "reflect");
    CHECK(fabsf(aug_bilinear(sq, 2, 2, 1e30f, 0, AUG_BORDER_CONSTANT, 3) - 3) < 1e-5f, "far away");

    // crop with zero padding: an integer shift with zeros; with reflect: no zeros from outside
    c = aug_config_none();
    c.p_crop = 1;
    c.crop_pad = 4;
    uint8_t bright[N];
    memset(bright, 200, N);
    int zeros_seen = 0, reflect_zero = 0;
    for (int s = 0; s < 10; s++) {
        rng_seed(&r, (uint64_t)s);
        c.crop_reflect = 0;
        augment_u8(&c, &r, bright, a, W, H);
        for (int i = 0; i < N; i++) zeros_seen += a[i] == 0;
        rng_seed(&r, (uint64_t)s);
        c.crop_reflect = 1;
        augment_u8(&c, &r, bright, a, W, H);
        for (int i = 0; i < N; i++) reflect_zero += a[i] != 200;
    }
    CHECK(zeros_seen > 0 && reflect_zero == 0, "crop padding: zeros %d, reflect changed %d", zeros_seen, reflect_zero);

    // erasing with value 0 blanks one rectangle
    c = aug_config_none();
    c.p_erase = 1;
    rng_seed(&r, 3);
    augment_u8(&c, &r, bright, a, W, H);
    int x0 = W, x1 = -1, y0 = H, y1 = -1, count = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if (a[y * W + x] == 0) {
                count++;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
    CHECK(count > 0 && count == (x1 - x0 + 1) * (y1 - y0 + 1), "erase is not one rectangle (%d)", count);
    CHECK(count >= 0.02 * N - 48 && count <= 0.33 * N + 96, "erased area %d", count);
}

static void test_config(void) {
    AugConfig c = aug_config_default();
    char err[256], buf[2048];
    CHECK(aug_config_parse(&c, "p_rotate=0.5,rotate_deg=10,crop_reflect=1,p_crop=1", err, sizeof err) == 0, "%s", err);
    CHECK(c.p_rotate == 0.5f && c.rotate_deg == 10 && c.crop_reflect == 1 && c.p_flip == 0.5f, "values");
    CHECK(aug_config_parse(&c, "none,p_flip=1", err, sizeof err) == 0 && c.p_flip == 1 && c.p_rotate == 0, "preset");
    AugConfig keep = c;
    CHECK(aug_config_parse(&c, "p_flip=0,bogus=1", err, sizeof err) == -1 && strstr(err, "unknown key 'bogus'"), "%s", err);
    CHECK(c.p_flip == keep.p_flip, "a failed parse changed the config");
    CHECK(aug_config_parse(&c, "p_flip=2", err, sizeof err) == -1 && strstr(err, "p_flip=2 is out of range"), "%s", err);
    CHECK(aug_config_parse(&c, "crop_pad=1.5", err, sizeof err) == -1 && strstr(err, "crop_pad"), "%s", err);
    CHECK(aug_config_parse(&c, "rotate_deg=abc", err, sizeof err) == -1 && strstr(err, "not a number"), "%s", err);
    CHECK(aug_config_parse(&c, "scale_min=1.2,scale_max=1.1", err, sizeof err) == -1, "min > max");
    CHECK(aug_config_parse(&c, "p_flip", err, sizeof err) == -1 && strstr(err, "not key=value"), "%s", err);
    AugConfig d = aug_config_default(), e = aug_config_none();
    d.p_crop = 0.3f;
    int len = aug_config_format(&d, buf, sizeof buf);
    CHECK(len > 0 && len < (int)sizeof buf && (int)strlen(buf) == len, "format length");
    CHECK(aug_config_parse(&e, buf, err, sizeof err) == 0 && !memcmp(&d, &e, sizeof d), "format/parse round trip: %s", err);
}

// ---- the batch producer

static void make_data(Dataset *d, int n) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->pixels = malloc((size_t)n * FACE_PIXELS);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    d->usage = calloc((size_t)n, 1);
    d->name_off = calloc((size_t)n, sizeof *d->name_off);
    d->names = calloc(1, 1);
    d->names_len = 1;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < FACE_PIXELS; k++) d->pixels[(size_t)i * FACE_PIXELS + k] = (uint8_t)((k * 3 + i * 11) % 256);
        d->labels[i] = i % 10 == 0 ? 1 : i % 6;   // class 1 rare-ish: 10% + ...
    }
}

static int same_batch(const Batch *a, const Batch *b, int with_x) {
    return a->n == b->n && a->epoch == b->epoch && a->index == b->index &&
           !memcmp(a->ids, b->ids, (size_t)a->n * sizeof(int)) &&
           !memcmp(a->labels, b->labels, (size_t)a->n * sizeof(int)) &&
           !memcmp(a->pixels, b->pixels, (size_t)a->n * FACE_PIXELS) &&
           (!with_x || !memcmp(a->x, b->x, (size_t)a->n * FACE_PIXELS * sizeof(real)));
}

static Batch copy_batch(const Batch *b) {
    Batch c = *b;
    c.ids = malloc((size_t)b->n * sizeof(int) + 1);
    c.labels = malloc((size_t)b->n * sizeof(int) + 1);
    c.pixels = malloc((size_t)b->n * FACE_PIXELS + 1);
    c.x = b->x ? malloc((size_t)b->n * FACE_PIXELS * sizeof(real) + 1) : NULL;
    memcpy(c.ids, b->ids, (size_t)b->n * sizeof(int));
    memcpy(c.labels, b->labels, (size_t)b->n * sizeof(int));
    memcpy(c.pixels, b->pixels, (size_t)b->n * FACE_PIXELS);
    if (b->x) memcpy(c.x, b->x, (size_t)b->n * FACE_PIXELS * sizeof(real));
    return c;
}

static void free_batch(Batch *b) {
    free(b->ids);
    free(b->labels);
    free(b->pixels);
    free(b->x);
}

static void nap(int us) {
    struct timespec t = {0, us * 1000L};
    nanosleep(&t, NULL);
}

static void test_producer(void) {
    enum { NDATA = 203, NIDX = 150, BATCH = 16, EPOCHS = 3 };
    Dataset d;
    make_data(&d, NDATA);
    int idx[NIDX];
    for (int i = 0; i < NIDX; i++) idx[i] = (i * 37) % NDATA;   // a subset, out of order
    char err[512];
    Net *net = net_parse("input c=1 h=48 w=48 mean=128 std=64\nflatten\nlinear out=7\n", "tiny.arch", err, sizeof err);
    CHECK(net != NULL, "net: %s", err);
    if (!net) return;
    AugConfig aug = aug_config_default();
    BatchConfig cfg = {.data = &d, .idx = idx, .n = NIDX, .batch = BATCH, .shuffle = 1, .aug = &aug, .net = net, .seed = 1234};

    BatchProducer *p = producer_new(&cfg, 0, 0, err, sizeof err);
    BatchProducer *q = producer_new(&cfg, 0, 0, err, sizeof err);
    CHECK(p && q, "producer: %s", err);
    if (!p || !q) return;
    int bpe = producer_batches_per_epoch(p);
    CHECK(bpe == (NIDX + BATCH - 1) / BATCH, "batches per epoch %d", bpe);
    Batch saved[EPOCHS * 10];
    int nsaved = 0, all_same = 1, x_ok = 1, covered = 1;
    Rng jitter;
    rng_seed(&jitter, 5);
    for (int e = 0; e < EPOCHS; e++) {
        int seen[NDATA] = {0}, total = 0;
        for (int b = 0; b < bpe; b++) {
            const Batch *x = producer_next(p);
            nap(rng_int(&jitter, 3000));   // the consumer takes its time now and then
            Batch keep = copy_batch(x);
            if (rng_int(&jitter, 2)) nap(rng_int(&jitter, 2000));
            const Batch *y = producer_next(q);
            all_same &= same_batch(&keep, y, 1);
            CHECK(x->epoch == e && x->index == b, "batch %d.%d says %d.%d", e, b, x->epoch, x->index);
            for (int i = 0; i < x->n; i++) {
                seen[x->ids[i]]++;
                total++;
                covered &= x->labels[i] == d.labels[x->ids[i]];
                for (int k = 0; k < FACE_PIXELS; k += 97)
                    x_ok &= fabsf((float)x->x[(size_t)i * FACE_PIXELS + k] - ((float)x->pixels[(size_t)i * FACE_PIXELS + k] - 128) / 64) < 1e-5f;
            }
            saved[nsaved++] = keep;
        }
        for (int i = 0; i < NIDX; i++) covered &= seen[idx[i]] == 1;
        CHECK(total == NIDX, "epoch %d has %d samples", e, total);
    }
    CHECK(all_same, "two producers with the same seed gave different batches");
    CHECK(x_ok, "x is not net_preprocess(pixels)");
    CHECK(covered, "an epoch does not take every index once, or a label is wrong");
    BatchState st = producer_state(p);
    CHECK(st.seed == 1234 && st.epoch == EPOCHS && st.batch == 0, "state %d.%d", st.epoch, st.batch);
    // the epochs differ (order and augmentation)
    CHECK(!same_batch(&saved[0], &saved[bpe], 0), "epochs 0 and 1 start alike");
    producer_free(p);
    producer_free(q);

    // the same batches made on this thread, and a resumed producer
    int order[NIDX];
    Batch one;
    one.ids = malloc(BATCH * sizeof(int));
    one.labels = malloc(BATCH * sizeof(int));
    one.pixels = malloc(BATCH * FACE_PIXELS);
    one.x = malloc(BATCH * FACE_PIXELS * sizeof(real));
    int count = batch_epoch_order(&cfg, 1, order, NIDX);
    batch_fill(&cfg, order, count, 1, 3, &one);
    CHECK(same_batch(&one, &saved[bpe + 3], 1), "batch_fill differs from the producer");
    p = producer_new(&cfg, 1, 3, err, sizeof err);
    CHECK(p != NULL, "resume: %s", err);
    if (p) {
        int ok = 1;
        for (int k = bpe + 3; k < nsaved; k++) ok &= same_batch(producer_next(p), &saved[k], 1);
        CHECK(ok, "a producer resumed at epoch 1 batch 3 differs");
        producer_free(p);
    }
    // another seed, other batches; the last batch of an epoch is partial unless drop_last
    cfg.seed = 1235;
    p = producer_new(&cfg, 0, 0, err, sizeof err);
    if (p) {
        CHECK(!same_batch(producer_next(p), &saved[0], 0), "another seed, same batch");
        producer_free(p);
    }
    cfg.drop_last = 1;
    p = producer_new(&cfg, 0, 0, err, sizeof err);
    if (p) {
        CHECK(producer_batches_per_epoch(p) == NIDX / BATCH, "drop_last");
        producer_free(p);
    }
    cfg.drop_last = 0;
    // no shuffle, no augmentation: the indices in order, the pixels untouched
    cfg.shuffle = 0;
    cfg.aug = NULL;
    p = producer_new(&cfg, 0, 0, err, sizeof err);
    if (p) {
        const Batch *b = producer_next(p);
        int ok = b->n == BATCH;
        for (int i = 0; i < b->n; i++)
            ok &= b->ids[i] == idx[i] && !memcmp(b->pixels + (size_t)i * FACE_PIXELS, dataset_face(&d, idx[i]), FACE_PIXELS);
        CHECK(ok, "in order, unaugmented");
        producer_free(p);
    }
    // a producer freed while its worker waits, or before any batch
    p = producer_new(&cfg, 0, 0, err, sizeof err);
    producer_free(p);

    // the weighted sampler with class weights: classes come out about equally often
    float wts[NIDX];
    sampler_class_weights(&d, idx, NIDX, wts);
    cfg.weights = wts;
    cfg.epoch_samples = 6000;
    cfg.batch = 100;
    cfg.shuffle = 1;
    cfg.net = NULL;
    p = producer_new(&cfg, 0, 0, err, sizeof err);
    CHECK(p != NULL, "weighted: %s", err);
    if (p) {
        long counts[NCLASSES] = {0};
        CHECK(producer_batches_per_epoch(p) == 60, "weighted batches per epoch");
        for (int b = 0; b < 60; b++) {
            const Batch *x = producer_next(p);
            for (int i = 0; i < x->n; i++) counts[x->labels[i]]++;
        }
        for (int k = 0; k < 6; k++) CHECK(counts[k] > 850 && counts[k] < 1150, "class %d drawn %ld of 6000", k, counts[k]);
        producer_free(p);
    }
    // bad configurations
    cfg.weights = NULL;
    cfg.batch = 0;
    CHECK(producer_new(&cfg, 0, 0, err, sizeof err) == NULL && strstr(err, "batch size"), "%s", err);
    cfg.batch = 8;
    CHECK(producer_new(&cfg, 0, 99, err, sizeof err) == NULL && strstr(err, "cannot start"), "%s", err);
    int badidx[2] = {0, NDATA};
    cfg.idx = badidx;
    cfg.n = 2;
    CHECK(producer_new(&cfg, 0, 0, err, sizeof err) == NULL && strstr(err, "outside the data set"), "%s", err);

    for (int k = 0; k < nsaved; k++) free_batch(&saved[k]);
    free_batch(&one);
    net_free(net);
    dataset_free(&d);
}

int main(void) {
    test_each();
    test_identities();
    test_config();
    test_producer();
    return test_result("test_augment");
}
