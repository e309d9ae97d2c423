// test_train.c: emocam-train train end to end on a tiny synthetic data set and a tiny network.
//   - a run writes its folder (config, command, logs, best weights, checkpoint), and with
//     keep_epochs each epoch's weights;
//   - a 4-epoch run stopped after 2 epochs (--stop-after) and resumed gives exactly the numbers
//     and weights of an uninterrupted run;
//   - init = WEIGHTS starts from those weights, and refuses another architecture's;
//   - killing the trainer at random moments (with SIGKILL, often inside a checkpoint write)
//     always leaves a loadable checkpoint and never a partial file under a final name;
//   - while another process holds the run's lock, --resume is refused with its pid;
//   - a loss that is no longer finite stops the run with a message;
//   - bad arguments and settings give a one-line error and exit 2.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "testutil.h"
#include "tfile.h"

#ifndef EMOCAM_TRAIN_BIN
#error "EMOCAM_TRAIN_BIN must name the emocam-train executable"
#endif

static char dir[512], csv[600], arch[600];

// Class k: a bright bar at angle k*pi/7 over noise, so that a tiny net can learn something.
static void write_data(void) {
    FILE *f = fopen(csv, "w");
    if (!f) {
        perror(csv);
        exit(1);
    }
    fprintf(f, "emotion,pixels,Usage\n");
    Rng r;
    rng_seed(&r, 42);
    for (int i = 0; i < 168; i++) {
        int k = i % 7;
        double a = k * 3.14159265 / 7, ca = __builtin_cos(a), sa = __builtin_sin(a);
        fprintf(f, "%d,", k);
        for (int p = 0; p < 48 * 48; p++) {
            double x = p % 48 - 23.5, y = p / 48 - 23.5, d = x * sa - y * ca;
            int v = (int)(60 + 40 * rng_uniform(&r) + (d * d < 16 ? 120 : 0));
            fprintf(f, p ? " %d" : "%d", v);
        }
        fprintf(f, ",%s\n", i < 140 ? "Training" : "PublicTest");
    }
    fclose(f);
    f = fopen(arch, "w");
    if (!f) {
        perror(arch);
        exit(1);
    }
    fprintf(f, "input c=1 h=48 w=48\nconv out=6 k=5 stride=2 pad=2\nbn\nrelu\nmaxpool k=2\n"
               "dropout2d p=0.1\nconv out=8 k=3 pad=1\nrelu\ngap\ndropout p=0.2\nlinear out=7\n");
    fclose(f);
}

// Run emocam-train with the given arguments; output to log. Returns the exit status, or the
// negated signal.
static int run(const char *log, char *const args[]) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(EMOCAM_TRAIN_BIN, args);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

static int same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

// Same state in two checkpoints: the header text and every tensor bit for bit, except the
// history's timing columns (seconds, images/s).
static int same_checkpoint(const char *a, const char *b) {
    TFile x, y;
    char err[EMO_ERRLEN];
    if (tfile_read(a, "CKPT", &x, err, sizeof err)) return 0;
    if (tfile_read(b, "CKPT", &y, err, sizeof err)) {
        tfile_free(&x);
        return 0;
    }
    int same = x.n == y.n && strcmp(x.meta, y.meta) == 0;
    for (int i = 0; same && i < x.n; i++) {
        const TEntry *e = &x.t[i], *f = &y.t[i];
        same = strcmp(e->name, f->name) == 0 && e->count == f->count;
        if (!same) break;
        if (strcmp(e->name, "history") == 0) {   // rows of 9: skip columns 6 and 7
            for (size_t j = 0; same && j < e->count; j++)
                if (j % 9 != 6 && j % 9 != 7) same = memcmp(e->data + 4 * j, f->data + 4 * j, 4) == 0;
        } else {
            same = memcmp(e->data, f->data, 4 * e->count) == 0;
        }
    }
    tfile_free(&x);
    tfile_free(&y);
    return same;
}

// log.csv without the timing columns (seconds, img_per_s), which differ run to run.
static char *log_numbers(const char *run_dir) {
    char p[700];
    snprintf(p, sizeof p, "%s/log.csv", run_dir);
    char *s = slurp(p, NULL);
    if (!s) return NULL;
    char *out = malloc(strlen(s) + 1), *o = out;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        int comma = 0;
        for (char *c = line; *c; c++) {
            if (*c == ',' && ++comma == 6) break;
            *o++ = *c;
        }
        *o++ = '\n';
    }
    *o = 0;
    free(s);
    return out;
}

static void base_args(char **a, int *n, const char *out) {
    static char *fixed[] = {EMOCAM_TRAIN_BIN, "train", "--data", csv, "--arch", arch,
                            "--batch", "16", "--threads", "2", "--seed", "7", "--aug",
                            "p_flip=0.5,p_rotate=1,rotate_deg=10", "--sched", "cosine",
                            "--warmup", "1", "--opt", "sgd", "--nesterov", "--lr", "0.05",
                            "--cache", "none"};
    *n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) a[(*n)++] = fixed[i];
    a[(*n)++] = "--out";
    a[(*n)++] = (char *)out;
}

static void test_resume(void) {
    char full[600], part[600], logf[700], *a[64];
    int n;
    snprintf(full, sizeof full, "%s/full", dir);
    snprintf(part, sizeof part, "%s/part", dir);
    snprintf(logf, sizeof logf, "%s/full.out", dir);
    base_args(a, &n, full);
    a[n++] = "--epochs";
    a[n++] = "4";
    a[n] = NULL;
    int rc = run(logf, a);
    CHECK(rc == 0, "uninterrupted run failed (%d), see %s", rc, logf);
    const char *files[] = {"config.txt", "command.txt", "log.csv", "log.jsonl", "best.weights",
                           "last.ckpt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", full, files[i]);
        CHECK(access(p, F_OK) == 0, "the run folder lacks %s", files[i]);
    }
    base_args(a, &n, part);
    a[n++] = "--epochs";
    a[n++] = "4";
    a[n++] = "--stop-after";
    a[n++] = "2";
    a[n] = NULL;
    snprintf(logf, sizeof logf, "%s/part.out", dir);
    rc = run(logf, a);
    CHECK(rc == 0, "first half failed (%d)", rc);
    char *r[] = {EMOCAM_TRAIN_BIN, "train", "--resume", part, NULL};
    // while another process trains the run (holds RUN/lock), a resume is refused
    char lockp[700];
    snprintf(lockp, sizeof lockp, "%s/lock", part);
    int lfd = open(lockp, O_RDWR | O_CREAT, 0644);
    CHECK(lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) == 0, "cannot lock %s", lockp);
    CHECK(ftruncate(lfd, 0) == 0 && dprintf(lfd, "%ld\n", (long)getpid()) > 0, "cannot write %s", lockp);
    snprintf(logf, sizeof logf, "%s/locked.out", dir);
    rc = run(logf, r);
    char *held = slurp(logf, NULL), want[64];
    snprintf(want, sizeof want, "another emocam-train (pid %ld)", (long)getpid());
    CHECK(rc == 1 && held && strstr(held, want), "resume of a locked run: %d %s", rc, held ? held : "");
    free(held);
    close(lfd);
    snprintf(logf, sizeof logf, "%s/resume.out", dir);
    rc = run(logf, r);
    CHECK(rc == 0, "resume failed (%d), see %s", rc, logf);
    char *x = log_numbers(full), *y = log_numbers(part);
    CHECK(x && y && strcmp(x, y) == 0, "resumed log differs:\n%s---\n%s", x ? x : "", y ? y : "");
    free(x);
    free(y);
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/best.weights", full);
    snprintf(p2, sizeof p2, "%s/best.weights", part);
    CHECK(same_file(p1, p2), "best.weights of the resumed run differ from the uninterrupted run");
    snprintf(p1, sizeof p1, "%s/last.ckpt", full);
    snprintf(p2, sizeof p2, "%s/last.ckpt", part);
    CHECK(same_checkpoint(p1, p2), "last.ckpt of the resumed run differs from the uninterrupted run");
    // resuming a finished run does nothing and says so
    char *again[] = {EMOCAM_TRAIN_BIN, "train", "--resume", part, NULL};
    rc = run(logf, again);
    char *out = slurp(logf, NULL);
    CHECK(rc == 0 && out && strstr(out, "has done its 4 epochs"), "resuming a finished run: %d %s",
          rc, out ? out : "");
    free(out);
    // a second run into the same folder is refused
    base_args(a, &n, full);
    a[n] = NULL;
    rc = run(logf, a);
    out = slurp(logf, NULL);
    CHECK(rc == 1 && out && strstr(out, "already holds a run"), "reusing a run folder: %d %s", rc,
          out ? out : "");
    free(out);
}

static int final_names_ok(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return 1;   // killed before it was made
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (strstr(e->d_name, ".tmp")) continue;   // temporaries are allowed to be left
        char p[800];
        snprintf(p, sizeof p, "%s/%s", run_dir, e->d_name);
        char err[EMO_ERRLEN];
        if (!strcmp(e->d_name, "last.ckpt")) {
            TFile f;
            if (tfile_read(p, "CKPT", &f, err, sizeof err)) {
                fprintf(stderr, "unloadable checkpoint after a kill: %s\n", err);
                ok = 0;
            } else {
                tfile_free(&f);
            }
        } else if (!strcmp(e->d_name, "best.weights")) {
            Net *net = net_load(p, err, sizeof err);
            if (!net) {
                fprintf(stderr, "unloadable weights after a kill: %s\n", err);
                ok = 0;
            }
            net_free(net);
        }
    }
    closedir(d);
    return ok;
}

static void test_kill(void) {
    char run_dir[600], logf[700], *a[64];
    int n, kills = 0, good = 1;
    snprintf(run_dir, sizeof run_dir, "%s/killed", dir);
    snprintf(logf, sizeof logf, "%s/killed.out", dir);
    Rng r;
    rng_seed(&r, 3);
    for (int round = 0; round < 12; round++) {
        char ck[700];
        snprintf(ck, sizeof ck, "%s/last.ckpt", run_dir);
        int resume = access(ck, F_OK) == 0;
        // far more epochs than can run before the kill, on any machine
        char *ra[] = {EMOCAM_TRAIN_BIN, "train", "--resume", run_dir, NULL};
        base_args(a, &n, run_dir);
        a[n++] = "--epochs";
        a[n++] = "100000";
        a[n] = NULL;
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execv(EMOCAM_TRAIN_BIN, resume ? ra : a);
            _exit(127);
        }
        struct timespec ts = {0, (long)(200e6 + 600e6 * rng_uniform(&r))};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st)) kills++;
        good &= final_names_ok(run_dir);
    }
    CHECK(kills >= 6, "only %d of 12 runs were still running when killed", kills);
    CHECK(good, "a kill left a partial file under a final name");
    // and the run can still be resumed
    char *ra[] = {EMOCAM_TRAIN_BIN, "train", "--resume", run_dir, "--stop-after", "2", NULL};
    char ck[700];
    snprintf(ck, sizeof ck, "%s/last.ckpt", run_dir);
    if (access(ck, F_OK) == 0) {
        int rc = run(logf, ra);
        CHECK(rc == 0, "resuming after kills failed (%d), see %s", rc, logf);
    }
}

static void test_bad_args(void) {
    char logf[700], out_dir[600];
    snprintf(logf, sizeof logf, "%s/bad.out", dir);
    snprintf(out_dir, sizeof out_dir, "%s/bad", dir);
    struct {
        const char *flag, *value, *expect;
        int code;
    } cases[] = {
        {"--lr", "abc", "lr", 2},           {"--epochs", "-3", "epochs", 2},
        {"--opt", "rmsprop", "opt", 2},     {"--sched", "linear", "sched", 2},
        {"--split", "50/50", "split", 2},   {"--aug", "p_spin=1", "aug", 2},
        {"--class-weights", "1,2", "class_weights", 2},
        {"--bogus", "1", "unknown option", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *a[64];
        int n;
        base_args(a, &n, out_dir);
        a[n++] = (char *)cases[i].flag;
        a[n++] = (char *)cases[i].value;
        a[n] = NULL;
        int rc = run(logf, a);
        char *out = slurp(logf, NULL);
        int lines = 0;
        for (char *c = out; c && *c; c++) lines += *c == '\n';
        CHECK(rc == cases[i].code && out && strstr(out, cases[i].expect) && lines == 1,
              "%s %s: exit %d, output: %s", cases[i].flag, cases[i].value, rc, out ? out : "");
        free(out);
        CHECK(access(out_dir, F_OK) != 0, "%s %s left a run folder behind", cases[i].flag,
              cases[i].value);
    }
    char *none[] = {EMOCAM_TRAIN_BIN, "train", "--data", csv, NULL};
    int rc = run(logf, none);
    CHECK(rc == 2, "no --out: exit %d", rc);
    char *missing[] = {EMOCAM_TRAIN_BIN, "train", "--data", "/nonexistent/fer", "--arch", arch,
                       "--out", out_dir, NULL};
    rc = run(logf, missing);
    char *out = slurp(logf, NULL);
    CHECK(rc == 1 && out && strstr(out, "/nonexistent/fer"), "missing data: exit %d: %s", rc,
          out ? out : "");
    free(out);
    CHECK(access(out_dir, F_OK) != 0, "missing data left a run folder behind");
}

// A loss that stops being finite ends the run with a message; the checkpoint of the last
// good epoch stays loadable.
static void test_nonfinite(void) {
    char run_dir[600], logf[700], *a[64];
    int n;
    snprintf(run_dir, sizeof run_dir, "%s/diverged", dir);
    snprintf(logf, sizeof logf, "%s/diverged.out", dir);
    base_args(a, &n, run_dir);
    a[n++] = "--epochs";
    a[n++] = "3";
    a[n++] = "--lr";
    a[n++] = "1e30";
    a[n] = NULL;
    int rc = run(logf, a);
    char *out = slurp(logf, NULL);
    CHECK(rc == 1 && out && strstr(out, "the loss became") && strstr(out, "stopped"),
          "a diverging run: exit %d: %s", rc, out ? out : "");
    free(out);
    CHECK(final_names_ok(run_dir), "a diverged run left an unloadable file");
}

// init = WEIGHTS: a run starts from trained weights. With a learning rate of 0 the trained
// parameters come out unchanged (the batchnorm's running statistics still move); weights of
// another architecture are refused with one line naming the file, before any run folder.
static void test_init(void) {
    char src[700], run_dir[600], bad[600], logf[700], *a[64];
    int n;
    snprintf(src, sizeof src, "%s/full/best.weights", dir);
    snprintf(run_dir, sizeof run_dir, "%s/init", dir);
    snprintf(logf, sizeof logf, "%s/init.out", dir);
    base_args(a, &n, run_dir);
    a[n++] = "--epochs";
    a[n++] = "1";
    a[n++] = "--lr";
    a[n++] = "0";
    a[n++] = "--init";
    a[n++] = src;
    a[n] = NULL;
    int rc = run(logf, a);
    CHECK(rc == 0, "a run from init failed (%d), see %s", rc, logf);
    char got_path[700], err[256];
    snprintf(got_path, sizeof got_path, "%s/best.weights", run_dir);
    Net *want = net_load(src, err, sizeof err), *got = net_load(got_path, err, sizeof err);
    CHECK(want && got, "cannot load the weights: %s", err);
    if (want && got) {
        int params = 0;
        for (int i = 0; i < want->ntensors; i++) {
            const Tensor *t = &want->tensors[i];
            if (t->is_buffer) continue;
            params++;
            CHECK(memcmp(net_tensor_data(want, t), net_tensor_data(got, &got->tensors[i]),
                         t->count * sizeof(real)) == 0,
                  "tensor %s moved with lr 0", t->name);
        }
        CHECK(params > 0, "no parameters compared");
    }
    net_free(want);
    net_free(got);
    // weights of another network
    FILE *f;
    snprintf(bad, sizeof bad, "%s/other.arch", dir);
    CHECK((f = fopen(bad, "w")) != NULL, "cannot write %s", bad);
    if (f) {
        fprintf(f, "input c=1 h=48 w=48\nconv out=4 k=3\ngap\nlinear out=7\n");
        fclose(f);
    }
    char other[600], other_w[700];
    snprintf(other, sizeof other, "%s/other", dir);
    base_args(a, &n, other);
    a[5] = bad;   // the value of --arch
    a[n++] = "--epochs";
    a[n++] = "1";
    a[n] = NULL;
    rc = run(logf, a);
    CHECK(rc == 0, "training the other network failed (%d)", rc);
    snprintf(other_w, sizeof other_w, "%s/best.weights", other);
    char fresh[600];
    snprintf(fresh, sizeof fresh, "%s/init2", dir);
    base_args(a, &n, fresh);
    a[n++] = "--init";
    a[n++] = other_w;
    a[n] = NULL;
    rc = run(logf, a);
    char *out = slurp(logf, NULL), *e = out ? strstr(out, "emocam-train train: init ") : NULL;
    char *nl = e ? strchr(e, '\n') : NULL, *named = e ? strstr(e, other_w) : NULL;
    CHECK(rc == 1 && nl && named && named < nl && !strstr(nl, "emocam-train train:"),
          "init from another architecture: exit %d, not one error line naming the file: %s", rc,
          out ? out : "");
    free(out);
    CHECK(access(fresh, F_OK) != 0, "a refused init left a run folder behind");
}

// keep_epochs: one weights file per epoch, and best.weights is one of them.
static void test_keep_epochs(void) {
    char run_dir[600], logf[700], *a[64];
    int n;
    snprintf(run_dir, sizeof run_dir, "%s/keep", dir);
    snprintf(logf, sizeof logf, "%s/keep.out", dir);
    base_args(a, &n, run_dir);
    a[n++] = "--epochs";
    a[n++] = "2";
    a[n++] = "--keep-epochs";
    a[n] = NULL;
    int rc = run(logf, a);
    CHECK(rc == 0, "a run with --keep-epochs failed (%d), see %s", rc, logf);
    char p[3][700], best[700];
    int same = 0;
    snprintf(best, sizeof best, "%s/best.weights", run_dir);
    for (int e = 0; e < 3; e++) {
        snprintf(p[e], sizeof p[e], "%s/epoch-%03d.weights", run_dir, e + 1);
        CHECK((access(p[e], F_OK) == 0) == (e < 2), "%s %s", p[e], e < 2 ? "missing" : "written");
        if (e < 2) same += same_file(p[e], best);
    }
    CHECK(same == 1, "best.weights matches %d of the epoch files, want 1", same);
}

// A teacher's predictions.csv for the tiny set's training images (rows 0..139, named
// "tiny.csv:LINE"): each image's probability 1 on class (label + shift) % 7. rows: how many
// to write; bad_label: write row 5 with a wrong label.
static void write_teacher(const char *path, int shift, int rows, int bad_label) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f, "name,label,predicted,p_angry,p_disgust,p_fear,p_happy,p_sad,p_surprise,p_neutral\n");
    for (int i = 0; i < rows; i++) {
        int k = i % 7, t = (k + shift) % 7;
        fprintf(f, "tiny.csv:%d,%d,%d", i + 2, bad_label && i == 5 ? (k + 1) % 7 : k, t);
        for (int c = 0; c < 7; c++) fprintf(f, ",%.5f", c == t ? 1.0 : 0.0);
        fprintf(f, "\n");
    }
    fclose(f);
}

// Knowledge distillation (--soft): a teacher that moves every label by one class, at
// soft_weight 1, must teach the network that mapping instead of the labels, image by image;
// a bad teacher file is refused with one line naming it, before any run folder exists.
static void test_soft(void) {
    char teacher[700], run_dir[600], logf[700], w[700], ev[700], pred[800], *a[64];
    int n;
    snprintf(teacher, sizeof teacher, "%s/teacher.csv", dir);
    snprintf(run_dir, sizeof run_dir, "%s/soft", dir);
    snprintf(logf, sizeof logf, "%s/soft.out", dir);
    write_teacher(teacher, 1, 140, 0);
    base_args(a, &n, run_dir);
    char *more[] = {"--epochs", "20", "--lr", "0.1", "--aug", "none", "--soft", teacher,
                    "--soft-weight", "1", "--label-smoothing", "0.1", "--keep-epochs"};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) a[n++] = more[i];
    a[n] = NULL;
    int rc = run(logf, a);
    char *out = slurp(logf, NULL);
    CHECK(rc == 0 && out && strstr(out, "distillation: ") && strstr(out, "agrees with 0.0 %"),
          "a run with --soft failed (%d), see %s", rc, logf);
    free(out);
    snprintf(w, sizeof w, "%s/epoch-020.weights", run_dir);   // best.weights follows the labels
    snprintf(ev, sizeof ev, "%s/soft_eval", dir);
    char *e[] = {EMOCAM_TRAIN_BIN, "eval", "--weights", w, "--data", csv, "--set", "train",
                 "--no-cache", "--mistakes", "0", "--out", ev, NULL};
    rc = run(logf, e);
    CHECK(rc == 0, "eval of the distilled network failed (%d), see %s", rc, logf);
    snprintf(pred, sizeof pred, "%s/predictions.csv", ev);
    FILE *f = fopen(pred, "r");
    int shifted = 0, labelled = 0, rows = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        int label, predicted;
        char *c = strchr(line, ',');
        if (!c || sscanf(c, ",%d,%d", &label, &predicted) != 2) continue;
        rows++;
        shifted += predicted == (label + 1) % 7;
        labelled += predicted == label;
    }
    if (f) fclose(f);
    CHECK(rows == 140 && shifted >= 100 && labelled <= 20,
          "distilled from a shifted teacher: of %d training images %d predicted as the teacher "
          "says, %d as labelled (want >= 100 and <= 20)", rows, shifted, labelled);
    printf("soft targets: %d of %d training images follow the teacher, %d the labels\n", shifted,
           rows, labelled);

    // bad teachers: missing file, missing rows, a disagreeing label, not a predictions.csv
    char bad[700], notcsv[700];
    snprintf(bad, sizeof bad, "%s/teacher_bad.csv", dir);
    snprintf(notcsv, sizeof notcsv, "%s/tiny.arch", dir);
    struct {
        const char *file, *expect;
        int rows, bad_label;
    } cases[] = {
        {"/nonexistent/teacher.csv", "/nonexistent/teacher.csv", 0, 0},
        {bad, "no row for the training image tiny.csv:", 100, 0},
        {bad, "has label 6 here but 5", 140, 1},
        {notcsv, "not a predictions.csv", 0, 0},
    };
    snprintf(run_dir, sizeof run_dir, "%s/soft_bad", dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].file == bad) write_teacher(bad, 1, cases[i].rows, cases[i].bad_label);
        base_args(a, &n, run_dir);
        a[n++] = "--soft";
        a[n++] = (char *)cases[i].file;
        a[n++] = "--soft-weight";
        a[n++] = "0.5";
        a[n] = NULL;
        rc = run(logf, a);
        out = slurp(logf, NULL);
        char *msg = out ? strstr(out, "emocam-train train: ") : NULL, *eol = msg ? strchr(msg, '\n') : NULL;
        if (eol) *eol = 0;   // the message is this one line
        CHECK(rc == 1 && msg && strstr(msg, cases[i].file) && strstr(msg, cases[i].expect),
              "--soft %s: exit %d, output: %s", cases[i].file, rc, out ? out : "");
        free(out);
        CHECK(access(run_dir, F_OK) != 0, "--soft %s left a run folder behind", cases[i].file);
    }
    const char *flags[][4] = {{"--soft", teacher, "--soft-weight", "1.5"},   // above 1
                              {"--soft", teacher, NULL},                     // no share given
                              {"--soft-weight", "0.5", NULL}};               // no teacher
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        base_args(a, &n, run_dir);
        for (int j = 0; j < 4 && flags[i][j]; j++) a[n++] = (char *)flags[i][j];
        a[n] = NULL;
        rc = run(logf, a);
        out = slurp(logf, NULL);
        CHECK(rc == 2 && out && strstr(out, "soft"), "%s %s ...: exit %d: %s", flags[i][0], flags[i][1], rc,
              out ? out : "");
        free(out);
        CHECK(access(run_dir, F_OK) != 0, "%s %s left a run folder behind", flags[i][0], flags[i][1]);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(csv, sizeof csv, "%s/tiny.csv", dir);
    snprintf(arch, sizeof arch, "%s/tiny.arch", dir);
    write_data();
    test_bad_args();
    test_resume();
    test_init();
    test_keep_epochs();
    test_soft();
    test_kill();
    test_nonfinite();
    return test_result("test_train");
}
