// data.h: face data sets for training. A Dataset is n 48x48 8-bit gray faces, each with a
// label 0..6, the Kaggle split it came from, and a source name for messages.
//
// Three sources (dataset_load picks by what the path is):
//   a Kaggle CSV file      `emotion,pixels,Usage`, 2,304 space-separated pixels per row;
//   the FER2013 folders    DATA/train/<class>/ and DATA/test/<class>/ (class folders in lower
//                          case); the file prefix Training_ / PublicTest_ / PrivateTest_ names
//                          the Kaggle split (without one: train/ is Training, test/ PublicTest);
//   any class folders      DATA/<class>/ (e.g. a user's own faces): images of any size and
//                          colour, made gray and resized to 48x48 with INTER_AREA; split unknown.
// Class folder names match case-insensitively. Files with other extensions than .jpg .jpeg
// .png .bmp .pgm .ppm .pnm .tif .tiff .webp, and hidden files, are skipped.
//
// The decoded cache: a checked file (dataset_cache_* below) keyed on the source's absolute
// path, file count, total size and newest modification time; any change reloads the source.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model.h"

enum { FACE_W = 48, FACE_H = 48, FACE_PIXELS = FACE_W * FACE_H, NCLASSES = 7 };

// The class names in label order, lower case as the folders are named.
extern const char *const CLASS_NAMES[NCLASSES];   // angry disgust fear happy sad surprise neutral
int class_from_name(const char *name);            // case-insensitive; -1 if none

// The Kaggle split an image came from ("Usage").
typedef enum { USAGE_UNKNOWN = 0, USAGE_TRAINING, USAGE_PUBLIC_TEST, USAGE_PRIVATE_TEST, NUSAGES } Usage;
extern const char *const USAGE_NAMES[NUSAGES];    // "unknown" "Training" "PublicTest" "PrivateTest"

typedef struct {
    int n;
    uint8_t *pixels;    // (n, 48, 48) row-major
    int *labels;        // (n) 0..6
    uint8_t *usage;     // (n) Usage
    char *names;        // n NUL-terminated names back to back ("train/angry/Training_1.jpg",
    size_t *name_off;   // (n) "fer2013.csv:17"): name i is names + name_off[i]
    size_t names_len;
    char *source;       // the path it was loaded from, as given
    int from_cache;     // 1: read from the cache file
} Dataset;

static inline const uint8_t *dataset_face(const Dataset *d, int i) { return d->pixels + (size_t)i * FACE_PIXELS; }
static inline const char *dataset_name(const Dataset *d, int i) { return d->names + d->name_off[i]; }

typedef enum { DATA_AUTO = 0, DATA_CSV, DATA_FOLDERS } DataFormat;

typedef struct {
    DataFormat format;    // DATA_AUTO: a regular file is a CSV, a folder is folders
    const char *cache;    // cache file to read or (re)write; NULL: no cache
    // Called now and then while loading (done of total items; total 0 when unknown), and once
    // with done == total at the end. NULL: silent.
    void (*progress)(void *ctx, const char *what, long done, long total);
    void *progress_ctx;
} DataLoadOpts;

// Load a data set. 0, or -1 with the reason in err: "path:line: reason" for a CSV,
// "path: reason" otherwise. A cache that cannot be written is not an error: the reason is
// put in cache_warn (if given, may be NULL) and the load succeeds.
int dataset_load(const char *path, const DataLoadOpts *opts, Dataset *d, char *err, size_t errlen,
                 char *cache_warn, size_t warnlen);
int dataset_load_csv(const char *path, const DataLoadOpts *opts, Dataset *d, char *err, size_t errlen);
int dataset_load_folders(const char *path, const DataLoadOpts *opts, Dataset *d, char *err, size_t errlen);
void dataset_free(Dataset *d);

// The cache. key: a text that changes whenever the source changes (dataset_source_key).
// dataset_cache_read returns 1 when the cache holds this key and was read, 0 when it is
// absent or stale (d untouched), -1 when it is corrupt or unreadable (err says why).
int dataset_source_key(const char *path, DataFormat format, char **key, char *err, size_t errlen);
int dataset_cache_read(const char *cache, const char *key, Dataset *d, char *err, size_t errlen);
int dataset_cache_write(const char *cache, const char *key, const Dataset *d, char *err, size_t errlen);
// A default cache path for a source: DIR/emocam-data-<hash of the absolute source path>.cache,
// DIR being dir, or else $XDG_CACHE_HOME/emocam, or else $HOME/.cache/emocam (created).
// malloc'd; NULL when no folder can be had.
char *dataset_default_cache(const char *source, const char *dir);

// ---- splits
typedef enum { SPLIT_OFFICIAL = 0, SPLIT_80_20, SPLIT_70_15_15 } SplitKind;

typedef struct {
    int *train, *val, *test;   // dataset indices, ascending
    int ntrain, nval, ntest;
} Split;

// official:  train = Training, val = PublicTest, test = PrivateTest (images of unknown usage
//            are left out; an error when there is no Training or no PublicTest image).
// 80_20, 70_15_15: a stratified random split of the Training images (of all images when none
//            is marked Training, as for a user's own class folders): per split, ceil(frac * N)
//            images (80/20 of FER2013's 28,709: 22,967 / 5,742), spread over the classes by
//            largest remainder; which images go where is drawn from seed. Same seed, same split.
int dataset_split(const Dataset *d, SplitKind kind, uint64_t seed, Split *s, char *err, size_t errlen);
void split_free(Split *s);
const char *split_kind_name(SplitKind k);                 // "official", "80/20", "70/15/15"
int split_kind_parse(const char *name, SplitKind *k);     // also "80-20", "70-15-15"; 0 or -1

// The indices of the images of one usage (malloc'd, ascending; *n may be 0). -1 on OOM.
int dataset_select(const Dataset *d, Usage u, int **idx, int *n);
// Per-class counts over idx (or over all images when idx is NULL).
void dataset_count(const Dataset *d, const int *idx, int n, long counts[NCLASSES]);

// Soft targets (knowledge distillation): read a predictions.csv written by `emocam-train eval
// --out DIR` (name, label, predicted, then the NCLASSES probabilities: a teacher's answers) and
// give each image of d that it names its row: soft (d->n, NCLASSES), has (d->n) 1 where given,
// 0 elsewhere. Rows for images d does not hold are skipped. 0, or -1 with "path:line: reason"
// in err (not such a file, a malformed row, a label that disagrees with d's, a name twice).
int soft_targets_load(const char *path, const Dataset *d, real *soft, uint8_t *has, char *err,
                      size_t errlen);
