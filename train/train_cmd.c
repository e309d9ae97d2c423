// train_cmd.c: emocam-train train, one run = one folder.
//
// A run folder holds:
//   config.txt     every setting, as `key = value` lines (also a valid --config file)
//   command.txt    the command line that started the run (and each resume)
//   log.csv        per epoch: losses, accuracies, learning rate, seconds, images/s, and the
//                  PublicTest accuracy (the validation set itself under the official split)
//   log.jsonl      the same, one JSON object per line
//   best.weights   the weights with the best validation accuracy so far
//   epoch-NNN.weights  with keep_epochs: the weights after each epoch (emocam-train average)
//   last.ckpt      weights + optimizer moments + epoch + scheduler and early-stop state +
//                  the log so far; with the seed this is everything a resume needs
//   lock           the process id of the emocam-train training the run; while it holds the
//                  file's flock, a second `train --resume RUN` is refused
// Every file is written to a temporary name and renamed into place, so a kill at any moment
// loses at most the epoch in progress. `--resume RUN` continues the run exactly: batches, data
// augmentation and dropout masks are drawn from Rngs seeded by (seed, epoch, batch), so a
// resumed run computes the same numbers as an uninterrupted one.
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "augment.h"
#include "commands.h"
#include "data.h"
#include "optim.h"
#include "report.h"
#include "tfile.h"

// ---- configuration: one table serves the command line (--key value) and config files
typedef struct {
    char data[1024], arch[1024], init[1024], cache[1024], split[32], opt[16], sched[16], aug[1024], soft[1024];
    char class_weights[256];
    long seed;
    int epochs, batch, threads, nesterov, oversample, early_stop, plateau_patience, step_size;
    int warmup, decay_all, bf16, keep_epochs;
    double lr, momentum, wd, plateau_factor, step_gamma, label_smoothing, clip, min_lr, soft_weight;
    double soft_temp;
} TrainConfig;

typedef enum { T_STR, T_INT, T_LONG, T_REAL, T_FLAG } OptType;
typedef struct {
    const char *name;
    OptType type;
    size_t off, size;
    const char *help;
} OptSpec;

#define O_S(f, h) {#f, T_STR, offsetof(TrainConfig, f), sizeof(((TrainConfig *)0)->f), h}
#define O_I(f, h) {#f, T_INT, offsetof(TrainConfig, f), 0, h}
#define O_L(f, h) {#f, T_LONG, offsetof(TrainConfig, f), 0, h}
#define O_R(f, h) {#f, T_REAL, offsetof(TrainConfig, f), 0, h}
#define O_F(f, h) {#f, T_FLAG, offsetof(TrainConfig, f), 0, h}
static const OptSpec OPTS[] = {
    O_S(data, "FER2013 folder (train/ test/), Kaggle CSV, or class folders"),
    O_S(arch, "architecture file (assets/models/*.arch)"),
    O_S(init, "start from this weights file (same architecture) instead of random weights"),
    O_S(cache, "decoded-data cache file (default: ~/.cache/emocam/...; none: no cache)"),
    O_S(split, "official | 80/20 | 70/15/15 (validation = PublicTest for official)"),
    O_L(seed, "seed of everything random (init, order, augmentation, dropout)"),
    O_I(epochs, "epochs to run"),
    O_I(batch, "batch size"),
    O_I(threads, "threads for the math (the data worker runs beside them)"),
    O_F(bf16, "bfloat16 products, float32 sums (AMX: Xeon Sapphire Rapids+; AVX512-BF16: Zen 4+)"),
    O_S(opt, "sgd | adam | adamw"),
    O_R(lr, "learning rate"),
    O_R(momentum, "SGD momentum"),
    O_F(nesterov, "SGD with Nesterov momentum"),
    O_R(wd, "weight decay (L2 for sgd/adam, decoupled for adamw)"),
    O_I(decay_all, "1: decay every parameter (PyTorch); 0: conv/linear weights only"),
    O_S(sched, "none | plateau | step | cosine"),
    O_R(plateau_factor, "plateau: multiply the lr by this when validation loss stalls"),
    O_I(plateau_patience, "plateau: epochs without improvement before reducing"),
    O_I(step_size, "step: epochs between reductions"),
    O_R(step_gamma, "step: the factor"),
    O_I(warmup, "cosine: epochs of linear warm-up"),
    O_R(min_lr, "cosine: the final learning rate"),
    O_I(early_stop, "stop after this many epochs without a better validation accuracy (0: off)"),
    O_S(class_weights, "none | balanced | w0,w1,...,w6 (weighted cross-entropy)"),
    O_R(label_smoothing, "label smoothing epsilon"),
    O_F(oversample, "weighted random sampler: classes drawn equally often"),
    O_R(clip, "clip the gradient's global L2 norm to this (0: off)"),
    O_S(aug, "augmentation: none | default | key=value,... (see augment.h)"),
    O_S(soft, "knowledge distillation: a teacher's predictions.csv for the training images "
              "(emocam-train eval --set train --out DIR)"),
    O_R(soft_weight, "with soft: the teacher's share of each target, above 0 up to 1 (the rest is the label)"),
    O_R(soft_temp, "with soft: the teacher's temperature (p^(1/T), renormalised; 1: as written)"),
    O_F(keep_epochs, "also keep each epoch's weights as epoch-NNN.weights (for emocam-train average)"),
};
enum { NOPTS = sizeof OPTS / sizeof OPTS[0] };

static TrainConfig config_defaults(void) {
    TrainConfig c;
    memset(&c, 0, sizeof c);
    snprintf(c.split, sizeof c.split, "official");
    snprintf(c.opt, sizeof c.opt, "adam");
    snprintf(c.sched, sizeof c.sched, "none");
    snprintf(c.aug, sizeof c.aug, "none");
    snprintf(c.class_weights, sizeof c.class_weights, "none");
    c.seed = 1;
    c.epochs = 30;
    c.batch = 64;
    c.threads = 2;
    c.lr = 1e-3;
    c.momentum = 0.9;
    c.decay_all = 1;
    c.plateau_factor = 0.5;
    c.plateau_patience = 3;
    c.step_size = 10;
    c.step_gamma = 0.1;
    c.soft_temp = 1;
    return c;
}

static const OptSpec *find_opt(const char *name) {
    for (int i = 0; i < NOPTS; i++) {
        const char *a = OPTS[i].name, *b = name;
        while (*a && (*a == *b || (*a == '_' && *b == '-'))) a++, b++;   // early-stop == early_stop
        if (!*a && !*b) return &OPTS[i];
    }
    return NULL;
}

// Set one option from text. 0, or -1 with the reason in err.
static int set_opt(TrainConfig *c, const OptSpec *o, const char *val, char *err, size_t errlen) {
    char *p = (char *)c + o->off, *end;
    errno = 0;
    switch (o->type) {
    case T_STR:
        if (strlen(val) >= o->size) {
            snprintf(err, errlen, "%s: value too long", o->name);
            return -1;
        }
        memcpy(p, val, strlen(val) + 1);
        return 0;
    case T_INT:
    case T_FLAG:
    case T_LONG: {
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < 0 || (o->type != T_LONG && v > 1000000000)) {
            snprintf(err, errlen, "%s: '%s' is not a non-negative integer", o->name, val);
            return -1;
        }
        if (o->type == T_LONG)
            *(long *)p = v;
        else
            *(int *)p = (int)v;
        return 0;
    }
    case T_REAL: {
        double v = strtod(val, &end);
        if (errno || end == val || *end || !isfinite(v) || v < 0) {
            snprintf(err, errlen, "%s: '%s' is not a non-negative number", o->name, val);
            return -1;
        }
        *(double *)p = v;
        return 0;
    }
    }
    return -1;
}

static int config_read(TrainConfig *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int ln = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *h = strchr(line, '#');
        if (h) *h = 0;
        char *k = line;
        while (*k == ' ' || *k == '\t') k++;
        size_t len = strlen(k);
        while (len && strchr(" \t\r\n", k[len - 1])) k[--len] = 0;
        if (!*k) continue;
        char *eq = strchr(k, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, ln);
            rc = -1;
            break;
        }
        char *v = eq + 1, *ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
        *ke = 0;
        while (*v == ' ' || *v == '\t') v++;
        const OptSpec *o = find_opt(k);
        char e2[EMO_ERRLEN];
        if (!o) {
            snprintf(err, errlen, "%s:%d: unknown setting '%s'", path, ln, k);
            rc = -1;
            break;
        }
        if (set_opt(c, o, v, e2, sizeof e2)) {
            snprintf(err, errlen, "%s:%d: %s", path, ln, e2);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int config_format(const TrainConfig *c, char *buf, size_t len) {
    size_t pos = 0;
    for (int i = 0; i < NOPTS && pos < len; i++) {
        const OptSpec *o = &OPTS[i];
        const char *p = (const char *)c + o->off;
        int w = 0;
        switch (o->type) {
        case T_STR: w = snprintf(buf + pos, len - pos, "%s = %s\n", o->name, p); break;
        case T_INT:
        case T_FLAG: w = snprintf(buf + pos, len - pos, "%s = %d\n", o->name, *(const int *)p); break;
        case T_LONG: w = snprintf(buf + pos, len - pos, "%s = %ld\n", o->name, *(const long *)p); break;
        case T_REAL: w = snprintf(buf + pos, len - pos, "%s = %.9g\n", o->name, *(const double *)p); break;
        }
        if (w < 0) return -1;
        pos += (size_t)w;
    }
    return pos < len ? (int)pos : -1;
}

// ---- the learning-rate schedule
typedef struct {
    double lr;            // current (plateau/step: per epoch; cosine: per step)
    double plateau_best;  // best validation loss seen by the plateau scheduler
    int plateau_bad;      // epochs since it improved
} Sched;

static double cosine_lr(const TrainConfig *c, double epoch_pos) {
    if (c->warmup > 0 && epoch_pos < c->warmup) return c->lr * (epoch_pos + 1e-3) / c->warmup;
    double span = c->epochs - c->warmup, t = span > 0 ? (epoch_pos - c->warmup) / span : 1;
    if (t > 1) t = 1;
    return c->min_lr + 0.5 * (c->lr - c->min_lr) * (1 + cos(3.14159265358979323846 * t));
}

// After an epoch: PyTorch's ReduceLROnPlateau (mode min, threshold 1e-4 relative) on the
// validation loss, or the step schedule.
static void sched_epoch_end(const TrainConfig *c, Sched *s, int epoch, double val_loss) {
    if (!strcmp(c->sched, "plateau")) {
        if (val_loss < s->plateau_best * (1 - 1e-4)) {
            s->plateau_best = val_loss;
            s->plateau_bad = 0;
        } else if (++s->plateau_bad > c->plateau_patience) {
            s->lr *= c->plateau_factor;
            s->plateau_bad = 0;
        }
    } else if (!strcmp(c->sched, "step")) {
        s->lr = c->lr * pow(c->step_gamma, (epoch + 1) / c->step_size);
    }
}

// ---- per-epoch history: the source of log.csv / log.jsonl, saved in the checkpoint
enum { HCOLS = 9 };   // epoch train_loss train_acc val_loss val_acc lr seconds img_per_s public_acc
static const char *HNAMES[HCOLS] = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                    "lr", "seconds", "img_per_s", "public_acc"};

static int write_logs(const char *run, const real *h, int rows, char *err, size_t errlen) {
    size_t cap = 256 + (size_t)rows * 400;
    char *csv = malloc(cap), *js = malloc(cap);
    if (!csv || !js) {
        free(csv);
        free(js);
        snprintf(err, errlen, "%s: out of memory", run);
        return -1;
    }
    size_t a = 0, b = 0;
    for (int j = 0; j < HCOLS; j++) a += (size_t)snprintf(csv + a, cap - a, j ? ",%s" : "%s", HNAMES[j]);
    a += (size_t)snprintf(csv + a, cap - a, "\n");
    for (int r = 0; r < rows; r++) {
        const real *v = h + (size_t)r * HCOLS;
        a += (size_t)snprintf(csv + a, cap - a, "%d,%.5f,%.5f,%.5f,%.5f,%.6g,%.2f,%.0f,%.5f\n",
                              (int)v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
        b += (size_t)snprintf(js + b, cap - b,
                              "{\"epoch\": %d, \"train_loss\": %.5f, \"train_acc\": %.5f, "
                              "\"val_loss\": %.5f, \"val_acc\": %.5f, \"lr\": %.6g, "
                              "\"seconds\": %.2f, \"img_per_s\": %.0f, \"public_acc\": %.5f}\n",
                              (int)v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/log.csv", run);
    int rc = write_atomic(path, csv, a, err, errlen);
    snprintf(path, sizeof path, "%s/log.jsonl", run);
    if (!rc) rc = write_atomic(path, js, b, err, errlen);
    free(csv);
    free(js);
    return rc;
}

// ---- checkpoints
typedef struct {
    int epoch;            // epochs completed
    long step;            // optimizer steps taken
    Sched sched;
    double best_acc;
    int best_epoch, bad_epochs;
} RunState;

static int ckpt_save(const char *path, const Net *net, const Optim *o, const RunState *st,
                     const real *hist, char *err, size_t errlen) {
    size_t mlen = strlen(net->arch) + 512;
    char *meta = malloc(mlen);
    int nt = 3 * net->ntensors + 1, k = 0;
    TOut *t = calloc((size_t)nt, sizeof *t);
    char (*names)[TFILE_NAME_MAX + 1] = calloc((size_t)nt, sizeof *names);
    if (!meta || !t || !names) {
        free(meta);
        free(t);
        free(names);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    snprintf(meta, mlen,
             "epoch=%d\nstep=%ld\nlr=%.17g\nplateau_best=%.17g\nplateau_bad=%d\n"
             "best_acc=%.17g\nbest_epoch=%d\nbad_epochs=%d\n---\n%s",
             st->epoch, st->step, st->sched.lr, st->sched.plateau_best, st->sched.plateau_bad,
             st->best_acc, st->best_epoch, st->bad_epochs, net->arch);
    for (int i = 0; i < net->ntensors; i++) {
        const Tensor *s = &net->tensors[i];
        const real *data = (s->is_buffer ? net->bufs : net->params) + s->off;
        snprintf(names[k], sizeof names[k], "p:%s", s->name);
        t[k] = (TOut){names[k], s->ndim, s->dims, data, 0};
        k++;
        if (s->is_buffer) continue;
        snprintf(names[k], sizeof names[k], "m:%s", s->name);
        t[k] = (TOut){names[k], s->ndim, s->dims, o->m + s->off, 0};
        k++;
        snprintf(names[k], sizeof names[k], "v:%s", s->name);
        t[k] = (TOut){names[k], s->ndim, s->dims, o->v + s->off, 0};
        k++;
    }
    int hd[2] = {st->epoch > 0 ? st->epoch : 1, HCOLS};
    real zero[HCOLS] = {0};
    t[k++] = (TOut){"history", 2, hd, st->epoch > 0 ? hist : zero, 0};
    int rc = tfile_write(path, "CKPT", meta, strlen(meta), t, k, err, errlen);
    free(meta);
    free(t);
    free(names);
    return rc;
}

static const char *meta_get(const char *meta, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = meta; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, "---\n", 4)) break;
        if (!strncmp(p, key, kl) && p[kl] == '=') return p + kl + 1;
    }
    return NULL;
}

// Restore net, optimizer, state and history from a checkpoint of the same architecture.
// *hist (hist_rows rows) grows when the checkpoint holds more epochs than the run now asks for.
static int ckpt_load(const char *path, Net *net, Optim *o, RunState *st, real **hist, int hist_rows,
                     char *err, size_t errlen) {
    TFile f;
    if (tfile_read(path, "CKPT", &f, err, errlen)) return -1;
    const char *arch = strstr(f.meta, "---\n");
    const char *keys[] = {"epoch", "step", "lr", "plateau_best", "plateau_bad", "best_acc",
                          "best_epoch", "bad_epochs"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!meta_get(f.meta, keys[i])) {
            snprintf(err, errlen, "%s: checkpoint lacks '%s'", path, keys[i]);
            goto fail;
        }
    if (!arch || strcmp(arch + 4, net->arch) != 0) {
        snprintf(err, errlen, "%s: checkpoint of another architecture than the run's", path);
        goto fail;
    }
    st->epoch = atoi(meta_get(f.meta, "epoch"));
    st->step = atol(meta_get(f.meta, "step"));
    st->sched.lr = strtod(meta_get(f.meta, "lr"), NULL);
    st->sched.plateau_best = strtod(meta_get(f.meta, "plateau_best"), NULL);
    st->sched.plateau_bad = atoi(meta_get(f.meta, "plateau_bad"));
    st->best_acc = strtod(meta_get(f.meta, "best_acc"), NULL);
    st->best_epoch = atoi(meta_get(f.meta, "best_epoch"));
    st->bad_epochs = atoi(meta_get(f.meta, "bad_epochs"));
    for (int i = 0; i < net->ntensors; i++) {
        const Tensor *s = &net->tensors[i];
        const char *pre[3] = {"p:", "m:", "v:"};
        real *dst[3] = {net_tensor_data(net, s), o->m + s->off, o->v + s->off};
        for (int j = 0; j < (s->is_buffer ? 1 : 3); j++) {
            char name[TFILE_NAME_MAX + 1];
            snprintf(name, sizeof name, "%s%s", pre[j], s->name);
            const TEntry *e = tfile_find(&f, name);
            if (!e || e->count != s->count) {
                snprintf(err, errlen, "%s: checkpoint tensor %s missing or of the wrong size", path, name);
                goto fail;
            }
            tentry_get(e, dst[j]);
        }
    }
    const TEntry *h = tfile_find(&f, "history");
    if (!h || h->ndim != 2 || h->dims[1] != HCOLS || (st->epoch > 0 && h->dims[0] != st->epoch) ||
        st->epoch < 0 || st->epoch > 1000000) {
        snprintf(err, errlen, "%s: checkpoint history does not match its epoch", path);
        goto fail;
    }
    if (st->epoch > hist_rows) {
        real *nh = realloc(*hist, sizeof(real) * ((size_t)st->epoch + 1) * HCOLS);
        if (!nh) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        *hist = nh;
    }
    if (st->epoch > 0) tentry_get(h, *hist);
    o->step = st->step;
    tfile_free(&f);
    return 0;
fail:
    tfile_free(&f);
    return -1;
}

// ---- progress

static void progress_bar(int tty, int epoch, int epochs, int b, int nb, double ips, double loss,
                         double eta) {
    if (!tty) return;
    int width = 24, fill = nb ? b * width / nb : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %d/%d  %.0f img/s  loss %.4f  ETA %d:%02d", epoch,
            epochs, bar, b, nb, ips, loss, (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

static int mkdir_run(const char *run, char *err, size_t errlen) {
    if (mkdir(run, 0755) == 0) return 0;
    if (errno == EEXIST) {
        char p[1200];
        snprintf(p, sizeof p, "%s/last.ckpt", run);
        if (access(p, F_OK) == 0) {
            snprintf(err, errlen, "%s: already holds a run (use --resume %s)", run, run);
            return -1;
        }
        struct stat st;
        if (stat(run, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    }
    snprintf(err, errlen, "%s: cannot create the run folder: %s", run, strerror(errno));
    return -1;
}

// One process trains a run at a time. Two would overwrite each other's checkpoints and epoch
// files with runs that differ (a second `--resume` started while the first is still going), so
// the trainer holds an flock on RUN/lock until it exits, and a second one is turned away.
static int lock_run(const char *run, int *fd, char *err, size_t errlen) {
    char p[1200];
    snprintf(p, sizeof p, "%s/lock", run);
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) {
        snprintf(err, errlen, "%s: %s", p, strerror(errno));
        return -1;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB)) {
        int busy = errno == EWOULDBLOCK;
        char pid[24] = "";
        ssize_t k = busy ? read(*fd, pid, sizeof pid - 1) : 0;
        pid[k > 0 ? k : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        if (busy)
            snprintf(err, errlen, "%s: another emocam-train (pid %s) is training this run; stop it "
                     "or wait for it to finish", run, pid[0] ? pid : "?");
        else
            snprintf(err, errlen, "%s: cannot lock: %s", p, strerror(errno));
        close(*fd);
        *fd = -1;
        return -1;
    }
    if (ftruncate(*fd, 0) == 0) dprintf(*fd, "%ld\n", (long)getpid());   // for the message only
    return 0;
}

// ---- the run
// Loss and accuracy of the eval-mode network on n preprocessed faces.
static void evaluate(Net *net, const real *x, const int *y, int n, int batch, const real *cw,
                     double *loss, double *acc) {
    long in = shape_size(net->in);
    double lsum = 0, wsum = 0;
    int correct = 0;
    for (int i = 0; i < n; i += batch) {
        int m = n - i < batch ? n - i : batch;
        const real *logits = net_forward(net, x + (size_t)i * in, m, 0, NULL);
        double w = 0;
        for (int j = 0; j < m; j++) w += cw ? cw[y[i + j]] : 1;
        lsum += softmax_xent(logits, y + i, m, NCLASSES, cw, 0, NULL, NULL) * w;
        wsum += w;
        for (int j = 0; j < m; j++) {
            int best = 0;
            for (int k = 1; k < NCLASSES; k++)
                if (logits[j * NCLASSES + k] > logits[j * NCLASSES + best]) best = k;
            correct += best == y[i + j];
        }
    }
    *loss = wsum > 0 ? lsum / wsum : 0;
    *acc = n ? (double)correct / n : 0;
}

// Preprocessed inputs and labels of a subset, for evaluation.
static int gather_eval(const Dataset *d, const Net *net, const int *idx, int n, real **x, int **y) {
    *x = real_alloc((size_t)n * FACE_PIXELS);
    *y = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!*x || !*y) return -1;
    for (int i = 0; i < n; i++) {
        net_preprocess(net, dataset_face(d, idx[i]), 1, *x + (size_t)i * FACE_PIXELS);
        (*y)[i] = d->labels[idx[i]];
    }
    return 0;
}

static int parse_class_weights(const char *spec, const Dataset *d, const Split *sp, real *cw,
                               int *use, char *err, size_t errlen) {
    *use = 0;
    if (!strcmp(spec, "none")) return 0;
    *use = 1;
    if (!strcmp(spec, "balanced")) {   // n / (k * n_c), as sklearn's "balanced"
        long counts[NCLASSES];
        dataset_count(d, sp->train, sp->ntrain, counts);
        for (int k = 0; k < NCLASSES; k++)
            cw[k] = counts[k] ? (real)((double)sp->ntrain / (NCLASSES * (double)counts[k])) : 0;
        return 0;
    }
    const char *p = spec;
    for (int k = 0; k < NCLASSES; k++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0 || !isfinite(v) || (k < NCLASSES - 1 && *end != ',') ||
            (k == NCLASSES - 1 && *end)) {
            snprintf(err, errlen, "class_weights: want none, balanced or 7 numbers w0,...,w6");
            return -1;
        }
        cw[k] = (real)v;
        p = end + 1;
    }
    return 0;
}

static int save_command(const char *run, int argc, char **argv, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/command.txt", run);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return -1;
    FILE *f = fopen(path, "r");   // keep earlier lines: one line per start or resume
    if (f) {
        size_t got;
        while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
            len += got;
            if (len == cap) {
                char *nb = realloc(buf, cap *= 2);
                if (!nb) break;
                buf = nb;
            }
        }
        fclose(f);
    }
    size_t need = len + 64;
    for (int i = 0; i < argc; i++) need += strlen(argv[i]) + 3;
    char *nb = realloc(buf, need);
    if (!nb) {
        free(buf);
        return -1;
    }
    buf = nb;
    len += (size_t)snprintf(buf + len, need - len, "emocam-train");
    for (int i = 0; i < argc; i++) len += (size_t)snprintf(buf + len, need - len, " %s", argv[i]);
    len += (size_t)snprintf(buf + len, need - len, "\n");
    int rc = write_atomic(path, buf, len, err, errlen);
    free(buf);
    return rc;
}

// Copy the weights (and running statistics) of the weights file at path into net, whose
// architecture must have the same tensors: fine-tuning or a warm restart of a trained network.
static int init_from(Net *net, const char *path, char *err, size_t errlen) {
    Net *w = net_load(path, err, errlen);
    if (!w) return -1;
    int rc = -1;
    if (w->ntensors != net->ntensors) {
        snprintf(err, errlen, "init %s: holds %d tensors, the architecture has %d", path,
                 w->ntensors, net->ntensors);
        goto out;
    }
    for (int i = 0; i < net->ntensors; i++) {
        const Tensor *a = &w->tensors[i], *b = &net->tensors[i];
        int same = !strcmp(a->name, b->name) && a->ndim == b->ndim;
        for (int k = 0; same && k < a->ndim; k++) same = a->dims[k] == b->dims[k];
        if (!same) {
            snprintf(err, errlen, "init %s: tensor %s does not match the architecture's %s", path,
                     a->name, b->name);
            goto out;
        }
    }
    for (int i = 0; i < net->ntensors; i++)
        memcpy(net_tensor_data(net, &net->tensors[i]), net_tensor_data(w, &w->tensors[i]),
               sizeof(real) * net->tensors[i].count);
    printf("init: weights from %s\n", path);
    rc = 0;
out:
    net_free(w);
    return rc;
}

// ---- knowledge distillation
// The teacher's probabilities for every training image (cfg->soft, a predictions.csv), at
// temperature soft_temp, and room for one batch's targets. 0, or -1 with the reason in err.
static int load_soft(const TrainConfig *cfg, const Dataset *d, const Split *sp, real **soft,
                     uint8_t **has, real **q, char *err, size_t errlen) {
    *soft = malloc(sizeof(real) * (size_t)d->n * NCLASSES);
    *has = malloc((size_t)d->n + 1);
    *q = malloc(sizeof(real) * (size_t)cfg->batch * NCLASSES);
    if (!*soft || !*has || !*q) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (soft_targets_load(cfg->soft, d, *soft, *has, err, errlen)) return -1;
    int missing = 0, first = -1;
    for (int i = 0; i < sp->ntrain; i++)
        if (!(*has)[sp->train[i]] && missing++ == 0) first = sp->train[i];
    if (missing) {
        snprintf(err, errlen,
                 "%s: no row for the training image %s (%d of the %d missing; make the file with "
                 "emocam-train eval --set train on the same data)",
                 cfg->soft, dataset_name(d, first), missing, sp->ntrain);
        return -1;
    }
    long agree = 0;
    for (int i = 0; i < sp->ntrain; i++) {
        int id = sp->train[i], best = 0;
        real *p = *soft + (size_t)id * NCLASSES;
        if (cfg->soft_temp != 1) {
            double s = 0, e = 1 / cfg->soft_temp;
            for (int k = 0; k < NCLASSES; k++) s += p[k] = (real)pow(fmax(p[k], 1e-12), e);
            for (int k = 0; k < NCLASSES; k++) p[k] = (real)(p[k] / s);
        }
        for (int k = 1; k < NCLASSES; k++)
            if (p[k] > p[best]) best = k;
        agree += best == d->labels[id];
    }
    printf("distillation: %s for the %d training images (the teacher agrees with %.1f %% of "
           "the labels); targets %.2f label (smoothed %.2f) + %.2f teacher at temperature %g\n",
           cfg->soft, sp->ntrain, 100.0 * agree / (sp->ntrain ? sp->ntrain : 1), 1 - cfg->soft_weight,
           cfg->label_smoothing, cfg->soft_weight, cfg->soft_temp);
    return 0;
}

static int run_training(TrainConfig *cfg, const char *run, int resume, int stop_after, int argc,
                        char **argv) {
    char err[EMO_ERRLEN] = "", warn[EMO_ERRLEN] = "", path[1200];
    SplitKind sk;
    OptKind ok;
    AugConfig aug = aug_config_none();
    if (split_kind_parse(cfg->split, &sk)) {
        fprintf(stderr, "emocam-train train: split: want official, 80/20 or 70/15/15, not '%s'\n", cfg->split);
        return 2;
    }
    if (optim_parse(cfg->opt, &ok)) {
        fprintf(stderr, "emocam-train train: opt: want sgd, adam or adamw, not '%s'\n", cfg->opt);
        return 2;
    }
    if (strcmp(cfg->sched, "none") && strcmp(cfg->sched, "plateau") && strcmp(cfg->sched, "step") &&
        strcmp(cfg->sched, "cosine")) {
        fprintf(stderr, "emocam-train train: sched: want none, plateau, step or cosine, not '%s'\n", cfg->sched);
        return 2;
    }
    if (aug_config_parse(&aug, cfg->aug, err, sizeof err)) {
        fprintf(stderr, "emocam-train train: %s\n", err);
        return 2;
    }
    real cw_check[NCLASSES];
    int cw_use;
    if (strcmp(cfg->class_weights, "balanced") &&
        parse_class_weights(cfg->class_weights, NULL, NULL, cw_check, &cw_use, err, sizeof err)) {
        fprintf(stderr, "emocam-train train: %s\n", err);
        return 2;
    }
    if (cfg->batch < 1 || cfg->epochs < 1 || cfg->threads < 1 || cfg->step_size < 1 ||
        cfg->label_smoothing >= 1) {
        fprintf(stderr, "emocam-train train: batch, epochs, threads and step_size must be at least 1, "
                        "label_smoothing below 1\n");
        return 2;
    }
    if (cfg->soft_weight > 1 || cfg->soft_temp <= 0) {
        fprintf(stderr, "emocam-train train: soft_weight must be in 0..1, soft_temp above 0\n");
        return 2;
    }
    if (!cfg->soft[0] != !(cfg->soft_weight > 0)) {
        fprintf(stderr, cfg->soft[0] ? "emocam-train train: soft: give soft_weight too (the teacher's share, e.g. 0.5)\n"
                                     : "emocam-train train: soft_weight: give soft too (a teacher's predictions.csv)\n");
        return 2;
    }
    if (emo_set_bf16(cfg->bf16)) {
        fprintf(stderr, "emocam-train train: bf16: this CPU (or kernel) has neither AMX-BF16 nor AVX512-BF16\n");
        return 2;
    }
    omp_set_num_threads(cfg->threads);
    openblas_set_num_threads(cfg->threads);
    int tty = isatty(2);

    // data
    Dataset d;
    char *cache = !strcmp(cfg->cache, "none") ? NULL
                  : cfg->cache[0]                ? strdup(cfg->cache)
                                                 : dataset_default_cache(cfg->data, NULL);
    DataLoadOpts lo = {DATA_AUTO, cache, load_progress, &tty};
    double t_load = now_s();
    if (dataset_load(cfg->data, &lo, &d, err, sizeof err, warn, sizeof warn)) {
        fprintf(stderr, "emocam-train train: %s\n", err);
        free(cache);
        return 1;
    }
    free(cache);
    if (warn[0]) fprintf(stderr, "emocam-train train: warning: %s\n", warn);
    Split sp;
    if (dataset_split(&d, sk, (uint64_t)cfg->seed, &sp, err, sizeof err)) {
        fprintf(stderr, "emocam-train train: %s\n", err);
        dataset_free(&d);
        return 1;
    }
    int *pub = NULL, npub = 0;   // PublicTest, reported each epoch whatever the split
    dataset_select(&d, USAGE_PUBLIC_TEST, &pub, &npub);
    printf("data: %s: %d images%s; split %s: %d train, %d validation, %d test; %d PublicTest "
           "(%.1f s)\n",
           cfg->data, d.n, d.from_cache ? " (from cache)" : "", split_kind_name(sk), sp.ntrain,
           sp.nval, sp.ntest, npub, now_s() - t_load);

    // network, optimizer, state
    Net *net = net_parse_file(cfg->arch, err, sizeof err);
    int rc = 1;
    Optim o = {0};
    real *hist = NULL, *xval = NULL, *xpub = NULL, *dl = NULL;
    int *yval = NULL, *ypub = NULL;
    float *sw = NULL;
    real *soft = NULL, *q = NULL;   // the teacher's targets (d.n, 7); one batch's targets
    uint8_t *has = NULL;
    BatchProducer *bp = NULL;
    int lock_fd = -1;
    if (!net) goto done;
    if (net->in.c != 1 || net->in.h != FACE_H || net->in.w != FACE_W || net->out.c != NCLASSES ||
        net->out.h != 1 || net->out.w != 1) {
        snprintf(err, sizeof err, "%s: the network must map 1x48x48 to 7 classes", cfg->arch);
        goto done;
    }
    if (cfg->soft[0] && load_soft(cfg, &d, &sp, &soft, &has, &q, err, sizeof err)) goto done;
    Rng init;
    rng_seed(&init, (uint64_t)cfg->seed);
    net_init(net, &init);
    if (cfg->init[0] && !resume && init_from(net, cfg->init, err, sizeof err)) goto done;
    if (net_reserve(net, cfg->batch, 1, err, sizeof err)) goto done;
    if (optim_init(&o, ok, net->nparams)) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    o.momentum = cfg->momentum;
    o.nesterov = cfg->nesterov;
    o.wd = cfg->wd;
    o.decay_all = cfg->decay_all;
    RunState st = {.sched = {.lr = cfg->lr, .plateau_best = INFINITY}, .best_acc = -1};
    hist = calloc((size_t)cfg->epochs * HCOLS + HCOLS, sizeof(real));
    dl = real_alloc((size_t)cfg->batch * NCLASSES);
    if (!hist || !dl) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    snprintf(path, sizeof path, "%s/last.ckpt", run);
    if (resume) {
        if (lock_run(run, &lock_fd, err, sizeof err)) goto done;
        if (ckpt_load(path, net, &o, &st, &hist, cfg->epochs, err, sizeof err)) goto done;
        printf("resume: %s at epoch %d (best validation accuracy %.4f at epoch %d)\n", run, st.epoch,
               st.best_acc, st.best_epoch);
        if (st.epoch >= cfg->epochs) {
            printf("the run has done its %d epochs; give --epochs N to go further\n", cfg->epochs);
            rc = 0;
            goto done;
        }
    }
    if (!resume && (mkdir_run(run, err, sizeof err) ||   // only once the inputs are good
                    lock_run(run, &lock_fd, err, sizeof err)))
        goto done;
    {
        char text[8192];
        snprintf(path, sizeof path, "%s/config.txt", run);
        if (config_format(cfg, text, sizeof text) < 0 ||
            write_atomic(path, text, strlen(text), err, sizeof err) ||
            save_command(run, argc, argv, err, sizeof err))
            goto done;
    }
    real cw[NCLASSES];
    int use_cw;
    if (parse_class_weights(cfg->class_weights, &d, &sp, cw, &use_cw, err, sizeof err)) goto done;
    if (gather_eval(&d, net, sp.val, sp.nval, &xval, &yval) ||
        gather_eval(&d, net, pub, npub, &xpub, &ypub)) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    if (cfg->oversample) {
        if (!(sw = malloc(sizeof(float) * (size_t)sp.ntrain))) goto done;
        sampler_class_weights(&d, sp.train, sp.ntrain, sw);
    }
    BatchConfig bc = {.data = &d, .idx = sp.train, .n = sp.ntrain, .weights = sw, .batch = cfg->batch,
                      .shuffle = 1, .aug = &aug, .net = net, .seed = (uint64_t)cfg->seed};
    if (!(bp = producer_new(&bc, st.epoch, 0, err, sizeof err))) goto done;
    int nb = producer_batches_per_epoch(bp);
    printf("train: %s, %zu parameters, %s lr %g, batch %d, %d batches per epoch, %d threads%s%s -> "
           "%s\n",
           cfg->arch, net_count_params(net), optim_name(ok), cfg->lr, cfg->batch, nb, cfg->threads,
           emo_bf16() ? ", bfloat16 on " : "", emo_bf16() ? emo_bf16_unit() : "", run);
    fflush(stdout);
    double t_run = now_s();
    int first_epoch = st.epoch;
    for (int epoch = st.epoch; epoch < cfg->epochs; epoch++) {
        Rng drop;
        rng_seed(&drop, (uint64_t)cfg->seed * 0x9E3779B97F4A7C15ULL + (uint64_t)epoch + 1);
        double t0 = now_s(), lsum = 0;
        long seen = 0, correct = 0;
        for (int b = 0; b < nb; b++) {
            const Batch *B = producer_next(bp);
            if (!B) {
                snprintf(err, sizeof err, "out of memory in the batch producer");
                goto done;
            }
            o.lr = !strcmp(cfg->sched, "cosine") ? cosine_lr(cfg, epoch + (double)b / nb) : st.sched.lr;
            const real *logits = net_forward(net, B->x, B->n, 1, &drop);
            if (!logits) {
                snprintf(err, sizeof err, "out of memory");
                goto done;
            }
            double loss;
            if (soft) {   // the label (smoothed) and the teacher, mixed
                real a = (real)cfg->soft_weight, eps = (real)cfg->label_smoothing;
                for (int j = 0; j < B->n; j++)
                    for (int k = 0; k < NCLASSES; k++)
                        q[j * NCLASSES + k] =
                            (1 - a) * ((k == B->labels[j]) * (1 - eps) + eps / NCLASSES) +
                            a * soft[(size_t)B->ids[j] * NCLASSES + k];
                loss = softmax_xent_probs(logits, q, B->n, NCLASSES, use_cw ? cw : NULL, NULL, dl);
            } else {
                loss = softmax_xent(logits, B->labels, B->n, NCLASSES, use_cw ? cw : NULL,
                                    (real)cfg->label_smoothing, NULL, dl);
            }
            if (!isfinite(loss)) {
                if (tty) fprintf(stderr, "\n");
                if (st.epoch > 0)
                    snprintf(err, sizeof err,
                             "the loss became %g at epoch %d, batch %d: stopped; %s/last.ckpt "
                             "holds epoch %d, the last good one (try a lower --lr or --clip)",
                             loss, epoch + 1, b + 1, run, st.epoch);
                else
                    snprintf(err, sizeof err,
                             "the loss became %g at epoch 1, batch %d: stopped before any "
                             "checkpoint (try a lower --lr or --clip)",
                             loss, b + 1);
                goto done;
            }
            for (int j = 0; j < B->n; j++) {
                int best = 0;
                for (int k = 1; k < NCLASSES; k++)
                    if (logits[j * NCLASSES + k] > logits[j * NCLASSES + best]) best = k;
                correct += best == B->labels[j];
            }
            net_zero_grad(net);
            net_backward(net, B->x, dl, NULL, B->n, &drop);
            if (cfg->clip > 0) clip_grad_norm(net, cfg->clip);
            optim_step(&o, net);
            lsum += loss * B->n;
            seen += B->n;
            double el = now_s() - t0;
            if (tty && (b % 4 == 0 || b == nb - 1))
                progress_bar(tty, epoch + 1, cfg->epochs, b + 1, nb, seen / el, lsum / seen,
                             el / (b + 1) * (nb - b - 1));
        }
        double secs = now_s() - t0, vl, va, pl, pa;
        evaluate(net, xval, yval, sp.nval, cfg->batch, use_cw ? cw : NULL, &vl, &va);
        evaluate(net, xpub, ypub, npub, cfg->batch, NULL, &pl, &pa);
        real *h = hist + (size_t)epoch * HCOLS;
        h[0] = (real)(epoch + 1);
        h[1] = (real)(lsum / seen);
        h[2] = (real)((double)correct / seen);
        h[3] = (real)vl;
        h[4] = (real)va;
        h[5] = (real)o.lr;
        h[6] = (real)secs;
        h[7] = (real)(seen / secs);
        h[8] = (real)pa;
        sched_epoch_end(cfg, &st.sched, epoch, vl);
        st.epoch = epoch + 1;
        st.step = o.step;
        int improved = va > st.best_acc;
        if (improved) {
            st.best_acc = va;
            st.best_epoch = epoch + 1;
            st.bad_epochs = 0;
            snprintf(path, sizeof path, "%s/best.weights", run);
            if (net_save(net, path, err, sizeof err)) goto done;
        } else {
            st.bad_epochs++;
        }
        if (cfg->keep_epochs) {
            snprintf(path, sizeof path, "%s/epoch-%03d.weights", run, epoch + 1);
            if (net_save(net, path, err, sizeof err)) goto done;
        }
        snprintf(path, sizeof path, "%s/last.ckpt", run);
        if (ckpt_save(path, net, &o, &st, hist, err, sizeof err) ||
            write_logs(run, hist, st.epoch, err, sizeof err))
            goto done;
        if (tty) fprintf(stderr, "\r\033[K");
        char pubtxt[32] = "";   // only where the data holds PublicTest faces
        if (npub > 0) snprintf(pubtxt, sizeof pubtxt, "  PublicTest %.4f", pa);
        printf("epoch %3d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f%s%s  lr %.3g  "
               "%.1f s  %.0f img/s\n",
               epoch + 1, cfg->epochs, h[1], h[2], vl, va, improved ? " *" : "  ", pubtxt, o.lr,
               secs, h[7]);
        fflush(stdout);
        if (cfg->early_stop > 0 && st.bad_epochs >= cfg->early_stop) {
            printf("early stop: no better validation accuracy for %d epochs\n", cfg->early_stop);
            break;
        }
        if (stop_after && epoch + 1 - first_epoch >= stop_after && epoch + 1 < cfg->epochs) {
            printf("stopped after %d epochs as asked; continue with --resume %s\n", stop_after, run);
            break;
        }
    }
    printf("done: best validation accuracy %.4f at epoch %d; %s/best.weights (%.1f min)\n",
           st.best_acc, st.best_epoch, run, (now_s() - t_run) / 60);
    rc = 0;
done:
    if (rc && err[0]) fprintf(stderr, "emocam-train train: %s\n", err);
    if (lock_fd >= 0) close(lock_fd);
    producer_free(bp);
    free(sw);
    free(soft);
    free(has);
    free(q);
    free(xval);
    free(yval);
    free(xpub);
    free(ypub);
    free(pub);
    free(hist);
    free(dl);
    optim_free(&o);
    net_free(net);
    split_free(&sp);
    dataset_free(&d);
    return rc;
}

// ---- the command
static void usage(FILE *to) {
    fprintf(to,
            "usage: emocam-train train --data DATA --arch ARCH --out RUN [options]\n"
            "       emocam-train train --config FILE --out RUN [options]\n"
            "       emocam-train train --resume RUN [--epochs N]\n"
            "Trains a network; RUN is a new folder for logs, checkpoints and weights.\n"
            "Options (a --config file holds the same keys as `key = value` lines; options\n"
            "given after --config override it):\n");
    TrainConfig d = config_defaults();
    char def[2048];
    config_format(&d, def, sizeof def);
    for (int i = 0; i < NOPTS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", OPTS[i].name);
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        fprintf(to, "  %-20s %s\n", flag, OPTS[i].help);
    }
    fprintf(to,
            "  --config FILE        read settings from FILE\n"
            "  --out RUN            the run folder (must not exist, or be empty)\n"
            "  --resume RUN         continue RUN from its last checkpoint\n"
            "  --stop-after N       stop this invocation after N epochs (resume later)\n"
            "  -h, --help           this text\n"
            "Defaults:\n%s",
            def);
}

int train_main(int argc, char **argv) {
    TrainConfig cfg = config_defaults();
    const char *out = NULL, *resume = NULL;
    char err[EMO_ERRLEN] = "";
    int stop_after = 0;
    // Two passes: --config and --resume first (they set the base), then every other option.
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "--resume")) && i + 1 >= argc) {
            fprintf(stderr, "emocam-train train: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--config")) {
            if (config_read(&cfg, argv[++i], err, sizeof err)) {
                fprintf(stderr, "emocam-train train: %s\n", err);
                return 2;
            }
        } else if (!strcmp(argv[i], "--resume")) {
            resume = argv[++i];
            char p[1200];
            snprintf(p, sizeof p, "%s/config.txt", resume);
            if (config_read(&cfg, p, err, sizeof err)) {
                fprintf(stderr, "emocam-train train: cannot resume: %s\n", err);
                return 1;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config") || !strcmp(a, "--resume")) {
            i++;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "emocam-train train: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
        if (!strcmp(a, "--stop-after")) {   // this invocation only; not a run setting
            char *end;
            stop_after = i + 1 < argc ? (int)strtol(argv[++i], &end, 10) : -1;
            if (stop_after < 1 || *end) {
                fprintf(stderr, "emocam-train train: --stop-after wants a number of epochs >= 1\n");
                return 2;
            }
            continue;
        }
        if (!strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "emocam-train train: --out needs a value\n");
                return 2;
            }
            out = argv[++i];
            continue;
        }
        const OptSpec *o = find_opt(a + 2);
        if (!o) {
            fprintf(stderr, "emocam-train train: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (resume && strcmp(o->name, "epochs") && strcmp(o->name, "threads") &&
            strcmp(o->name, "bf16")) {
            fprintf(stderr, "emocam-train train: --resume continues the run's own settings; only "
                            "--epochs, --threads and --bf16 may change\n");
            return 2;
        }
        const char *val = "1";
        if (o->type != T_FLAG || (i + 1 < argc && argv[i + 1][0] != '-')) {
            if (i + 1 >= argc) {
                fprintf(stderr, "emocam-train train: %s needs a value\n", a);
                return 2;
            }
            val = argv[++i];
        }
        if (set_opt(&cfg, o, val, err, sizeof err)) {
            fprintf(stderr, "emocam-train train: --%s\n", err);
            return 2;
        }
    }
    const char *run = resume ? resume : out;
    if (!run) {
        fprintf(stderr, "emocam-train train: give --out RUN (a new folder) or --resume RUN\n");
        return 2;
    }
    if (resume && out) {
        fprintf(stderr, "emocam-train train: --out and --resume exclude each other\n");
        return 2;
    }
    if (!cfg.data[0] || !cfg.arch[0]) {
        fprintf(stderr, "emocam-train train: give --data and --arch (or a --config with both)\n");
        return 2;
    }
    return run_training(&cfg, run, resume != NULL, stop_after, argc, argv);
}
