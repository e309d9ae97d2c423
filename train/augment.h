// augment.h: data augmentation of face crops, and the batch producer that feeds training from
// a worker thread.
//
// Augmentation, in this order (each step with its own probability, drawn from an explicit Rng):
//   1. geometry: flip, rotation, scale, shear and translation compose into ONE affine map,
//      sampled once, bilinearly; outside the image it reads `fill` (border AUG_BORDER_CONSTANT,
//      as torchvision's RandomAffine fill=0) or the mirrored/replicated image;
//   2. random crop with padding: pad crop_pad pixels (zeros, or a mirror image with
//      crop_reflect=1, like torchvision's padding_mode="reflect"), then crop back to the size
//      at a random integer offset (an exact shift, no interpolation);
//   3. brightness, then contrast jitter (torchvision ColorJitter: x * b; mean + c * (x - mean));
//   4. random erasing (torchvision RandomErasing: area scale, log-uniform aspect ratio, up to 10
//      tries; filled with erase_value, or uniform noise when erase_value < 0).
// A step whose coin fails draws nothing more and leaves the image exactly as it was.
// Pixel values are 0..255 throughout (float or uint8); results are clamped to 0..255.
#pragma once
#include <stdint.h>

#include "data.h"
#include "model.h"

enum { AUG_BORDER_CONSTANT = 0, AUG_BORDER_REFLECT, AUG_BORDER_REPLICATE };
enum { AUG_MAX_PIXELS = 128 * 128 };   // largest face the augmenter takes

typedef struct {
    float p_flip;                          // horizontal flip
    float p_rotate, rotate_deg;            // angle uniform in [-rotate_deg, rotate_deg]
    float p_translate, translate;          // shift uniform in +-translate * size, per axis
    float p_scale, scale_min, scale_max;   // zoom factor uniform in [scale_min, scale_max]
    float p_shear, shear_deg;              // x-shear angle uniform in [-shear_deg, shear_deg]
    int border;                            // AUG_BORDER_*: what the affine map reads outside
    float fill;                            // the value outside for AUG_BORDER_CONSTANT
    float p_crop;                          // random crop after padding
    int crop_pad, crop_reflect;            // pad width; 1 mirror padding, 0 zero padding
    float p_brightness, brightness;        // factor uniform in [max(0, 1-b), 1+b]
    float p_contrast, contrast;            // factor uniform in [max(0, 1-c), 1+c]
    float p_erase;                         // random erasing
    float erase_area_min, erase_area_max;  // fraction of the image area
    float erase_ratio_min, erase_ratio_max;// aspect ratio h/w, drawn log-uniformly
    float erase_value;                     // 0..255; < 0: uniform noise
} AugConfig;

// Every probability 0: no augmentation (ranges set to the defaults' values).
AugConfig aug_config_none(void);
// Write-up A's notebook 03 v3 set: rotation 15 deg, flip .5, translation 10%, scale 0.9..1.1,
// shear 10 deg, brightness .2, contrast .2, erasing p .1 (area .02..33, ratio .3..3.3,
// black); crop off (p 0, pad 4, zeros). Each geometric step p 1 as in torchvision.
AugConfig aug_config_default(void);
// Set fields from "key=value,key=value" (keys as the field names above, e.g.
// "p_rotate=1,rotate_deg=10,p_erase=0"), or one of the presets "none" / "default" as the
// first item. 0, or -1 with "aug: reason" in err (unknown key, bad number, out of range).
int aug_config_parse(AugConfig *c, const char *spec, char *err, size_t errlen);
// Every field as "key=value,..." (parseable by aug_config_parse), for logs. Returns the length
// the full text needs, as snprintf.
int aug_config_format(const AugConfig *c, char *buf, size_t len);

// Augment one w x h face (w * h <= AUG_MAX_PIXELS). src and dst may be the same buffer.
void augment_f32(const AugConfig *c, Rng *r, const float *src, float *dst, int w, int h);
void augment_u8(const AugConfig *c, Rng *r, const uint8_t *src, uint8_t *dst, int w, int h);

// The pieces, for tests and for other uses (e.g. test-time flips).
// a[6] maps OUTPUT pixel (x, y) to the source point (a0 x + a1 y + a2, a3 x + a4 y + a5);
// pixel centres are integers.
void aug_affine_sample(const float *src, float *dst, int w, int h, const float a[6], int border, float fill);
float aug_bilinear(const float *src, int w, int h, float x, float y, int border, float fill);

// ---- the batch producer
//
// Determinism: every random choice is drawn from an Rng seeded by (seed, epoch, purpose,
// position): the epoch's order from (seed, epoch), sample k's augmentation from
// (seed, epoch, k). Batches therefore do not depend on thread timing, and a run resumes
// exactly from (seed, epoch, batch): that is all a checkpoint must save (BatchState).
typedef struct {
    const Dataset *data;
    const int *idx;          // (n) the dataset indices to draw from (e.g. Split.train)
    int n;
    const float *weights;    // (n) NULL: shuffle (or keep order) without replacement; else a
                             // weighted random sampler WITH replacement (torch's
                             // WeightedRandomSampler), epoch_samples draws per epoch
    int epoch_samples;       // with weights: samples per epoch (0: n)
    int batch;               // samples per batch
    int shuffle;             // without weights: 1 a fresh permutation each epoch, 0 in order
    int drop_last;           // 1: leave out the last partial batch of each epoch
    const AugConfig *aug;    // NULL: no augmentation (copied at producer_new)
    const Net *net;          // x = net_preprocess(net, pixels); its input must be 1x48x48 and
                             // its in_mean/in_std must not change while the producer runs.
                             // NULL: x is not filled.
    uint64_t seed;
} BatchConfig;

typedef struct {
    int n;                   // samples in this batch (<= batch)
    int epoch, index;        // which epoch, which batch within it
    int *ids;                // (n) dataset indices
    int *labels;             // (n) 0..6
    uint8_t *pixels;         // (n, 48, 48) after augmentation
    real *x;                 // (n, 1, 48, 48) network input, or NULL when config.net is NULL
} Batch;

typedef struct {
    uint64_t seed;
    int epoch, batch;        // the next batch producer_next will return
} BatchState;

typedef struct BatchProducer BatchProducer;

// Start a worker thread producing from (start_epoch, start_batch) on. NULL with the reason in
// err on a bad configuration or when out of memory.
BatchProducer *producer_new(const BatchConfig *cfg, int start_epoch, int start_batch, char *err,
                            size_t errlen);
// The next batch, waiting for the worker if it is not ready. It stays valid until the next call
// (the worker meanwhile fills the other buffer). Epochs follow one another without end; the
// caller counts producer_batches_per_epoch() calls per epoch. NULL only when out of memory.
const Batch *producer_next(BatchProducer *p);
int producer_batches_per_epoch(const BatchProducer *p);
BatchState producer_state(const BatchProducer *p);   // what to save in a checkpoint
void producer_free(BatchProducer *p);                // stops and joins the worker

// Produce one batch on the calling thread, without a producer: what the worker does for batch
// (epoch, index). order is the epoch's sample order from batch_epoch_order. For tests and tools.
int batch_epoch_order(const BatchConfig *cfg, int epoch, int *order, int len);   // returns count
void batch_fill(const BatchConfig *cfg, const int *order, int count, int epoch, int index, Batch *b);

// Oversampling weights for a weighted sampler: 1 / (count of the sample's class in idx).
void sampler_class_weights(const Dataset *d, const int *idx, int n, float *w);
