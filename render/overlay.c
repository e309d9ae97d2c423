// overlay.c: per-face box, id, label and class bars, and the performance figures, drawn into
// an Image. Text comes from SDL2_ttf (rendered once per string and size, then cached as an
// 8-bit coverage mask and blended in any colour); shapes come from the cv_ drawing calls.
#include "overlay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>
#include <SDL_ttf.h>

static const char *const CLASS_NAMES[OVERLAY_CLASSES] = {"angry", "disgust", "fear", "happy",
                                                         "sad", "surprise", "neutral"};
static const uint32_t CLASS_COLOURS[OVERLAY_CLASSES] = {
    0xe53935,   // angry: red
    0x7cb342,   // disgust: green
    0x8e24aa,   // fear: purple
    0xffc107,   // happy: amber
    0x1e88e5,   // sad: blue
    0x00bcd4,   // surprise: cyan
    0xbdbdbd,   // neutral: grey
};

const char *overlay_class_name(int k) {
    return k >= 0 && k < OVERLAY_CLASSES ? CLASS_NAMES[k] : "?";
}
uint32_t overlay_class_colour(int k) {
    return k >= 0 && k < OVERLAY_CLASSES ? CLASS_COLOURS[k] : OVERLAY_NOLABEL;
}

enum { NFONTS = 12, NTEXTS = 256, FONT_MIN = 8, FONT_MAX = 200 };

typedef struct {
    int px;                // point size (pixels at 72 dpi)
    TTF_Font *font;
    unsigned long used;    // tick of the last use (least recently used is evicted)
} FontSlot;

typedef struct {
    char *text;
    int px;
    int w, h;              // the rendered line: h is the font's line height
    uint8_t *a;            // (h, w) coverage, 0..255
    unsigned long used;
} TextSlot;

typedef struct FaceLayout FaceLayout;

struct Overlay {
    OverlayConfig cfg;
    char *font_path;
    FontSlot fonts[NFONTS];
    TextSlot texts[NTEXTS];
    unsigned long tick;
    FaceLayout *layout;    // (layout_cap) per face, reused from frame to frame
    int layout_cap;
};

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }
static int iclamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

OverlayConfig overlay_defaults(void) {
    OverlayConfig c = {.bars = 1, .stats = 0, .font = NULL};
    return c;
}

static TTF_Font *font_get(Overlay *o, int px) {
    px = iclamp(px, FONT_MIN, FONT_MAX);
    FontSlot *victim = &o->fonts[0];
    for (int i = 0; i < NFONTS; i++) {
        FontSlot *s = &o->fonts[i];
        if (s->font && s->px == px) {
            s->used = ++o->tick;
            return s->font;
        }
        if (!s->font || (victim->font && s->used < victim->used)) victim = s;
    }
    if (victim->font) TTF_CloseFont(victim->font);
    victim->font = TTF_OpenFont(o->font_path, px);
    victim->px = px;
    victim->used = ++o->tick;
    return victim->font;   // NULL if the font went away since overlay_new: text is skipped
}

static void text_slot_clear(TextSlot *s) {
    free(s->text);
    free(s->a);
    memset(s, 0, sizeof *s);
}

// The rendered text at size px, from the cache or rendered now. NULL when it cannot be
// rendered (out of memory, font gone); an empty string gives a 0-wide slot.
static const TextSlot *text_get(Overlay *o, const char *text, int px) {
    px = iclamp(px, FONT_MIN, FONT_MAX);
    TextSlot *victim = &o->texts[0];
    for (int i = 0; i < NTEXTS; i++) {
        TextSlot *s = &o->texts[i];
        if (s->text && s->px == px && !strcmp(s->text, text)) {
            s->used = ++o->tick;
            return s;
        }
        if (!s->text || (victim->text && s->used < victim->used)) victim = s;
    }
    TTF_Font *f = font_get(o, px);
    if (!f) return NULL;
    text_slot_clear(victim);
    size_t len = strlen(text);
    victim->text = malloc(len + 1);
    if (!victim->text) return NULL;
    memcpy(victim->text, text, len + 1);
    victim->px = px;
    victim->h = TTF_FontHeight(f);
    victim->used = ++o->tick;
    if (len == 0) return victim;
    SDL_Color white = {255, 255, 255, 255};
    SDL_Surface *sf = TTF_RenderUTF8_Blended(f, text, white);
    if (!sf) {
        text_slot_clear(victim);
        return NULL;
    }
    int ok = sf->format->BytesPerPixel == 4 && sf->format->Amask != 0;
    victim->w = sf->w;
    victim->h = sf->h;
    victim->a = ok ? malloc((size_t)sf->w * sf->h) : NULL;
    if (victim->a && SDL_LockSurface(sf) == 0) {
        const SDL_PixelFormat *fmt = sf->format;
        for (int y = 0; y < sf->h; y++) {
            const uint32_t *row = (const uint32_t *)((const uint8_t *)sf->pixels + (size_t)y * sf->pitch);
            for (int x = 0; x < sf->w; x++)
                victim->a[(size_t)y * sf->w + x] = (uint8_t)((row[x] & fmt->Amask) >> fmt->Ashift);
        }
        SDL_UnlockSurface(sf);
    } else {
        ok = 0;
    }
    SDL_FreeSurface(sf);
    if (!ok) {
        text_slot_clear(victim);
        return NULL;
    }
    return victim;
}

static int text_width(Overlay *o, const char *text, int px) {
    const TextSlot *s = text_get(o, text, px);
    return s ? s->w : 0;
}

static int line_height(Overlay *o, int px) {
    TTF_Font *f = font_get(o, px);
    return f ? TTF_FontHeight(f) : px + px / 4;
}

// The colour as the image stores it: B, G, R for 3 channels, luma for 1 (as cv.h does).
static void colour_bytes(const Image *im, uint32_t rgb, uint8_t c[3]) {
    int r = (rgb >> 16) & 255, g = (rgb >> 8) & 255, b = rgb & 255;
    if (im->ch == 1) {
        c[0] = (uint8_t)lrint(0.299 * r + 0.587 * g + 0.114 * b);
    } else {
        c[0] = (uint8_t)b;
        c[1] = (uint8_t)g;
        c[2] = (uint8_t)r;
    }
}

// Blend the text's coverage in colour rgb with its top-left corner at (x, y), clipped.
static void text_blit(Image *im, const TextSlot *s, int x, int y, uint32_t rgb) {
    if (!s || !s->a) return;
    uint8_t c[3];
    colour_bytes(im, rgb, c);
    int x0 = imax(0, -x), x1 = imin(s->w, im->w - x);
    int y0 = imax(0, -y), y1 = imin(s->h, im->h - y);
    for (int ty = y0; ty < y1; ty++) {
        const uint8_t *a = s->a + (size_t)ty * s->w;
        uint8_t *d = image_row(im, y + ty) + (size_t)(x + x0) * im->ch;
        for (int tx = x0; tx < x1; tx++, d += im->ch) {
            int al = a[tx];
            if (!al) continue;
            for (int k = 0; k < im->ch; k++) d[k] = (uint8_t)((d[k] * (255 - al) + c[k] * al + 127) / 255);
        }
    }
}

static int draw_text(Overlay *o, Image *im, const char *text, int px, int x, int y, uint32_t rgb) {
    const TextSlot *s = text_get(o, text, px);
    text_blit(im, s, x, y, rgb);
    return s ? s->w : 0;
}

// A translucent rectangle: im = (1 - alpha) im + alpha rgb inside it (clipped).
static void shade_rect(Image *im, int x, int y, int w, int h, uint32_t rgb, double alpha) {
    uint8_t c[3];
    colour_bytes(im, rgb, c);
    int al = (int)lrint(alpha * 256);
    int x0 = imax(0, x), x1 = imin(im->w, x + w), y0 = imax(0, y), y1 = imin(im->h, y + h);
    for (int yy = y0; yy < y1; yy++) {
        uint8_t *d = image_row(im, yy) + (size_t)x0 * im->ch;
        for (int xx = x0; xx < x1; xx++, d += im->ch)
            for (int k = 0; k < im->ch; k++) d[k] = (uint8_t)((d[k] * (256 - al) + c[k] * al) >> 8);
    }
}

// Black or white, whichever reads better on rgb.
static uint32_t ink_on(uint32_t rgb) {
    double l = 0.299 * ((rgb >> 16) & 255) + 0.587 * ((rgb >> 8) & 255) + 0.114 * (rgb & 255);
    return l > 150 ? CV_BLACK : CV_WHITE;
}

Overlay *overlay_new(const OverlayConfig *cfg, char *err, size_t errlen) {
    OverlayConfig c = cfg ? *cfg : overlay_defaults();
    const char *path = c.font ? c.font : OVERLAY_FONT;
    Overlay *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    o->cfg = c;
    o->font_path = malloc(strlen(path) + 1);
    if (!o->font_path) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(o);
        return NULL;
    }
    strcpy(o->font_path, path);
    o->cfg.font = o->font_path;
    if (TTF_Init() != 0) {   // reference-counted: paired with TTF_Quit in overlay_free
        snprintf(err, errlen, "%s: cannot start SDL2_ttf: %s", path, TTF_GetError());
        free(o->font_path);
        free(o);
        return NULL;
    }
    if (!font_get(o, 16)) {
        snprintf(err, errlen, "%s: cannot open the font: %s", path, TTF_GetError());
        overlay_free(o);
        return NULL;
    }
    return o;
}

void overlay_free(Overlay *o) {
    if (!o) return;
    for (int i = 0; i < NTEXTS; i++) text_slot_clear(&o->texts[i]);
    for (int i = 0; i < NFONTS; i++)
        if (o->fonts[i].font) TTF_CloseFont(o->fonts[i].font);
    TTF_Quit();
    free(o->layout);
    free(o->font_path);
    free(o);
}

void overlay_set_bars(Overlay *o, int on) { o->cfg.bars = on != 0; }
int overlay_bars(const Overlay *o) { return o->cfg.bars; }

static int image_valid(const Image *im) {
    return im && im->px && im->w > 0 && im->h > 0 && (im->ch == 1 || im->ch == 3) &&
           im->stride >= im->w * im->ch;
}

typedef struct {
    int x, y, w, h;
} Rect;

// Where one face's pieces go: sizes from the face, the tag above the box, the bars beside it.
struct FaceLayout {
    int fs, th;            // label font size, box line thickness
    uint32_t col;          // the label's colour
    Rect box, tag, bars;   // bars.w == 0: no bars
    int bfs, rh, pad, namew;   // the bars' font size, row height, padding, name column
    char text[96];             // the tag's text: "#3  happy 87%"
};

static long overlap(Rect a, Rect b) {
    long w = (long)imin(a.x + a.w, b.x + b.w) - imax(a.x, b.x);
    long h = (long)imin(a.y + a.h, b.y + b.h) - imax(a.y, b.y);
    return w > 0 && h > 0 ? w * h : 0;
}

static Rect clamp_rect(Rect r, const Image *im) {
    r.x = iclamp(r.x, 0, imax(0, im->w - r.w));
    r.y = iclamp(r.y, 0, imax(0, im->h - r.h));
    return r;
}

static void layout_face(Overlay *o, const Image *im, const Track *t, FaceLayout *L) {
    Box b = t->box;
    memset(L, 0, sizeof *L);
    // the unit size: about an eighth of the face, within bounds set by the frame
    L->fs = iclamp((int)lrint(b.w * 0.12), imax(FONT_MIN + 2, im->h / 48), imax(FONT_MIN + 4, im->h / 14));
    L->th = imax(2, (L->fs + 4) / 8);
    L->col = t->label >= 0 && t->label < OVERLAY_CLASSES ? CLASS_COLOURS[t->label] : OVERLAY_NOLABEL;
    L->box = (Rect){b.x - L->th / 2, b.y - L->th / 2, b.w + L->th, b.h + L->th};
    // the tag: above the box, or inside its top edge when there is no room above
    if (t->label >= 0 && t->label < OVERLAY_CLASSES)
        snprintf(L->text, sizeof L->text, "#%d  %s %d%%", t->id, CLASS_NAMES[t->label],
                 (int)lrint(100.0 * t->probs[t->label]));
    else
        snprintf(L->text, sizeof L->text, "#%d", t->id);
    int pad = imax(2, L->fs / 4);
    L->tag.w = text_width(o, L->text, L->fs) + 2 * pad;
    L->tag.h = line_height(o, L->fs) + pad / 2;
    L->tag.x = iclamp(L->box.x, 0, imax(0, im->w - L->tag.w));
    L->tag.y = L->box.y - L->tag.h;
    if (L->tag.y < 0) L->tag.y = b.y + L->th / 2 + 1;
    if (!o->cfg.bars) return;
    L->bfs = imax(FONT_MIN, L->fs * 3 / 4);
    L->rh = line_height(o, L->bfs);
    L->pad = imax(2, L->bfs / 2);
    for (int k = 0; k < OVERLAY_CLASSES; k++) L->namew = imax(L->namew, text_width(o, CLASS_NAMES[k], L->bfs));
    L->bars.w = 4 * L->pad + L->namew + L->bfs * 4 + text_width(o, "100%", L->bfs);
    L->bars.h = 2 * L->pad + OVERLAY_CLASSES * L->rh;
}

// The bars go where they cover the least of the faces, their tags and the bars placed
// before them: right of the box, left, below or above (each kept inside the frame).
static void place_bars(const Image *im, FaceLayout *L, int n, int i) {
    FaceLayout *f = &L[i];
    int gap = imax(2, f->th);
    Rect r = f->bars, best = r;
    const Rect c[4] = {
        {f->box.x + f->box.w + gap, f->box.y, r.w, r.h},
        {f->box.x - gap - r.w, f->box.y, r.w, r.h},
        {f->box.x, f->box.y + f->box.h + gap, r.w, r.h},
        {f->box.x, imin(f->tag.y, f->box.y) - gap - r.h, r.w, r.h},
    };
    long best_cost = -1;
    for (int k = 0; k < 4; k++) {
        Rect p = clamp_rect(c[k], im);
        long cost = 0;
        for (int j = 0; j < n; j++) {
            cost += 4 * overlap(p, L[j].box) + 4 * overlap(p, L[j].tag);   // faces matter most
            if (j < i) cost += overlap(p, L[j].bars);
        }
        if (best_cost < 0 || cost < best_cost) {
            best_cost = cost;
            best = p;
        }
    }
    f->bars = best;
}

static void draw_bars(Overlay *o, Image *im, const Track *t, const FaceLayout *L) {
    Rect r = L->bars;
    shade_rect(im, r.x, r.y, r.w, r.h, CV_BLACK, 0.6);
    int barw = L->bfs * 4;
    int bx = r.x + 2 * L->pad + L->namew;
    int bh = imax(2, L->rh * 11 / 20), boff = (L->rh - bh) / 2;
    for (int k = 0; k < OVERLAY_CLASSES; k++) {
        int y = r.y + L->pad + k * L->rh;
        double p = t->label >= 0 ? t->probs[k] : 0;
        if (!(p >= 0)) p = 0;   // NaN too
        if (p > 1) p = 1;
        uint32_t ink = k == t->label ? CV_WHITE : 0xb0b0b0;
        draw_text(o, im, CLASS_NAMES[k], L->bfs, r.x + L->pad, y, ink);
        cv_fill_rect(im, bx, y + boff, barw, bh, 0x404040);
        cv_fill_rect(im, bx, y + boff, (int)lrint(barw * p), bh, CLASS_COLOURS[k]);
        char pct[16];
        snprintf(pct, sizeof pct, "%d%%", (int)lrint(100 * p));
        draw_text(o, im, pct, L->bfs, r.x + r.w - L->pad - text_width(o, pct, L->bfs), y, ink);
    }
}

static void draw_box_and_tag(Overlay *o, Image *im, const Track *t, const FaceLayout *L) {
    Box b = t->box;
    cv_draw_rect(im, b.x, b.y, b.w, b.h, L->col, L->th);
    int pad = imax(2, L->fs / 4);
    const TextSlot *s = text_get(o, L->text, L->fs);
    Rect r = L->tag;
    cv_fill_rect(im, r.x, r.y, r.w, r.h, L->col);
    text_blit(im, s, r.x + pad, r.y + pad / 4, ink_on(L->col));
}

// The stats panel, in a corner, clear of the n faces laid out in L where it can be.
static void draw_stats(Overlay *o, Image *im, const OverlayStats *st, const FaceLayout *L, int n) {
    int fs = iclamp(im->h / 30, FONT_MIN + 3, 40);
    int lh = line_height(o, fs), pad = imax(3, fs / 2);
    char lines[4][160];
    int nl = 0;
    if (st->dropped >= 0)
        snprintf(lines[nl++], sizeof lines[0], "%.1f fps   dropped %ld", st->fps, st->dropped);
    else
        snprintf(lines[nl++], sizeof lines[0], "%.1f fps", st->fps);
    // the stages, three to a line: "detect 10.3  crop 0.1  classify 2.2 ms"
    int i = 0;
    while (i < OVERLAY_STAGES && st->stage[i] && nl < 4) {
        size_t len = 0;
        lines[nl][0] = 0;
        for (int j = 0; j < 3 && i < OVERLAY_STAGES && st->stage[i]; j++, i++) {
            int k = snprintf(lines[nl] + len, sizeof lines[0] - len, "%s%s %.1f", j ? "  " : "",
                             st->stage[i], st->ms[i]);
            if (k > 0) len = imin((int)sizeof lines[0] - 1, (int)(len + (size_t)k));
        }
        snprintf(lines[nl] + len, sizeof lines[0] - len, " ms");
        nl++;
    }
    int w = 0;
    for (int k = 0; k < nl; k++) w = imax(w, text_width(o, lines[k], fs));
    // the corner that covers the least of the faces, their tags and bars (top-left first)
    Rect r = {0, 0, w + 2 * pad, nl * lh + 2 * pad}, best = r;
    long best_cost = -1;
    for (int c = 0; c < 4; c++) {
        Rect p = r;
        if (c & 1) p.x = imax(0, im->w - r.w);
        if (c & 2) p.y = imax(0, im->h - r.h);
        long cost = 0;
        for (int i = 0; i < n; i++)
            cost += overlap(p, L[i].box) + overlap(p, L[i].tag) + (L[i].bars.w ? overlap(p, L[i].bars) : 0);
        if (best_cost < 0 || cost < best_cost) {
            best_cost = cost;
            best = p;
        }
    }
    shade_rect(im, best.x, best.y, best.w, best.h, CV_BLACK, 0.6);
    for (int k = 0; k < nl; k++)
        draw_text(o, im, lines[k], fs, best.x + pad, best.y + pad + k * lh, k ? 0xe0e0e0 : CV_WHITE);
}

int overlay_draw(Overlay *o, Image *frame, const Track *tracks, int n, const OverlayStats *st) {
    if (!o || !image_valid(frame) || n < 0 || (n && !tracks)) return -1;
    if (n > o->layout_cap) {
        FaceLayout *l = realloc(o->layout, (size_t)n * sizeof *l);
        if (!l) return -1;
        o->layout = l;
        o->layout_cap = n;
    }
    FaceLayout *L = o->layout;
    for (int i = 0; i < n; i++) layout_face(o, frame, &tracks[i], &L[i]);
    // the bars first, then every box and tag over them: a tag is never hidden
    if (o->cfg.bars)
        for (int i = 0; i < n; i++) {
            place_bars(frame, L, n, i);
            draw_bars(o, frame, &tracks[i], &L[i]);
        }
    for (int i = 0; i < n; i++) draw_box_and_tag(o, frame, &tracks[i], &L[i]);
    if (st && o->cfg.stats) draw_stats(o, frame, st, L, n);
    return 0;
}

// Line k of a panel split at its first tab: the key column (copied into key) and the rest.
static const char *panel_split(const char *line, char *key, size_t keylen) {
    const char *tab = strchr(line, '\t');
    if (!tab) {
        key[0] = 0;
        return line;
    }
    snprintf(key, keylen, "%.*s", (int)(tab - line), line);
    return tab + 1;
}

int overlay_panel(Overlay *o, Image *frame, const char *const *lines, int n) {
    if (!o || !image_valid(frame) || n < 0 || (n && !lines)) return -1;
    if (n == 0) return 0;
    int fs = iclamp(frame->h / 26, FONT_MIN + 3, 44), tfs = fs * 5 / 4;
    int lh = line_height(o, fs), tlh = line_height(o, tfs), pad = fs;
    char key[128];
    int keyw = 0, restw = 0;
    for (int k = 1; k < n; k++) {
        const char *rest = panel_split(lines[k], key, sizeof key);
        if (key[0]) keyw = imax(keyw, text_width(o, key, fs) + fs);
        restw = imax(restw, text_width(o, rest, fs));
    }
    int w = imax(text_width(o, lines[0], tfs), keyw + restw);
    int pw = w + 2 * pad, ph = tlh + (n - 1) * lh + 2 * pad + (n > 1 ? fs / 2 : 0);
    int x = imax(0, (frame->w - pw) / 2), y = imax(0, (frame->h - ph) / 2);
    shade_rect(frame, x, y, pw, ph, CV_BLACK, 0.75);
    cv_draw_rect(frame, x, y, pw, ph, 0x808080, 1);
    draw_text(o, frame, lines[0], tfs, x + pad, y + pad, CV_WHITE);
    for (int k = 1; k < n; k++) {
        int ly = y + pad + tlh + fs / 2 + (k - 1) * lh;
        const char *rest = panel_split(lines[k], key, sizeof key);
        if (key[0]) draw_text(o, frame, key, fs, x + pad, ly, 0xffc107);
        draw_text(o, frame, rest, fs, x + pad + (key[0] ? keyw : 0), ly, 0xe0e0e0);
    }
    return 0;
}
