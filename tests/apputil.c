// apputil.c: see apputil.h.
#include "apputil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cv.h"
#include "source.h"
#include "model.h"
#include "testutil.h"

int run_prog(const char *prog, char *const args[], char *const env[], const char *out,
             const char *err, double timeout_s) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fo = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo >= 0) dup2(fo, 1);
        if (fe >= 0) dup2(fe, 2);
        for (int i = 0; env && env[i]; i++) {
            char name[256];
            const char *eq = strchr(env[i], '=');
            if (!eq || eq - env[i] >= (long)sizeof name) continue;
            snprintf(name, sizeof name, "%.*s", (int)(eq - env[i]), env[i]);
            setenv(name, eq + 1, 1);
        }
        execv(prog, args);
        _exit(127);
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        if (r < 0 && errno != EINTR) return -1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1000;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (n + 1 < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int count_lines(const char *text) {
    int n = 0;
    for (const char *p = text; p && *p; p++) n += *p == '\n';
    return n;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, part)) n++;
    closedir(d);
    return n;
}

const char *tmp_path(const char *name) {
    static char bufs[16][1024];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof bufs[0], "%s/%s", test_tmpdir(), name);
    return b;
}

int make_weights(const char *path, unsigned long long seed) {
    char err[EMO_ERRLEN];
    Net *net = net_parse_file(EMOCAM_SOURCE_DIR "/assets/models/simple_cnn_v1.arch", err, sizeof err);
    if (!net) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    Rng r;
    rng_seed(&r, seed);
    net_init(net, &r);
    int rc = net_save(net, path, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    net_free(net);
    return rc;
}

int make_video(const char *path, int w, int h, int n) {
    char err[EMO_ERRLEN];
    CvWriter *wr = cv_writer_open(path, w, h, 25, NULL, err, sizeof err);
    if (!wr) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    Image im;
    if (image_new(&im, w, h, 3)) {
        cv_writer_close(wr);
        return -1;
    }
    int rc = 0;
    for (int f = 0; f < n && rc == 0; f++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                unsigned char *p = image_row(&im, y) + 3 * x;
                p[0] = (unsigned char)(x + 3 * f);
                p[1] = (unsigned char)(y * 2);
                p[2] = (unsigned char)(x + y + 5 * f);
            }
        rc = cv_writer_write(wr, &im);
    }
    image_free(&im);
    if (cv_writer_close(wr)) rc = -1;
    return rc;
}

int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f)) rc = -1;
    return rc;
}

// ---- a strict JSON syntax check (RFC 8259), enough for the figures emocam prints
static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *jvalue(const char *p, int depth);

static const char *jstring(const char *p) {
    if (*p != '"') return NULL;
    for (p++; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) return NULL;
        }
    }
    return p + 1;
}

static const char *jnumber(const char *p) {
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
    else return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p;
}

static const char *jvalue(const char *p, int depth) {
    if (depth > 64) return NULL;
    p = ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                p = jstring(ws(p));
                if (!p) return NULL;
                p = ws(p);
                if (*p++ != ':') return NULL;
            }
            p = jvalue(p, depth + 1);
            if (!p) return NULL;
            p = ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (*p == '"') return jstring(p);
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    return jnumber(p);
}

int json_valid(const char *text) {
    const char *p = text ? jvalue(text, 0) : NULL;
    return p && *ws(p) == 0;
}

int one_line_error(const char *text) {
    return text && !strncmp(text, "emocam", 6) && count_lines(text) == 1 &&
           text[strlen(text) - 1] == '\n';
}

long video_frames(const char *path) {
    char err[512];
    SourceConfig sc = {.kind = SOURCE_VIDEO, .path = path};
    Source *s = source_open(&sc, err, sizeof err);
    if (!s) return -1;
    long n = 0;
    Frame f;
    while (source_read(s, &f, err, sizeof err) == 1) n++;
    source_close(s);
    return n;
}
