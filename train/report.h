// report.h: small pieces the report commands (eval, plot) share: a growable text buffer for
// JSON and CSV files, folder creation, and drawing helpers over the cv_ wrapper.
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "cv.h"

// Growable text. On out of memory `failed` is set and later appends do nothing.
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} Buf;

void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_json_str(Buf *b, const char *s);   // "s" with JSON escapes
void buf_csv_str(Buf *b, const char *s);    // s, quoted when it holds , " or a newline
void buf_free(Buf *b);
// Write the buffer to path atomically. 0, or -1 with the reason in err.
int buf_write(const Buf *b, const char *path, char *err, size_t errlen);

// mkdir -p. 0, or -1 with errno set.
int mkdir_p(const char *dir);
// v with thousands separators ("12,345"), written into buf.
const char *commas(long v, char buf[32]);
// Seconds on a monotonic clock.
double now_s(void);
// dataset_load's progress callback: "what done/total" on one stderr line, redrawn, when
// *(int *)ctx is set (stderr is a terminal).
void load_progress(void *ctx, const char *what, long done, long total);
// s as a whole number in lo..hi into *v: 0, or -1 when it is not one.
int parse_long(const char *s, long lo, long hi, long *v);
// dir/name, malloc'd (NULL on OOM).
char *path_join(const char *dir, const char *name);

// Text scaled down from `scale` until it is at most maxw pixels wide; (x, y) as cv_draw_text.
// align: 0 left, 1 centred on x, 2 right-aligned at x. Returns the width drawn.
int text_fit(Image *im, const char *text, int x, int y, int maxw, double scale, uint32_t rgb, int thickness,
             int align);
// A 48x48 face drawn at (x, y) as a size x size square (bilinear).
int draw_face(Image *im, const uint8_t *face, int x, int y, int size);
