// test_data.c: the data loaders on small made-up data sets (no ../shared needed): the Kaggle
// CSV (good rows, and each kind of bad row giving its file:line error), the FER2013 folder
// layout and plain class folders (written as PNGs here), missing and wrong folders, the
// decoded cache (round trip, invalidation, corruption), and the splits (sizes, stratification,
// same seed same split).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv.h"
#include "data.h"
#include "testutil.h"

static char *path_of(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", test_tmpdir(), name);
    return p;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void mkdirs(const char *path) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

// A made-up face: a pattern that depends on seed, every value 0..255 used somewhere.
static void face(uint8_t *px, int seed) {
    for (int i = 0; i < FACE_PIXELS; i++) px[i] = (uint8_t)((i * 7 + seed * 31 + (i / 48) * seed) & 255);
}

// A CSV row: label, the pixels (count of them), usage.
static char *csv_row(int label, const uint8_t *px, int count, const char *usage) {
    char *s = malloc(16 + 4 * (size_t)(count + 1) + 32);
    int k = sprintf(s, "%d,", label);
    for (int i = 0; i < count; i++) k += sprintf(s + k, "%s%d", i ? " " : "", px[i % FACE_PIXELS]);
    sprintf(s + k, ",%s\n", usage);
    return s;
}

static void test_csv_good(void) {
    const char *path = path_of("good.csv");
    FILE *f = fopen(path, "wb");
    fputs("emotion,pixels,Usage\r\n", f);   // CRLF line ends are accepted
    const char *usages[] = {"Training", "PublicTest", "PrivateTest"};
    uint8_t px[FACE_PIXELS];
    for (int r = 0; r < 10; r++) {
        face(px, r);
        char *row = csv_row(r % 7, px, FACE_PIXELS, usages[r % 3]);
        fputs(row, f);
        free(row);
    }
    fputs("\n", f);   // a blank line at the end is fine
    fclose(f);
    Dataset d;
    char err[512];
    int rc = dataset_load_csv(path, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "load: %s", err);
    if (rc) return;
    CHECK(d.n == 10, "n %d", d.n);
    for (int r = 0; r < d.n; r++) {
        face(px, r);
        CHECK(!memcmp(dataset_face(&d, r), px, FACE_PIXELS), "row %d pixels", r);
        CHECK(d.labels[r] == r % 7, "row %d label %d", r, d.labels[r]);
        CHECK(d.usage[r] == USAGE_TRAINING + r % 3, "row %d usage %d", r, d.usage[r]);
    }
    CHECK(!strcmp(dataset_name(&d, 0), "good.csv:2"), "name '%s'", dataset_name(&d, 0));
    CHECK(!strcmp(dataset_name(&d, 9), "good.csv:11"), "name '%s'", dataset_name(&d, 9));
    dataset_free(&d);
}

// A CSV of a good row, then `bad` on line 3: the error must name bad.csv:3 (or :line) and say why.
static void expect_csv_error(const char *header, const char *bad, const char *line, const char *why) {
    const char *path = path_of("bad.csv");
    uint8_t px[FACE_PIXELS];
    face(px, 1);
    char *good = csv_row(3, px, FACE_PIXELS, "Training");
    size_t len = strlen(header) + strlen(good) + strlen(bad) + 1;
    char *text = malloc(len);
    snprintf(text, len, "%s%s%s", header, good, bad);
    write_text(path, text);
    free(text);
    free(good);
    Dataset d;
    char err[512] = "";
    int rc = dataset_load_csv(path, NULL, &d, err, sizeof err);
    char want[600];
    snprintf(want, sizeof want, "bad.csv%s: ", line);
    CHECK(rc == -1, "a bad CSV (%s) loaded", why);
    CHECK(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
    CHECK(strstr(err, why) != NULL, "error '%s' lacks '%s'", err, why);
    if (rc == 0) dataset_free(&d);
}

static void test_csv_errors(void) {
    const char *H = "emotion,pixels,Usage\n";
    uint8_t px[FACE_PIXELS];
    face(px, 2);
    char *r;
    expect_csv_error("emotion,Usage,pixels\n", "", ":1", "expected 'emotion,pixels,Usage'");
    expect_csv_error(H, (r = csv_row(1, px, FACE_PIXELS - 1, "Training")), ":3", "2303 pixel values, expected 2304");
    free(r);
    expect_csv_error(H, (r = csv_row(1, px, FACE_PIXELS + 1, "Training")), ":3", "2305 pixel values");
    free(r);
    expect_csv_error(H, (r = csv_row(7, px, FACE_PIXELS, "Training")), ":3", "emotion 7 is not a label");
    free(r);
    expect_csv_error(H, (r = csv_row(1, px, FACE_PIXELS, "Train")), ":3", "Usage 'Train' is not");
    free(r);
    expect_csv_error(H, "x,1 2 3,Training\n", ":3", "emotion 'x'");
    expect_csv_error(H, "3,1 2 256,Training\n", ":3", "pixel 3: value 256 is out of range");
    expect_csv_error(H, "3,1 2 -4,Training\n", ":3", "pixel 3: '-' is not a digit");
    expect_csv_error(H, "3,1 2a 4,Training\n", ":3", "pixel 2: 'a' is not a digit");
    expect_csv_error(H, "3 1 2 3 Training\n", ":3", "1 field, expected 3");
    expect_csv_error(H, "3,1 2,3,Training\n", ":3", "4 fields, expected 3");
    expect_csv_error(H, "\n\n3,1,Training\n", ":3", "blank line");
    // empty file, missing file, a folder
    write_text(path_of("empty.csv"), "");
    Dataset d;
    char err[512];
    CHECK(dataset_load_csv(path_of("empty.csv"), NULL, &d, err, sizeof err) == -1 && strstr(err, "empty.csv: empty file"),
          "empty: %s", err);
    write_text(path_of("header.csv"), "emotion,pixels,Usage\n");
    CHECK(dataset_load_csv(path_of("header.csv"), NULL, &d, err, sizeof err) == -1 && strstr(err, "no data rows"),
          "header only: %s", err);
    CHECK(dataset_load_csv(path_of("nope.csv"), NULL, &d, err, sizeof err) == -1 && strstr(err, "nope.csv: cannot open"),
          "missing: %s", err);
    CHECK(dataset_load(path_of("nope.csv"), NULL, &d, err, sizeof err, NULL, 0) == -1 && strstr(err, "nope.csv"),
          "missing (auto): %s", err);
}

static void write_png(const char *path, const uint8_t *px, int w, int h, int ch) {
    Image im = {w, h, ch, w * ch, (unsigned char *)px};
    char err[512];
    if (cv_imwrite(path, &im, 0, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
}

// The FER2013 layout: train/<class>/, test/<class>/, split by file prefix.
static const struct {
    const char *rel;
    int label, usage;
} FER_FILES[] = {
    {"train/angry/Training_10.png", 0, USAGE_TRAINING},
    {"train/angry/Training_11.png", 0, USAGE_TRAINING},
    {"train/disgust/Training_12.png", 1, USAGE_TRAINING},
    {"train/fear/own.png", 2, USAGE_TRAINING},            // no prefix in train/: Training
    {"train/happy/Training_13.png", 3, USAGE_TRAINING},
    {"train/neutral/Training_14.png", 6, USAGE_TRAINING},
    {"test/happy/PrivateTest_16.png", 3, USAGE_PRIVATE_TEST},
    {"test/happy/PublicTest_15.png", 3, USAGE_PUBLIC_TEST},
    {"test/sad/other.png", 4, USAGE_PUBLIC_TEST},           // no prefix in test/: PublicTest
    {"test/surprise/PublicTest_17.png", 5, USAGE_PUBLIC_TEST},
};
enum { NFER = sizeof FER_FILES / sizeof FER_FILES[0] };

static void make_fer(const char *root) {
    for (int i = 0; i < NFER; i++) {
        char p[512], dir[512];
        snprintf(p, sizeof p, "%s/%s", root, FER_FILES[i].rel);
        snprintf(dir, sizeof dir, "%s", p);
        *strrchr(dir, '/') = 0;
        mkdirs(dir);
        uint8_t px[FACE_PIXELS];
        face(px, 100 + i);
        write_png(p, px, FACE_W, FACE_H, 1);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/train/angry/readme.txt", root);   // not an image: skipped
    write_text(p, "notes");
    snprintf(p, sizeof p, "%s/train/angry/.hidden.png", root);  // hidden: skipped
    write_text(p, "junk");
}

static void check_fer(const Dataset *d) {
    CHECK(d->n == NFER, "n %d, want %d", d->n, NFER);
    if (d->n != NFER) return;
    for (int i = 0; i < NFER; i++) {   // loaded in order: train/ then test/, by class, by name
        uint8_t px[FACE_PIXELS];
        face(px, 100 + i);
        CHECK(!strcmp(dataset_name(d, i), FER_FILES[i].rel), "name %d '%s' want '%s'", i, dataset_name(d, i), FER_FILES[i].rel);
        CHECK(d->labels[i] == FER_FILES[i].label, "%s label %d", FER_FILES[i].rel, d->labels[i]);
        CHECK(d->usage[i] == FER_FILES[i].usage, "%s usage %d", FER_FILES[i].rel, d->usage[i]);
        CHECK(!memcmp(dataset_face(d, i), px, FACE_PIXELS), "%s pixels", FER_FILES[i].rel);
    }
}

static void test_folders(void) {
    char err[512];
    Dataset d;
    const char *root = path_of("fer");
    make_fer(root);
    int rc = dataset_load_folders(root, NULL, &d, err, sizeof err);
    CHECK(rc == 0, "fer layout: %s", err);
    if (!rc) {
        check_fer(&d);
        dataset_free(&d);
    }

    // class folders of a user's own faces: any size, colour, upper-case class names
    const char *own = path_of("own");
    char dir[512], p[512];
    snprintf(dir, sizeof dir, "%s/Happy", own);
    mkdirs(dir);
    snprintf(dir, sizeof dir, "%s/sad", own);
    mkdirs(dir);
    enum { W = 100, H = 80 };
    static uint8_t bgr[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) bgr[i] = (uint8_t)(i * 13 / 7);
    snprintf(p, sizeof p, "%s/Happy/me.png", own);
    write_png(p, bgr, W, H, 3);
    snprintf(p, sizeof p, "%s/sad/me2.png", own);
    uint8_t px[FACE_PIXELS];
    face(px, 5);
    write_png(p, px, FACE_W, FACE_H, 1);
    rc = dataset_load(own, NULL, &d, err, sizeof err, NULL, 0);
    CHECK(rc == 0, "class folders: %s", err);
    if (!rc) {
        CHECK(d.n == 2 && d.labels[0] == 3 && d.labels[1] == 4, "n %d labels", d.n);
        CHECK(d.usage[0] == USAGE_UNKNOWN, "usage %d", d.usage[0]);
        CHECK(!strcmp(dataset_name(&d, 0), "happy/me.png"), "name %s", dataset_name(&d, 0));
        // the same as decoding to gray and resizing with INTER_AREA
        Image g, s;
        snprintf(p, sizeof p, "%s/Happy/me.png", own);
        CHECK(cv_imread(p, 1, &g, err, sizeof err) == 0, "%s", err);
        CHECK(cv_resize(&g, &s, FACE_W, FACE_H, CV_RESIZE_AREA) == 0, "resize");
        CHECK(!memcmp(s.px, dataset_face(&d, 0), FACE_PIXELS), "resized face differs");
        CHECK(!memcmp(px, dataset_face(&d, 1), FACE_PIXELS), "48x48 face differs");
        image_free(&g);
        image_free(&s);
        dataset_free(&d);
    }

    // errors: a missing folder, a folder without class folders, an unknown class, a corrupt image
    rc = dataset_load_folders(path_of("nowhere"), NULL, &d, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "nowhere: no such data folder"), "missing: %s", err);
    const char *emptyd = path_of("emptyd");
    mkdirs(emptyd);
    rc = dataset_load_folders(emptyd, NULL, &d, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "emptyd: neither a train/ folder nor class folders"), "empty: %s", err);
    snprintf(dir, sizeof dir, "%s/contempt", own);
    mkdirs(dir);
    rc = dataset_load_folders(own, NULL, &d, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "contempt") && strstr(err, "is not a class folder"), "unknown class: %s", err);
    rmdir(dir);
    snprintf(dir, sizeof dir, "%s/train", emptyd);
    mkdirs(dir);
    rc = dataset_load_folders(emptyd, NULL, &d, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "train: no class folders"), "empty train/: %s", err);
    snprintf(dir, sizeof dir, "%s/train/fear", emptyd);
    mkdirs(dir);
    rc = dataset_load_folders(emptyd, NULL, &d, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "no images"), "no images: %s", err);
    snprintf(p, sizeof p, "%s/train/fear/broken.jpg", emptyd);
    write_text(p, "this is not a JPEG");
    rc = dataset_load_folders(emptyd, NULL, &d, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "broken.jpg: "), "corrupt image: %s", err);
}

static int same(const Dataset *a, const Dataset *b) {
    if (a->n != b->n || a->names_len != b->names_len) return 0;
    for (int i = 0; i < a->n; i++)
        if (a->labels[i] != b->labels[i] || a->usage[i] != b->usage[i] ||
            strcmp(dataset_name(a, i), dataset_name(b, i)))
            return 0;
    return !memcmp(a->pixels, b->pixels, (size_t)a->n * FACE_PIXELS);
}

static void test_cache(void) {
    char err[512], warn[512];
    const char *root = path_of("cached"), *cache = path_of("cached.cache");
    make_fer(root);
    DataLoadOpts o = {DATA_AUTO, cache, NULL, NULL};
    Dataset a, b;
    int rc = dataset_load(root, &o, &a, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && !a.from_cache && !warn[0], "first load: %s %s", err, warn);
    struct stat st;
    CHECK(stat(cache, &st) == 0 && st.st_size > NFER * FACE_PIXELS, "no cache written");
    rc = dataset_load(root, &o, &b, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && b.from_cache, "second load not from the cache: %s %s", err, warn);
    CHECK(rc == 0 && same(&a, &b), "the cache gives other data");
    CHECK(b.source && !strcmp(b.source, root), "source %s", b.source ? b.source : "(null)");
    if (!rc) dataset_free(&b);

    // a new image: reloaded
    char p[512];
    uint8_t px[FACE_PIXELS];
    face(px, 77);
    snprintf(p, sizeof p, "%s/train/sad/Training_99.png", root);
    mkdirs(strcat(strcpy(p, root), "/train/sad"));
    snprintf(p, sizeof p, "%s/train/sad/Training_99.png", root);
    write_png(p, px, FACE_W, FACE_H, 1);
    rc = dataset_load(root, &o, &b, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && !b.from_cache && b.n == NFER + 1, "after adding a file: from_cache %d n %d", b.from_cache, b.n);
    if (!rc) dataset_free(&b);
    // a relabel (move between class folders; same count and sizes): reloaded
    char q[512];
    snprintf(q, sizeof q, "%s/train/angry/Training_99.png", root);
    CHECK(rename(p, q) == 0, "rename");
    rc = dataset_load(root, &o, &b, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && !b.from_cache, "after a move: from the cache");
    if (!rc) {
        int found = 0;
        for (int i = 0; i < b.n; i++)
            if (!strcmp(dataset_name(&b, i), "train/angry/Training_99.png")) found = b.labels[i] == 0;
        CHECK(found, "the moved image is not angry");
        dataset_free(&b);
    }
    // unchanged again: from the cache
    rc = dataset_load(root, &o, &b, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && b.from_cache, "unchanged: not from the cache");
    if (!rc) dataset_free(&b);

    // a corrupt cache: a warning, then a good load that rewrites it
    FILE *f = fopen(cache, "r+b");
    fseek(f, -100, SEEK_END);
    fputc(0x5a, f);
    fclose(f);
    char *key = NULL;
    CHECK(dataset_source_key(root, DATA_AUTO, &key, err, sizeof err) == 0, "key: %s", err);
    rc = dataset_cache_read(cache, key, &b, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "checksum mismatch"), "corrupt cache read: %d %s", rc, err);
    free(key);
    rc = dataset_load(root, &o, &b, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && !b.from_cache && strstr(warn, "checksum mismatch"), "corrupt cache: %s | %s", err, warn);
    if (!rc) dataset_free(&b);
    rc = dataset_load(root, &o, &b, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && b.from_cache, "rewritten cache not read");
    if (!rc) dataset_free(&b);
    // a truncated cache
    CHECK(truncate(cache, 30) == 0, "truncate");
    rc = dataset_load(root, &o, &b, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && !b.from_cache && warn[0], "truncated cache: %s", warn);
    if (!rc) dataset_free(&b);
    dataset_free(&a);

    // a CSV: cached, and invalidated when the file changes
    const char *csv = path_of("c.csv"), *ccache = path_of("c.cache");
    char *row = csv_row(4, px, FACE_PIXELS, "PublicTest");
    size_t len = 2 * strlen(row) + 64;
    char *text = malloc(len);
    snprintf(text, len, "emotion,pixels,Usage\n%s", row);
    write_text(csv, text);
    o.cache = ccache;
    rc = dataset_load(csv, &o, &a, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && !a.from_cache && a.n == 1, "csv first: %s", err);
    if (!rc) dataset_free(&a);
    rc = dataset_load(csv, &o, &a, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && a.from_cache && a.n == 1 && a.labels[0] == 4, "csv second: %s", err);
    if (!rc) dataset_free(&a);
    snprintf(text, len, "emotion,pixels,Usage\n%s%s", row, row);
    write_text(csv, text);
    rc = dataset_load(csv, &o, &a, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && !a.from_cache && a.n == 2, "csv changed: from_cache %d n %d", a.from_cache, a.n);
    if (!rc) dataset_free(&a);
    // another source's cache file is stale, not an error
    o.cache = cache;
    rc = dataset_load(csv, &o, &a, err, sizeof err, warn, sizeof warn);
    CHECK(rc == 0 && !a.from_cache && !warn[0], "other source's cache: %s", warn);
    if (!rc) dataset_free(&a);
    free(row);
    free(text);

    char *def = dataset_default_cache(root, test_tmpdir());
    CHECK(def && strstr(def, "/emocam-data-") && strstr(def, ".cache"), "default cache %s", def ? def : "(null)");
    free(def);
}

// A data set of labels only (pixels zero), with FER2013's Training class counts.
static void fake_dataset(Dataset *d, const long *counts, int usage) {
    memset(d, 0, sizeof *d);
    int n = 0;
    for (int c = 0; c < NCLASSES; c++) n += (int)counts[c];
    d->n = n;
    d->pixels = calloc((size_t)n, FACE_PIXELS);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    d->usage = malloc((size_t)n);
    d->name_off = calloc((size_t)n, sizeof *d->name_off);
    d->names = calloc(1, 1);
    d->names_len = 1;
    for (int c = 0, i = 0; c < NCLASSES; c++)
        for (long k = 0; k < counts[c]; k++, i++) {
            d->labels[i] = c;
            d->usage[i] = (uint8_t)usage;
        }
    // interleave the classes a little, as real files are
    for (int i = 0; i < n; i += 3) {
        int j = (int)((i * 7919L) % n), t = d->labels[i];
        d->labels[i] = d->labels[j];
        d->labels[j] = t;
    }
}

static int same_split(const Split *a, const Split *b) {
    return a->ntrain == b->ntrain && a->nval == b->nval && a->ntest == b->ntest &&
           !memcmp(a->train, b->train, (size_t)a->ntrain * sizeof(int)) &&
           !memcmp(a->val, b->val, (size_t)a->nval * sizeof(int)) &&
           !memcmp(a->test, b->test, (size_t)a->ntest * sizeof(int));
}

static void check_partition(const Dataset *d, const Split *s) {
    char *seen = calloc((size_t)d->n, 1);
    int bad = 0;
    const int *sets[3] = {s->train, s->val, s->test};
    int ns[3] = {s->ntrain, s->nval, s->ntest};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ns[k]; i++) {
            bad |= seen[sets[k][i]]++;
            bad |= i > 0 && sets[k][i] <= sets[k][i - 1];
        }
    CHECK(!bad, "the split repeats an image or is not ascending");
    CHECK(s->ntrain + s->nval + s->ntest == d->n, "the split covers %d of %d", s->ntrain + s->nval + s->ntest, d->n);
    free(seen);
}

static void test_splits(void) {
    static const long FER[NCLASSES] = {3995, 436, 4097, 7215, 4830, 3171, 4965};
    Dataset d;
    fake_dataset(&d, FER, USAGE_TRAINING);
    char err[512];
    Split a, b, c;
    CHECK(dataset_split(&d, SPLIT_80_20, 42, &a, err, sizeof err) == 0, "%s", err);
    CHECK(a.ntrain == 22967 && a.nval == 5742 && a.ntest == 0, "80/20: %d %d %d", a.ntrain, a.nval, a.ntest);
    check_partition(&d, &a);
    long cv[NCLASSES];
    dataset_count(&d, a.val, a.nval, cv);
    for (int k = 0; k < NCLASSES; k++)   // stratified: within one image of 20%
        CHECK(labs(cv[k] * 5 - FER[k]) <= 5, "class %d: %ld of %ld in val", k, cv[k], FER[k]);
    CHECK(dataset_split(&d, SPLIT_80_20, 42, &b, err, sizeof err) == 0 && same_split(&a, &b), "same seed, other split");
    CHECK(dataset_split(&d, SPLIT_80_20, 43, &c, err, sizeof err) == 0 && !same_split(&a, &c), "other seed, same split");
    split_free(&a);
    split_free(&b);
    split_free(&c);
    CHECK(dataset_split(&d, SPLIT_70_15_15, 7, &a, err, sizeof err) == 0, "%s", err);
    CHECK(a.nval == 4307 && a.ntest == 4307 && a.ntrain == 28709 - 2 * 4307, "70/15/15: %d %d %d", a.ntrain, a.nval, a.ntest);
    check_partition(&d, &a);
    CHECK(dataset_split(&d, SPLIT_70_15_15, 7, &b, err, sizeof err) == 0 && same_split(&a, &b), "same seed, other split");
    split_free(&a);
    split_free(&b);
    // official needs PublicTest
    CHECK(dataset_split(&d, SPLIT_OFFICIAL, 0, &a, err, sizeof err) == -1 && strstr(err, "PublicTest"), "official: %s", err);
    for (int i = 0; i < d.n; i++) d.usage[i] = (uint8_t)(i % 10 == 0 ? USAGE_PUBLIC_TEST : i % 10 == 1 ? USAGE_PRIVATE_TEST : i % 10 == 2 ? USAGE_UNKNOWN : USAGE_TRAINING);
    CHECK(dataset_split(&d, SPLIT_OFFICIAL, 0, &a, err, sizeof err) == 0, "%s", err);
    int ok = a.nval == (d.n + 9) / 10 && a.ntest == (d.n + 8) / 10;
    for (int i = 0; i < a.ntrain; i++) ok &= d.usage[a.train[i]] == USAGE_TRAINING;
    for (int i = 0; i < a.nval; i++) ok &= d.usage[a.val[i]] == USAGE_PUBLIC_TEST;
    for (int i = 0; i < a.ntest; i++) ok &= d.usage[a.test[i]] == USAGE_PRIVATE_TEST;
    CHECK(ok, "official split: %d %d %d", a.ntrain, a.nval, a.ntest);
    split_free(&a);
    // random splits take Training only
    CHECK(dataset_split(&d, SPLIT_80_20, 1, &a, err, sizeof err) == 0, "%s", err);
    ok = 1;
    for (int i = 0; i < a.ntrain; i++) ok &= d.usage[a.train[i]] == USAGE_TRAINING;
    for (int i = 0; i < a.nval; i++) ok &= d.usage[a.val[i]] == USAGE_TRAINING;
    CHECK(ok, "80/20 took non-Training images");
    split_free(&a);
    dataset_free(&d);
    // names
    SplitKind k;
    CHECK(split_kind_parse("70/15/15", &k) == 0 && k == SPLIT_70_15_15, "parse");
    CHECK(split_kind_parse("80-20", &k) == 0 && k == SPLIT_80_20, "parse");
    CHECK(split_kind_parse("90/10", &k) == -1, "parse 90/10");
}

// soft_targets_load: a teacher's predictions.csv matched to good.csv's 10 images by name.
static const char *PRED_HEADER = "name,label,predicted,p_angry,p_disgust,p_fear,p_happy,p_sad,p_surprise,p_neutral";

static void expect_soft_error(const Dataset *d, const char *rows, const char *why) {
    const char *path = path_of("pred_bad.csv");
    char text[4096];
    snprintf(text, sizeof text, "%s\n%s", PRED_HEADER, rows);
    write_text(path, text);
    real soft[10 * NCLASSES];
    uint8_t has[10];
    char err[512] = "";
    int rc = soft_targets_load(path, d, soft, has, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "pred_bad.csv") && strstr(err, why), "rows '%s': rc %d, err '%s' (want '%s')",
          rows, rc, err, why);
}

static void test_soft_targets(void) {
    Dataset d;
    char err[512];
    if (dataset_load_csv(path_of("good.csv"), NULL, &d, err, sizeof err)) {
        CHECK(0, "load good.csv: %s", err);
        return;
    }
    char text[8192];
    int k = sprintf(text, "%s\r\n", PRED_HEADER);   // CRLF is fine
    k += sprintf(text + k, "\"test/x, \"\"y\"\".jpg\",0,0,1,0,0,0,0,0,0\r\n");   // not in d: skipped
    for (int r = 0; r < 9; r++) {   // row 9 (good.csv:11) left out
        k += sprintf(text + k, "good.csv:%d,%d,%d", r + 2, r % 7, r % 7);
        for (int c = 0; c < NCLASSES; c++) k += sprintf(text + k, ",%.5f", c == (r + 3) % 7 ? 0.40000 : 0.10000);
        k += sprintf(text + k, "\r\n");
    }
    const char *path = path_of("pred.csv");
    write_text(path, text);
    real soft[10 * NCLASSES];
    uint8_t has[10];
    int rc = soft_targets_load(path, &d, soft, has, err, sizeof err);
    CHECK(rc == 0, "soft targets: %s", err);
    if (!rc) {
        for (int r = 0; r < 10; r++) {
            CHECK(has[r] == (r < 9), "image %d: has %d", r, has[r]);
            for (int c = 0; r < 9 && c < NCLASSES; c++) {
                double want = c == (r + 3) % 7 ? 0.4 : 0.1;
                CHECK(fabs(soft[r * NCLASSES + c] - want) < 1e-6, "image %d class %d: %g, want %g", r, c,
                      (double)soft[r * NCLASSES + c], want);
            }
        }
    }
    const char *p7 = ",0.1,0.1,0.1,0.1,0.1,0.1,0.4\n";
    char rows[1024];
    snprintf(rows, sizeof rows, "good.csv:2,0,0,0.1,0.1,0.1\n");
    expect_soft_error(&d, rows, ":2: want a name, a label, a prediction and 7 probabilities");
    snprintf(rows, sizeof rows, "good.csv:2,0,0,abc,0.1,0.1,0.1,0.1,0.1,0.4\n");
    expect_soft_error(&d, rows, ":2: probability 'abc' of angry");
    snprintf(rows, sizeof rows, "good.csv:2,0,0,1.5,0.1,0.1,0.1,0.1,0.1,0.4\n");
    expect_soft_error(&d, rows, "want a number in [0, 1]");
    snprintf(rows, sizeof rows, "good.csv:2,0,0,0.1,0.1,0.1,0.1,0.1,0.1,0.3\n");
    expect_soft_error(&d, rows, ":2: the probabilities sum to 0.90000");
    snprintf(rows, sizeof rows, "good.csv:2,3,0%s", p7);
    expect_soft_error(&d, rows, ":2: good.csv:2 has label 3 here but 0 (angry)");
    snprintf(rows, sizeof rows, "good.csv:2,0,0%sgood.csv:3,1,1%sgood.csv:2,0,0%s", p7, p7, p7);
    expect_soft_error(&d, rows, ":4: good.csv:2 a second time");
    snprintf(rows, sizeof rows, "\"good.csv:2,0,0%s", p7);
    expect_soft_error(&d, rows, ":2: a badly quoted name");
    snprintf(rows, sizeof rows, "good.csv:2,9,0%s", p7);
    expect_soft_error(&d, rows, ":2: label '9'");
    write_text(path_of("pred_bad.csv"), "emotion,pixels,Usage\n0,1 2 3,Training\n");
    rc = soft_targets_load(path_of("pred_bad.csv"), &d, soft, has, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "pred_bad.csv:1: not a predictions.csv"), "a data CSV: %s", err);
    write_text(path_of("pred_bad.csv"), "");
    rc = soft_targets_load(path_of("pred_bad.csv"), &d, soft, has, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "pred_bad.csv: empty"), "an empty file: %s", err);
    rc = soft_targets_load(path_of("nope.csv"), &d, soft, has, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "nope.csv: No such file"), "a missing file: %s", err);
    dataset_free(&d);
}

int main(void) {
    test_csv_good();
    test_csv_errors();
    test_soft_targets();
    test_folders();
    test_cache();
    test_splits();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmpdir());
    if (!test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", test_tmpdir());
    return test_result("test_data");
}
