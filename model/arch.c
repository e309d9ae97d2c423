// arch.c: the architecture text format, parsed strictly.
//
//   # comment
//   input c=1 h=48 w=48 [mean=0] [std=255]   <- pixels p (0..255) enter as (p - mean) / std
//   conv out=32 k=3 pad=1
//   bn
//   relu
//   residual            <- a block: its layers follow, then optionally
//     conv out=64 k=3 stride=2 pad=1
//   shortcut            <- the projection path (identity when absent)
//     conv out=64 k=1 stride=2
//   end
//   gap
//   linear out=7
//
// One layer per line, `kind key=value ...`. An unknown kind or key, a duplicate key, a bad
// value or an impossible shape is an error naming the file and line.
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

static const struct {
    const char *kind;
    LayerParse parse;
} REGISTRY[] = {
    {"conv", conv_parse},       {"bn", bn_parse},       {"relu", relu_parse},
    {"maxpool", maxpool_parse}, {"avgpool", avgpool_parse}, {"gap", gap_parse},
    {"dropout", dropout_parse}, {"dropout2d", dropout2d_parse}, {"linear", linear_parse},
    {"flatten", flatten_parse}, {"cbam", cbam_parse},
};

real *real_alloc(size_t n) {
    if (n == 0) n = 1;
    if (n > SIZE_MAX / sizeof(real)) return NULL;
    return malloc(n * sizeof(real));
}

void *builder_fail(Builder *b, const char *fmt, ...) {
    char msg[EMO_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->line > 0)
        snprintf(b->err, b->errlen, "%s:%d: %s", b->file, b->line, msg);
    else
        snprintf(b->err, b->errlen, "%s: %s", b->file, msg);
    return NULL;
}

int builder_tensor(Builder *b, const Layer *l, const char *suffix, int ndim, const int *dims,
                   real **ptr, real **gptr, int is_buffer, int decay) {
    if (b->nslots == b->cap) {
        int cap = b->cap ? 2 * b->cap : 32;
        Slot *s = realloc(b->slots, (size_t)cap * sizeof *s);
        if (!s) {
            builder_fail(b, "out of memory");
            return -1;
        }
        b->slots = s;
        b->cap = cap;
    }
    Slot *s = &b->slots[b->nslots];
    memset(s, 0, sizeof *s);
    int len = snprintf(s->t.name, sizeof s->t.name, "%s.%s", l->name, suffix);
    if (len < 0 || (size_t)len >= sizeof s->t.name) {
        builder_fail(b, "tensor name too long (nesting too deep)");
        return -1;
    }
    s->t.ndim = ndim;
    s->t.count = 1;
    for (int i = 0; i < ndim; i++) {
        s->t.dims[i] = dims[i];
        s->t.count *= (size_t)dims[i];
    }
    if (s->t.count > ((size_t)1 << 28)) {
        builder_fail(b, "tensor %s is absurdly large (%zu elements)", s->t.name, s->t.count);
        return -1;
    }
    s->t.is_buffer = is_buffer;
    s->t.decay = decay;
    s->ptr = ptr;
    s->gptr = gptr;
    if (is_buffer) {
        s->t.off = b->nbufs;
        b->nbufs += s->t.count;
    } else {
        s->t.off = b->nparams;
        b->nparams += s->t.count;
    }
    b->nslots++;
    return 0;
}

static int find_key(Builder *b, Args *a, const char *key) {
    (void)b;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->key[i], key) == 0) {
            a->used[i] = 1;
            return i;
        }
    return -1;
}

int args_int(Builder *b, Args *a, const char *key, int def, int required, int lo, int hi,
             int *out) {
    int i = find_key(b, a, key);
    if (i < 0) {
        if (required) {
            builder_fail(b, "missing %s=", key);
            return -1;
        }
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(a->val[i], &end, 10);
    if (errno || end == a->val[i] || *end || v < lo || v > hi) {
        builder_fail(b, "bad value %s=%s (want an integer in %d..%d)", key, a->val[i], lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int args_real(Builder *b, Args *a, const char *key, double def, double lo, double hi,
              real *out) {
    int i = find_key(b, a, key);
    if (i < 0) {
        *out = (real)def;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(a->val[i], &end);
    if (errno || end == a->val[i] || *end || !(v >= lo && v <= hi)) {
        builder_fail(b, "bad value %s=%s (want a number in %g..%g)", key, a->val[i], lo, hi);
        return -1;
    }
    *out = (real)v;
    return 0;
}

// Split a line (modified in place) into kind and key=value pairs.
static int tokenize(Builder *b, char *line, char **kind, Args *a) {
    memset(a, 0, sizeof *a);
    *kind = NULL;
    char *p = line;
    while (*p) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char *tok = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = 0;
        if (!*kind) {
            *kind = tok;
            continue;
        }
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1]) {
            builder_fail(b, "expected key=value, got '%s'", tok);
            return -1;
        }
        *eq = 0;
        for (int i = 0; i < a->n; i++)
            if (strcmp(a->key[i], tok) == 0) {
                builder_fail(b, "duplicate key '%s'", tok);
                return -1;
            }
        if (a->n == ARGS_MAX) {
            builder_fail(b, "too many keys");
            return -1;
        }
        a->key[a->n] = tok;
        a->val[a->n] = eq + 1;
        a->n++;
    }
    return 0;
}

static int check_unused(Builder *b, Args *a, const char *kind) {
    for (int i = 0; i < a->n; i++)
        if (!a->used[i]) {
            builder_fail(b, "unknown key '%s' for %s", a->key[i], kind);
            return -1;
        }
    return 0;
}

enum { MAX_DEPTH = 4 };
typedef struct {
    Seq *main, *shortcut, *cur;
    char prefix[80];
    int line;
} Frame;

// The name of the next layer in frame f: "3.conv" at the top, "3.res.main.0.conv" inside.
static void layer_path(const Frame *f, int depth, const char *kind, char *out, size_t len) {
    if (depth == 0)
        snprintf(out, len, "%d.%s", f->cur->n, kind);
    else
        snprintf(out, len, "%s.%s.%d.%s", f->prefix, f->cur == f->main ? "main" : "short",
                 f->cur->n, kind);
}

// Parse text into a top-level Seq; fills the builder's tensor slots.
Seq *arch_parse(Builder *b, const char *text, Shape *in_out) {
    Frame st[MAX_DEPTH + 1];
    int depth = 0;
    Seq *top = NULL;
    int have_input = 0;
    char *buf = NULL;
    const char *p = text;
    b->line = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        b->line++;
        free(buf);
        buf = malloc(len + 1);
        if (!buf) {
            builder_fail(b, "out of memory");
            goto fail;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        p += len + (nl ? 1 : 0);
        char *hash = strchr(buf, '#');
        if (hash) *hash = 0;
        char *kind;
        Args a;
        if (tokenize(b, buf, &kind, &a)) goto fail;
        if (!kind) continue;
        if (!have_input) {
            if (strcmp(kind, "input") != 0) {
                builder_fail(b, "the first line must be 'input c=.. h=.. w=..', got '%s'", kind);
                goto fail;
            }
            Shape s;
            real mean, std;
            if (args_int(b, &a, "c", 0, 1, 1, 4096, &s.c) ||
                args_int(b, &a, "h", 0, 1, 1, 4096, &s.h) ||
                args_int(b, &a, "w", 0, 1, 1, 4096, &s.w) ||
                args_real(b, &a, "mean", 0, -1e6, 1e6, &mean) ||
                args_real(b, &a, "std", 255, 1e-6, 1e6, &std) || check_unused(b, &a, kind))
                goto fail;
            b->in_mean = mean;
            b->in_std = std;
            top = seq_new(s);
            if (!top) {
                builder_fail(b, "out of memory");
                goto fail;
            }
            *in_out = s;
            st[0] = (Frame){top, NULL, top, "", b->line};
            have_input = 1;
            continue;
        }
        Frame *f = &st[depth];
        Shape cur = seq_out(f->cur);
        char name[80];
        if (strcmp(kind, "input") == 0) {
            builder_fail(b, "'input' appears twice");
            goto fail;
        } else if (strcmp(kind, "residual") == 0) {
            if (check_unused(b, &a, kind)) goto fail;
            if (depth == MAX_DEPTH) {
                builder_fail(b, "blocks nested deeper than %d", MAX_DEPTH);
                goto fail;
            }
            Frame *g = &st[depth + 1];
            memset(g, 0, sizeof *g);
            layer_path(f, depth, "res", name, sizeof name);
            memcpy(g->prefix, name, sizeof g->prefix);
            g->main = seq_new(cur);
            g->shortcut = seq_new(cur);
            if (!g->main || !g->shortcut) {
                seq_free(g->main);
                seq_free(g->shortcut);
                builder_fail(b, "out of memory");
                goto fail;
            }
            g->cur = g->main;
            g->line = b->line;
            depth++;
        } else if (strcmp(kind, "shortcut") == 0) {
            if (check_unused(b, &a, kind)) goto fail;
            if (depth == 0 || f->cur == f->shortcut) {
                builder_fail(b, "'shortcut' outside a residual block, or given twice");
                goto fail;
            }
            f->cur = f->shortcut;
        } else if (strcmp(kind, "end") == 0) {
            if (check_unused(b, &a, kind)) goto fail;
            if (depth == 0) {
                builder_fail(b, "'end' without a block");
                goto fail;
            }
            depth--;
            Frame *parent = &st[depth];
            Layer *l = residual_new(b, f->main, f->shortcut, f->prefix);
            if (!l) {   // residual_new frees nothing on failure; the frame still owns them
                seq_free(f->main);
                seq_free(f->shortcut);
                goto fail;
            }
            if (seq_push(parent->cur, l)) {
                layer_free(l);
                builder_fail(b, "out of memory");
                goto fail;
            }
        } else {
            LayerParse parse = NULL;
            for (size_t i = 0; i < sizeof REGISTRY / sizeof REGISTRY[0]; i++)
                if (strcmp(kind, REGISTRY[i].kind) == 0) parse = REGISTRY[i].parse;
            if (!parse) {
                builder_fail(b, "unknown layer kind '%s'", kind);
                goto fail;
            }
            layer_path(f, depth, kind, name, sizeof name);
            Layer *l = parse(b, &a, cur, name);
            if (!l) goto fail;
            if (check_unused(b, &a, kind) || seq_push(f->cur, l)) {
                layer_free(l);
                if (!b->err[0]) builder_fail(b, "out of memory");
                goto fail;
            }
        }
    }
    free(buf);
    buf = NULL;
    b->line = 0;
    if (!have_input) {
        builder_fail(b, "no 'input' line: empty architecture");
        goto fail;
    }
    if (depth > 0) {
        b->line = st[depth].line;
        builder_fail(b, "residual block is never closed with 'end'");
        goto fail;
    }
    if (top->n == 0) {
        builder_fail(b, "the architecture has no layers");
        goto fail;
    }
    return top;
fail:
    free(buf);
    while (depth > 0) {
        seq_free(st[depth].main);
        seq_free(st[depth].shortcut);
        depth--;
    }
    seq_free(top);
    return NULL;
}
