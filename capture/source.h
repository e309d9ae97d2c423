// source.h: where frames come from, behind one interface.
//
//   camera    a V4L2 device through libv4l2 (every pixel format converts to BGR)
//   video     a video file through OpenCV, as fast as it is read
//   realtime  a video file played at its own frame rate, as a camera delivers it (for live
//             use and tests without a camera): frames wait in a driver-like queue of 4, and
//             are dropped only when the reader falls so far behind that the queue is full
//   images    one image file, several, or a folder of them, through OpenCV
//
// Frames are BGR Images (capture/cv.h). A source owns the frame it returns; it stays valid
// until the next source_read or source_close.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cv.h"

typedef enum { SOURCE_CAMERA, SOURCE_VIDEO, SOURCE_REALTIME, SOURCE_IMAGES } SourceKind;

typedef struct {
    SourceKind kind;
    const char *path;        // device (NULL: /dev/video0), video file, image file or folder
    const char *const *paths;   // SOURCE_IMAGES: npaths files or folders (instead of path), may
    int npaths;                 // be NULL; a folder gives its image files sorted by name
    int width, height, fps;  // camera: requested size and rate (0: the device's default)
} SourceConfig;

typedef struct {
    const Image *image;      // BGR
    long index;              // frame number in the source (counts dropped frames too)
    double time;             // seconds: the frame's time stamp in the file, or since opening
    const char *name;        // SOURCE_IMAGES: the file the frame came from, else NULL
} Frame;

typedef struct Source Source;

// NULL with a one-line reason naming the device or file in err. With no camera present the
// reason says so and names the commands that take a file instead. Files are checked here:
// missing, empty, a folder with no images, or a file OpenCV cannot decode fails at open (the
// first frame or image is decoded now and is the first one read).
Source *source_open(const SourceConfig *cfg, char *err, size_t errlen);
// 1: a frame; 0: the end; -1: an error (err says why, naming the file).
// Realtime: the first read starts the clock; frame j is due j / fps later. A due frame takes
// one of 4 buffers, as a V4L2 camera's driver queue does, or is dropped (skipped without
// converting) when all 4 hold frames not yet read. A read returns the oldest queued frame,
// waiting until the next one is due when the queue is empty.
int source_read(Source *s, Frame *f, char *err, size_t errlen);
double source_fps(const Source *s);     // the source's nominal frame rate (0 if unknown)
long source_frames(const Source *s);    // frames in a file, images in the list (-1 if unknown)
long source_dropped(const Source *s);   // realtime and camera: frames skipped so far
int source_size(const Source *s, int *w, int *h);   // the first frame's (images may differ)
void source_close(Source *s);
