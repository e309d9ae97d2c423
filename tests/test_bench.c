// test_bench.c: emocam-bench as a program, on a tiny network and random weights (no torch,
// no ../shared): the training benchmark's JSON, the per-layer profile table, the ensemble's
// per-face figures, and one-line errors with exit 2 (usage) or 1 (a file that does not load).
// Timings are printed, not judged: speed belongs in benchmarks, not tests.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apputil.h"
#include "model.h"
#include "testutil.h"

#ifndef EMOCAM_BENCH_BIN
#error "EMOCAM_BENCH_BIN must name the emocam-bench executable"
#endif

static const char *OUT, *ERR;

static int bench(char *const args[]) { return run_prog(EMOCAM_BENCH_BIN, args, NULL, OUT, ERR, 300); }
#define ARGS(...) ((char *const[]){EMOCAM_BENCH_BIN, __VA_ARGS__, NULL})

static void expect_error(const char *what, char *const args[], int want, const char *names) {
    int rc = bench(args);
    char *e = slurp(ERR, NULL);
    CHECK(rc == want, "%s: exit %d, want %d (stderr: %s)", what, rc, want, e ? e : "");
    CHECK(one_line_error(e), "%s: not a one-line message: [%s]", what, e ? e : "");
    CHECK(e && strstr(e, names), "%s: message does not name '%s': %s", what, names, e ? e : "");
    free(e);
}

// Every non-empty line of text is one JSON value.
static int json_lines(char *text) {
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), n++)
        if (!json_valid(line)) return -1;
    return n;
}

int main(void) {
    OUT = strdup(tmp_path("stdout.txt"));
    ERR = strdup(tmp_path("stderr.txt"));
    char *ARCH = strdup(tmp_path("tiny.arch")), *LIST = strdup(tmp_path("two.txt"));
    if (write_text(ARCH, "input c=1 h=48 w=48\nconv out=4 k=3 pad=1\nbn\nrelu\nmaxpool k=2\n"
                         "flatten\ndropout p=0.5\nlinear out=7\n") ||
        make_weights(tmp_path("a.weights"), 1) || make_weights(tmp_path("b.weights"), 2) ||
        write_text(LIST, "1 a.weights\n0.5 b.weights\n")) {
        fprintf(stderr, "test_bench: cannot make the inputs in %s\n", test_tmpdir());
        return 1;
    }

    // ---- the training benchmark: a peak line, then one JSON line per architecture
    int rc = bench(ARGS("--no-torch", "--seconds", "1", "--rounds", "1", ARCH));
    char *out = slurp(OUT, NULL);
    CHECK(rc == 0 && out, "bench: exit %d", rc);
    if (out) {
        CHECK(strstr(out, "\"sgemm_peak_gflops\"") && strstr(out, "\"blas_core\"") &&
                  strstr(out, "\"train_img_s\"") &&
                  strstr(out, "\"infer_ms_1thread\"") && strstr(out, "\"params\": 16183"),
              "bench: fields missing: %s", out);
        CHECK(json_lines(out) == 2, "bench: want 2 JSON lines");
        free(out);
    }

    // ---- --profile: a row per top-level layer, shares summing to 100 %
    rc = bench(ARGS("--profile", "--seconds", "1", ARCH));
    out = slurp(OUT, NULL);
    CHECK(rc == 0 && out, "profile: exit %d", rc);
    if (out) {
        const char *names[] = {"0.conv", "1.bn", "2.relu", "3.maxpool", "4.flatten",
                               "5.dropout", "6.linear"};
        for (int i = 0; i < 7; i++)
            CHECK(strstr(out, names[i]), "profile: no row for %s:\n%s", names[i], out);
        double share = 0;
        int rows = 0;
        for (char *p = out; (p = strstr(p, "%")); p++) {   // "... 12.3% ..." per row
            char *q = p;
            while (q > out && q[-1] != ' ') q--;
            share += atof(q);
            rows++;
        }
        CHECK(rows == 7 && share > 99 && share < 101, "profile: %d rows, shares sum to %.1f %%",
              rows, share);
        CHECK(strstr(out, "images/s"), "profile: no total line");
        free(out);
    }

    // ---- --ensemble: each member and the whole, one JSON object
    rc = bench(ARGS("--ensemble", LIST));
    out = slurp(OUT, NULL);
    CHECK(rc == 0 && out && json_valid(out), "ensemble: exit %d, %s", rc, out ? out : "");
    if (out) {
        int members = 0;
        for (char *p = out; (p = strstr(p, "\"path\"")); p++) members++;
        CHECK(members == 2, "ensemble: %d members listed, want 2", members);
        CHECK(strstr(out, "\"params\": 2465550,"), "ensemble: total params wrong: %s", out);
        CHECK(strstr(out, "\"weight\": 0.5"), "ensemble: member weight missing: %s", out);
        free(out);
    }

    // ---- --ensemble --compare: a line per precision and round, then the summary
    if (emo_bf16_available()) {
        rc = bench(ARGS("--ensemble", LIST, "--compare", "--rounds", "1"));
        out = slurp(OUT, NULL);
        CHECK(rc == 0 && out, "compare: exit %d", rc);
        if (out) {
            int lines = 0;
            for (char *p = out; (p = strchr(p, '\n')); p++) lines++;
            char *last = strstr(out, "\"speedup\"");
            int i8 = emo_int8_available();   // then a third run, 8-bit convolutions
            CHECK(lines == 3 + i8 && strstr(out, "\"bf16\": \"off\"") && last &&
                      strstr(out, "\"fp32_ms\"") && strstr(out, "\"bf16_ms\"") &&
                      !strstr(out, "\"int8_ms\"") == !i8 &&
                      !strstr(out, "\"int8\": 1") == !i8,
                  "compare: want %d runs and a summary, got %s", 2 + i8, out);
            free(out);
        }
    } else {
        expect_error("compare without bf16", ARGS("--ensemble", LIST, "--compare"), 1, "--compare");
    }

    // ---- errors
    expect_error("compare without ensemble", ARGS("--compare"), 2, "--compare");
    if (emo_int8_available()) {
        expect_error("int8 without ensemble", ARGS("--int8", "--no-torch"), 2, "--int8");
        expect_error("compare with int8", ARGS("--ensemble", LIST, "--int8", "--compare"), 2, "--compare");
    } else {
        expect_error("int8 without VNNI", ARGS("--ensemble", LIST, "--int8"), 2, "--int8");
    }
    expect_error("bad threads", ARGS("--threads", "0"), 2, "--threads");
    expect_error("bad tta", ARGS("--ensemble", LIST, "--tta", "5"), 2, "--tta");
    expect_error("unknown option", ARGS("--frobnicate"), 2, "--frobnicate");
    expect_error("ensemble without list", ARGS("--ensemble"), 2, "--ensemble");
    expect_error("missing arch", ARGS("--no-torch", "--seconds", "1", "/nonexistent/x.arch"), 1,
                 "/nonexistent/x.arch");
    expect_error("missing list", ARGS("--ensemble", "/nonexistent/list.txt"), 1,
                 "/nonexistent/list.txt");
    expect_error("profile missing arch", ARGS("--profile", "/nonexistent/y.arch"), 1,
                 "/nonexistent/y.arch");
    free(ARCH);
    free(LIST);
    free((char *)OUT);
    free((char *)ERR);
    return test_result("test_bench");
}
