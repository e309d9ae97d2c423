// test_emocam_cli.c: the emocam program on inputs this test makes itself (random weights, a
// synthetic video without faces), so it needs neither ../shared nor a display.
//   - every bad input or argument: the exit status (2 for usage, 1 otherwise), a one-line
//     message naming the file or argument, and no output file (nor temporary file) left;
//   - `emocam video` writes a readable mp4 of the same frame count and a CSV of the header
//     alone (no faces); `emocam bench` prints valid JSON with every stage;
//   - an interrupted `emocam video` leaves either complete outputs or none.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apputil.h"
#include "model.h"
#include "source.h"
#include "testutil.h"

#ifndef EMOCAM_BIN
#error "EMOCAM_BIN must name the emocam executable"
#endif

static const char *OUT, *ERR;   // the last run's stdout and stderr files

static int emocam(char *const args[]) { return run_prog(EMOCAM_BIN, args, NULL, OUT, ERR, 300); }

// Expect status `want` and a one-line message containing `names`; print what went wrong.
static void expect_error(const char *what, char *const args[], int want, const char *names) {
    int rc = emocam(args);
    char *e = slurp(ERR, NULL);
    CHECK(rc == want, "%s: exit %d, want %d (stderr: %s)", what, rc, want, e ? e : "");
    CHECK(one_line_error(e), "%s: not a one-line message: [%s]", what, e ? e : "");
    CHECK(e && strstr(e, names), "%s: message does not name '%s': %s", what, names, e ? e : "");
    free(e);
}


int main(void) {
    OUT = strdup(tmp_path("stdout.txt"));
    ERR = strdup(tmp_path("stderr.txt"));
    char *dir = strdup(test_tmpdir());
    char *W = strdup(tmp_path("net.weights")), *CLIP = strdup(tmp_path("clip.mp4"));
    char *EMPTY = strdup(tmp_path("empty.mp4")), *TEXT = strdup(tmp_path("text.mp4"));
    char *LIST = strdup(tmp_path("three.txt")), *BADLIST = strdup(tmp_path("bad.txt"));
    char *NOTCASCADE = strdup(tmp_path("notcascade.xml")), *EMPTYDIR = strdup(tmp_path("nothing"));
    char *IMG = strdup(tmp_path("still.png"));
    if (make_weights(W, 1) || make_weights(tmp_path("b.weights"), 2) || make_weights(tmp_path("c.weights"), 3) ||
        make_video(CLIP, 160, 120, 30) || write_text(EMPTY, "") ||
        write_text(TEXT, "this is not a video\n") ||
        write_text(LIST, "# three members\n1 net.weights\n1 b.weights\n0.5 c.weights\n") ||
        write_text(BADLIST, "1 net.weights\n-1 b.weights\n") ||
        write_text(NOTCASCADE, "<?xml version=\"1.0\"?>\n<opencv_storage></opencv_storage>\n") ||
        mkdir(EMPTYDIR, 0755)) {
        fprintf(stderr, "test_emocam_cli: cannot make the inputs in %s\n", dir);
        return 1;
    }
    {   // a still image: the first frame of the clip
        SourceConfig sc = {.kind = SOURCE_VIDEO, .path = CLIP};
        char err[512];
        Source *s = source_open(&sc, err, sizeof err);
        Frame f;
        if (!s || source_read(s, &f, err, sizeof err) != 1 || cv_imwrite(IMG, f.image, 0, err, sizeof err)) {
            fprintf(stderr, "test_emocam_cli: %s\n", err);
            return 1;
        }
        source_close(s);
    }
    char *o_mp4 = strdup(tmp_path("o.mp4")), *o_csv = strdup(tmp_path("o.csv"));
    char *o_jsonl = strdup(tmp_path("o.jsonl"));
#define ARGS(...) ((char *const[]){"emocam", __VA_ARGS__, NULL})

    // ---- usage: exit 2
    expect_error("unknown command", ARGS("frobnicate"), 2, "frobnicate");
    expect_error("unknown option", ARGS("--frobnicate"), 2, "--frobnicate");
    expect_error("video without input", ARGS("video"), 2, "no input video");
    expect_error("video two inputs", ARGS("video", CLIP, CLIP), 2, "one input");
    expect_error("video unknown option", ARGS("video", CLIP, "--bogus"), 2, "--bogus");
    expect_error("video -o without value", ARGS("video", CLIP, "-o"), 2, "-o");
    expect_error("bad smoothing", ARGS("video", CLIP, "--smoothing", "2"), 2, "--smoothing");
    expect_error("bad smoothing word", ARGS("video", CLIP, "--smoothing", "abc"), 2, "abc");
    expect_error("bad margin", ARGS("video", CLIP, "--margin", "-1"), 2, "--margin");
    expect_error("bad frames", ARGS("video", CLIP, "--frames", "0"), 2, "--frames");
    expect_error("bad codec", ARGS("video", CLIP, "--codec", "x"), 2, "--codec");
    expect_error("bad tta", ARGS("video", CLIP, "--tta", "many"), 2, "--tta");
    expect_error("bad precision", ARGS("video", CLIP, "--precision", "fp16"), 2, "--precision");
    expect_error("output is the input", ARGS("video", CLIP, "-o", CLIP), 2, CLIP);
    expect_error("same output twice", ARGS("video", CLIP, "--csv", o_csv, "--jsonl", o_csv), 2, o_csv);
    expect_error("bad size", ARGS("--size", "640by480"), 2, "--size");
    expect_error("bad fps", ARGS("--fps", "0"), 2, "--fps");
    expect_error("loop without realtime", ARGS("--loop"), 2, "--loop");
    expect_error("missing snapshot dir", ARGS("--snapshot-dir", "/nonexistent-dir"), 2, "/nonexistent-dir");
    expect_error("image without input", ARGS("image"), 2, "no input");
    expect_error("bench without input", ARGS("bench"), 2, "no input");
    expect_error("bench bad frames", ARGS("bench", CLIP, "--frames", "-3"), 2, "--frames");
    CHECK(emocam(ARGS("--help")) == 0, "--help exits 0");
    CHECK(emocam(ARGS("video", "--help")) == 0, "video --help exits 0");

    // ---- bad inputs: exit 1, the file named
    expect_error("missing video", ARGS("video", "/nonexistent/in.mp4", "--weights", W), 1, "/nonexistent/in.mp4");
    expect_error("empty video", ARGS("video", EMPTY, "--weights", W), 1, EMPTY);
    expect_error("text as video", ARGS("video", TEXT, "--weights", W), 1, TEXT);
    expect_error("folder as video", ARGS("video", dir, "--weights", W), 1, dir);
    expect_error("missing weights", ARGS("video", CLIP, "--weights", "/nonexistent/w.weights"), 1, "/nonexistent/w.weights");
    expect_error("text as weights", ARGS("video", CLIP, "--weights", TEXT), 1, TEXT);
    expect_error("bad ensemble list", ARGS("video", CLIP, "--ensemble", BADLIST), 1, "bad.txt:2");
    expect_error("missing cascade", ARGS("video", CLIP, "--weights", W, "--cascade", "/nonexistent/c.xml"), 1, "/nonexistent/c.xml");
    expect_error("not a cascade", ARGS("video", CLIP, "--weights", W, "--cascade", NOTCASCADE), 1, NOTCASCADE);
    expect_error("no camera", ARGS("--device", "/nonexistent/video9", "--weights", W), 1, "/nonexistent/video9");
    expect_error("realtime missing", ARGS("--realtime", "/nonexistent/rt.mp4", "--weights", W), 1, "/nonexistent/rt.mp4");
    expect_error("image missing", ARGS("image", "/nonexistent/a.png", "--weights", W), 1, "/nonexistent/a.png");
    expect_error("image empty folder", ARGS("image", EMPTYDIR, "--weights", W), 1, EMPTYDIR);
    expect_error("image not an image", ARGS("image", TEXT, "--weights", W, "-o", (char *)tmp_path("imgs")), 1, TEXT);
    expect_error("bench missing", ARGS("bench", "/nonexistent/b.mp4", "--weights", W), 1, "/nonexistent/b.mp4");
    {   // the window with no display: a one-line error, not a crash
        char *env[] = {"DISPLAY=", "WAYLAND_DISPLAY=", "SDL_VIDEODRIVER=x11", NULL};
        int rc = run_prog(EMOCAM_BIN, ARGS("--realtime", CLIP, "--weights", W), env, OUT, ERR, 120);
        char *e = slurp(ERR, NULL);
        CHECK(rc == 1 && one_line_error(e) && strstr(e, "window"), "no display: exit %d, %s", rc, e ? e : "");
        free(e);
    }

    // ---- unwritable outputs: nothing left behind, not even the outputs that could be written
    expect_error("unwritable video", ARGS("video", CLIP, "--weights", W, "-o", "/nonexistent-dir/o.mp4", "--csv", o_csv), 1,
                 "/nonexistent-dir/o.mp4");
    expect_error("unwritable csv", ARGS("video", CLIP, "--weights", W, "-o", o_mp4, "--csv", "/nonexistent-dir/o.csv"), 1,
                 "/nonexistent-dir/o.csv");
    char under_file[1100];
    snprintf(under_file, sizeof under_file, "%s/o.jsonl", TEXT);   // a "folder" that is a file
    expect_error("jsonl under a file", ARGS("video", CLIP, "--weights", W, "-o", o_mp4, "--jsonl", under_file), 1, under_file);
    expect_error("video into a folder", ARGS("video", CLIP, "--weights", W, "-o", dir), 1, dir);
    expect_error("unknown container", ARGS("video", CLIP, "--weights", W, "-o", (char *)tmp_path("o.nosuchformat")), 1, "o.nosuchformat");
    expect_error("image into a file", ARGS("image", IMG, "--weights", W, "-o", TEXT), 1, TEXT);
    CHECK(!file_exists(o_mp4) && !file_exists(o_csv) && !file_exists(o_jsonl), "an output was left behind");
    CHECK(count_entries(dir, ".tmp") == 0, "a temporary file was left behind");

    // ---- a video without faces: every output, the frames all there
    int rc = emocam(ARGS("video", CLIP, "--ensemble", LIST, "-o", o_mp4, "--csv", o_csv, "--jsonl", o_jsonl));
    char *e = slurp(ERR, NULL);
    CHECK(rc == 0, "video: exit %d: %s", rc, e ? e : "");
    free(e);
    CHECK(video_frames(o_mp4) == 30, "the annotated video has %ld frames, want 30", video_frames(o_mp4));
    char *csv = slurp(o_csv, NULL), *jl = slurp(o_jsonl, NULL);
    CHECK(csv && !strcmp(csv, "frame,time,face,x,y,w,h,angry,disgust,fear,happy,sad,surprise,neutral,label\n"),
          "CSV without faces: [%s]", csv ? csv : "(none)");
    CHECK(jl && !*jl, "JSONL without faces is empty");
    free(csv);
    free(jl);
    CHECK(count_entries(dir, ".tmp") == 0, "a temporary file was left behind");
    // the default output name: IN's name + .emocam.mp4 in the current folder
    CHECK(chdir(dir) == 0, "chdir");
    rc = emocam(ARGS("video", CLIP, "--weights", W, "--frames", "5"));
    CHECK(rc == 0 && video_frames("clip.emocam.mp4") == 5, "default output: exit %d, %ld frames", rc,
          video_frames("clip.emocam.mp4"));
    remove("clip.emocam.mp4");

    // ---- image: a picture without faces still gives its annotated copy and a line
    rc = emocam(ARGS("image", IMG, "--weights", W, "-o", (char *)tmp_path("imgs")));
    char *out = slurp(OUT, NULL);
    CHECK(rc == 0 && out && strstr(out, "no face"), "image: exit %d, stdout %s", rc, out ? out : "");
    CHECK(file_exists(tmp_path("imgs/still.png")), "image: imgs/still.png missing");
    free(out);
    remove(tmp_path("imgs/still.png"));
    rmdir(tmp_path("imgs"));

    // ---- bench: valid JSON naming every stage
    rc = emocam(ARGS("bench", CLIP, "--weights", W, "--frames", "20"));
    out = slurp(OUT, NULL);
    CHECK(rc == 0 && json_valid(out), "bench: exit %d, JSON %s", rc, out ? out : "");
    const char *stages[] = {"decode", "detect", "crop", "classify", "draw", "encode"};
    for (int k = 0; k < 6; k++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":{\"p50_ms\":", stages[k]);
        CHECK(out && strstr(out, key), "bench: no %s", key);
    }
    CHECK(out && strstr(out, "\"p95_ms\"") && strstr(out, "\"fps\":") && strstr(out, "\"frames\":20,"),
          "bench: fields missing: %s", out ? out : "");
    free(out);
    rc = emocam(ARGS("bench", CLIP, "--weights", W, "--realtime", "--frames", "10"));
    out = slurp(OUT, NULL);
    CHECK(rc == 0 && json_valid(out) && strstr(out, "\"dropped\":"), "bench --realtime: %s", out ? out : "");
    free(out);
    // --precision int8 where the CPU has AVX512-VNNI, else a clear error
    if (emo_int8_available()) {
        rc = emocam(ARGS("bench", CLIP, "--weights", W, "--frames", "10", "--precision", "int8"));
        out = slurp(OUT, NULL);
        CHECK(rc == 0 && json_valid(out) && strstr(out, "\"precision\":\"int8\""), "bench int8: %s",
              out ? out : "");
        free(out);
    } else {
        expect_error("int8 without VNNI", ARGS("bench", CLIP, "--precision", "int8"), 2, "int8");
    }

    // ---- interrupted: complete outputs or none, never a part
    remove(o_mp4);
    remove(o_csv);
    remove(o_jsonl);
    char *LONG = strdup(tmp_path("long.mp4"));
    if (make_video(LONG, 320, 240, 400) == 0) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stderr)) _exit(127);
            execl(EMOCAM_BIN, "emocam", "video", LONG, "--weights", W, "-o", o_mp4, "--csv", o_csv, (char *)NULL);
            _exit(127);
        }
        // interrupt once it is under way: its temporary outputs exist (at most 60 s)
        for (int i = 0; i < 3000 && count_entries(dir, ".tmp") < 2; i++) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGINT);
        int st;
        waitpid(pid, &st, 0);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        CHECK(code == 130 || code == 0, "interrupted: exit %d, want 130 (or 0 if it had finished)", code);
        if (code == 130) CHECK(!file_exists(o_mp4) && !file_exists(o_csv), "interrupted: an output was left");
        else CHECK(video_frames(o_mp4) == 400, "finished before the interrupt: %ld frames", video_frames(o_mp4));
        CHECK(count_entries(dir, ".tmp") == 0, "interrupted: a temporary file was left behind");
    }
    remove(LONG);

    // clean up
    const char *made[] = {W, CLIP, EMPTY, TEXT, LIST, BADLIST, NOTCASCADE, IMG, o_mp4, o_csv, o_jsonl, OUT, ERR,
                          tmp_path("b.weights"), tmp_path("c.weights")};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) remove(made[i]);
    rmdir(EMPTYDIR);
    CHECK(count_entries(dir, "") == 0, "files left in %s", dir);
    rmdir(dir);
    char *owned[] = {W, CLIP, EMPTY, TEXT, LIST, BADLIST, NOTCASCADE, IMG, o_mp4, o_csv, o_jsonl, LONG, EMPTYDIR, dir,
                     (char *)OUT, (char *)ERR};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) free(owned[i]);
    return test_result("test_emocam_cli");
}
