// test_weights.c: weights files. net_save then net_load is bit-exact; every corrupt file is
// refused without a crash, with a message that names the file and the reason; saving is
// atomic; and the generic container (tfile_write / tfile_read) round-trips.
//
// Corrupt files are made by editing the bytes of a valid file in memory. Where a case is about
// a field (version, kind, sizes, names...), the checksum is recomputed with fnv1a64 so that the
// field itself must be what the reader refuses.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "testutil.h"
#include "tfile.h"

// Small, but with every kind of tensor: conv with and without bias, batchnorm buffers, blocks.
static const char *ARCH =
    "# weights round trip\n"
    "input c=2 h=8 w=8 mean=0.5 std=0.25\n"
    "conv out=4 k=3 pad=1\n"
    "bn\n"
    "relu\n"
    "residual\n"
    "  conv out=4 k=3 pad=1 bias=0\n"
    "  bn\n"
    "shortcut\n"
    "  conv out=4 k=1 bias=0\n"
    "end\n"
    "cbam r=2 k=3\n"
    "maxpool k=2\n"
    "flatten\n"
    "linear out=3\n";

static char *path_in(const char *name) {   // a fresh string: tmpdir/name
    size_t len = strlen(test_tmpdir()) + strlen(name) + 2;
    char *p = malloc(len);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    snprintf(p, len, "%s/%s", test_tmpdir(), name);
    return p;
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    *len = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
            fread(buf, 1, (size_t)n, f) == (size_t)n)
            *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static int write_all(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}
static void put_u64(unsigned char *p, uint64_t v) {
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}
static void fix_checksum(unsigned char *buf, size_t len) {
    put_u64(buf + len - 8, fnv1a64(buf, len - 8));
}

// A copy of buf (len bytes) with room for `extra` more.
static unsigned char *copy(const unsigned char *buf, size_t len, size_t extra) {
    unsigned char *c = malloc(len + extra + 1);
    if (!c) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memcpy(c, buf, len);
    return c;
}

static char *BAD;   // where the corrupt files go
static int refusals = 0;

// Write buf to BAD and load it: it must be refused with BAD and one of the reasons in err.
// Returns 1 if refused as expected.
static int expect_refused(const char *label, const unsigned char *buf, size_t len,
                          const char *reason, const char *reason2) {
    if (write_all(BAD, buf, len)) {
        CHECK(0, "%s: cannot write %s", label, BAD);
        return 0;
    }
    char err[EMO_ERRLEN] = "";
    Net *net = net_load(BAD, err, sizeof err);
    refusals++;
    if (getenv("EMOCAM_TEST_VERBOSE")) printf("%s: %s\n", label, err);
    if (net) {
        CHECK(0, "%s: a corrupt file was loaded", label);
        net_free(net);
        return 0;
    }
    int named = strstr(err, BAD) != NULL;
    int why = strstr(err, reason) || (reason2 && strstr(err, reason2));
    CHECK(named && why, "%s: message '%s' lacks the file name or the reason ('%s'%s%s)", label,
          err, reason, reason2 ? " or " : "", reason2 ? reason2 : "");
    return named && why;
}

// Byte layout of the valid file, found with tfile_read (TEntry.data points into its buffer).
typedef struct {
    size_t meta_len, count_off, first_tensor, last_tensor;
    size_t data_lo[64], data_hi[64];   // data ranges of the first 64 tensors
    int n;
} Layout;

static int layout_of(const char *path, const unsigned char *buf, Layout *lay) {
    TFile f;
    char err[EMO_ERRLEN];
    memset(lay, 0, sizeof *lay);
    if (tfile_read(path, "WGHT", &f, err, sizeof err)) {
        CHECK(0, "%s", err);
        return -1;
    }
    lay->meta_len = get_u32(buf + 16);
    lay->count_off = 20 + lay->meta_len;
    lay->first_tensor = lay->count_off + 4;
    lay->n = f.n;
    for (int i = 0; i < f.n && i < 64; i++) {
        lay->data_lo[i] = (size_t)(f.t[i].data - f.buf);
        lay->data_hi[i] = lay->data_lo[i] + 4 * f.t[i].count;
    }
    const TEntry *last = &f.t[f.n - 1];
    // name_len (2), name, dtype and ndim (2), dims: before its data
    lay->last_tensor =
        (size_t)(last->data - f.buf) - 4 * (size_t)last->ndim - 2 - strlen(last->name) - 2;
    tfile_free(&f);
    return 0;
}

// The valid file with its meta text replaced (meta_len and checksum updated).
static unsigned char *with_meta(const unsigned char *v, size_t len, const Layout *lay,
                                const char *meta, size_t *out_len) {
    size_t ml = strlen(meta), n = len - lay->meta_len + ml;
    unsigned char *c = malloc(n);
    if (!c) exit(1);
    memcpy(c, v, 20);
    put_u32(c + 16, (uint32_t)ml);
    memcpy(c + 20, meta, ml);
    memcpy(c + 20 + ml, v + lay->count_off, len - lay->count_off);
    fix_checksum(c, n);
    *out_len = n;
    return c;
}

static char *replace(const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    if (!at) return NULL;
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *r = malloc(n);
    if (!r) exit(1);
    snprintf(r, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return r;
}

static Net *make_net(void) {
    char err[EMO_ERRLEN];
    Net *net = net_parse(ARCH, "weights.arch", err, sizeof err);
    CHECK(net != NULL, "%s", err);
    if (!net) return NULL;
    Rng rng;
    rng_seed(&rng, 7);
    net_init(net, &rng);
    for (int t = 0; t < net->ntensors; t++) {   // batchnorm away from gamma 1, beta 0
        const Tensor *tt = &net->tensors[t];
        if (!strstr(tt->name, ".gamma") && !strstr(tt->name, ".beta")) continue;
        real *d = net_tensor_data(net, tt);
        for (size_t i = 0; i < tt->count; i++) d[i] = (real)(0.5 + rng_uniform(&rng));
    }
    // a few training forwards: running statistics away from 0 and 1
    int n = 4;
    long nx = n * shape_size(net->in);
    real *x = malloc((size_t)nx * sizeof *x);
    if (!x) exit(1);
    for (int it = 0; it < 3; it++) {
        for (long i = 0; i < nx; i++) x[i] = (real)(2 * rng_uniform(&rng) + 0.5);
        CHECK(net_forward(net, x, n, 1, &rng) != NULL, "training forward failed");
    }
    free(x);
    return net;
}

static void check_same_net(const Net *a, const Net *b, const char *what) {
    CHECK(strcmp(a->arch, b->arch) == 0, "%s: the architecture text changed", what);
    CHECK(a->in_mean == b->in_mean && a->in_std == b->in_std && b->in_std == (real)0.25,
          "%s: input normalisation changed", what);
    CHECK(a->ntensors == b->ntensors && a->nparams == b->nparams && a->nbufs == b->nbufs,
          "%s: %d/%zu/%zu tensors/params/buffers, want %d/%zu/%zu", what, b->ntensors,
          b->nparams, b->nbufs, a->ntensors, a->nparams, a->nbufs);
    if (a->ntensors != b->ntensors || a->nparams != b->nparams || a->nbufs != b->nbufs) return;
    for (int i = 0; i < a->ntensors; i++) {
        const Tensor *s = &a->tensors[i], *t = &b->tensors[i];
        int same = strcmp(s->name, t->name) == 0 && s->ndim == t->ndim &&
                   s->is_buffer == t->is_buffer && s->count == t->count && s->off == t->off;
        for (int d = 0; same && d < s->ndim; d++) same = s->dims[d] == t->dims[d];
        CHECK(same, "%s: tensor %d is %s, want %s", what, i, t->name, s->name);
    }
    CHECK(memcmp(a->params, b->params, a->nparams * sizeof(real)) == 0,
          "%s: parameters differ", what);
    CHECK(memcmp(a->bufs, b->bufs, a->nbufs * sizeof(real)) == 0, "%s: buffers differ", what);
}

static void check_round_trip(Net *a, const char *path) {
    char err[EMO_ERRLEN];
    CHECK(net_save(a, path, err, sizeof err) == 0, "net_save: %s", err);
    Net *b = net_load(path, err, sizeof err);
    CHECK(b != NULL, "net_load: %s", err);
    if (!b) return;
    check_same_net(a, b, "round trip");
    CHECK(b->file && strcmp(b->file, path) == 0, "loaded net names %s, not %s", b->file, path);
    // the same eval output, to the bit
    int n = 3;
    long nx = n * shape_size(a->in), ny = n * shape_size(a->out);
    real *x = malloc((size_t)nx * sizeof *x), *ya = malloc((size_t)ny * sizeof *ya);
    if (!x || !ya) exit(1);
    Rng rng;
    rng_seed(&rng, 3);
    for (long i = 0; i < nx; i++) x[i] = (real)(2 * rng_uniform(&rng) - 1);
    const real *y = net_forward(a, x, n, 0, NULL);
    CHECK(y != NULL, "forward failed");
    if (y) memcpy(ya, y, (size_t)ny * sizeof *ya);
    y = net_forward(b, x, n, 0, NULL);
    CHECK(y && memcmp(y, ya, (size_t)ny * sizeof *ya) == 0, "loaded net computes otherwise");
    // and a file saved from the loaded net is the same file
    char *again = path_in("again.bin");
    CHECK(net_save(b, again, err, sizeof err) == 0, "net_save: %s", err);
    size_t l1, l2;
    unsigned char *f1 = read_all(path, &l1), *f2 = read_all(again, &l2);
    CHECK(f1 && f2 && l1 == l2 && memcmp(f1, f2, l1) == 0, "save(load(save(net))) differs");
    free(f1);
    free(f2);
    unlink(again);
    free(again);
    free(x);
    free(ya);
    net_free(b);
}

// Sizes a reader must refuse before allocating anything of that size. Outside sanitizer
// builds, the address space is capped 256 MiB above its current size while they are read.
static void check_absurd(const unsigned char *v, size_t len, const Layout *lay) {
#if !defined(__SANITIZE_ADDRESS__)
    struct rlimit old;
    int capped = 0;
    FILE *sf = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (sf && fscanf(sf, "%lu", &pages) == 1 && getrlimit(RLIMIT_AS, &old) == 0) {
        struct rlimit cap = old;
        rlim_t want = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
        if (old.rlim_cur == RLIM_INFINITY || old.rlim_cur > want) cap.rlim_cur = want;
        capped = setrlimit(RLIMIT_AS, &cap) == 0;
    }
    if (sf) fclose(sf);
    CHECK(capped, "could not cap the address space");
#endif
    unsigned char *c = copy(v, len, 0);
    size_t t0 = lay->first_tensor;   // name_len (2), name, dtype, ndim, dims
    unsigned nl = c[t0] | (unsigned)c[t0 + 1] << 8;
    size_t dims_at = t0 + 2 + nl + 2;

    put_u32(c + 16, 0xFFFFFFFFu);
    fix_checksum(c, len);
    expect_refused("meta_len 0xFFFFFFFF", c, len, "absurd", NULL);
    memcpy(c, v, len);
    put_u32(c + 16, (uint32_t)lay->meta_len + 100000000u);   // under 4 GiB, over the file
    fix_checksum(c, len);
    expect_refused("meta_len 100 MB", c, len, "absurd", "truncated");
    memcpy(c, v, len);
    put_u32(c + lay->count_off, 0xFFFFFFFFu);
    fix_checksum(c, len);
    expect_refused("tensor count 0xFFFFFFFF", c, len, "absurd", NULL);
    memcpy(c, v, len);
    put_u32(c + lay->count_off, 1u << 16);
    fix_checksum(c, len);
    expect_refused("tensor count 65536", c, len, "tensor", NULL);
    memcpy(c, v, len);
    put_u32(c + dims_at, 1u << 31);
    fix_checksum(c, len);
    expect_refused("dimension 2^31", c, len, "dimension", "absurd");
    memcpy(c, v, len);
    put_u32(c + dims_at, 0xFFFFFFFFu);
    fix_checksum(c, len);
    expect_refused("dimension 2^32-1", c, len, "dimension", "absurd");
    memcpy(c, v, len);
    put_u32(c + dims_at, 1u << 16);   // each dim fine, their product 2^16 * 2 * 3 * 3 is not
    put_u32(c + dims_at + 4, 1u << 16);
    fix_checksum(c, len);
    expect_refused("dims 2^16 x 2^16", c, len, "absurd", NULL);
    memcpy(c, v, len);
    put_u32(c + dims_at, 1u << 20);   // plausible size, but the data is not there
    fix_checksum(c, len);
    expect_refused("dimension 2^20", c, len, "truncated", NULL);
    memcpy(c, v, len);
    c[t0] = 0xFF;
    c[t0 + 1] = 0xFF;
    fix_checksum(c, len);
    expect_refused("name_len 65535", c, len, "name length", NULL);
    free(c);
#if !defined(__SANITIZE_ADDRESS__)
    if (capped) setrlimit(RLIMIT_AS, &old);
#endif
}

static void check_corrupt(const char *valid) {
    size_t len;
    unsigned char *v = read_all(valid, &len);
    CHECK(v && len > 100, "cannot read back %s", valid);
    if (!v || len <= 100) return;
    Layout lay;
    if (layout_of(valid, v, &lay)) return;
    CHECK(memcmp(v, "EMOCAMTF", 8) == 0 && get_u32(v + 8) == 1 && memcmp(v + 12, "WGHT", 4) == 0,
          "unexpected header");
    CHECK(get_u64(v + len - 8) == fnv1a64(v, len - 8), "the checksum is not FNV-1a 64");
    unsigned char *c = copy(v, len, 64);
    char err[EMO_ERRLEN];

    // missing, empty
    char *missing = path_in("no-such-file.bin");
    Net *net = net_load(missing, err, sizeof err);
    CHECK(!net && strstr(err, missing) && strstr(err, "cannot open"), "missing file: '%s'", err);
    net_free(net);
    free(missing);
    expect_refused("empty file", c, 0, "magic", "truncated");

    // header fields
    c[0] = 'X';
    fix_checksum(c, len);
    expect_refused("wrong magic", c, len, "magic", NULL);
    memcpy(c, v, len);
    put_u32(c + 8, 2);
    fix_checksum(c, len);
    expect_refused("version 2", c, len, "version 2", NULL);
    memcpy(c, v, len);
    put_u32(c + 8, 0);
    fix_checksum(c, len);
    expect_refused("version 0", c, len, "version 0", NULL);
    memcpy(c, v, len);
    memcpy(c + 12, "CKPT", 4);
    fix_checksum(c, len);
    expect_refused("kind CKPT", c, len, "CKPT", NULL);
    memcpy(c, v, len);
    memcpy(c + 12, "TREF", 4);
    fix_checksum(c, len);
    expect_refused("kind TREF", c, len, "TREF", NULL);

    // every truncation
    int bad = 0;
    for (size_t cut = 0; cut < len; cut++) {
        char label[64];
        snprintf(label, sizeof label, "truncated to %zu bytes", cut);
        if (!expect_refused(label, v, cut, "truncated", cut < 8 ? "magic" : NULL) && ++bad > 5)
            break;
    }

    // every byte with a bit flipped (low and high bits in turn), checksum left as it was: all
    // refused; where the byte is text or data, the checksum is what catches it
    bad = 0;
    for (size_t p = 0; p < len && bad <= 5; p++) {
        int in_data = (p >= 20 && p < lay.count_off) || p >= len - 8;
        for (int t = 0; t < lay.n && t < 64; t++)
            in_data |= p >= lay.data_lo[t] && p < lay.data_hi[t];
        unsigned char flip = p % 2 ? 0x80 : 0x01;
        memcpy(c, v, len);
        c[p] ^= flip;
        char label[64];
        snprintf(label, sizeof label, "byte %zu ^ 0x%02x", p, flip);
        bad += !expect_refused(label, c, len, in_data ? "checksum" : "", NULL);
    }
    CHECK(lay.n <= 64, "layout covers only the first 64 of %d tensors", lay.n);

    // the architecture inside the file does not match its tensors
    size_t ml;
    char *other = replace(ARCH, "conv out=4 k=3 pad=1\n", "conv out=4 k=5 pad=2\n");
    unsigned char *m = with_meta(v, len, &lay, other, &ml);
    expect_refused("shape mismatch", m, ml, "0.conv.w has shape 4x2x3x3", NULL);
    expect_refused("shape mismatch", m, ml, "expects 4x2x5x5", NULL);
    free(m);
    free(other);
    other = replace(ARCH, "linear out=3\n", "linear out=3\nlinear out=2\n");
    m = with_meta(v, len, &lay, other, &ml);
    expect_refused("more tensors in the architecture", m, ml, "tensors", NULL);
    free(m);
    free(other);
    other = replace(ARCH, "  bn\nshortcut", "shortcut");
    m = with_meta(v, len, &lay, other, &ml);
    expect_refused("a layer fewer in the architecture", m, ml, "tensor", NULL);
    free(m);
    free(other);
    other = replace(ARCH, "conv out=4 k=1 bias=0", "conv out=4 k=1 bias=1");
    m = with_meta(v, len, &lay, other, &ml);
    expect_refused("a bias more in the architecture", m, ml, "tensor", NULL);
    free(m);
    free(other);
    m = with_meta(v, len, &lay, "input c=2 h=8 w=8\nconv out=4 k=3 pad=1\nbogus\n", &ml);
    expect_refused("meta is a bad architecture", m, ml, ":3:", NULL);
    expect_refused("meta is a bad architecture", m, ml, "unknown layer kind", NULL);
    free(m);
    m = with_meta(v, len, &lay, "", &ml);
    expect_refused("empty meta", m, ml, "input", NULL);
    free(m);
    // the count field one short, the last tensor removed
    memcpy(c, v, len);
    put_u32(c + lay.count_off, (uint32_t)lay.n - 1);
    size_t cl = lay.last_tensor + 8;
    fix_checksum(c, cl);
    expect_refused("one tensor fewer", c, cl, "holds", NULL);
    // a tensor's name
    memcpy(c, v, len);
    size_t t0 = lay.first_tensor;
    unsigned nl = c[t0] | (unsigned)c[t0 + 1] << 8;
    CHECK(nl == 8 && memcmp(c + t0 + 2, "0.conv.w", 8) == 0, "first tensor is not 0.conv.w");
    c[t0 + 2 + 7] = 'v';
    fix_checksum(c, len);
    expect_refused("name mismatch", c, len, "0.conv.v", NULL);
    memcpy(c, v, len);
    c[t0 + 2 + 3] = 0;
    fix_checksum(c, len);
    expect_refused("NUL in a name", c, len, "NUL", NULL);
    memcpy(c, v, len);
    c[t0] = c[t0 + 1] = 0;
    fix_checksum(c, len);
    expect_refused("empty name", c, len, "name length", NULL);
    memcpy(c, v, len);
    c[t0 + 2 + nl] = 3;   // dtype (1 float32, 2 float16)
    fix_checksum(c, len);
    expect_refused("dtype 3", c, len, "type 3", NULL);
    memcpy(c, v, len);
    c[t0 + 2 + nl] = 2;   // float16: the same bytes now hold twice the values it needs
    fix_checksum(c, len);
    expect_refused("dtype 2 on float32 data", c, len, "bad name length", "unexpected bytes");
    memcpy(c, v, len);
    c[t0 + 2 + nl + 1] = 0;   // ndim
    fix_checksum(c, len);
    expect_refused("ndim 0", c, len, "0 dimensions", NULL);
    memcpy(c, v, len);
    c[t0 + 2 + nl + 1] = 5;
    fix_checksum(c, len);
    expect_refused("ndim 5", c, len, "5 dimensions", NULL);
    memcpy(c, v, len);
    c[t0 + 2 + nl + 1] = 3;   // 4x2x3x3 read as 4x2x3: the rest shifts
    fix_checksum(c, len);
    expect_refused("ndim 3", c, len, "", NULL);
    memcpy(c, v, len);
    c[25] = 0;   // a NUL inside the meta text
    fix_checksum(c, len);
    expect_refused("NUL in meta", c, len, "NUL", NULL);

    // trailing garbage: after the checksum, and before it with the checksum redone
    memcpy(c, v, len);
    memcpy(c + len, "garbage!", 8);
    expect_refused("garbage after the checksum", c, len + 8, "unexpected bytes", NULL);
    memcpy(c, v, len - 8);
    memcpy(c + len - 8, "garbage!", 8);
    fix_checksum(c, len + 8);
    expect_refused("garbage before the checksum", c, len + 8, "unexpected bytes", NULL);

    check_absurd(v, len, &lay);

    // and the untouched bytes still load
    CHECK(write_all(BAD, v, len) == 0, "cannot write %s", BAD);
    net = net_load(BAD, err, sizeof err);
    CHECK(net != NULL, "the valid file no longer loads: %s", err);
    net_free(net);
    free(c);
    free(v);
}

// Names in dir containing `part`.
static int count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, part)) n++;
    closedir(d);
    return n;
}

static void check_saving(Net *net) {
    char err[EMO_ERRLEN];
    // into a folder that does not exist
    char *nodir = path_in("no-such-dir/w.bin");
    CHECK(net_save(net, nodir, err, sizeof err) == -1, "saved into a missing folder");
    CHECK(strstr(err, nodir) && strstr(err, "cannot write"), "unwritable path: '%s'", err);
    struct stat st;
    CHECK(stat(nodir, &st) != 0, "%s exists", nodir);
    free(nodir);
    // over a folder: refused, and no temporary file left beside it
    char *sub = path_in("sub");
    CHECK(mkdir(sub, 0755) == 0, "mkdir %s: %s", sub, strerror(errno));
    CHECK(net_save(net, sub, err, sizeof err) == -1, "saved over a folder");
    CHECK(strstr(err, sub) != NULL, "saving over a folder: '%s'", err);
    CHECK(count_entries(test_tmpdir(), ".tmp") == 0, "a temporary file was left behind");
    // into a read-only folder (root can write anywhere: then this part proves nothing)
    if (geteuid() != 0 && chmod(sub, 0555) == 0) {
        char *ro = path_in("sub/w.bin");
        CHECK(net_save(net, ro, err, sizeof err) == -1, "saved into a read-only folder");
        CHECK(strstr(err, ro) && strstr(err, "cannot write"), "read-only folder: '%s'", err);
        CHECK(count_entries(sub, "") == 0, "files left in the read-only folder");
        free(ro);
        chmod(sub, 0755);
    } else {
        printf("running as root: the read-only folder case is skipped\n");
    }
    rmdir(sub);
    free(sub);

    // over an existing file: replaced by a rename, not rewritten in place
    char *over = path_in("over.bin");
    CHECK(write_all(over, "old contents", 12) == 0, "cannot write %s", over);
    struct stat before, after;
    int fd = open(over, O_RDONLY);
    CHECK(fd >= 0 && fstat(fd, &before) == 0, "cannot open %s", over);
    CHECK(net_save(net, over, err, sizeof err) == 0, "saving over a file: %s", err);
    CHECK(stat(over, &after) == 0 && after.st_ino != before.st_ino,
          "the old file was rewritten in place, not replaced");
    CHECK((after.st_mode & 0777) == 0644, "saved with mode %o", (unsigned)(after.st_mode & 0777));
    char old[16] = "";
    CHECK(fd >= 0 && pread(fd, old, sizeof old, 0) == 12 && memcmp(old, "old contents", 12) == 0,
          "the old file's contents changed under its reader");
    if (fd >= 0) close(fd);
    Net *b = net_load(over, err, sizeof err);
    CHECK(b != NULL, "loading the replaced file: %s", err);
    if (b) check_same_net(net, b, "saved over an old file");
    net_free(b);
    CHECK(count_entries(test_tmpdir(), ".tmp") == 0, "a temporary file was left behind");
    unlink(over);
    free(over);

    // a folded net cannot be saved
    char *fpath = path_in("folded.bin");
    char *src = path_in("weights.bin");
    Net *f = net_load(src, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (f) {
        net_fold_bn(f);
        CHECK(net_save(f, fpath, err, sizeof err) == -1 && strstr(err, fpath) &&
                  strstr(err, "folded"),
              "a folded net was saved, or the message is '%s'", err);
        CHECK(stat(fpath, &st) != 0, "a folded net left %s", fpath);
        net_free(f);
    }
    free(fpath);
    free(src);
}

static void check_tfile(void) {
    char err[EMO_ERRLEN];
    // FNV-1a 64 reference values
    CHECK(fnv1a64("", 0) == 0xcbf29ce484222325ULL, "fnv1a64('')");
    CHECK(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL, "fnv1a64('a')");
    CHECK(fnv1a64("foobar", 6) == 0x85944171f73967e8ULL, "fnv1a64('foobar')");

    char longname[TFILE_NAME_MAX + 1];
    memset(longname, 'n', TFILE_NAME_MAX);
    longname[TFILE_NAME_MAX] = 0;
    int d1[1] = {5}, d2[2] = {2, 3}, d3[3] = {1, 2, 2}, d4[4] = {2, 1, 2, 2}, d5[1] = {1};
    real a[5], b[6], c[4], d[8], e[1] = {42};
    Rng rng;
    rng_seed(&rng, 11);
    for (int i = 0; i < 6; i++) b[i] = (real)(rng_normal(&rng) * 1e3);
    for (int i = 0; i < 4; i++) c[i] = (real)rng_uniform(&rng);
    for (int i = 0; i < 8; i++) d[i] = (real)-i;
    a[0] = -0.0f;
    a[1] = 1e-40f;   // subnormal
    a[2] = INFINITY;
    a[3] = -FLT_MAX;
    a[4] = NAN;
    TOut t[] = {{"a", 1, d1, a, 0}, {"b.c", 2, d2, b, 0}, {"d", 3, d3, c, 0}, {"e_4d", 4, d4, d, 0},
                {longname, 1, d5, e, 0}};
    const int nt = 5;
    const char *meta = "line one\nline two\twith a tab # and a hash\n";
    char *path = path_in("ref.tref");
    CHECK(tfile_write(path, "TREF", meta, strlen(meta), t, nt, err, sizeof err) == 0, "%s", err);

    // the bytes are the documented layout
    size_t len;
    unsigned char *buf = read_all(path, &len);
    size_t ml = strlen(meta), want = 20 + ml + 4 + 8;
    for (int i = 0; i < nt; i++) {
        size_t count = 1;
        for (int k = 0; k < t[i].ndim; k++) count *= (size_t)t[i].dims[k];
        want += 2 + strlen(t[i].name) + 2 + 4 * (size_t)t[i].ndim + 4 * count;
    }
    CHECK(buf && len == want, "file is %zu bytes, the layout says %zu", len, want);
    if (buf && len == want) {
        CHECK(memcmp(buf, "EMOCAMTF", 8) == 0, "magic");
        CHECK(get_u32(buf + 8) == TFILE_VERSION, "version");
        CHECK(memcmp(buf + 12, "TREF", 4) == 0, "kind");
        CHECK(get_u32(buf + 16) == ml && memcmp(buf + 20, meta, ml) == 0, "meta");
        CHECK(get_u32(buf + 20 + ml) == (uint32_t)nt, "tensor count");
        const unsigned char *p = buf + 24 + ml;
        CHECK(p[0] == 1 && p[1] == 0 && p[2] == 'a' && p[3] == 1 && p[4] == 1 &&
                  get_u32(p + 5) == 5,
              "first tensor header");
        float f;
        uint32_t u = get_u32(p + 9 + 4 * 3);   // a[3], little-endian float32
        memcpy(&f, &u, 4);
        CHECK(f == -FLT_MAX, "a[3] is stored as %g", (double)f);
        CHECK(get_u64(buf + len - 8) == fnv1a64(buf, len - 8), "checksum");
    }
    free(buf);

    TFile f;
    CHECK(tfile_read(path, "TREF", &f, err, sizeof err) == 0, "%s", err);
    if (f.buf) {
        CHECK(memcmp(f.kind, "TREF", 5) == 0, "kind '%s'", f.kind);
        CHECK(f.meta_len == ml && strcmp(f.meta, meta) == 0, "meta '%s'", f.meta);
        CHECK(f.n == nt, "%d tensors", f.n);
        for (int i = 0; i < nt && i < f.n; i++) {
            const TEntry *te = tfile_find(&f, t[i].name);
            CHECK(te == &f.t[i], "tfile_find(%s)", t[i].name);
            if (!te) continue;
            size_t count = 1;
            int same = te->ndim == t[i].ndim;
            for (int k = 0; same && k < te->ndim; k++) {
                same = te->dims[k] == t[i].dims[k];
                count *= (size_t)te->dims[k];
            }
            CHECK(same && te->count == count, "%s: shape", t[i].name);
            real back[8];
            if (same && count <= 8) {
                tentry_get(te, back);
                CHECK(memcmp(back, t[i].data, count * sizeof(real)) == 0, "%s: values differ",
                      t[i].name);
            }
        }
        CHECK(tfile_find(&f, "zzz") == NULL, "tfile_find found a missing name");
        tfile_free(&f);
    }
    CHECK(tfile_read(path, NULL, &f, err, sizeof err) == 0, "any kind: %s", err);
    tfile_free(&f);
    CHECK(tfile_read(path, "WGHT", &f, err, sizeof err) == -1 && strstr(err, path) &&
              strstr(err, "TREF"),
          "read as weights: '%s'", err);
    Net *net = net_load(path, err, sizeof err);
    CHECK(!net && strstr(err, path) && strstr(err, "TREF"), "net_load of a TREF: '%s'", err);
    net_free(net);

    // empty meta, no tensors
    CHECK(tfile_write(path, "CKPT", "", 0, NULL, 0, err, sizeof err) == 0, "%s", err);
    CHECK(tfile_read(path, "CKPT", &f, err, sizeof err) == 0 && f.n == 0 && f.meta_len == 0 &&
              f.meta && f.meta[0] == 0,
          "empty container: %s", err);
    tfile_free(&f);

    // what cannot be stored is refused, and nothing is written
    unlink(path);
    char toolong[TFILE_NAME_MAX + 2];
    memset(toolong, 'x', TFILE_NAME_MAX + 1);
    toolong[TFILE_NAME_MAX + 1] = 0;
    int d0[5] = {1, 1, 1, 1, 1};   // ndim 5 needs 5 dims to read
    TOut bad[] = {{toolong, 1, d5, e, 0}, {"", 1, d5, e, 0}, {"five", 5, d0, e, 0},
                  {"zero", 0, d0, e, 0}};
    struct stat st;
    for (int i = 0; i < 4; i++) {
        err[0] = 0;
        CHECK(tfile_write(path, "TREF", "", 0, &bad[i], 1, err, sizeof err) == -1 &&
                  strstr(err, path),
              "unstorable tensor %d accepted ('%s')", i, err);
        CHECK(stat(path, &st) != 0, "unstorable tensor %d left a file", i);
    }
    free(path);
}

// float16 tensors: IEEE binary16 bits, rounded to nearest even, read back as float32; values
// beyond +-65504 refused; a net saved as float16 loads within float16's rounding, at half the
// size, and a cut file is refused.
static void check_f16(Net *net) {
    char err[EMO_ERRLEN], *path = path_in("half.tref");
    // value, its float16 bits: zero, signs, the largest, the smallest normal and subnormal,
    // ties to even (1 + 2^-11 -> 1, 1 + 3*2^-11 -> 1 + 2^-9, 3*2^-25 -> 2^-23), a carry into
    // the exponent (2 - 2^-11 -> 2), 1/3 and a tiny value that flushes to zero
    static const struct {
        float v;
        uint16_t h;
    } CASES[] = {{0.0f, 0x0000},         {-0.0f, 0x8000},         {1.0f, 0x3c00},
                 {-2.5f, 0xc100},        {65504.0f, 0x7bff},      {0x1p-14f, 0x0400},
                 {0x1p-24f, 0x0001},     {1 + 0x1p-11f, 0x3c00},  {1 + 3 * 0x1p-11f, 0x3c02},
                 {3 * 0x1p-25f, 0x0002}, {2 - 0x1p-11f, 0x4000},  {1.0f / 3, 0x3555},
                 {0x1p-26f, 0x0000},     {-65504.0f, 0xfbff}};
    enum { NC = sizeof CASES / sizeof CASES[0] };
    real v[NC];
    for (int i = 0; i < NC; i++) v[i] = CASES[i].v;
    int dims[1] = {NC};
    TOut t = {"h", 1, dims, v, 1};
    CHECK(tfile_write(path, "TREF", "", 0, &t, 1, err, sizeof err) == 0, "%s", err);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    CHECK(buf && len == 20 + 4 + 2 + 1 + 2 + 4 + 2 * NC + 8, "float16 file of %zu bytes", len);
    if (buf && len == 20 + 4 + 2 + 1 + 2 + 4 + 2 * NC + 8) {
        const unsigned char *p = buf + 24 + 3;
        CHECK(p[0] == TFILE_F16 && p[1] == 1, "dtype byte %d", p[0]);
        for (int i = 0; i < NC; i++) {
            uint16_t h = (uint16_t)(p[6 + 2 * i] | p[7 + 2 * i] << 8);
            CHECK(h == CASES[i].h, "%g stored as 0x%04x, want 0x%04x", (double)CASES[i].v, h,
                  CASES[i].h);
        }
    }
    free(buf);
    TFile f;
    CHECK(tfile_read(path, "TREF", &f, err, sizeof err) == 0, "%s", err);
    if (f.buf && f.n == 1) {
        real back[NC];
        tentry_get(&f.t[0], back);
        for (int i = 0; i < NC; i++) {   // binary16 -> binary32 is exact: compare the values
            float want = (float)CASES[i].h;
            uint16_t h = CASES[i].h;
            int e = (h >> 10) & 0x1f, m = h & 0x3ff;
            want = e ? ldexpf((float)(1024 + m), e - 25) : ldexpf((float)m, -24);
            if (h & 0x8000) want = -want;
            CHECK(back[i] == want && signbit(back[i]) == signbit(want), "0x%04x read as %g, not %g",
                  h, (double)back[i], (double)want);
        }
    }
    tfile_free(&f);
    // out of range: refused, nothing written
    unlink(path);
    struct stat st;
    real big[3] = {65505.0f, INFINITY, NAN};
    for (int i = 0; i < 3; i++) {
        TOut b = {"big", 1, (int[]){1}, &big[i], 1};
        err[0] = 0;
        CHECK(tfile_write(path, "TREF", "", 0, &b, 1, err, sizeof err) == -1 &&
                  strstr(err, "float16") && strstr(err, path),
              "%g stored as float16 ('%s')", (double)big[i], err);
        CHECK(stat(path, &st) != 0, "a refused float16 tensor left a file");
    }
    free(path);

    // a whole net: half the bytes, values within float16's rounding, a cut file refused
    char *full = path_in("full.weights"), *half = path_in("half.weights");
    CHECK(net_save(net, full, err, sizeof err) == 0, "%s", err);
    CHECK(net_save_as(net, half, 1, err, sizeof err) == 0, "%s", err);
    struct stat s1, s2;
    long long values = 0;
    for (int i = 0; i < net->ntensors; i++) values += (long long)net->tensors[i].count;
    CHECK(stat(full, &s1) == 0 && stat(half, &s2) == 0 && s2.st_size == s1.st_size - 2 * values,
          "float16 weights are %lld bytes against %lld for %lld values", (long long)s2.st_size,
          (long long)s1.st_size, values);
    Net *b = net_load(half, err, sizeof err);
    CHECK(b != NULL, "%s", err);
    if (b) {
        double worst = 0;
        for (int i = 0; i < net->ntensors; i++) {
            const Tensor *ta = &net->tensors[i];
            const real *x = net_tensor_data(net, ta), *y = net_tensor_data(b, &b->tensors[i]);
            for (size_t j = 0; j < ta->count; j++) {
                double a = fabs((double)x[j]);
                double tol = a >= 0x1p-14 ? a * 0x1p-11 : 0x1p-25;   // half an ulp
                worst = fmax(worst, fabs((double)y[j] - x[j]) / tol);
            }
        }
        CHECK(worst <= 1.0, "float16 weights off by %.3g half-ulps", worst);
        net_free(b);
    }
    size_t hl;
    unsigned char *hb = read_all(half, &hl);
    if (hb) {
        FILE *g = fopen(half, "wb");
        if (g) {
            fwrite(hb, 1, hl - 9, g);
            fclose(g);
        }
        b = net_load(half, err, sizeof err);
        CHECK(!b && strstr(err, half) && strstr(err, "truncated"), "cut float16 file: '%s'", err);
        net_free(b);
    }
    free(hb);
    unlink(full);
    unlink(half);
    free(full);
    free(half);
}

int main(void) {
    BAD = path_in("bad.bin");
    char *valid = path_in("weights.bin");
    Net *net = make_net();
    if (net) {
        check_round_trip(net, valid);
        check_corrupt(valid);
        check_saving(net);
        check_f16(net);
    }
    check_tfile();
    printf("%d corrupt files refused\n", refusals);
    net_free(net);
    unlink(valid);
    unlink(BAD);
    free(valid);
    free(BAD);
    CHECK(rmdir(test_tmpdir()) == 0, "%s is not empty: %s", test_tmpdir(), strerror(errno));
    return test_result("test_weights");
}
