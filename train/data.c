// data.c: loading face data sets (Kaggle CSV, FER2013 folders, class folders), the decoded
// cache, and the train/val/test splits. See data.h.
#define _XOPEN_SOURCE 700   // realpath
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cv.h"
#include "tfile.h"

const char *const CLASS_NAMES[NCLASSES] = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};
const char *const USAGE_NAMES[NUSAGES] = {"unknown", "Training", "PublicTest", "PrivateTest"};

int class_from_name(const char *name) {
    for (int c = 0; c < NCLASSES; c++)
        if (!strcasecmp(name, CLASS_NAMES[c])) return c;
    return -1;
}

#define ERR(...) snprintf(err, errlen, __VA_ARGS__)

static void progress(const DataLoadOpts *o, const char *what, long done, long total) {
    if (o && o->progress) o->progress(o->progress_ctx, what, done, total);
}

void dataset_free(Dataset *d) {
    free(d->pixels);
    free(d->labels);
    free(d->usage);
    free(d->names);
    free(d->name_off);
    free(d->source);
    memset(d, 0, sizeof *d);
}

// Room for n images (pixels, labels, usage, offsets) and names_cap bytes of names.
static int dataset_alloc(Dataset *d, int n, size_t names_cap) {
    size_t m = n ? (size_t)n : 1;
    uint8_t *px = realloc(d->pixels, m * FACE_PIXELS);
    if (px) d->pixels = px;
    int *lb = realloc(d->labels, m * sizeof *lb);
    if (lb) d->labels = lb;
    uint8_t *us = realloc(d->usage, m);
    if (us) d->usage = us;
    size_t *off = realloc(d->name_off, m * sizeof *off);
    if (off) d->name_off = off;
    char *nm = realloc(d->names, names_cap ? names_cap : 1);
    if (nm) d->names = nm;
    return px && lb && us && off && nm ? 0 : -1;
}

static int set_source(Dataset *d, const char *path) {
    free(d->source);
    d->source = strdup(path);
    return d->source ? 0 : -1;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

// ---------------------------------------------------------------- the Kaggle CSV

static int parse_usage(const char *s) {
    for (int u = USAGE_TRAINING; u < NUSAGES; u++)
        if (!strcmp(s, USAGE_NAMES[u])) return u;
    return -1;
}

// One data row, NUL-terminated without its line end. 0, or -1 with the reason (no prefix).
static int csv_row(char *s, uint8_t *px, int *label, int *usage, char *err, size_t errlen) {
    char *c1 = strchr(s, ',');
    char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c1 || !c2 || strchr(c2 + 1, ',')) {
        int commas = 0;
        for (char *p = s; *p; p++) commas += *p == ',';
        ERR("%d field%s, expected 3 (emotion,pixels,Usage)", commas + 1, commas ? "s" : "");
        return -1;
    }
    *c1 = *c2 = 0;
    // label
    if (s[0] < '0' || s[0] > '9' || s[1]) {
        ERR("emotion '%.20s' is not a label 0..6", s);
        return -1;
    }
    *label = s[0] - '0';
    if (*label >= NCLASSES) {
        ERR("emotion %d is not a label 0..6", *label);
        return -1;
    }
    // pixels, optionally quoted
    char *p = c1 + 1, *end = c2;
    if (*p == '"' && end > p + 1 && end[-1] == '"') {
        p++;
        *--end = 0;
    }
    long count = 0;
    while (p < end) {
        if (*p == ' ') {
            p++;
            continue;
        }
        if (*p < '0' || *p > '9') {
            ERR("pixel %ld: '%c' is not a digit", count + 1, *p);
            return -1;
        }
        int v = 0, digits = 0;
        const char *num = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v < 1000) v = v * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (p < end && *p != ' ') {
            ERR("pixel %ld: '%c' is not a digit", count + 1, *p);
            return -1;
        }
        if (v > 255 || digits > 3) {
            ERR("pixel %ld: value %.*s is out of range 0..255", count + 1, digits > 12 ? 12 : digits, num);
            return -1;
        }
        if (count < FACE_PIXELS) px[count] = (uint8_t)v;
        count++;
    }
    if (count != FACE_PIXELS) {
        ERR("%ld pixel values, expected %d (48x48)", count, FACE_PIXELS);
        return -1;
    }
    *usage = parse_usage(c2 + 1);
    if (*usage < 0) {
        ERR("Usage '%.40s' is not Training, PublicTest or PrivateTest", c2 + 1);
        return -1;
    }
    return 0;
}

int dataset_load_csv(const char *path, const DataLoadOpts *opts, Dataset *d, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        ERR("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        ERR("%s: not a regular file (a CSV was expected)", path);
        return -1;
    }
    long total = (long)st.st_size;
    const char *bn = base_name(path);
    char *line = NULL, row_err[256];
    size_t cap = 0, names_cap = 0;
    int n = 0, ncap = 0, blank_at = 0, rc = -1;
    long lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (lineno == 1) {
            if (strcmp(line, "emotion,pixels,Usage") != 0) {
                ERR("%s:1: header is '%.60s', expected 'emotion,pixels,Usage'", path, line);
                goto done;
            }
            continue;
        }
        if (len == 0) {   // blank lines may only end the file
            if (!blank_at) blank_at = (int)lineno;
            continue;
        }
        if (blank_at) {
            ERR("%s:%d: blank line inside the data", path, blank_at);
            goto done;
        }
        if (n == ncap) {
            ncap = ncap ? 2 * ncap : 4096;
            if (ncap > INT_MAX / 2 || dataset_alloc(d, ncap, names_cap)) {
                ERR("%s: out of memory at line %ld", path, lineno);
                goto done;
            }
        }
        int label, usage;
        if (csv_row(line, d->pixels + (size_t)n * FACE_PIXELS, &label, &usage, row_err, sizeof row_err)) {
            ERR("%s:%ld: %s", path, lineno, row_err);
            goto done;
        }
        d->labels[n] = label;
        d->usage[n] = (uint8_t)usage;
        // name "file.csv:LINE"
        size_t need = strlen(bn) + 24;
        if (d->names_len + need > names_cap) {
            names_cap = (d->names_len + need) * 2;
            char *nm = realloc(d->names, names_cap);
            if (!nm) {
                ERR("%s: out of memory at line %ld", path, lineno);
                goto done;
            }
            d->names = nm;
        }
        d->name_off[n] = d->names_len;
        d->names_len += (size_t)snprintf(d->names + d->names_len, need, "%s:%ld", bn, lineno) + 1;
        n++;
        if ((n & 2047) == 0) progress(opts, "reading CSV rows", ftell(fp), total);
    }
    if (ferror(fp)) {
        ERR("%s: read error after line %ld", path, lineno);
        goto done;
    }
    if (lineno == 0) {
        ERR("%s: empty file (no header 'emotion,pixels,Usage')", path);
        goto done;
    }
    if (n == 0) {
        ERR("%s: no data rows after the header", path);
        goto done;
    }
    progress(opts, "reading CSV rows", total, total);
    d->n = n;
    if (set_source(d, path)) {
        ERR("%s: out of memory", path);
        goto done;
    }
    rc = 0;
done:
    free(line);
    fclose(fp);
    if (rc) dataset_free(d);
    return rc;
}

// ---------------------------------------------------------------- folders

typedef struct {
    char *path;    // full path
    char *rel;     // relative to the data folder: "train/angry/Training_1.jpg"
    int top;       // 0 train/ (or class layout), 1 test/
    int label;
    int usage;
} FileItem;

typedef struct {
    FileItem *v;
    int n, cap;
    int fer_layout;             // 1: DATA/train, DATA/test; 0: DATA/<class>
    long long bytes;            // total size of the image files
    long long newest_ns;        // newest mtime among files and folders
    uint64_t names_hash;        // FNV-1a over every relative path and label
} FileList;

static void filelist_free(FileList *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].rel);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int is_image_name(const char *name) {
    static const char *const EXT[] = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm",
                                      ".pnm", ".tif", ".tiff", ".webp"};
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return 0;
    for (size_t i = 0; i < sizeof EXT / sizeof EXT[0]; i++)
        if (!strcasecmp(dot, EXT[i])) return 1;
    return 0;
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, a, la);
    size_t k = la;
    if (la && a[la - 1] != '/') s[k++] = '/';
    memcpy(s + k, b, lb + 1);
    return s;
}

static long long mtime_ns(const struct stat *st) {
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The entries of a folder, sorted by name, hidden ones left out. 0 or -1.
static int list_dir(const char *dir, char ***names, int *n, char *err, size_t errlen) {
    *names = NULL;
    *n = 0;
    DIR *dp = opendir(dir);
    if (!dp) {
        ERR("%s: cannot open folder: %s", dir, strerror(errno));
        return -1;
    }
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            char **nv = realloc(*names, (size_t)cap * sizeof *nv);
            if (!nv) goto oom;
            *names = nv;
        }
        if (!((*names)[*n] = strdup(e->d_name))) goto oom;
        (*n)++;
    }
    closedir(dp);
    if (*n) qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return 0;
oom:
    closedir(dp);
    for (int i = 0; i < *n; i++) free((*names)[i]);
    free(*names);
    *names = NULL;
    *n = 0;
    ERR("%s: out of memory listing the folder", dir);
    return -1;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void hash_mix(uint64_t *h, const void *p, size_t len) {
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) *h = (*h ^ b[i]) * 0x100000001b3ULL;
}

static int usage_from_prefix(const char *name, int fallback) {
    if (!strncmp(name, "Training_", 9)) return USAGE_TRAINING;
    if (!strncmp(name, "PublicTest_", 11)) return USAGE_PUBLIC_TEST;
    if (!strncmp(name, "PrivateTest_", 12)) return USAGE_PRIVATE_TEST;
    return fallback;
}

// The images of one class folder.
static int collect_class(FileList *l, const char *dir, const char *rel_dir, int top, int label,
                         int usage_default, char *err, size_t errlen) {
    char **names;
    int n;
    if (list_dir(dir, &names, &n, err, errlen)) return -1;
    int rc = -1;
    for (int i = 0; i < n; i++) {
        if (!is_image_name(names[i])) continue;
        char *path = join(dir, names[i]);
        struct stat st;
        if (!path) goto oom;
        if (stat(path, &st) != 0) {
            ERR("%s: cannot stat: %s", path, strerror(errno));
            free(path);
            goto out;
        }
        if (!S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 4096;
            FileItem *nv = realloc(l->v, (size_t)l->cap * sizeof *nv);
            if (!nv) {
                free(path);
                goto oom;
            }
            l->v = nv;
        }
        char *rel = join(rel_dir, names[i]);
        if (!rel) {
            free(path);
            goto oom;
        }
        l->v[l->n++] = (FileItem){path, rel, top, label, usage_from_prefix(names[i], usage_default)};
        l->bytes += st.st_size;
        if (mtime_ns(&st) > l->newest_ns) l->newest_ns = mtime_ns(&st);
        hash_mix(&l->names_hash, rel, strlen(rel) + 1);
        hash_mix(&l->names_hash, &label, sizeof label);
    }
    rc = 0;
    goto out;
oom:
    ERR("%s: out of memory listing the folder", dir);
out:
    free_names(names, n);
    return rc;
}

// The class folders of one folder (DATA, DATA/train or DATA/test). found: classes seen.
static int collect_classes(FileList *l, const char *dir, const char *rel_dir, int top,
                           int usage_default, int *found, char *err, size_t errlen) {
    char **names;
    int n;
    *found = 0;
    if (list_dir(dir, &names, &n, err, errlen)) return -1;
    struct stat st;
    if (stat(dir, &st) == 0 && mtime_ns(&st) > l->newest_ns) l->newest_ns = mtime_ns(&st);
    int rc = -1;
    for (int i = 0; i < n; i++) {
        char *sub = join(dir, names[i]);
        if (!sub) {
            ERR("%s: out of memory", dir);
            goto out;
        }
        if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode)) {   // loose files here are ignored
            free(sub);
            continue;
        }
        int label = class_from_name(names[i]);
        if (label < 0) {
            ERR("%s: '%s' is not a class folder (want angry, disgust, fear, happy, sad, surprise, "
                "neutral)", sub, names[i]);
            free(sub);
            goto out;
        }
        if (mtime_ns(&st) > l->newest_ns) l->newest_ns = mtime_ns(&st);
        char *rel = rel_dir[0] ? join(rel_dir, CLASS_NAMES[label]) : strdup(CLASS_NAMES[label]);
        int bad = !rel || collect_class(l, sub, rel, top, label, usage_default, err, errlen);
        if (!rel) ERR("%s: out of memory", dir);
        free(rel);
        free(sub);
        if (bad) goto out;
        (*found)++;
    }
    rc = 0;
out:
    free_names(names, n);
    return rc;
}

static int cmp_item(const void *a, const void *b) {
    const FileItem *x = a, *y = b;
    if (x->top != y->top) return x->top - y->top;
    if (x->label != y->label) return x->label - y->label;
    return strcmp(x->rel, y->rel);
}

// Every image under a data folder, in a fixed order (train/ then test/, by class, by name).
static int collect(const char *path, FileList *l, char *err, size_t errlen) {
    memset(l, 0, sizeof *l);
    l->names_hash = 0xcbf29ce484222325ULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        ERR("%s: no such data folder: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        ERR("%s: not a folder", path);
        return -1;
    }
    char *train = join(path, "train"), *test = join(path, "test");
    int rc = -1, found = 0, found2 = 0;
    if (!train || !test) {
        ERR("%s: out of memory", path);
        goto out;
    }
    if (is_dir(train)) {
        l->fer_layout = 1;
        if (collect_classes(l, train, "train", 0, USAGE_TRAINING, &found, err, errlen)) goto out;
        if (!found) {
            ERR("%s: no class folders (angry, disgust, fear, happy, sad, surprise, neutral)", train);
            goto out;
        }
        if (is_dir(test) && collect_classes(l, test, "test", 1, USAGE_PUBLIC_TEST, &found2, err, errlen))
            goto out;
    } else {
        if (collect_classes(l, path, "", 0, USAGE_UNKNOWN, &found, err, errlen)) goto out;
        if (!found) {
            ERR("%s: neither a train/ folder nor class folders (angry, disgust, fear, happy, sad, "
                "surprise, neutral)", path);
            goto out;
        }
    }
    if (l->n == 0) {
        ERR("%s: no images in the class folders", path);
        goto out;
    }
    qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_item);
    rc = 0;
out:
    free(train);
    free(test);
    if (rc) filelist_free(l);
    return rc;
}

// Decode one image to a 48x48 gray face.
static int decode_face(const char *path, uint8_t *out, char *err, size_t errlen) {
    Image im, small;
    if (cv_imread(path, 1, &im, err, errlen)) return -1;
    const Image *src = &im;
    if (im.w != FACE_W || im.h != FACE_H) {
        if (cv_resize(&im, &small, FACE_W, FACE_H, CV_RESIZE_AREA)) {
            image_free(&im);
            ERR("%s: cannot resize to 48x48", path);
            return -1;
        }
        src = &small;
    }
    for (int y = 0; y < FACE_H; y++) memcpy(out + y * FACE_W, image_row(src, y), FACE_W);
    if (src == &small) image_free(&small);
    image_free(&im);
    return 0;
}

static int load_list(const char *path, const FileList *l, const DataLoadOpts *opts, Dataset *d,
                     char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    size_t names_len = 0;
    for (int i = 0; i < l->n; i++) names_len += strlen(l->v[i].rel) + 1;
    if (dataset_alloc(d, l->n, names_len) || set_source(d, path)) {
        ERR("%s: out of memory for %d images", path, l->n);
        dataset_free(d);
        return -1;
    }
    for (int i = 0; i < l->n; i++) {
        d->labels[i] = l->v[i].label;
        d->usage[i] = (uint8_t)l->v[i].usage;
        d->name_off[i] = d->names_len;
        size_t k = strlen(l->v[i].rel) + 1;
        memcpy(d->names + d->names_len, l->v[i].rel, k);
        d->names_len += k;
    }
    // Decode in chunks, in parallel within a chunk; the first failure in file order wins.
    enum { CHUNK = 1024 };
    char (*errs)[EMO_ERRLEN] = malloc(CHUNK * sizeof *errs);
    if (!errs) {
        ERR("%s: out of memory", path);
        dataset_free(d);
        return -1;
    }
    for (int start = 0; start < l->n; start += CHUNK) {
        int end = start + CHUNK < l->n ? start + CHUNK : l->n, bad = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(| : bad)
        for (int i = start; i < end; i++) {
            errs[i - start][0] = 0;
            if (decode_face(l->v[i].path, d->pixels + (size_t)i * FACE_PIXELS, errs[i - start], EMO_ERRLEN))
                bad = 1;
        }
        if (bad) {
            for (int i = start; i < end; i++)
                if (errs[i - start][0]) {
                    ERR("%s", errs[i - start]);
                    break;
                }
            free(errs);
            dataset_free(d);
            return -1;
        }
        progress(opts, "decoding images", end, l->n);
    }
    free(errs);
    d->n = l->n;
    return 0;
}

int dataset_load_folders(const char *path, const DataLoadOpts *opts, Dataset *d, char *err, size_t errlen) {
    FileList l;
    memset(d, 0, sizeof *d);
    if (collect(path, &l, err, errlen)) return -1;
    int rc = load_list(path, &l, opts, d, err, errlen);
    filelist_free(&l);
    return rc;
}

// ---------------------------------------------------------------- the cache
//
//   offset  size  field
//   0       8     magic "EMOCAMDC"
//   8       4     version (u32, 1)
//   12      4     key_len (u32), then the key text
//   ..      4     n (u32), images
//   ..      8     names_len (u64)
//   ..      n     labels (u8), then n usages (u8), then names_len bytes of NUL-terminated
//                 names, then n * 2304 pixels
//   end-8   8     FNV-1a 64 of every byte before it
// Little-endian, fixed-width; written with write_atomic.

enum { CACHE_VERSION = 1, KEY_MAX = 1 << 16 };
static const char CACHE_MAGIC[8] = {'E', 'M', 'O', 'C', 'A', 'M', 'D', 'C'};

static void put_le(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static char *abs_path(const char *path) {
    char *r = realpath(path, NULL);
    return r ? r : strdup(path);
}

static char *key_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *key_format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) return NULL;
    char *s = malloc((size_t)len + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

static char *folders_key(const char *path, const FileList *l) {
    char *ap = abs_path(path);
    if (!ap) return NULL;
    char *k = key_format("emocam-data 1 folders %s layout=%s files=%d bytes=%lld newest_ns=%lld "
                         "names=%016llx",
                         ap, l->fer_layout ? "fer2013" : "classes", l->n, l->bytes, l->newest_ns,
                         (unsigned long long)l->names_hash);
    free(ap);
    return k;
}

static int csv_key(const char *path, char **key, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        ERR("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        ERR("%s: not a regular file (a CSV was expected)", path);
        return -1;
    }
    char *ap = abs_path(path);
    *key = ap ? key_format("emocam-data 1 csv %s bytes=%lld mtime_ns=%lld", ap,
                           (long long)st.st_size, mtime_ns(&st))
              : NULL;
    free(ap);
    if (!*key) {
        ERR("%s: out of memory", path);
        return -1;
    }
    return 0;
}

static int resolve_format(const char *path, DataFormat f, DataFormat *out, char *err, size_t errlen) {
    if (f != DATA_AUTO) {
        *out = f;
        return 0;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        ERR("%s: no such file or folder: %s", path, strerror(errno));
        return -1;
    }
    *out = S_ISDIR(st.st_mode) ? DATA_FOLDERS : DATA_CSV;
    return 0;
}

int dataset_source_key(const char *path, DataFormat format, char **key, char *err, size_t errlen) {
    *key = NULL;
    if (resolve_format(path, format, &format, err, errlen)) return -1;
    if (format == DATA_CSV) return csv_key(path, key, err, errlen);
    FileList l;
    if (collect(path, &l, err, errlen)) return -1;
    *key = folders_key(path, &l);
    filelist_free(&l);
    if (!*key) {
        ERR("%s: out of memory", path);
        return -1;
    }
    return 0;
}

int dataset_cache_write(const char *cache, const char *key, const Dataset *d, char *err, size_t errlen) {
    size_t klen = strlen(key), n = (size_t)d->n;
    size_t total = 8 + 4 + 4 + klen + 4 + 8 + 2 * n + d->names_len + n * FACE_PIXELS + 8;
    unsigned char *buf = malloc(total), *p = buf;
    if (!buf) {
        ERR("%s: out of memory writing the cache", cache);
        return -1;
    }
    memcpy(p, CACHE_MAGIC, 8);
    put_le(p + 8, CACHE_VERSION, 4);
    put_le(p + 12, klen, 4);
    p += 16;
    memcpy(p, key, klen);
    p += klen;
    put_le(p, n, 4);
    put_le(p + 4, d->names_len, 8);
    p += 12;
    for (size_t i = 0; i < n; i++) *p++ = (unsigned char)d->labels[i];
    memcpy(p, d->usage, n);
    p += n;
    memcpy(p, d->names, d->names_len);
    p += d->names_len;
    memcpy(p, d->pixels, n * FACE_PIXELS);
    p += n * FACE_PIXELS;
    put_le(p, fnv1a64(buf, (size_t)(p - buf)), 8);
    int rc = write_atomic(cache, buf, total, err, errlen);
    free(buf);
    return rc;
}

int dataset_cache_read(const char *cache, const char *key, Dataset *d, char *err, size_t errlen) {
    FILE *fp = fopen(cache, "rb");
    if (!fp) {
        if (errno == ENOENT) return 0;
        ERR("%s: cannot open: %s", cache, strerror(errno));
        return -1;
    }
    size_t klen = strlen(key);
    unsigned char head[16];
    unsigned char *buf = NULL;
    int rc = -1;
    Dataset t;
    memset(&t, 0, sizeof t);
    if (fread(head, 1, 16, fp) != 16 || memcmp(head, CACHE_MAGIC, 8) != 0) {
        ERR("%s: not an emocam data cache", cache);
        goto out;
    }
    if (get_le(head + 8, 4) != CACHE_VERSION || get_le(head + 12, 4) != klen) {
        rc = 0;   // another version or another source: stale
        goto out;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || st.st_size < (off_t)(16 + klen + 12 + 8)) {
        ERR("%s: truncated", cache);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    if (!(buf = malloc(len))) {
        ERR("%s: out of memory", cache);
        goto out;
    }
    memcpy(buf, head, 16);
    if (fread(buf + 16, 1, klen, fp) != klen) {
        ERR("%s: truncated", cache);
        goto out;
    }
    if (memcmp(buf + 16, key, klen) != 0) {
        rc = 0;   // stale: the source changed
        goto out;
    }
    if (fread(buf + 16 + klen, 1, len - 16 - klen, fp) != len - 16 - klen) {
        ERR("%s: read error", cache);
        goto out;
    }
    if (get_le(buf + len - 8, 8) != fnv1a64(buf, len - 8)) {
        ERR("%s: checksum mismatch: the cache is corrupt", cache);
        goto out;
    }
    const unsigned char *p = buf + 16 + klen;
    uint64_t n = get_le(p, 4), names_len = get_le(p + 4, 8);
    p += 12;
    size_t body = len - 8 - (size_t)(p - buf);
    if (n == 0 || n > (uint64_t)INT_MAX / FACE_PIXELS || names_len > body ||
        body != 2 * n + names_len + n * FACE_PIXELS) {
        ERR("%s: sizes do not add up: the cache is corrupt", cache);
        goto out;
    }
    if (dataset_alloc(&t, (int)n, (size_t)names_len)) {
        ERR("%s: out of memory", cache);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        t.labels[i] = p[i];
        t.usage[i] = p[n + i];
        if (t.labels[i] >= NCLASSES || t.usage[i] >= NUSAGES) {
            ERR("%s: image %zu has a bad label or usage: the cache is corrupt", cache, i);
            goto out;
        }
    }
    p += 2 * n;
    memcpy(t.names, p, names_len);
    t.names_len = (size_t)names_len;
    size_t at = 0;
    int names_ok = 1;
    for (size_t i = 0; i < n && names_ok; i++) {
        const char *z = at < names_len ? memchr(t.names + at, 0, names_len - at) : NULL;
        t.name_off[i] = at;
        if (z) at = (size_t)(z - t.names) + 1;
        else names_ok = 0;
    }
    if (!names_ok || at != names_len) {
        ERR("%s: the image names are damaged: the cache is corrupt", cache);
        goto out;
    }
    p += names_len;
    memcpy(t.pixels, p, n * FACE_PIXELS);
    t.n = (int)n;
    t.from_cache = 1;
    rc = 1;
out:
    free(buf);
    fclose(fp);
    if (rc == 1) *d = t;
    else dataset_free(&t);
    return rc;
}

static int mkdirs(char *path) {   // mkdir -p; modifies path temporarily
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
        *p = '/';
        if (bad) return -1;
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

char *dataset_default_cache(const char *source, const char *dir) {
    char *base = NULL;
    if (dir) base = strdup(dir);
    else if (getenv("XDG_CACHE_HOME") && getenv("XDG_CACHE_HOME")[0])
        base = join(getenv("XDG_CACHE_HOME"), "emocam");
    else if (getenv("HOME") && getenv("HOME")[0])
        base = join(getenv("HOME"), ".cache/emocam");
    if (!base || mkdirs(base)) {
        free(base);
        return NULL;
    }
    char *ap = abs_path(source);
    char *r = ap ? key_format("%s/emocam-data-%016llx.cache", base,
                              (unsigned long long)fnv1a64(ap, strlen(ap)))
                 : NULL;
    free(ap);
    free(base);
    return r;
}

int dataset_load(const char *path, const DataLoadOpts *opts, Dataset *d, char *err, size_t errlen,
                 char *cache_warn, size_t warnlen) {
    static const DataLoadOpts none = {0};
    if (!opts) opts = &none;
    memset(d, 0, sizeof *d);
    if (cache_warn && warnlen) cache_warn[0] = 0;
    DataFormat f;
    if (resolve_format(path, opts->format, &f, err, errlen)) return -1;
    if (!opts->cache)
        return f == DATA_CSV ? dataset_load_csv(path, opts, d, err, errlen)
                             : dataset_load_folders(path, opts, d, err, errlen);
    char *key = NULL;
    FileList l = {0};
    int rc = -1;
    if (f == DATA_CSV) {
        if (csv_key(path, &key, err, errlen)) return -1;
    } else {
        if (collect(path, &l, err, errlen)) return -1;
        if (!(key = folders_key(path, &l))) {
            ERR("%s: out of memory", path);
            goto out;
        }
    }
    char cerr[EMO_ERRLEN];
    int got = dataset_cache_read(opts->cache, key, d, cerr, sizeof cerr);
    if (got == 1) {
        if (set_source(d, path)) {
            dataset_free(d);
            ERR("%s: out of memory", path);
            goto out;
        }
        rc = 0;
        goto out;
    }
    if (got < 0 && cache_warn) snprintf(cache_warn, warnlen, "%s (reloading the data)", cerr);
    if (f == DATA_CSV ? dataset_load_csv(path, opts, d, err, errlen)
                      : load_list(path, &l, opts, d, err, errlen))
        goto out;
    rc = 0;
    if (dataset_cache_write(opts->cache, key, d, cerr, sizeof cerr) && cache_warn)
        snprintf(cache_warn, warnlen, "%s", cerr);
out:
    free(key);
    filelist_free(&l);
    return rc;
}

// ---------------------------------------------------------------- splits

void split_free(Split *s) {
    free(s->train);
    free(s->val);
    free(s->test);
    memset(s, 0, sizeof *s);
}

const char *split_kind_name(SplitKind k) {
    return k == SPLIT_80_20 ? "80/20" : k == SPLIT_70_15_15 ? "70/15/15" : "official";
}

int split_kind_parse(const char *name, SplitKind *k) {
    if (!strcmp(name, "official")) *k = SPLIT_OFFICIAL;
    else if (!strcmp(name, "80/20") || !strcmp(name, "80-20")) *k = SPLIT_80_20;
    else if (!strcmp(name, "70/15/15") || !strcmp(name, "70-15-15")) *k = SPLIT_70_15_15;
    else return -1;
    return 0;
}

int dataset_select(const Dataset *d, Usage u, int **idx, int *n) {
    *n = 0;
    *idx = malloc(((size_t)d->n + 1) * sizeof **idx);
    if (!*idx) return -1;
    for (int i = 0; i < d->n; i++)
        if (d->usage[i] == u) (*idx)[(*n)++] = i;
    return 0;
}

void dataset_count(const Dataset *d, const int *idx, int n, long counts[NCLASSES]) {
    memset(counts, 0, NCLASSES * sizeof counts[0]);
    if (!idx) n = d->n;
    for (int i = 0; i < n; i++) counts[d->labels[idx ? idx[i] : i]]++;
}

// Spread total over the classes in proportion to cnt (largest remainder; ties to the lower
// class index).
static void apportion(const long cnt[NCLASSES], long n, long total, long out[NCLASSES]) {
    long given = 0, rem[NCLASSES];
    for (int c = 0; c < NCLASSES; c++) {
        out[c] = n ? cnt[c] * total / n : 0;
        rem[c] = n ? cnt[c] * total % n : 0;
        given += out[c];
    }
    while (given < total) {
        int best = -1;
        for (int c = 0; c < NCLASSES; c++)
            if (out[c] < cnt[c] && (best < 0 || rem[c] > rem[best])) best = c;
        if (best < 0) break;
        out[best]++;
        rem[best] = -1;
        given++;
    }
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int dataset_split(const Dataset *d, SplitKind kind, uint64_t seed, Split *s, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    const char *src = d->source ? d->source : "data";
    size_t cap = (size_t)d->n + 1;
    if (!(s->train = malloc(cap * sizeof(int))) || !(s->val = malloc(cap * sizeof(int))) ||
        !(s->test = malloc(cap * sizeof(int)))) {
        split_free(s);
        ERR("%s: out of memory splitting", src);
        return -1;
    }
    if (kind == SPLIT_OFFICIAL) {
        for (int i = 0; i < d->n; i++) {
            if (d->usage[i] == USAGE_TRAINING) s->train[s->ntrain++] = i;
            else if (d->usage[i] == USAGE_PUBLIC_TEST) s->val[s->nval++] = i;
            else if (d->usage[i] == USAGE_PRIVATE_TEST) s->test[s->ntest++] = i;
        }
        if (!s->ntrain || !s->nval) {
            ERR("%s: the official split needs Training and PublicTest images (found %d and %d); "
                "use a random split (80/20, 70/15/15)", src, s->ntrain, s->nval);
            split_free(s);
            return -1;
        }
        return 0;
    }
    int val_pct = kind == SPLIT_80_20 ? 20 : 15, test_pct = kind == SPLIT_80_20 ? 0 : 15;
    // the pool: Training images, or all when none is marked Training
    int any_training = 0;
    for (int i = 0; i < d->n && !any_training; i++) any_training = d->usage[i] == USAGE_TRAINING;
    int *byclass = malloc(cap * sizeof(int));
    if (!byclass) {
        split_free(s);
        ERR("%s: out of memory splitting", src);
        return -1;
    }
    long cnt[NCLASSES] = {0}, start[NCLASSES], N = 0;
    for (int i = 0; i < d->n; i++)
        if (!any_training || d->usage[i] == USAGE_TRAINING) cnt[d->labels[i]]++, N++;
    long fill[NCLASSES];
    for (int c = 0, at = 0; c < NCLASSES; c++) start[c] = fill[c] = at, at += (int)cnt[c];
    for (int i = 0; i < d->n; i++)
        if (!any_training || d->usage[i] == USAGE_TRAINING) byclass[fill[d->labels[i]]++] = i;
    long nval = (N * val_pct + 99) / 100, ntest = (N * test_pct + 99) / 100;
    long cval[NCLASSES], ctest[NCLASSES], left[NCLASSES];
    apportion(cnt, N, nval, cval);
    for (int c = 0; c < NCLASSES; c++) left[c] = cnt[c] - cval[c];
    apportion(left, N - nval, ntest, ctest);
    Rng r;
    rng_seed(&r, seed ^ 0x53504c4954000000ULL);   // "SPLIT": its own stream
    for (int c = 0; c < NCLASSES; c++) {
        int *v = byclass + start[c];
        for (long i = cnt[c] - 1; i > 0; i--) {   // Fisher-Yates
            int j = rng_int(&r, (int)i + 1), t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
        for (long i = 0; i < cnt[c]; i++) {
            if (i < cval[c]) s->val[s->nval++] = v[i];
            else if (i < cval[c] + ctest[c]) s->test[s->ntest++] = v[i];
            else s->train[s->ntrain++] = v[i];
        }
    }
    free(byclass);
    qsort(s->train, (size_t)s->ntrain, sizeof(int), cmp_int);
    qsort(s->val, (size_t)s->nval, sizeof(int), cmp_int);
    qsort(s->test, (size_t)s->ntest, sizeof(int), cmp_int);
    if (!s->ntrain || !s->nval) {
        ERR("%s: too few images (%ld) for a %s split", src, N, split_kind_name(kind));
        split_free(s);
        return -1;
    }
    return 0;
}
