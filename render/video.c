// video.c: emocam video IN [-o OUT.mp4] [--csv F] [--jsonl F]: an annotated copy of a video
// and the faces' rows, written on three overlapping threads (pipeline.c). Every output is
// written under a temporary name and renamed when the whole video is done.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "commands.h"
#include "outfile.h"
#include "pipeline.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: emocam video IN [-o OUT.mp4] [--csv FILE] [--jsonl FILE] [options]\n"
            "Annotates the video IN: each face's box, id, label and class bars, drawn into\n"
            "OUT.mp4; per face and frame a CSV row and a JSON line (frame, time, face id, box\n"
            "x y w h, the 7 probabilities, the label). With none of -o, --csv and --jsonl it\n"
            "writes IN's name with .emocam.mp4 in the current folder.\n\n"
            "  -o, --out FILE      the annotated video (.mp4, .avi, .mkv or .mov)\n"
            "  --csv FILE          the face rows as CSV, with a header\n"
            "  --jsonl FILE        the face rows as JSON lines\n"
            "  --codec FOURCC      the video codec (mp4v)\n"
            "  --stats             draw FPS and per-stage milliseconds on the frames\n"
            "  --frames N          stop after N frames\n"
            "  --quiet             no progress bar\n");
    app_options_help(to);
}

// IN's file name without folder and extension, + suffix, in the current folder.
static char *default_out(const char *in, const char *suffix) {
    const char *base = strrchr(in, '/');
    base = base ? base + 1 : in;
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    size_t len = stem + strlen(suffix) + 1;
    char *out = malloc(len);
    if (out) snprintf(out, len, "%.*s%s", (int)stem, base, suffix);
    return out;
}

// 1 when a and b name the same existing file.
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int video_main(int argc, char **argv) {
    AppOptions ao = app_defaults();
    const char *in = NULL, *out = NULL, *csv = NULL, *jsonl = NULL, *codec = NULL;
    int stats = 0, quiet = 0;
    long max_frames = 0;
    char err[EMO_ERRLEN];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = app_option(&ao, argc, argv, &i, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "emocam video: %s\n", err);
            return 2;
        }
        if (rc > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        int needs = !strcmp(a, "-o") || !strcmp(a, "--out") || !strcmp(a, "--csv") ||
                    !strcmp(a, "--jsonl") || !strcmp(a, "--codec") || !strcmp(a, "--frames");
        if (needs && i + 1 >= argc) {
            fprintf(stderr, "emocam video: option %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = argv[++i];
        else if (!strcmp(a, "--csv")) csv = argv[++i];
        else if (!strcmp(a, "--jsonl")) jsonl = argv[++i];
        else if (!strcmp(a, "--codec")) {
            codec = argv[++i];
            if (strlen(codec) != 4) {
                fprintf(stderr, "emocam video: --codec '%s': want a four-letter code such as mp4v or avc1\n", codec);
                return 2;
            }
        } else if (!strcmp(a, "--frames")) {
            if (parse_long(argv[++i], 1, 1L << 40, &max_frames)) {
                fprintf(stderr, "emocam video: --frames '%s': want a number of frames (1 or more)\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--stats")) stats = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "emocam video: unknown option '%s' (emocam video --help)\n", a);
            return 2;
        } else if (in) {
            fprintf(stderr, "emocam video: one input video only ('%s' and '%s')\n", in, a);
            return 2;
        } else in = a;
    }
    if (!in) {
        fprintf(stderr, "emocam video: no input video (usage: emocam video IN [-o OUT.mp4] [--csv F] [--jsonl F])\n");
        return 2;
    }
    char *out_default = NULL;
    if (!out && !csv && !jsonl) {
        out = out_default = default_out(in, ".emocam.mp4");
        if (!out) {
            fprintf(stderr, "emocam video: out of memory\n");
            return 1;
        }
    }
    const char *outs[3] = {out, csv, jsonl};
    for (int k = 0; k < 3; k++) {
        if (outs[k] && same_file(outs[k], in)) {
            fprintf(stderr, "emocam video: %s: is the input video; name another output\n", outs[k]);
            free(out_default);
            return 2;
        }
        for (int j = 0; j < k; j++)
            if (outs[k] && outs[j] && !strcmp(outs[k], outs[j])) {
                fprintf(stderr, "emocam video: %s: named as two outputs\n", outs[k]);
                free(out_default);
                return 2;
            }
    }

    volatile sig_atomic_t *stop = app_catch_signals();
    int status = 1;
    Source *src = NULL;
    Recognizer rec = {0};
    Overlay *ov = NULL;
    CvWriter *wr = NULL;
    OutFile fo = {0}, fc = {0}, fj = {0};
    Pipeline p = {0};

    SourceConfig sc = {.kind = SOURCE_VIDEO, .path = in};
    if (!(src = source_open(&sc, err, sizeof err))) goto fail;
    if (recognizer_open(&rec, &ao, err, sizeof err)) goto fail;
    OverlayConfig oc = overlay_defaults();
    oc.bars = ao.bars;
    oc.stats = stats;
    if (!(ov = overlay_new(&oc, err, sizeof err))) goto fail;
    if (csv && outfile_open(&fc, csv, 1, err, sizeof err)) goto fail;
    if (jsonl && outfile_open(&fj, jsonl, 1, err, sizeof err)) goto fail;
    if (out) {
        if (outfile_open(&fo, out, 0, err, sizeof err)) goto fail;
        int w, h;
        source_size(src, &w, &h);
        double fps = source_fps(src) > 0 ? source_fps(src) : 25;
        if (!(wr = cv_writer_open(fo.tmp, w, h, fps, codec, err, sizeof err))) {
            // name the output as the user gave it, not its temporary name
            const char *why = strstr(err, ": ");
            char msg[EMO_ERRLEN];
            snprintf(msg, sizeof msg, "%s%s", out, why ? why : ": cannot write video");
            snprintf(err, sizeof err, "%s", msg);
            goto fail;
        }
    }
    if (fc.f) pipeline_csv_header(fc.f);

    p.src = src;
    p.rec = &rec;
    p.ov = ov;
    p.wr = wr;
    p.csv = fc.f;
    p.jsonl = fj.f;
    p.max_frames = max_frames;
    p.progress = !quiet && isatty(STDERR_FILENO);
    p.stop = stop;
    if (pipeline_run(&p)) {
        snprintf(err, sizeof err, "%s: %s", in, p.err);
        goto fail;
    }
    if (p.frames == 0) {
        snprintf(err, sizeof err, "%s: no frames could be decoded", in);
        goto fail;
    }
    int wr_rc = cv_writer_close(wr);
    wr = NULL;
    if (wr_rc) {
        snprintf(err, sizeof err, "%s: cannot finish the video file", out);
        goto fail;
    }
    if (out && outfile_commit(&fo, err, sizeof err)) goto fail;
    if (csv && outfile_commit(&fc, err, sizeof err)) goto fail;
    if (jsonl && outfile_commit(&fj, err, sizeof err)) goto fail;
    fprintf(stderr, "%s: %ld frames, %ld face rows, %d face id%s, %.1f fps (%.2f s)", in, p.frames,
            p.faces, p.max_id, p.max_id == 1 ? "" : "s", p.frames / (p.wall_s > 0 ? p.wall_s : 1),
            p.wall_s);
    for (int k = 0; k < 3; k++)
        if (outs[k]) fprintf(stderr, "%s %s", k == 0 ? " ->" : ",", outs[k]);
    fprintf(stderr, "\n");
    status = 0;
    goto done;
fail:
    fprintf(stderr, "emocam video: %s\n", err);
    if (*stop) status = 130;
done:
    cv_writer_close(wr);
    outfile_abort(&fo);   // no-ops after a commit
    outfile_abort(&fc);
    outfile_abort(&fj);
    pipeline_free(&p);
    overlay_free(ov);
    recognizer_close(&rec);
    source_close(src);
    free(out_default);
    return status;
}
