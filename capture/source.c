// source.c: frames from a camera (V4L2 through libv4l2), a video file (OpenCV), a video file
// played in real time, or image files (see source.h).
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#ifdef EMOCAM_HAVE_V4L2
#include <fcntl.h>
#include <libv4l2.h>
#include <linux/videodev2.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <unistd.h>
#endif

enum { CAMERA_BUFFERS = 4, CAMERA_TIMEOUT_S = 2 };

#define FILE_COMMANDS "emocam --realtime FILE (a video played in real time) or emocam video FILE"

struct Source {
    SourceKind kind;
    char *path;           // for messages
    Image frame;          // (h, w*3) BGR: the frame last returned
    long index;           // the next frame's number
    long dropped;
    double fps;
    long frames;
    int w, h;
    double t_open;        // monotonic seconds at source_open
    int pending;          // the first frame, read by source_open, is waiting in frame
    double pending_t;
    // video, realtime
    CvCapture *cap;
    // realtime: a camera's driver queue. Frame j is due at start + j / fps; a due frame takes a
    // free buffer, or is dropped when all CAMERA_BUFFERS hold frames the reader has not taken.
    double start;         // monotonic time of the first read (frame 0 due)
    long cap_next;        // the next frame to become due
    long queue[CAMERA_BUFFERS];   // frames captured, not yet read, oldest first
    int qhead, qlen;
    // images
    char **files;         // (nfiles) owned
    int nfiles;
    // camera
    int fd;
    struct {
        void *start;
        size_t length;
    } bufs[CAMERA_BUFFERS];
    int nbufs, streaming, stride;
    long last_seq;        // -1 before the first frame
    double ts0;           // the first frame's driver time stamp
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_until(double t) {
    struct timespec ts = {.tv_sec = (time_t)t, .tv_nsec = (long)((t - (double)(time_t)t) * 1e9)};
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

// ---- video files (and their real-time playback)

static int video_open(Source *s, char *err, size_t errlen) {
    s->cap = cv_capture_open(s->path, err, errlen);
    if (!s->cap) return -1;
    s->fps = cv_capture_fps(s->cap);
    s->frames = cv_capture_frames(s->cap);
    cv_capture_size(s->cap, &s->w, &s->h);
    if (s->kind == SOURCE_REALTIME && s->fps <= 0) {
        snprintf(err, errlen, "%s: the video has no frame rate to play it at (use emocam video FILE)", s->path);
        return -1;
    }
    // Decode the first frame now, so that a file OpenCV opens but cannot decode fails here.
    if (!cv_capture_grab(s->cap, &s->pending_t)) {
        snprintf(err, errlen, "%s: the video has no frames OpenCV can decode", s->path);
        return -1;
    }
    if (cv_capture_retrieve(s->cap, &s->frame, err, errlen)) return -1;
    s->w = s->frame.w;
    s->h = s->frame.h;
    s->pending = 1;
    return 0;
}

// Realtime: simulate the driver up to now: every frame due by now goes into a free buffer or
// is dropped. Only reads free buffers, so doing this at each read is exact.
static void realtime_capture(Source *s, double now) {
    while ((s->frames < 0 || s->cap_next < s->frames) && s->start + s->cap_next / s->fps <= now) {
        if (s->qlen < CAMERA_BUFFERS)
            s->queue[(s->qhead + s->qlen++) % CAMERA_BUFFERS] = s->cap_next;
        else
            s->dropped++;
        s->cap_next++;
    }
}

static int video_read(Source *s, Frame *f, char *err, size_t errlen) {
    double t;
    if (s->pending) {
        s->pending = 0;
        t = s->pending_t;
        if (s->kind == SOURCE_REALTIME) {   // the clock starts with the first read
            s->start = now_s();
            s->cap_next = 1;
        }
    } else {
        if (s->kind == SOURCE_REALTIME) {
            // The oldest captured frame, waiting for the next one to be due when none is.
            // Past the container's frame count (when it undercounts) frames come as read.
            realtime_capture(s, now_s());
            long want = s->index;
            if (!s->qlen && (s->frames < 0 || s->cap_next < s->frames)) {
                sleep_until(s->start + s->cap_next / s->fps);
                realtime_capture(s, s->start + s->cap_next / s->fps);
            }
            if (s->qlen) {
                want = s->queue[s->qhead];
                s->qhead = (s->qhead + 1) % CAMERA_BUFFERS;
                s->qlen--;
            }
            for (; s->index < want; s->index++)   // dropped frames: skipped, not converted
                if (!cv_capture_grab(s->cap, &t)) return 0;
        }
        if (!cv_capture_grab(s->cap, &t)) return 0;
        if (cv_capture_retrieve(s->cap, &s->frame, err, errlen)) return -1;
    }
    f->image = &s->frame;
    f->index = s->index++;
    f->time = t;
    f->name = NULL;
    return 1;
}

// ---- image files

static int has_image_ext(const char *name) {
    static const char *EXT[] = {"png", "jpg", "jpeg", "jpe", "bmp", "dib", "tif", "tiff", "webp",
                                "pbm", "pgm", "ppm", "pnm", "pam", "pxm", "sr", "ras", "jp2",
                                "exr", "hdr", "pic", NULL};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (int i = 0; EXT[i]; i++)
        if (!strcasecmp(dot + 1, EXT[i])) return 1;
    return 0;
}

static int add_file(Source *s, int *cap, char *path) {
    if (!path) return -1;
    if (s->nfiles == *cap) {
        int c = *cap ? *cap * 2 : 16;
        char **p = realloc(s->files, (size_t)c * sizeof *p);
        if (!p) {
            free(path);
            return -1;
        }
        s->files = p;
        *cap = c;
    }
    s->files[s->nfiles++] = path;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// A folder's image files (by extension; hidden files skipped), sorted by name.
static int add_folder(Source *s, int *cap, const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open folder: %s", dir, strerror(errno));
        return -1;
    }
    int first = s->nfiles;
    size_t dl = strlen(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name)) continue;
        size_t n = dl + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (p) snprintf(p, n, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", e->d_name);
        struct stat st;
        if (p && stat(p, &st) == 0 && !S_ISREG(st.st_mode)) {   // a folder named x.png
            free(p);
            continue;
        }
        if (add_file(s, cap, p)) {
            closedir(d);
            snprintf(err, errlen, "%s: out of memory listing the folder", dir);
            return -1;
        }
    }
    closedir(d);
    if (s->nfiles == first) {
        snprintf(err, errlen, "%s: no image files in the folder (.png, .jpg, .bmp, .tif, .webp, ...)", dir);
        return -1;
    }
    qsort(s->files + first, (size_t)(s->nfiles - first), sizeof *s->files, cmp_str);
    return 0;
}

static int images_open(Source *s, const SourceConfig *cfg, char *err, size_t errlen) {
    int n = cfg->npaths > 0 && cfg->paths ? cfg->npaths : 1;
    const char *const *list = cfg->npaths > 0 && cfg->paths ? cfg->paths : &cfg->path;
    int cap = 0;
    for (int i = 0; i < n; i++) {
        const char *p = list[i];
        struct stat st;
        if (!p || !*p) {
            snprintf(err, errlen, "no image file or folder given");
            return -1;
        }
        if (stat(p, &st) != 0) {
            snprintf(err, errlen, "%s: cannot open: %s", p, strerror(errno));
            return -1;
        }
        if (S_ISDIR(st.st_mode) ? add_folder(s, &cap, p, err, errlen) : add_file(s, &cap, dupstr(p))) {
            if (!S_ISDIR(st.st_mode)) snprintf(err, errlen, "%s: out of memory", p);
            return -1;
        }
    }
    s->frames = s->nfiles;
    // Decode the first image now, for its size and so that a bad first file fails here.
    if (cv_imread(s->files[0], 3, &s->frame, err, errlen)) return -1;
    s->w = s->frame.w;
    s->h = s->frame.h;
    s->pending = 1;
    return 0;
}

static int images_read(Source *s, Frame *f, char *err, size_t errlen) {
    if (s->index >= s->nfiles) return 0;
    const char *name = s->files[s->index];
    if (s->pending) {
        s->pending = 0;
    } else {
        image_free(&s->frame);
        // cv_imread decodes any depth and channel count (16-bit, gray, BGRA) to 8-bit BGR.
        if (cv_imread(name, 3, &s->frame, err, errlen)) return -1;
    }
    f->image = &s->frame;
    f->index = s->index++;
    f->time = now_s() - s->t_open;
    f->name = name;
    return 1;
}

// ---- camera: V4L2 through libv4l2, which converts every camera format to BGR24

#ifdef EMOCAM_HAVE_V4L2
static int no_camera(const char *dev, const char *why, char *err, size_t errlen) {
    glob_t g;
    memset(&g, 0, sizeof g);
    int any = glob("/dev/video*", 0, NULL, &g) == 0 && g.gl_pathc > 0;
    snprintf(err, errlen, "%s: no camera there (%s); %s%s; for a video file instead run " FILE_COMMANDS,
             dev, why, any ? "cameras here start at " : "this machine has no camera (no /dev/video*)",
             any ? g.gl_pathv[0] : "");
    globfree(&g);
    return -1;
}

static int xioctl(int fd, unsigned long req, void *arg) {
    int r;
    do r = v4l2_ioctl(fd, req, arg);
    while (r == -1 && errno == EINTR);
    return r;
}

static int camera_fail(Source *s, const char *what, char *err, size_t errlen) {
    snprintf(err, errlen, "%s: %s: %s", s->path, what, strerror(errno));
    return -1;
}

static int camera_open(Source *s, const SourceConfig *cfg, char *err, size_t errlen) {
    s->fd = -1;
    s->last_seq = -1;
    struct stat st;
    if (stat(s->path, &st) != 0) return no_camera(s->path, strerror(errno), err, errlen);
    if (!S_ISCHR(st.st_mode)) return no_camera(s->path, "not a device file", err, errlen);
    // Plain open and VIDIOC_QUERYCAP first: libv4l2 prints its own complaints about devices
    // that are not cameras, and ours says it in one line.
    int fd = open(s->path, O_RDWR | O_NONBLOCK);
    if (fd < 0) return camera_fail(s, "cannot open the camera", err, errlen);
    struct v4l2_capability cap = {0};
    int r;
    do r = ioctl(fd, VIDIOC_QUERYCAP, &cap);
    while (r == -1 && errno == EINTR);
    if (r == -1) {
        int e = errno;
        close(fd);
        errno = e;
        return camera_fail(s, "not a V4L2 camera", err, errlen);
    }
    uint32_t caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
    if (!(caps & V4L2_CAP_VIDEO_CAPTURE) || !(caps & V4L2_CAP_STREAMING)) {
        close(fd);
        snprintf(err, errlen, "%s: not a video capture device with streaming I/O (%s)", s->path,
                 (const char *)cap.card);
        return -1;
    }
    s->fd = v4l2_fd_open(fd, 0);   // from here on libv4l2 converts formats
    if (s->fd < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return camera_fail(s, "libv4l2 cannot take the camera", err, errlen);
    }

    // Ask for BGR24 at the requested size; the driver (through libv4l2) picks the nearest.
    struct v4l2_format fmt = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
    if (xioctl(s->fd, VIDIOC_G_FMT, &fmt) == -1) return camera_fail(s, "VIDIOC_G_FMT", err, errlen);
    fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_BGR24;
    fmt.fmt.pix.field = V4L2_FIELD_ANY;
    if (cfg->width > 0 && cfg->height > 0) {
        fmt.fmt.pix.width = (uint32_t)cfg->width;
        fmt.fmt.pix.height = (uint32_t)cfg->height;
    }
    fmt.fmt.pix.bytesperline = 0;   // let the driver choose
    if (xioctl(s->fd, VIDIOC_S_FMT, &fmt) == -1) return camera_fail(s, "cannot set BGR24 format", err, errlen);
    if (fmt.fmt.pix.pixelformat != V4L2_PIX_FMT_BGR24) {
        snprintf(err, errlen, "%s: the camera cannot deliver BGR24 frames, even through libv4l2", s->path);
        return -1;
    }
    s->w = (int)fmt.fmt.pix.width;
    s->h = (int)fmt.fmt.pix.height;
    s->stride = (int)fmt.fmt.pix.bytesperline;
    if (s->stride < s->w * 3) s->stride = s->w * 3;
    if (s->w <= 0 || s->h <= 0 || image_new(&s->frame, s->w, s->h, 3)) {
        snprintf(err, errlen, "%s: unusable frame size %dx%d", s->path, s->w, s->h);
        return -1;
    }

    // Frame rate: set it where the driver allows, then read back what we got.
    struct v4l2_streamparm parm = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
    if (cfg->fps > 0 && xioctl(s->fd, VIDIOC_G_PARM, &parm) == 0 &&
        (parm.parm.capture.capability & V4L2_CAP_TIMEPERFRAME)) {
        parm.parm.capture.timeperframe.numerator = 1;
        parm.parm.capture.timeperframe.denominator = (uint32_t)cfg->fps;
        xioctl(s->fd, VIDIOC_S_PARM, &parm);   // a refusal keeps the device's rate
    }
    memset(&parm, 0, sizeof parm);
    parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(s->fd, VIDIOC_G_PARM, &parm) == 0 && parm.parm.capture.timeperframe.numerator)
        s->fps = (double)parm.parm.capture.timeperframe.denominator / parm.parm.capture.timeperframe.numerator;

    // Memory-mapped streaming buffers, all queued, then start.
    struct v4l2_requestbuffers req = {.count = CAMERA_BUFFERS, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                      .memory = V4L2_MEMORY_MMAP};
    if (xioctl(s->fd, VIDIOC_REQBUFS, &req) == -1) return camera_fail(s, "cannot get streaming buffers", err, errlen);
    if (req.count < 2) {
        snprintf(err, errlen, "%s: the camera gave %u streaming buffer(s), need 2", s->path, req.count);
        return -1;
    }
    if (req.count > CAMERA_BUFFERS) req.count = CAMERA_BUFFERS;   // drivers may only raise it
    for (unsigned i = 0; i < req.count; i++) {
        struct v4l2_buffer buf = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP, .index = i};
        if (xioctl(s->fd, VIDIOC_QUERYBUF, &buf) == -1) return camera_fail(s, "VIDIOC_QUERYBUF", err, errlen);
        void *p = v4l2_mmap(NULL, buf.length, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, buf.m.offset);
        if (p == MAP_FAILED) return camera_fail(s, "cannot map a frame buffer", err, errlen);
        s->bufs[i].start = p;
        s->bufs[i].length = buf.length;
        s->nbufs++;
        if (xioctl(s->fd, VIDIOC_QBUF, &buf) == -1) return camera_fail(s, "VIDIOC_QBUF", err, errlen);
    }
    enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(s->fd, VIDIOC_STREAMON, &type) == -1) return camera_fail(s, "cannot start streaming", err, errlen);
    s->streaming = 1;
    return 0;
}

static int camera_read(Source *s, Frame *f, char *err, size_t errlen) {
    struct v4l2_buffer buf;
    for (;;) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(s->fd, &fds);
        struct timeval tv = {.tv_sec = CAMERA_TIMEOUT_S};
        int r = select(s->fd + 1, &fds, NULL, NULL, &tv);
        if (r == -1 && errno == EINTR) continue;
        if (r == -1) return camera_fail(s, "select", err, errlen);
        if (r == 0) {
            snprintf(err, errlen, "%s: no frame from the camera in %d s", s->path, CAMERA_TIMEOUT_S);
            return -1;
        }
        memset(&buf, 0, sizeof buf);
        buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        buf.memory = V4L2_MEMORY_MMAP;
        if (xioctl(s->fd, VIDIOC_DQBUF, &buf) == -1) {
            if (errno == EAGAIN) continue;
            return camera_fail(s, "cannot dequeue a frame", err, errlen);
        }
        if (buf.index >= (unsigned)s->nbufs) {
            snprintf(err, errlen, "%s: the driver returned buffer %u of %d", s->path, buf.index, s->nbufs);
            return -1;
        }
        size_t need = (size_t)s->stride * (size_t)(s->h - 1) + (size_t)s->w * 3;
        size_t used = buf.bytesused ? buf.bytesused : s->bufs[buf.index].length;
        if (!(buf.flags & V4L2_BUF_FLAG_ERROR) && used >= need && s->bufs[buf.index].length >= need) break;
        // a corrupt or short frame: give the buffer back and wait for the next (its sequence
        // number will show as a gap)
        if (xioctl(s->fd, VIDIOC_QBUF, &buf) == -1) return camera_fail(s, "VIDIOC_QBUF", err, errlen);
    }
    const unsigned char *src = s->bufs[buf.index].start;
    for (int y = 0; y < s->h; y++)
        memcpy(image_row(&s->frame, y), src + (size_t)y * s->stride, (size_t)s->w * 3);
    double ts = (double)buf.timestamp.tv_sec + buf.timestamp.tv_usec * 1e-6;
    // Frames skipped (by the driver, or corrupt ones above) show as gaps in the sequence numbers.
    if (s->last_seq < 0) {
        s->ts0 = ts;
    } else if ((long)buf.sequence > s->last_seq + 1) {
        long gap = (long)buf.sequence - s->last_seq - 1;
        s->dropped += gap;
        s->index += gap;
    }
    s->last_seq = (long)buf.sequence;
    if (xioctl(s->fd, VIDIOC_QBUF, &buf) == -1) return camera_fail(s, "VIDIOC_QBUF", err, errlen);
    f->image = &s->frame;
    f->index = s->index++;
    f->time = ts - s->ts0;
    f->name = NULL;
    return 1;
}

static void camera_close(Source *s) {
    if (s->fd < 0) return;
    if (s->streaming) {
        enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        xioctl(s->fd, VIDIOC_STREAMOFF, &type);
    }
    for (int i = 0; i < s->nbufs; i++) v4l2_munmap(s->bufs[i].start, s->bufs[i].length);
    v4l2_close(s->fd);
    s->fd = -1;
}
#else
static int camera_open(Source *s, const SourceConfig *cfg, char *err, size_t errlen) {
    (void)cfg;
    s->fd = -1;
    snprintf(err, errlen, "%s: this emocam was built without libv4l2 (install libv4l-dev and rebuild); "
             "for a video file instead run " FILE_COMMANDS, s->path);
    return -1;
}
static int camera_read(Source *s, Frame *f, char *err, size_t errlen) {
    (void)s, (void)f, (void)err, (void)errlen;
    return -1;
}
static void camera_close(Source *s) { (void)s; }
#endif

// ---- the interface

Source *source_open(const SourceConfig *cfg, char *err, size_t errlen) {
    char dummy[1];
    if (!err || !errlen) err = dummy, errlen = sizeof dummy;
    if (!cfg) {
        snprintf(err, errlen, "no source given");
        return NULL;
    }
    const char *path = cfg->path;
    if (cfg->kind == SOURCE_IMAGES && cfg->npaths > 0 && cfg->paths) path = cfg->paths[0];
    if (cfg->kind == SOURCE_CAMERA && !path) path = "/dev/video0";
    if (!path || !*path) {
        snprintf(err, errlen, "no %s given", cfg->kind == SOURCE_IMAGES ? "image file or folder" : "video file");
        return NULL;
    }
    Source *s = calloc(1, sizeof *s);
    if (!s || !(s->path = dupstr(path))) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(s);
        return NULL;
    }
    s->kind = cfg->kind;
    s->fd = -1;
    s->frames = -1;
    s->t_open = now_s();
    int rc;
    switch (cfg->kind) {
    case SOURCE_CAMERA: rc = camera_open(s, cfg, err, errlen); break;
    case SOURCE_VIDEO:
    case SOURCE_REALTIME: rc = video_open(s, err, errlen); break;
    case SOURCE_IMAGES: rc = images_open(s, cfg, err, errlen); break;
    default: snprintf(err, errlen, "%s: unknown source kind %d", path, (int)cfg->kind); rc = -1;
    }
    if (rc) {
        source_close(s);
        return NULL;
    }
    return s;
}

int source_read(Source *s, Frame *f, char *err, size_t errlen) {
    char dummy[1];
    if (!err || !errlen) err = dummy, errlen = sizeof dummy;
    if (!s || !f) return -1;
    switch (s->kind) {
    case SOURCE_CAMERA: return camera_read(s, f, err, errlen);
    case SOURCE_VIDEO:
    case SOURCE_REALTIME: return video_read(s, f, err, errlen);
    case SOURCE_IMAGES: return images_read(s, f, err, errlen);
    }
    return -1;
}

double source_fps(const Source *s) { return s ? s->fps : 0; }
long source_frames(const Source *s) { return s ? s->frames : -1; }
long source_dropped(const Source *s) { return s ? s->dropped : 0; }

int source_size(const Source *s, int *w, int *h) {
    if (!s) return -1;
    if (w) *w = s->w;
    if (h) *h = s->h;
    return 0;
}

void source_close(Source *s) {
    if (!s) return;
    if (s->kind == SOURCE_CAMERA) camera_close(s);
    cv_capture_close(s->cap);
    for (int i = 0; i < s->nfiles; i++) free(s->files[i]);
    free(s->files);
    image_free(&s->frame);
    free(s->path);
    free(s);
}
