// cv.cpp: OpenCV behind an extern "C" API (see cv.h). No exception crosses this file: every
// entry point catches everything and returns -1.
#include "cv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <exception>
#include <stdexcept>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/videoio.hpp>
#include <string>
#include <vector>

extern "C" {
#include "tfile.h"   // write_atomic
}

namespace {

bool image_ok(const Image *im) {
    return im && im->px && im->w > 0 && im->h > 0 && (im->ch == 1 || im->ch == 3) &&
           im->stride >= im->w * im->ch;
}

// A cv::Mat header over the Image's pixels (no copy).
cv::Mat wrap(const Image *im) {
    return cv::Mat(im->h, im->w, CV_8UC(im->ch), im->px, (size_t)im->stride);
}

// Copy a Mat (CV_8UC1 or CV_8UC3) into a new Image.
int from_mat(const cv::Mat &m, Image *out) {
    if (m.depth() != CV_8U || (m.channels() != 1 && m.channels() != 3)) return -1;
    if (image_new(out, m.cols, m.rows, m.channels())) return -1;
    cv::Mat dst = wrap(out);
    m.copyTo(dst);
    return 0;
}

cv::Scalar colour(const Image *im, uint32_t rgb) {
    double r = (rgb >> 16) & 255, g = (rgb >> 8) & 255, b = rgb & 255;
    if (im->ch == 1) return cv::Scalar(0.299 * r + 0.587 * g + 0.114 * b);
    return cv::Scalar(b, g, r);
}

// The channel conversion of src to ch channels, as a Mat (may share src's pixels).
cv::Mat as_channels(const Image *src, int ch) {
    cv::Mat m = wrap(src), c;
    if (src->ch == ch) return m;
    cv::cvtColor(m, c, ch == 1 ? cv::COLOR_BGR2GRAY : cv::COLOR_GRAY2BGR);
    return c;
}

enum { SHIFT = 4 };   // sub-pixel bits for the anti-aliased shapes
cv::Point fixpt(float x, float y) {
    return cv::Point((int)lrintf(x * (1 << SHIFT)), (int)lrintf(y * (1 << SHIFT)));
}

void say(char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
    if (err && errlen) snprintf(err, errlen, fmt, a, b);
}

// A file we are about to hand to OpenCV: it must exist, be a regular file, be readable and
// (unless empty_ok) hold at least one byte. OpenCV's own failures say none of this.
int check_file(const char *path, const char *what, char *err, size_t errlen) {
    struct stat st;
    if (!path || !*path) {
        if (err && errlen) snprintf(err, errlen, "no %s file given", what);
        return -1;
    }
    if (stat(path, &st) != 0) {
        say(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        say(err, errlen, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a folder, not a file" : "not a regular file");
        return -1;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        say(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    if (st.st_size == 0) {
        if (err && errlen) snprintf(err, errlen, "%s: empty file (0 bytes), not a %s", path, what);
        return -1;
    }
    return 0;
}

// Any 2-D Mat (8/16-bit or float; 1, 3 or 4 channels) into an 8-bit BGR Image, reusing
// out's pixels when the size already matches. -1 for an empty or unconvertible Mat.
int to_bgr8(const cv::Mat &m, Image *out) {
    if (m.empty() || m.dims != 2 || m.cols <= 0 || m.rows <= 0) return -1;
    cv::Mat d8;
    switch (m.depth()) {
    case CV_8U: d8 = m; break;
    case CV_16U: m.convertTo(d8, CV_8U, 1.0 / 256); break;
    case CV_32F:
    case CV_64F: m.convertTo(d8, CV_8U, 255.0); break;
    default: return -1;
    }
    cv::Mat bgr;
    switch (d8.channels()) {
    case 1: cv::cvtColor(d8, bgr, cv::COLOR_GRAY2BGR); break;
    case 3: bgr = d8; break;
    case 4: cv::cvtColor(d8, bgr, cv::COLOR_BGRA2BGR); break;
    default: return -1;
    }
    if (!(out->px && out->w == bgr.cols && out->h == bgr.rows && out->ch == 3)) {
        image_free(out);
        if (image_new(out, bgr.cols, bgr.rows, 3)) return -1;
    }
    cv::Mat dst = wrap(out);
    bgr.copyTo(dst);
    return dst.data == out->px ? 0 : -1;
}

int copy_boxes(const std::vector<cv::Rect> &r, Box *boxes, int max) {
    for (size_t i = 0; i < r.size() && (int)i < max; i++)
        boxes[i] = Box{r[i].x, r[i].y, r[i].width, r[i].height};
    return (int)r.size();
}

}  // namespace

struct CvCapture {
    cv::VideoCapture cap;
    std::string path;
    double fps = 0;
    long frames = -1, grabbed = 0;
    int w = 0, h = 0;
};

struct CvWriter {
    cv::VideoWriter vw;
    int w = 0, h = 0;
};

struct CvCascade {
    cv::CascadeClassifier cc;
};

extern "C" {

int image_new(Image *im, int w, int h, int ch) {
    memset(im, 0, sizeof *im);
    if (w <= 0 || h <= 0 || (ch != 1 && ch != 3) || (long long)w * h > (1LL << 28)) return -1;
    im->px = (unsigned char *)calloc((size_t)w * h, (size_t)ch);
    if (!im->px) return -1;
    im->w = w;
    im->h = h;
    im->ch = ch;
    im->stride = w * ch;
    return 0;
}

void image_free(Image *im) {
    if (!im) return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

int cv_imread(const char *path, int ch, Image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (ch != 1 && ch != 3) {
        say(err, errlen, "%s: cannot decode to %s channels", path, "other than 1 or 3");
        return -1;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        say(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        say(err, errlen, "%s: %s", path, "not a regular file");
        return -1;
    }
    if (st.st_size == 0) {
        say(err, errlen, "%s: %s", path, "empty file (0 bytes), not an image");
        return -1;
    }
    try {
        cv::Mat m = cv::imread(path, ch == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
        if (m.empty()) {
            say(err, errlen, "%s: %s", path, "not an image OpenCV can decode (corrupt or unknown format)");
            return -1;
        }
        if (from_mat(m, out)) {
            say(err, errlen, "%s: %s", path, "out of memory decoding the image");
            return -1;
        }
        return 0;
    } catch (const std::exception &e) {
        image_free(out);
        say(err, errlen, "%s: cannot decode: %s", path, e.what());
    } catch (...) {
        image_free(out);
        say(err, errlen, "%s: %s", path, "cannot decode (unknown error)");
    }
    return -1;
}

int cv_imwrite(const char *path, const Image *im, int jpeg_quality, char *err, size_t errlen) {
    const char *dot = strrchr(path, '.');
    const char *ext = NULL;
    if (dot && !strcasecmp(dot, ".png")) ext = ".png";
    if (dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))) ext = ".jpg";
    if (!ext) {
        say(err, errlen, "%s: %s", path, "unknown image type (want .png, .jpg or .jpeg)");
        return -1;
    }
    if (!image_ok(im)) {
        say(err, errlen, "%s: %s", path, "invalid image to write");
        return -1;
    }
    try {
        std::vector<uchar> buf;
        std::vector<int> params;
        if (ext[1] == 'j') params = {cv::IMWRITE_JPEG_QUALITY, jpeg_quality > 0 && jpeg_quality <= 100 ? jpeg_quality : 95};
        else params = {cv::IMWRITE_PNG_COMPRESSION, 6};
        if (!cv::imencode(ext, wrap(im), buf, params)) {
            say(err, errlen, "%s: %s", path, "OpenCV could not encode the image");
            return -1;
        }
        return write_atomic(path, buf.data(), buf.size(), err, errlen);
    } catch (const std::exception &e) {
        say(err, errlen, "%s: cannot encode: %s", path, e.what());
    } catch (...) {
        say(err, errlen, "%s: %s", path, "cannot encode (unknown error)");
    }
    return -1;
}

int cv_resize(const Image *src, Image *out, int w, int h, int interp) {
    memset(out, 0, sizeof *out);
    int flag = interp == CV_RESIZE_AREA     ? cv::INTER_AREA
               : interp == CV_RESIZE_LINEAR ? cv::INTER_LINEAR
               : interp == CV_RESIZE_NEAREST ? cv::INTER_NEAREST
                                             : -1;
    if (!image_ok(src) || flag < 0 || image_new(out, w, h, src->ch)) return -1;
    try {
        cv::Mat dst = wrap(out);
        cv::resize(wrap(src), dst, cv::Size(w, h), 0, 0, flag);
        if (dst.data != out->px) throw std::runtime_error("resize reallocated");
        return 0;
    } catch (...) {
        image_free(out);
    }
    return -1;
}

int cv_convert(const Image *src, Image *out, int ch) {
    memset(out, 0, sizeof *out);
    if (!image_ok(src) || (ch != 1 && ch != 3)) return -1;
    try {
        return from_mat(as_channels(src, ch), out);
    } catch (...) {
        image_free(out);
    }
    return -1;
}

int cv_paste(Image *im, const Image *src, int x, int y) {
    if (!image_ok(im) || !image_ok(src)) return -1;
    try {
        cv::Mat s = as_channels(src, im->ch), d = wrap(im);
        cv::Rect r = cv::Rect(x, y, s.cols, s.rows) & cv::Rect(0, 0, d.cols, d.rows);
        if (r.empty()) return 0;
        s(cv::Rect(r.x - x, r.y - y, r.width, r.height)).copyTo(d(r));
        return 0;
    } catch (...) {
    }
    return -1;
}

int cv_blend(Image *im, const Image *src, double alpha) {
    if (!image_ok(im) || !image_ok(src) || im->w != src->w || im->h != src->h) return -1;
    try {
        cv::Mat d = wrap(im);
        cv::addWeighted(d, 1 - alpha, as_channels(src, im->ch), alpha, 0, d);
        return d.data == im->px ? 0 : -1;
    } catch (...) {
    }
    return -1;
}

int cv_colormap(const Image *gray, Image *out, int cmap) {
    memset(out, 0, sizeof *out);
    static const int MAPS[] = {cv::COLORMAP_JET, cv::COLORMAP_VIRIDIS, cv::COLORMAP_INFERNO,
                               cv::COLORMAP_TURBO, cv::COLORMAP_HOT, -1};
    if (!image_ok(gray) || gray->ch != 1 || cmap < 0 || cmap > CV_CMAP_GRAY) return -1;
    try {
        if (cmap == CV_CMAP_GRAY) return cv_convert(gray, out, 3);
        if (image_new(out, gray->w, gray->h, 3)) return -1;
        cv::Mat d = wrap(out);
        cv::applyColorMap(wrap(gray), d, MAPS[cmap]);
        if (d.data != out->px) throw std::runtime_error("colormap reallocated");
        return 0;
    } catch (...) {
        image_free(out);
    }
    return -1;
}

int cv_heatmap(const float *v, int w, int h, float lo, float hi, int cmap, int out_w, int out_h,
               Image *out) {
    memset(out, 0, sizeof *out);
    if (!v || w <= 0 || h <= 0 || out_w <= 0 || out_h <= 0) return -1;
    Image g = {}, big = {};
    if (image_new(&g, w, h, 1)) return -1;
    float span = hi > lo ? hi - lo : 1;
    for (int i = 0; i < w * h; i++) {
        float t = (v[i] - lo) / span * 255.0f + 0.5f;
        g.px[i] = (unsigned char)(t < 0 ? 0 : t > 255 ? 255 : t);   // NaN -> 0
    }
    int rc = cv_resize(&g, &big, out_w, out_h, CV_RESIZE_LINEAR);
    if (rc == 0) rc = cv_colormap(&big, out, cmap);
    image_free(&g);
    image_free(&big);
    return rc;
}

int cv_fill_rect(Image *im, int x, int y, int w, int h, uint32_t rgb) {
    if (!image_ok(im)) return -1;
    if (w <= 0 || h <= 0) return 0;
    try {
        cv::Mat d = wrap(im);
        cv::Rect r = cv::Rect(x, y, w, h) & cv::Rect(0, 0, d.cols, d.rows);
        if (!r.empty()) d(r).setTo(colour(im, rgb));
        return 0;
    } catch (...) {
    }
    return -1;
}

int cv_draw_rect(Image *im, int x, int y, int w, int h, uint32_t rgb, int thickness) {
    if (!image_ok(im) || thickness < 1) return -1;
    if (w <= 0 || h <= 0) return 0;
    try {
        cv::Mat d = wrap(im);
        cv::rectangle(d, cv::Rect(x, y, w, h), colour(im, rgb), thickness, cv::LINE_8);
        return 0;
    } catch (...) {
    }
    return -1;
}

int cv_draw_line(Image *im, float x0, float y0, float x1, float y1, uint32_t rgb, int thickness) {
    if (!image_ok(im) || thickness < 1) return -1;
    try {
        cv::Mat d = wrap(im);
        cv::line(d, fixpt(x0, y0), fixpt(x1, y1), colour(im, rgb), thickness, cv::LINE_AA, SHIFT);
        return 0;
    } catch (...) {
    }
    return -1;
}

int cv_draw_polyline(Image *im, const float *xy, int n, int closed, uint32_t rgb, int thickness) {
    if (!image_ok(im) || thickness < 1 || n < 0 || (n && !xy)) return -1;
    if (n < 2) return 0;
    try {
        std::vector<cv::Point> p((size_t)n);
        for (int i = 0; i < n; i++) p[(size_t)i] = fixpt(xy[2 * i], xy[2 * i + 1]);
        cv::Mat d = wrap(im);
        cv::polylines(d, p, closed != 0, colour(im, rgb), thickness, cv::LINE_AA, SHIFT);
        return 0;
    } catch (...) {
    }
    return -1;
}

int cv_draw_circle(Image *im, float cx, float cy, float r, uint32_t rgb, int thickness) {
    if (!image_ok(im) || r < 0 || thickness == 0) return -1;
    try {
        cv::Mat d = wrap(im);
        cv::circle(d, fixpt(cx, cy), (int)lrintf(r * (1 << SHIFT)), colour(im, rgb),
                   thickness < 0 ? cv::FILLED : thickness, cv::LINE_AA, SHIFT);
        return 0;
    } catch (...) {
    }
    return -1;
}

int cv_draw_text(Image *im, const char *text, int x, int y, double scale, uint32_t rgb,
                 int thickness) {
    if (!image_ok(im) || !text || scale <= 0 || thickness < 1) return -1;
    try {
        cv::Mat d = wrap(im);
        cv::putText(d, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, scale, colour(im, rgb),
                    thickness, cv::LINE_AA);
        return 0;
    } catch (...) {
    }
    return -1;
}

int cv_text_size(const char *text, double scale, int thickness, int *w, int *h, int *baseline) {
    if (!text || scale <= 0 || thickness < 1) return -1;
    try {
        int base = 0;
        cv::Size s = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &base);
        if (w) *w = s.width;
        if (h) *h = s.height;
        if (baseline) *baseline = base;
        return 0;
    } catch (...) {
    }
    return -1;
}

CvCapture *cv_capture_open(const char *path, char *err, size_t errlen) {
    if (check_file(path, "video", err, errlen)) return NULL;
    // FFmpeg's own log would repeat our one-line error ("moov atom not found") and chatter
    // about recoverable decoding glitches; quiet it unless the user has set a level. Read once,
    // at OpenCV's first FFmpeg use.
    setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", 0);
    CvCapture *c = NULL;
    try {
        c = new CvCapture();
        c->path = path;
        // FFmpeg only: the image-sequence backend would take "frame_001.png" for a video.
        if (!c->cap.open(path, cv::CAP_FFMPEG) || !c->cap.isOpened()) {
            say(err, errlen, "%s: %s", path, "not a video OpenCV can decode (corrupt, unknown format or no video stream)");
            delete c;
            return NULL;
        }
        c->fps = c->cap.get(cv::CAP_PROP_FPS);
        if (!(c->fps > 0 && c->fps < 1000)) c->fps = 0;
        double n = c->cap.get(cv::CAP_PROP_FRAME_COUNT);
        c->frames = n > 0 && n < 1e12 ? (long)n : -1;
        c->w = (int)c->cap.get(cv::CAP_PROP_FRAME_WIDTH);
        c->h = (int)c->cap.get(cv::CAP_PROP_FRAME_HEIGHT);
        if (c->w <= 0 || c->h <= 0) {
            if (err && errlen) snprintf(err, errlen, "%s: video frames have no size (%dx%d)", path, c->w, c->h);
            delete c;
            return NULL;
        }
        return c;
    } catch (const std::exception &e) {
        say(err, errlen, "%s: cannot open video: %s", path, e.what());
    } catch (...) {
        say(err, errlen, "%s: %s", path, "cannot open video (unknown error)");
    }
    delete c;
    return NULL;
}

int cv_capture_grab(CvCapture *c, double *t) {
    if (!c) return 0;
    try {
        if (!c->cap.grab()) return 0;
        c->grabbed++;
        if (t) {
            // The frame's presentation time; files without one count frames at the nominal rate.
            double ms = c->cap.get(cv::CAP_PROP_POS_MSEC);
            *t = ms >= 0 && std::isfinite(ms) && (ms > 0 || c->grabbed == 1) ? ms / 1000
                 : c->fps > 0 ? (double)(c->grabbed - 1) / c->fps : 0;
        }
        return 1;
    } catch (...) {
    }
    return 0;
}

int cv_capture_retrieve(CvCapture *c, Image *frame, char *err, size_t errlen) {
    if (!c || !frame) return -1;
    try {
        cv::Mat m;
        if (!c->cap.retrieve(m) || m.empty()) {
            if (err && errlen) snprintf(err, errlen, "%s: frame %ld is empty (zero-sized)", c->path.c_str(), c->grabbed - 1);
            return -1;
        }
        if (to_bgr8(m, frame)) {
            if (err && errlen)
                snprintf(err, errlen, "%s: frame %ld: cannot convert a %dx%d frame of %d channel(s), depth %d, to BGR",
                         c->path.c_str(), c->grabbed - 1, m.cols, m.rows, m.channels(), m.depth());
            return -1;
        }
        return 0;
    } catch (const std::exception &e) {
        if (err && errlen) snprintf(err, errlen, "%s: frame %ld: %s", c->path.c_str(), c->grabbed - 1, e.what());
    } catch (...) {
        if (err && errlen) snprintf(err, errlen, "%s: frame %ld: cannot decode", c->path.c_str(), c->grabbed - 1);
    }
    return -1;
}

double cv_capture_fps(const CvCapture *c) { return c ? c->fps : 0; }
long cv_capture_frames(const CvCapture *c) { return c ? c->frames : -1; }

void cv_capture_size(const CvCapture *c, int *w, int *h) {
    if (w) *w = c ? c->w : 0;
    if (h) *h = c ? c->h : 0;
}

void cv_capture_close(CvCapture *c) {
    try {
        delete c;
    } catch (...) {
    }
}

CvCascade *cv_cascade_open(const char *path, char *err, size_t errlen) {
    if (check_file(path, "cascade", err, errlen)) return NULL;
    CvCascade *c = NULL;
    try {
        c = new CvCascade();
        if (c->cc.load(path) && !c->cc.empty()) return c;
        say(err, errlen, "%s: %s", path, "not a cascade classifier OpenCV can load");
    } catch (const cv::Exception &e) {
        say(err, errlen, "%s: not a cascade classifier OpenCV can load: %s", path, e.err.c_str());
    } catch (...) {
        say(err, errlen, "%s: %s", path, "not a cascade classifier OpenCV can load");
    }
    delete c;
    return NULL;
}

int cv_cascade_detect(CvCascade *c, const Image *gray, double scale_factor, int min_neighbors,
                      int min_size, Box *boxes, int max) {
    if (!c || !image_ok(gray) || gray->ch != 1 || !(scale_factor > 1) || min_neighbors < 0 ||
        min_size < 0 || max < 0 || (max && !boxes))
        return -1;
    try {
        std::vector<cv::Rect> r;
        c->cc.detectMultiScale(wrap(gray), r, scale_factor, min_neighbors, 0,
                               cv::Size(min_size, min_size));
        return copy_boxes(r, boxes, max);
    } catch (...) {
    }
    return -1;
}

void cv_cascade_close(CvCascade *c) {
    try {
        delete c;
    } catch (...) {
    }
}

int cv_cascade_reference(const char *cascade, const char *image, double scale_factor,
                         int min_neighbors, int min_size, Box *boxes, int max, char *err,
                         size_t errlen) {
    try {
        cv::CascadeClassifier cc;
        if (!cc.load(cascade)) {
            say(err, errlen, "%s: %s", cascade, "cannot load the cascade");
            return -1;
        }
        cv::Mat bgr = cv::imread(image, cv::IMREAD_COLOR), gray;
        if (bgr.empty()) {
            say(err, errlen, "%s: %s", image, "cannot read the image");
            return -1;
        }
        cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
        std::vector<cv::Rect> r;
        cc.detectMultiScale(gray, r, scale_factor, min_neighbors, 0, cv::Size(min_size, min_size));
        return copy_boxes(r, boxes, max);
    } catch (const std::exception &e) {
        say(err, errlen, "%s: %s", image, e.what());
    } catch (...) {
        say(err, errlen, "%s: %s", image, "detection failed");
    }
    return -1;
}

int cv_equalize(Image *gray) {
    if (!image_ok(gray) || gray->ch != 1) return -1;
    try {
        cv::Mat m = wrap(gray), eq;
        cv::equalizeHist(m, eq);
        eq.copyTo(m);
        return m.data == gray->px ? 0 : -1;
    } catch (...) {
    }
    return -1;
}


CvWriter *cv_writer_open(const char *path, int w, int h, double fps, const char *fourcc,
                         char *err, size_t errlen) {
    const char *cc = fourcc && *fourcc ? fourcc : "mp4v";
    if (!path || !*path) {
        if (err && errlen) snprintf(err, errlen, "no output video file given");
        return NULL;
    }
    if (w <= 0 || h <= 0 || !(fps > 0 && fps <= 1000) || strlen(cc) != 4) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot write %dx%d video at %g fps with codec '%s'", path, w, h, fps, cc);
        return NULL;
    }
    CvWriter *wr = NULL;
    try {
        wr = new CvWriter();
        wr->w = w;
        wr->h = h;
        int code = cv::VideoWriter::fourcc(cc[0], cc[1], cc[2], cc[3]);
        if (!wr->vw.open(path, cv::CAP_FFMPEG, code, fps, cv::Size(w, h), true) || !wr->vw.isOpened()) {
            say(err, errlen, "%s: cannot write video (%s)", path,
                "the folder is not writable, or FFmpeg has no such container or codec");
            delete wr;
            return NULL;
        }
        return wr;
    } catch (const std::exception &e) {
        say(err, errlen, "%s: cannot write video: %s", path, e.what());
    } catch (...) {
        say(err, errlen, "%s: %s", path, "cannot write video (unknown error)");
    }
    delete wr;
    return NULL;
}

int cv_writer_write(CvWriter *wr, const Image *frame) {
    if (!wr || !image_ok(frame) || frame->w != wr->w || frame->h != wr->h) return -1;
    try {
        wr->vw.write(as_channels(frame, 3));
        return 0;
    } catch (...) {
    }
    return -1;
}

int cv_writer_close(CvWriter *wr) {
    if (!wr) return 0;
    int rc = 0;
    try {
        wr->vw.release();
    } catch (...) {
        rc = -1;
    }
    delete wr;
    return rc;
}

}  // extern "C"
