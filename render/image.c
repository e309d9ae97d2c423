// image.c: emocam image IN... [-o DIR]: annotated stills. Each input (image files, or folders
// of them) gives DIR/<name>.png, written atomically, and one line per face on stdout:
//
//   astronaut.png face 1 box 176,72 160x160 happy 0.93 angry 0.01 disgust 0.00 ...
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app.h"
#include "commands.h"
#include "source.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: emocam image IN... [-o DIR] [options]\n"
            "Annotates still images (files, or folders of them): writes DIR/<name>.png with each\n"
            "face's box, id, label and class bars, and prints one line per face: the image, face\n"
            "id, box x,y wxh, the label and its probability, then all 7 probabilities.\n\n"
            "  -o, --out DIR   the folder for the annotated images (created; default emocam-images)\n"
            "Faces are searched at the full resolution (--detect-scale 1) unless told otherwise.\n");
    app_options_help(to);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// 1 when a and b name the same existing file.
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// DIR/<stem of name>.png; a second image of the same stem in this run gets "-2", and so on.
static char *out_name(const char *dir, const char *name, char ***used, int *nused) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    int stem = (int)(dot && dot != base ? (size_t)(dot - base) : strlen(base));
    size_t len = strlen(dir) + (size_t)stem + 32;
    char *out = malloc(len);
    if (!out) return NULL;
    for (int n = 1;; n++) {
        if (n == 1) snprintf(out, len, "%s/%.*s.png", dir, stem, base);
        else snprintf(out, len, "%s/%.*s-%d.png", dir, stem, base, n);
        int taken = 0;
        for (int i = 0; i < *nused && !taken; i++) taken = !strcmp((*used)[i], out);
        if (!taken) break;
    }
    char **u = realloc(*used, (size_t)(*nused + 1) * sizeof *u);
    if (!u) {
        free(out);
        return NULL;
    }
    *used = u;
    u[(*nused)++] = out;
    return out;
}

int image_main(int argc, char **argv) {
    AppOptions ao = app_defaults();
    ao.smoothing = 0;      // stills: nothing to smooth over
    ao.detect_scale = 1;   // and no hurry: the cascade sees the full resolution
    const char *dir = "emocam-images";
    const char **ins = calloc((size_t)argc, sizeof *ins);
    int nin = 0;
    char err[EMO_ERRLEN];
    if (!ins) {
        fprintf(stderr, "emocam image: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = app_option(&ao, argc, argv, &i, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "emocam image: %s\n", err);
            free(ins);
            return 2;
        }
        if (rc > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(ins);
            return 0;
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                fprintf(stderr, "emocam image: option %s needs a folder\n", a);
                free(ins);
                return 2;
            }
            dir = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "emocam image: unknown option '%s' (emocam image --help)\n", a);
            free(ins);
            return 2;
        } else ins[nin++] = a;
    }
    if (nin == 0) {
        fprintf(stderr, "emocam image: no input images (usage: emocam image IN... [-o DIR])\n");
        free(ins);
        return 2;
    }

    int status = 1;
    Source *src = NULL;
    Recognizer rec = {0};
    Overlay *ov = NULL;
    char **used = NULL;
    int nused = 0;
    long images = 0, faces = 0;
    SourceConfig sc = {.kind = SOURCE_IMAGES, .paths = ins, .npaths = nin};
    if (!(src = source_open(&sc, err, sizeof err))) goto fail;
    if (recognizer_open(&rec, &ao, err, sizeof err)) goto fail;
    OverlayConfig oc = overlay_defaults();
    oc.bars = ao.bars;
    if (!(ov = overlay_new(&oc, err, sizeof err))) goto fail;
    if (!is_dir(dir) && mkdir(dir, 0755) != 0) {
        snprintf(err, sizeof err, "%s: cannot make the output folder: %s", dir, strerror(errno));
        goto fail;
    }
    for (;;) {
        Frame f;
        int rc = source_read(src, &f, err, sizeof err);
        if (rc < 0) goto fail;
        if (rc == 0) break;
        const char *name = f.name ? f.name : ins[0];
        Image im = {0};
        if (cv_convert(f.image, &im, 3)) {
            snprintf(err, sizeof err, "%s: out of memory", name);
            goto fail;
        }
        const Track *tracks;
        int n = recognizer_reset(&rec) ? -1 : recognizer_run(&rec, &im, &tracks, NULL);
        if (n < 0) {
            image_free(&im);
            snprintf(err, sizeof err, "%s: out of memory recognizing the faces", name);
            goto fail;
        }
        overlay_draw(ov, &im, tracks, n, NULL);
        char *out = out_name(dir, name, &used, &nused);
        if (!out) {
            image_free(&im);
            snprintf(err, sizeof err, "%s: out of memory", name);
            goto fail;
        }
        if (same_file(out, name)) {
            image_free(&im);
            snprintf(err, sizeof err, "%s: would overwrite the input %s; name another folder with -o", out, name);
            goto fail;
        }
        rc = cv_imwrite(out, &im, 0, err, sizeof err);
        image_free(&im);
        if (rc) goto fail;
        for (int i = 0; i < n; i++) {
            const Track *t = &tracks[i];
            printf("%s face %d box %d,%d %dx%d %s %.2f", name, t->id, t->box.x, t->box.y, t->box.w,
                   t->box.h, overlay_class_name(t->label), t->label >= 0 ? t->probs[t->label] : 0.0);
            for (int k = 0; k < OVERLAY_CLASSES; k++) printf(" %s %.2f", overlay_class_name(k), t->probs[k]);
            printf("\n");
        }
        if (n == 0) printf("%s no face\n", name);
        images++;
        faces += n;
    }
    if (images == 0) {
        snprintf(err, sizeof err, "%s: no images", ins[0]);
        goto fail;
    }
    fprintf(stderr, "%ld image%s, %ld face%s -> %s/\n", images, images == 1 ? "" : "s", faces,
            faces == 1 ? "" : "s", dir);
    status = fflush(stdout) == 0 ? 0 : 1;
    goto done;
fail:
    fprintf(stderr, "emocam image: %s\n", err);
done:
    for (int i = 0; i < nused; i++) free(used[i]);
    free(used);
    overlay_free(ov);
    recognizer_close(&rec);
    source_close(src);
    free(ins);
    return status;
}
