// pipeline.h: annotating a video as fast as the cores allow. Three threads overlap, joined
// by bounded queues over a fixed pool of frame buffers:
//
//   decode thread   source_read, copy into a free buffer      -> decoded queue
//   calling thread  detect, crop, classify (one batch), track, draw, write the rows
//                                                             -> drawn queue
//   encode thread   cv_writer_write                           -> free buffers
//
// Frames keep their order; the pool bounds the memory (PIPE_SLOTS frames). The first error in
// any thread stops all three, and pipeline_run reports it.
#pragma once
#include <signal.h>
#include <stdio.h>

#include "app.h"
#include "cv.h"
#include "overlay.h"
#include "source.h"

enum { PIPE_SLOTS = 8 };

typedef struct {
    // what to run
    Source *src;
    Recognizer *rec;
    Overlay *ov;
    CvWriter *wr;               // NULL: frames are not encoded
    FILE *csv, *jsonl;          // NULL: not written; the caller writes the CSV header
    long max_frames;            // 0: until the source ends
    int progress;               // a progress bar on stderr
    volatile sig_atomic_t *stop;   // set by a signal handler: stop with an error (may be NULL)
    // what happened
    long frames;                // frames through all stages
    long faces;                 // face rows
    int max_id;                 // the highest track id (ids are 1, 2, ...)
    double wall_s;              // from the first read to the last frame encoded
    double *ms;                 // (frames, NSTAGES) milliseconds per frame and stage
    char err[EMO_ERRLEN];       // why pipeline_run failed
} Pipeline;

// 0 when the source ended (or max_frames were done), -1 on an error (p->err says why).
int pipeline_run(Pipeline *p);
void pipeline_free(Pipeline *p);   // the ms array

// The header line of the CSV that pipeline_run writes rows of:
// frame,time,face,x,y,w,h,angry,disgust,fear,happy,sad,surprise,neutral,label
void pipeline_csv_header(FILE *f);
