// tfile.c: reading and writing the tensor container described in tfile.h.
#include "tfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FILE_MAX = 1 << 30, META_MAX = 1 << 20, TENSORS_MAX = 1 << 16 };
static const char MAGIC[8] = {'E', 'M', 'O', 'C', 'A', 'M', 'T', 'F'};

uint64_t fnv1a64(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

// IEEE 754 binary16 <-> binary32, by bits (round to nearest even; overflow to infinity).
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
    int e8 = (int)(x >> 23) & 0xff, e = e8 - 127 + 15;
    if (e8 == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    int shift = 13;
    uint32_t h = ((uint32_t)(e > 0 ? e : 0) << 10);
    if (e <= 0) {   // a subnormal half (or zero): the implicit bit joins the shifted mantissa
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        shift = 14 - e;
    }
    uint32_t rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    h |= mant >> shift;
    if (rem > halfway || (rem == halfway && (h & 1))) h++;   // a carry may reach the exponent
    return (uint16_t)(sign | h);
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
    if (e == 0) {   // zero or subnormal: mant * 2^-24
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    x = e == 31 ? sign | 0x7f800000 | mant << 13 : sign | (e - 15 + 127) << 23 | mant << 13;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void tentry_get(const TEntry *e, real *dst) {
    if (e->dtype == TFILE_F16) {
        for (size_t i = 0; i < e->count; i++)
            dst[i] = (real)f16_to_f32((uint16_t)(e->data[2 * i] | e->data[2 * i + 1] << 8));
        return;
    }
    for (size_t i = 0; i < e->count; i++) {
        uint32_t u = get_u32(e->data + 4 * i);
        float f;
        memcpy(&f, &u, 4);
        dst[i] = (real)f;
    }
}

const TEntry *tfile_find(const TFile *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

void tfile_free(TFile *f) {
    free(f->meta);
    free(f->t);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

#define FAIL(...)                                 \
    do {                                          \
        snprintf(err, errlen, __VA_ARGS__);       \
        goto fail;                                \
    } while (0)

int tfile_read(const char *path, const char *kind, TFile *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t len = 0, cap = 0;
    unsigned char *buf = NULL;
    for (;;) {   // read it all, without trusting any size the file claims
        if (len == cap) {
            if (cap >= FILE_MAX) {
                fclose(fp);
                free(buf);
                snprintf(err, errlen, "%s: larger than %d MiB, not a tensor file", path,
                         FILE_MAX >> 20);
                return -1;
            }
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                fclose(fp);
                free(buf);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    int rerr = ferror(fp);
    fclose(fp);
    f->buf = buf;
    if (rerr) FAIL("%s: read error", path);
    if (len < 8 || memcmp(buf, MAGIC, 8) != 0) FAIL("%s: not an emocam tensor file (bad magic)", path);
    if (len < 20) FAIL("%s: truncated in the header", path);
    uint32_t version = get_u32(buf + 8);
    if (version != TFILE_VERSION)
        FAIL("%s: format version %u, this build reads version %d", path, version, TFILE_VERSION);
    memcpy(f->kind, buf + 12, 4);
    if (kind && memcmp(f->kind, kind, 4) != 0)
        FAIL("%s: holds '%.4s' data, expected '%.4s'", path, f->kind, kind);
    uint32_t mlen = get_u32(buf + 16);
    size_t pos = 20;
    if (mlen > META_MAX) FAIL("%s: header text of %u bytes is absurd", path, mlen);
    if (len - pos < (size_t)mlen + 4) FAIL("%s: truncated in the header text", path);
    if (!(f->meta = malloc((size_t)mlen + 1))) FAIL("%s: out of memory", path);
    memcpy(f->meta, buf + pos, mlen);
    f->meta[mlen] = 0;
    f->meta_len = mlen;
    if (strlen(f->meta) != mlen) FAIL("%s: header text holds a NUL byte", path);
    pos += mlen;
    uint32_t n = get_u32(buf + pos);
    pos += 4;
    if (n > TENSORS_MAX) FAIL("%s: %u tensors is absurd", path, n);
    if (!(f->t = calloc(n ? n : 1, sizeof *f->t))) FAIL("%s: out of memory", path);
    for (uint32_t i = 0; i < n; i++) {
        TEntry *e = &f->t[i];
        if (len - pos < 2) FAIL("%s: truncated at tensor %u", path, i);
        unsigned nl = buf[pos] | (unsigned)buf[pos + 1] << 8;
        pos += 2;
        if (nl == 0 || nl > TFILE_NAME_MAX) FAIL("%s: tensor %u has a bad name length %u", path, i, nl);
        if (len - pos < nl + 2) FAIL("%s: truncated at tensor %u", path, i);
        memcpy(e->name, buf + pos, nl);
        e->name[nl] = 0;
        if (strlen(e->name) != nl) FAIL("%s: tensor %u has a NUL in its name", path, i);
        pos += nl;
        int dtype = buf[pos], ndim = buf[pos + 1];
        pos += 2;
        if (dtype != TFILE_F32 && dtype != TFILE_F16)
            FAIL("%s: tensor %s has unknown type %d (want 1, float32, or 2, float16)", path,
                 e->name, dtype);
        size_t esize = dtype == TFILE_F16 ? 2 : 4;
        if (ndim < 1 || ndim > 4) FAIL("%s: tensor %s has %d dimensions (want 1..4)", path, e->name, ndim);
        if (len - pos < (size_t)4 * ndim) FAIL("%s: truncated at tensor %s", path, e->name);
        e->ndim = ndim;
        uint64_t count = 1;
        for (int d = 0; d < ndim; d++) {
            uint32_t v = get_u32(buf + pos + 4 * d);
            if (v == 0 || v > (1u << 28)) FAIL("%s: tensor %s has dimension %u", path, e->name, v);
            e->dims[d] = (int)v;
            count *= v;
            if (count > (1u << 28))
                FAIL("%s: tensor %s claims %llu+ elements, an absurd size", path, e->name,
                     (unsigned long long)count);
        }
        pos += (size_t)4 * ndim;
        if ((len - pos) / esize < count) FAIL("%s: truncated at tensor %s", path, e->name);
        e->count = (size_t)count;
        e->dtype = dtype;
        e->data = buf + pos;
        pos += (size_t)count * esize;
    }
    if (len - pos < 8) FAIL("%s: truncated before the checksum", path);
    if (len - pos > 8) FAIL("%s: %zu unexpected bytes after the last tensor", path, len - pos - 8);
    if (get_u64(buf + pos) != fnv1a64(buf, pos)) FAIL("%s: checksum mismatch: the file is corrupt", path);
    f->n = (int)n;
    return 0;
fail:
    tfile_free(f);
    return -1;
}

int write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    const unsigned char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        p += w;
        left -= (size_t)w;
    }
    // mkstemp makes 0600 files; give outputs the usual permissions
    int bad = left != 0 || fchmod(fd, 0644) != 0 || fsync(fd) != 0;
    int e = bad ? errno : 0;
    if (close(fd) != 0) bad = 1;
    if (!bad && rename(tmp, path) != 0) {
        e = errno;
        bad = 1;
    }
    if (bad) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e ? e : EIO));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int tfile_write(const char *path, const char *kind, const char *meta, size_t meta_len,
                const TOut *t, int n, char *err, size_t errlen) {
    size_t total = 20 + meta_len + 4 + 8;
    for (int i = 0; i < n; i++) {
        size_t count = 1, nl = strlen(t[i].name);
        if (nl == 0 || nl > TFILE_NAME_MAX || t[i].ndim < 1 || t[i].ndim > 4) {
            snprintf(err, errlen, "%s: cannot store tensor '%s'", path, t[i].name);
            return -1;
        }
        for (int d = 0; d < t[i].ndim; d++) count *= (size_t)t[i].dims[d];
        for (size_t j = 0; t[i].f16 && j < count; j++)
            if (!(fabs((double)t[i].data[j]) <= 65504)) {
                snprintf(err, errlen, "%s: tensor %s holds %g, outside float16's range", path,
                         t[i].name, (double)t[i].data[j]);
                return -1;
            }
        total += 2 + nl + 2 + 4 * (size_t)t[i].ndim + (t[i].f16 ? 2 : 4) * count;
    }
    unsigned char *buf = malloc(total), *p = buf;
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(p, MAGIC, 8);
    put_u32(p + 8, TFILE_VERSION);
    memcpy(p + 12, kind, 4);
    put_u32(p + 16, (uint32_t)meta_len);
    p += 20;
    memcpy(p, meta, meta_len);
    p += meta_len;
    put_u32(p, (uint32_t)n);
    p += 4;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(t[i].name), count = 1;
        p[0] = (unsigned char)nl;
        p[1] = (unsigned char)(nl >> 8);
        memcpy(p + 2, t[i].name, nl);
        p += 2 + nl;
        p[0] = t[i].f16 ? TFILE_F16 : TFILE_F32;
        p[1] = (unsigned char)t[i].ndim;
        p += 2;
        for (int d = 0; d < t[i].ndim; d++) {
            put_u32(p, (uint32_t)t[i].dims[d]);
            count *= (size_t)t[i].dims[d];
            p += 4;
        }
        for (size_t j = 0; t[i].f16 && j < count; j++) {
            uint16_t h = f32_to_f16((float)t[i].data[j]);
            p[0] = (unsigned char)h;
            p[1] = (unsigned char)(h >> 8);
            p += 2;
        }
        for (size_t j = 0; !t[i].f16 && j < count; j++) {
            float v = (float)t[i].data[j];
            uint32_t u;
            memcpy(&u, &v, 4);
            put_u32(p, u);
            p += 4;
        }
    }
    put_u64(p, fnv1a64(buf, (size_t)(p - buf)));
    int rc = write_atomic(path, buf, total, err, errlen);
    free(buf);
    return rc;
}
