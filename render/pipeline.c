// pipeline.c: decode, recognize + draw, encode on three threads (see pipeline.h).
#include "pipeline.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    Image img;                  // BGR, a copy of the source's frame
    long index;
    double time;
    double ms[NSTAGES];
} Slot;

// A FIFO of slots. It never fills: it can hold every slot of the pool.
typedef struct {
    Slot *items[PIPE_SLOTS];
    int head, n;
    int closed;                 // no more pushes: pops drain what is left, then get NULL
    int cancelled;              // pops get NULL at once
    pthread_mutex_t mu;
    pthread_cond_t cv;
} Queue;

typedef struct {
    Pipeline *p;
    Slot slots[PIPE_SLOTS];
    Queue freeq, decq, drawq;
    pthread_mutex_t err_mu;
    int failed;
    long ms_cap;
} Run;

static void q_init(Queue *q) {
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
}

static void q_destroy(Queue *q) {
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

static void q_push(Queue *q, Slot *s) {
    pthread_mutex_lock(&q->mu);
    q->items[(q->head + q->n) % PIPE_SLOTS] = s;
    q->n++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static Slot *q_pop(Queue *q) {
    pthread_mutex_lock(&q->mu);
    while (!q->cancelled && q->n == 0 && !q->closed) pthread_cond_wait(&q->cv, &q->mu);
    Slot *s = NULL;
    if (!q->cancelled && q->n > 0) {
        s = q->items[q->head];
        q->head = (q->head + 1) % PIPE_SLOTS;
        q->n--;
    }
    pthread_mutex_unlock(&q->mu);
    return s;
}

static void q_close(Queue *q, int cancel) {
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    if (cancel) q->cancelled = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

// The first failure is kept; every queue is cancelled so that all threads stop.
static void run_fail(Run *r, const char *msg) {
    pthread_mutex_lock(&r->err_mu);
    if (!r->failed) {
        r->failed = 1;
        snprintf(r->p->err, sizeof r->p->err, "%s", msg);
    }
    pthread_mutex_unlock(&r->err_mu);
    q_close(&r->freeq, 1);
    q_close(&r->decq, 1);
    q_close(&r->drawq, 1);
}

static int stopped(const Pipeline *p) { return p->stop && *p->stop; }

static void *decode_thread(void *arg) {
    Run *r = arg;
    Pipeline *p = r->p;
    char err[EMO_ERRLEN];
    for (long n = 0; p->max_frames <= 0 || n < p->max_frames; n++) {
        Slot *s = q_pop(&r->freeq);
        if (!s) break;   // cancelled
        double t0 = app_now();
        Frame f;
        int rc = source_read(p->src, &f, err, sizeof err);
        if (rc < 0) {
            run_fail(r, err);
            break;
        }
        if (rc == 0) break;
        const Image *im = f.image;
        if (!(s->img.px && s->img.w == im->w && s->img.h == im->h && s->img.ch == 3)) {
            image_free(&s->img);
            if (image_new(&s->img, im->w, im->h, 3)) {
                run_fail(r, "out of memory for a frame buffer");
                break;
            }
        }
        if (cv_paste(&s->img, im, 0, 0)) {   // a copy (converting a gray frame to BGR)
            run_fail(r, "cannot copy a decoded frame");
            break;
        }
        s->index = f.index;
        s->time = f.time;
        memset(s->ms, 0, sizeof s->ms);
        s->ms[ST_DECODE] = 1e3 * (app_now() - t0);
        q_push(&r->decq, s);
    }
    q_close(&r->decq, 0);
    return NULL;
}

static void *encode_thread(void *arg) {
    Run *r = arg;
    Pipeline *p = r->p;
    Slot *s;
    while ((s = q_pop(&r->drawq))) {
        double t0 = app_now();
        if (p->wr && cv_writer_write(p->wr, &s->img)) {
            char msg[96];
            snprintf(msg, sizeof msg, "cannot encode frame %ld", s->index);
            run_fail(r, msg);
            break;
        }
        s->ms[ST_OUTPUT] = 1e3 * (app_now() - t0);
        if (p->frames >= r->ms_cap) {
            long cap = r->ms_cap ? 2 * r->ms_cap : 1024;
            double *ms = realloc(p->ms, (size_t)cap * NSTAGES * sizeof *ms);
            if (!ms) {
                run_fail(r, "out of memory for the stage times");
                break;
            }
            p->ms = ms;
            r->ms_cap = cap;
        }
        memcpy(p->ms + (size_t)p->frames * NSTAGES, s->ms, sizeof s->ms);
        p->frames++;
        q_push(&r->freeq, s);
    }
    return NULL;
}

void pipeline_csv_header(FILE *f) {
    fprintf(f, "frame,time,face,x,y,w,h");
    for (int k = 0; k < OVERLAY_CLASSES; k++) fprintf(f, ",%s", overlay_class_name(k));
    fprintf(f, ",label\n");
}

static void write_rows(Pipeline *p, const Slot *s, const Track *t, int n) {
    for (int i = 0; i < n; i++) {
        const Track *k = &t[i];
        const char *label = k->label >= 0 ? overlay_class_name(k->label) : "";
        if (p->csv) {
            fprintf(p->csv, "%ld,%.3f,%d,%d,%d,%d,%d", s->index, s->time, k->id, k->box.x, k->box.y,
                    k->box.w, k->box.h);
            for (int c = 0; c < OVERLAY_CLASSES; c++) fprintf(p->csv, ",%.4f", k->probs[c]);
            fprintf(p->csv, ",%s\n", label);
        }
        if (p->jsonl) {
            fprintf(p->jsonl, "{\"frame\":%ld,\"time\":%.3f,\"face\":%d,\"x\":%d,\"y\":%d,\"w\":%d,\"h\":%d",
                    s->index, s->time, k->id, k->box.x, k->box.y, k->box.w, k->box.h);
            for (int c = 0; c < OVERLAY_CLASSES; c++)
                fprintf(p->jsonl, ",\"%s\":%.4f", overlay_class_name(c), k->probs[c]);
            fprintf(p->jsonl, ",\"label\":\"%s\"}\n", label);
        }
        if (k->id > p->max_id) p->max_id = k->id;
    }
    p->faces += n;
}

static void progress_bar(const Pipeline *p, long done, double elapsed, int final) {
    long total = source_frames(p->src);
    if (p->max_frames > 0 && (total < 0 || total > p->max_frames)) total = p->max_frames;
    double fps = elapsed > 0 ? done / elapsed : 0;
    if (total > 0) {
        enum { W = 30 };
        int fill = (int)(W * (double)done / total);
        if (fill > W) fill = W;
        char bar[W + 1];
        for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
        bar[W] = 0;
        fprintf(stderr, "\r[%s] %ld/%ld frames  %.1f fps%s", bar, done, total, fps, final ? "\n" : "");
    } else {
        fprintf(stderr, "\r%ld frames  %.1f fps%s", done, fps, final ? "\n" : "");
    }
    fflush(stderr);
}

int pipeline_run(Pipeline *p) {
    Run *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(p->err, sizeof p->err, "out of memory");
        return -1;
    }
    r->p = p;
    p->frames = p->faces = 0;
    p->max_id = 0;
    p->err[0] = 0;
    q_init(&r->freeq);
    q_init(&r->decq);
    q_init(&r->drawq);
    pthread_mutex_init(&r->err_mu, NULL);
    for (int i = 0; i < PIPE_SLOTS; i++) q_push(&r->freeq, &r->slots[i]);

    double t_start = app_now(), t_last_bar = 0;
    pthread_t dec, enc;
    int dec_ok = pthread_create(&dec, NULL, decode_thread, r) == 0;
    int enc_ok = dec_ok && pthread_create(&enc, NULL, encode_thread, r) == 0;
    if (!dec_ok || !enc_ok) run_fail(r, "cannot start the decode and encode threads");

    OverlayStats st = {.dropped = -1};
    for (int k = 0; k < NSTAGES; k++) st.stage[k] = STAGE_NAMES[k];
    double t_prev = 0;
    long done = 0;
    Slot *s;
    while (enc_ok && (s = q_pop(&r->decq))) {
        if (stopped(p)) {
            run_fail(r, "interrupted");
            break;
        }
        const Track *tracks;
        int n = recognizer_run(p->rec, &s->img, &tracks, s->ms);
        if (n < 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "out of memory recognizing frame %ld", s->index);
            run_fail(r, msg);
            break;
        }
        write_rows(p, s, tracks, n);
        double t0 = app_now();
        if (p->ov) overlay_draw(p->ov, &s->img, tracks, n, &st);
        s->ms[ST_DRAW] = 1e3 * (app_now() - t0);
        // the figures drawn on the next frame: smoothed over about 10 frames
        double now = app_now();
        if (t_prev > 0) {
            double fps = 1.0 / (now - t_prev > 1e-6 ? now - t_prev : 1e-6);
            st.fps = st.fps > 0 ? 0.9 * st.fps + 0.1 * fps : fps;
        }
        t_prev = now;
        for (int k = 0; k < NSTAGES; k++) st.ms[k] = done ? 0.9 * st.ms[k] + 0.1 * s->ms[k] : s->ms[k];
        q_push(&r->drawq, s);
        done++;
        if (p->progress && now - t_last_bar > 0.1) {
            progress_bar(p, done, now - t_start, 0);
            t_last_bar = now;
        }
    }
    q_close(&r->drawq, 0);
    if (dec_ok) pthread_join(dec, NULL);
    if (enc_ok) pthread_join(enc, NULL);
    p->wall_s = app_now() - t_start;
    if (p->progress && !r->failed) progress_bar(p, done, p->wall_s, 1);
    else if (p->progress) fprintf(stderr, "\n");
    if (!r->failed && ((p->csv && ferror(p->csv)) || (p->jsonl && ferror(p->jsonl))))
        run_fail(r, "cannot write the face rows");
    int rc = r->failed ? -1 : 0;
    for (int i = 0; i < PIPE_SLOTS; i++) image_free(&r->slots[i].img);
    q_destroy(&r->freeq);
    q_destroy(&r->decq);
    q_destroy(&r->drawq);
    pthread_mutex_destroy(&r->err_mu);
    free(r);
    return rc;
}

void pipeline_free(Pipeline *p) {
    free(p->ms);
    p->ms = NULL;
}
