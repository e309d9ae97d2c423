// faces.h: finding faces, cutting them out the way FER2013 frames them, and following them
// from frame to frame.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cv.h"   // Image, Box {x, y, w, h}

// ---- detection: OpenCV's Haar cascade on a downscaled, equalised gray frame
typedef struct Detector Detector;

typedef struct {
    const char *cascade;     // NULL: haarcascade_frontalface_default.xml from opencv-data
    double scale;            // detection runs on the frame scaled by this (0 < scale <= 1);
                             // 0: auto, DETECT_WIDTH / frame width (at most 1): 0.25 at 640 px
    double scale_factor;     // detectMultiScale's scaleFactor (1.1)
    int min_neighbors;       // detectMultiScale's minNeighbors (5)
    int min_size;            // smallest face side in full-frame pixels (30); the cascade's
                             // own 24 px window makes the real minimum 24 / scale
    int equalize;            // equalizeHist the (scaled) gray frame before detecting (1)
} DetectorConfig;

// The auto scale's detection width: a 640x360 frame is searched at 160x90, so the smallest
// face found is 24 / 160 = 15% of the frame's width (96 px at 640). emocam-detect-bench
// measured the times that chose it (capture/bench_detect.c).
enum { DETECT_WIDTH = 160 };
#define DETECTOR_CASCADE "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

DetectorConfig detector_defaults(void);
// NULL with a one-line reason naming the cascade file (missing, or not a cascade).
Detector *detector_open(const DetectorConfig *cfg, char *err, size_t errlen);
// Faces in a BGR or gray frame, in full-frame coordinates, clipped to the frame, in OpenCV's
// order. Writes at most max boxes; returns how many it wrote, or -1 on error. With scale 1
// and equalize 0 this is exactly detectMultiScale(gray, scale_factor, min_neighbors, 0,
// Size(min_size, min_size)).
int detector_find(Detector *d, const Image *frame, Box *boxes, int max);
double detector_scale(const Detector *d, int frame_w);   // the scale used for this width
void detector_close(Detector *d);                        // NULL is fine

// ---- the crop: the detected box as found (the cascade's box frames a face as FER2013 does),
// widened by margin (a fraction of the side on each side; 0 by default), clipped to the frame,
// made gray, resized to 48x48 (INTER_AREA) and histogram-equalised like the FER2013 images.
// The result goes to the network through net_preprocess, the same function training uses.
// 0, or -1 when the box misses the frame.
int face_crop48(const Image *frame, Box b, double margin, uint8_t out[48 * 48]);

// ---- tracking: stable ids across frames, probabilities smoothed over time (pure C)
enum { TRACK_CLASSES = 7 };

typedef struct {
    int id;                  // 1, 2, 3, ... in order of appearance; never reused
    Box box;                 // this frame's detection
    float probs[TRACK_CLASSES];   // smoothed
    float raw[TRACK_CLASSES];     // this frame's
    int label;               // argmax of probs (-1 while no probabilities were given)
    int age, missed;         // frames seen, frames since last seen (0 for a returned track)
} Track;

typedef struct Tracker Tracker;

typedef struct {
    double smoothing;        // 0: no smoothing; 0.6: probs = 0.6 old + 0.4 new (default)
    double min_iou;          // a detection continues a track when their IoU is at least this (0.3)
    int max_missed;          // frames a track survives without a detection (5)
} TrackerConfig;

TrackerConfig tracker_defaults(void);
Tracker *tracker_new(const TrackerConfig *cfg);   // NULL when out of memory
// Match this frame's n boxes (with their probabilities, n x 7; probs may be NULL) to the
// tracks: pairs with IoU >= min_iou are taken greedily, highest IoU first; a detection left
// over starts a new track; a track missed for more than max_missed frames ends. Returns n, or
// -1 when out of memory; *tracks points to the n live tracks in the order of the boxes
// (tracks[i] is boxes[i]'s), valid until the next update.
int tracker_update(Tracker *t, const Box *boxes, const float *probs, int n, const Track **tracks);
int tracker_count(const Tracker *t);   // tracks alive, seen this frame or not
void tracker_free(Tracker *t);         // NULL is fine
