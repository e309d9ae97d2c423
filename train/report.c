// report.c: see report.h.
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "data.h"
#include "tfile.h"

void buf_printf(Buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->len + (size_t)w < b->cap) {
            b->len += (size_t)w;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->len + (size_t)w) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

void buf_json_str(Buf *b, const char *s) {
    buf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') buf_printf(b, "\\%c", *p);
        else if (*p == '\n') buf_printf(b, "\\n");
        else if (*p == '\t') buf_printf(b, "\\t");
        else if (*p < 0x20) buf_printf(b, "\\u%04x", *p);
        else buf_printf(b, "%c", *p);
    }
    buf_printf(b, "\"");
}

void buf_csv_str(Buf *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        buf_printf(b, "%s", s);
        return;
    }
    buf_printf(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"') buf_printf(b, "\"\"");
        else buf_printf(b, "%c", *p);
    }
    buf_printf(b, "\"");
}

void buf_free(Buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

int buf_write(const Buf *b, const char *path, char *err, size_t errlen) {
    if (b->failed) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    return write_atomic(path, b->s ? b->s : "", b->len, err, errlen);
}

int mkdir_p(const char *dir) {
    size_t len = strlen(dir);
    char *p = malloc(len + 1);
    if (!p) return -1;
    memcpy(p, dir, len + 1);
    int rc = 0;
    for (char *s = p + 1; *s && !rc; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = -1;
        *s = '/';
    }
    if (!rc && mkdir(p, 0755) != 0 && errno != EEXIST) rc = -1;
    struct stat st;
    if (!rc && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) rc = -1, errno = ENOTDIR;
    free(p);
    return rc;
}

char *path_join(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}

int text_fit(Image *im, const char *text, int x, int y, int maxw, double scale, uint32_t rgb, int thickness,
             int align) {
    int w = 0;
    cv_text_size(text, scale, thickness, &w, NULL, NULL);
    while (w > maxw && scale > 0.25) {
        scale *= 0.9;
        if (thickness > 1 && scale < 0.5) thickness = 1;
        cv_text_size(text, scale, thickness, &w, NULL, NULL);
    }
    int x0 = align == 1 ? x - w / 2 : align == 2 ? x - w : x;
    cv_draw_text(im, text, x0, y, scale, rgb, thickness);
    return w;
}

int draw_face(Image *im, const uint8_t *face, int x, int y, int size) {
    Image f = {FACE_W, FACE_H, 1, FACE_W, (unsigned char *)face}, big;
    if (cv_resize(&f, &big, size, size, CV_RESIZE_LINEAR)) return -1;
    int rc = cv_paste(im, &big, x, y);
    image_free(&big);
    return rc;
}

const char *commas(long v, char buf[32]) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%ld", v < 0 ? -v : v), k = 0;
    if (v < 0) buf[k++] = '-';
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = tmp[i];
    }
    buf[k] = 0;
    return buf;
}

double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void load_progress(void *ctx, const char *what, long done, long total) {
    if (!*(int *)ctx) return;
    if (total > 0) fprintf(stderr, "\r\033[K%s %ld/%ld", what, done, total);
    else fprintf(stderr, "\r\033[K%s %ld", what, done);
    if (done == total) fprintf(stderr, "\n");
    fflush(stderr);
}

int parse_long(const char *s, long lo, long hi, long *v) {
    char *e;
    errno = 0;
    long x = strtol(s, &e, 10);
    if (e == s || *e || errno || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}
