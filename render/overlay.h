// overlay.h: drawing the results over a frame. The window and the annotated files use this
// same code, so they look alike: per face the box, its id, the label with its probability, and
// a bar for each of the 7 classes; optionally the performance figures.
//
// Text is DejaVu Sans through SDL2_ttf (no display needed), alpha-blended into the Image;
// boxes and bars are cv_ drawing calls. Sizes follow the face and the frame, so a 320x180
// clip and a 4K one both read well. Not thread-safe: one Overlay per drawing thread.
#pragma once
#include <stdint.h>

#include "cv.h"
#include "faces.h"

enum { OVERLAY_CLASSES = 7 };
// "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral" (FER2013's order).
const char *overlay_class_name(int k);
// Each class's colour (0xRRGGBB): the box, the label tag and the bar of a face whose label
// is k. A face without probabilities (label -1) is drawn in OVERLAY_NOLABEL.
uint32_t overlay_class_colour(int k);
enum { OVERLAY_NOLABEL = 0xffffff };

typedef struct Overlay Overlay;

typedef struct {
    int bars;          // draw the 7 class bars (toggled by a key in the window)
    int stats;         // draw FPS and per-stage milliseconds
    const char *font;  // TrueType font; NULL: OVERLAY_FONT
} OverlayConfig;

#define OVERLAY_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

enum { OVERLAY_STAGES = 8 };

typedef struct {
    double fps;
    double ms[OVERLAY_STAGES];            // per stage
    const char *stage[OVERLAY_STAGES];    // their names ("decode", "detect", ...); a NULL
                                          // name ends the list
    long dropped;                         // < 0: not shown (a file has no dropped frames)
} OverlayStats;

OverlayConfig overlay_defaults(void);   // bars on, stats off, the default font
// NULL with a one-line reason naming the font file.
Overlay *overlay_new(const OverlayConfig *cfg, char *err, size_t errlen);
void overlay_set_bars(Overlay *o, int on);
int overlay_bars(const Overlay *o);
// Draw n faces (and the stats when st is given and stats are on) into a BGR or gray frame.
// 0, or -1 when the frame is not a valid image.
int overlay_draw(Overlay *o, Image *frame, const Track *tracks, int n, const OverlayStats *st);
// A panel of text lines centred on the frame (the window's help, "paused"): the first line
// is the title; a tab in a line splits it into two aligned columns ("q\tquit").
int overlay_panel(Overlay *o, Image *frame, const char *const *lines, int n);
void overlay_free(Overlay *o);   // NULL is fine
