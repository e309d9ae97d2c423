// cv.cpp: OpenCV behind an extern "C" API (see cv.h). No exception crosses this file: every
// entry point catches everything and returns -1.
#include "cv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <exception>
#include <stdexcept>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
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

}  // namespace

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

}  // extern "C"
