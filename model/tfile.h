// tfile.h: the one on-disk container for named float tensors, used for weights files,
// training checkpoints and test references.
//
//   offset  size  field
//   0       8     magic "EMOCAMTF"
//   8       4     format version (u32, 1)
//   12      4     kind: "WGHT" weights, "CKPT" checkpoint, "TREF" test reference
//   16      4     meta_len (u32), then meta_len bytes of text (the architecture, ...)
//   ..      4     tensor count (u32), then per tensor:
//                   name_len (u16), name, dtype (u8: 1 float32, 2 float16), ndim (u8, 1..4),
//                   ndim dims (u32 each), count*4 (float32) or count*2 (float16) bytes of data
//   end-8   8     FNV-1a 64 checksum of every byte before it (u64)
//
// Every integer and float is little-endian and fixed-width; float16 is IEEE 754 binary16
// (rounded to nearest even when written), read back as float32.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model.h"

enum { TFILE_VERSION = 1, TFILE_NAME_MAX = 95 };
enum { TFILE_F32 = 1, TFILE_F16 = 2 };

typedef struct {
    char name[TFILE_NAME_MAX + 1];
    int ndim, dims[4];
    size_t count;
    int dtype;                   // TFILE_F32 or TFILE_F16
    const unsigned char *data;   // count little-endian floats of that type, inside TFile.buf
} TEntry;

typedef struct {
    char kind[5];
    char *meta;       // NUL-terminated copy of the meta text
    size_t meta_len;
    int n;
    TEntry *t;
    unsigned char *buf;
} TFile;

// What to write: name, shape and data (n = product of dims).
typedef struct {
    const char *name;
    int ndim;
    const int *dims;
    const real *data;
    int f16;   // store as float16 (half the bytes; every value must be within +-65504)
} TOut;

// Read and check a whole file of the given kind. 0, or -1 with "path: reason" in err.
int tfile_read(const char *path, const char *kind, TFile *f, char *err, size_t errlen);
void tfile_free(TFile *f);
const TEntry *tfile_find(const TFile *f, const char *name);
void tentry_get(const TEntry *e, real *dst);   // decode the data into reals

// Write atomically: a temporary file beside path, fsync, then rename over path.
int tfile_write(const char *path, const char *kind, const char *meta, size_t meta_len,
                const TOut *t, int n, char *err, size_t errlen);

// Write bytes to path atomically (temporary file, fsync, rename). Used for any output file.
int write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
uint64_t fnv1a64(const void *data, size_t len);
