// cv.h: the C face of OpenCV (capture/cv.cpp is the project's only C++ file).
//
// Images are plain C structs holding 8-bit pixels: 1 channel (gray) or 3 (BGR, OpenCV's
// order). Functions that take `Image *out` allocate it (free it with image_free); functions
// that take `Image *im` draw into an image the caller owns. Everything returns 0 on success or
// -1 on failure; where a file is involved the message in err names it. No C++ exception
// leaves cv.cpp.
//
// Colours are 0xRRGGBB. On a gray image a colour draws as its luma (0.299 R + 0.587 G +
// 0.114 B), so CV_WHITE is 255 and CV_BLACK 0 there.
//
// Naming: every function is cv_<thing>_<verb> or cv_<verb>; the live recognizer's video
// capture, cascades and video writer will join as cv_capture_*, cv_cascade_* and cv_writer_*,
// each behind an opaque handle.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int w, h, ch;        // width, height, channels (1 gray, 3 BGR)
    int stride;          // bytes from one row to the next (>= w * ch)
    unsigned char *px;   // (h, stride) bytes, row-major
} Image;

// A w x h image of ch (1 or 3) channels, tightly packed (stride w*ch), set to zero.
// 0, or -1 when the size is invalid or memory runs out (im is then zeroed).
int image_new(Image *im, int w, int h, int ch);
void image_free(Image *im);   // frees the pixels and zeroes the struct; NULL or zeroed is fine
static inline unsigned char *image_row(const Image *im, int y) { return im->px + (size_t)y * im->stride; }

enum { CV_BLACK = 0x000000, CV_WHITE = 0xffffff };

// ---- files
// Decode an image file to ch channels (1: 8-bit gray, 3: BGR), whatever it holds.
int cv_imread(const char *path, int ch, Image *out, char *err, size_t errlen);
// Encode to PNG or JPEG, chosen by the extension (.png, .jpg, .jpeg; any case), in memory,
// then write the file atomically (write_atomic). jpeg_quality 1..100 (0: 95); PNG ignores it.
int cv_imwrite(const char *path, const Image *im, int jpeg_quality, char *err, size_t errlen);

// ---- geometry and colour
enum { CV_RESIZE_AREA = 0, CV_RESIZE_LINEAR = 1, CV_RESIZE_NEAREST = 2 };
// out = src resized to w x h (INTER_AREA, INTER_LINEAR or INTER_NEAREST), same channels.
int cv_resize(const Image *src, Image *out, int w, int h, int interp);
// out = src converted to ch channels (gray <-> BGR; a plain copy when they match).
int cv_convert(const Image *src, Image *out, int ch);
// Copy src into im with its top-left corner at (x, y), converting channels as needed and
// clipping to im.
int cv_paste(Image *im, const Image *src, int x, int y);
// im = (1 - alpha) * im + alpha * src, both the same size; src's channels are converted.
int cv_blend(Image *im, const Image *src, double alpha);

enum { CV_CMAP_JET = 0, CV_CMAP_VIRIDIS, CV_CMAP_INFERNO, CV_CMAP_TURBO, CV_CMAP_HOT, CV_CMAP_GRAY };
// A gray image through a colour map (cv::applyColorMap) to a BGR image.
int cv_colormap(const Image *gray, Image *out, int cmap);
// A w x h float map (row-major, e.g. a class-activation map) to a BGR heat map of out_w x
// out_h: values are scaled so lo -> 0 and hi -> 255 (clamped), resized bilinearly, coloured.
int cv_heatmap(const float *v, int w, int h, float lo, float hi, int cmap, int out_w, int out_h,
               Image *out);

// ---- drawing (anti-aliased where it applies; shapes are clipped to the image)
int cv_fill_rect(Image *im, int x, int y, int w, int h, uint32_t rgb);
int cv_draw_rect(Image *im, int x, int y, int w, int h, uint32_t rgb, int thickness);
int cv_draw_line(Image *im, float x0, float y0, float x1, float y1, uint32_t rgb, int thickness);
// n points (xy: x0 y0 x1 y1 ..., sub-pixel), joined; closed joins the last to the first.
int cv_draw_polyline(Image *im, const float *xy, int n, int closed, uint32_t rgb, int thickness);
// thickness < 0 fills the circle.
int cv_draw_circle(Image *im, float cx, float cy, float r, uint32_t rgb, int thickness);
// Text in the Hershey simplex font; (x, y) is the left end of the baseline. scale 1 is about
// 22 pixels from baseline to cap height.
int cv_draw_text(Image *im, const char *text, int x, int y, double scale, uint32_t rgb,
                 int thickness);
// The box the text would occupy: width, height above the baseline, and depth below it.
int cv_text_size(const char *text, double scale, int thickness, int *w, int *h, int *baseline);

// ---- video files (cv::VideoCapture through FFmpeg)
typedef struct CvCapture CvCapture;
// Open a video file. NULL with a one-line reason naming the file: missing, not a regular file,
// empty, or nothing OpenCV can decode as video. FFmpeg's own messages on stderr are silenced
// (OPENCV_FFMPEG_LOGLEVEL=-8, unless the environment sets it).
CvCapture *cv_capture_open(const char *path, char *err, size_t errlen);
// Advance to the next frame without converting it (cheap: for skipping). 1: a frame, its
// time stamp in the file in *t (seconds; may be NULL); 0: the end of the file.
int cv_capture_grab(CvCapture *c, double *t);
// The grabbed frame as 8-bit BGR into *frame, which is reallocated only when its size
// changes (start with a zeroed Image; free it with image_free). Other depths and channel
// counts convert; an empty frame is an error naming the file.
int cv_capture_retrieve(CvCapture *c, Image *frame, char *err, size_t errlen);
double cv_capture_fps(const CvCapture *c);     // nominal frames per second (0 if unknown)
long cv_capture_frames(const CvCapture *c);    // frame count from the container (-1 if unknown)
void cv_capture_size(const CvCapture *c, int *w, int *h);
void cv_capture_close(CvCapture *c);           // NULL is fine

// ---- Haar cascades (cv::CascadeClassifier)
typedef struct {
    int x, y, w, h;
} Box;
typedef struct CvCascade CvCascade;
// Load a cascade XML file. NULL with a reason naming the file (missing, or not a cascade).
CvCascade *cv_cascade_open(const char *path, char *err, size_t errlen);
// detectMultiScale(gray, boxes, scale_factor, min_neighbors, 0, Size(min_size, min_size))
// on an 8-bit gray image as given (no resizing or equalisation). Writes up to max boxes in
// OpenCV's order; returns how many were found (may exceed max), or -1.
int cv_cascade_detect(CvCascade *c, const Image *gray, double scale_factor, int min_neighbors,
                      int min_size, Box *boxes, int max);
void cv_cascade_close(CvCascade *c);           // NULL is fine
// The reference, all in OpenCV as a Python user would write it: imread (colour),
// cvtColor to gray, detectMultiScale(gray, scale_factor, min_neighbors, minSize) with a
// freshly loaded cascade. Returns the number of faces (boxes as above), or -1 (err says why).
int cv_cascade_reference(const char *cascade, const char *image, double scale_factor,
                         int min_neighbors, int min_size, Box *boxes, int max, char *err,
                         size_t errlen);

// In-place histogram equalisation of a gray image (cv::equalizeHist).
int cv_equalize(Image *gray);

// ---- video writing (cv::VideoWriter through FFmpeg)
typedef struct CvWriter CvWriter;
// Write w x h frames at fps to path: the container comes from the extension (.mp4, .avi,
// .mkv, .mov), the codec from fourcc (NULL: "mp4v", MPEG-4 part 2, which every player reads).
// The file is written under the name given; for an atomic output pass a temporary name and
// rename it once cv_writer_close succeeds. NULL with a one-line reason naming the file.
CvWriter *cv_writer_open(const char *path, int w, int h, double fps, const char *fourcc,
                         char *err, size_t errlen);
// Append a frame: BGR or gray, of the writer's size. 0 or -1.
int cv_writer_write(CvWriter *wr, const Image *frame);
// Finish the file (the container's index is written here) and free the writer. 0, or -1
// when finishing failed. NULL is fine.
int cv_writer_close(CvWriter *wr);

#ifdef __cplusplus
}
#endif
