// ensemble.h: several trained networks that classify faces together, for evaluation
// (emocam-train eval) and for the live recognizer. A single weights file is a one-member
// ensemble.
//
// The ensemble list file is text, one member per line:
//
//   # emocam ensemble: WEIGHT PATH [tta=VIEWS] per line
//   1.0  deep_cnn_v1.weights
//   0.5  runs/resnet/best.weights      # a comment may follow, after a space
//   0.5  runs/cbam/best.weights  tta=none
//
//   WEIGHT  a finite number > 0. Members' weights are normalised to sum 1, so "2 a / 1 b" and
//           "1 a / 0.5 b" are the same ensemble.
//   PATH    a weights file (net_save's format), relative to the list file's folder unless it
//           starts with '/'. One token: no spaces.
//   tta=    optional: this member's own test-time augmentation, none, flip or crops (below),
//           in place of the list's. The views are nested (none: the face; flip: the face and
//           its mirror; crops: those and 8 more), so members that see fewer views cost less:
//           a list can spend its time where it buys the most accuracy.
//   One line may instead read "tta none|flip|crops": the test-time augmentation that the
//   weights were chosen for (none without such a line), for every member without its own.
//   Programs that classify with the list use these (ENS_TTA_LIST) unless told otherwise
//   (their --tta gives every member the same).
//   '#' starts a comment at the start of a line or after a space or tab; blank lines are
//   skipped. Anything else (a second tta line, an unknown tta, a missing field, a third
//   field that is not tta=, a fourth field, a bad weight, a path listed twice, a weights file
//   that does not load or does not map 1x48x48 faces to 7 classes) is an error that names the
//   list file and line: "ensemble.txt:3: weight '-1' is not a number > 0".
//   A list with no member is an error too.
//
// A file that starts with the weights magic ("EMOCAMTF") is taken as a one-member ensemble of
// weight 1, so anywhere a list is accepted a single .weights file is too.
//
// Members are folded for inference (net_fold_bn) when loaded: they cannot be trained, saved,
// or used for Grad-CAM (load the member's path again with net_load for that). Each member
// keeps its own input normalisation (in_mean / in_std), applied by net_preprocess.
//
// Not thread-safe: ensemble_predict uses the members' own activation buffers.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model.h"

enum { ENS_CLASSES = 7, ENS_FACE = 48 };

typedef struct {
    Net *net;        // loaded and batchnorm-folded; eval only
    double weight;   // as written in the list (1 for a single weights file)
    char *path;      // the weights file as opened (list folder + PATH)
    int line;        // its line in the list (0 for a single weights file)
    int tta;         // its views: its line's tta=, else the list's tta line (ENS_TTA_*)
    int own_tta;     // 1 when its line says tta=
} EnsembleMember;

typedef struct {
    int n;
    EnsembleMember *m;   // (n)
    char *source;        // the list (or weights) file as given
    double wsum;         // sum of the weights
    int tta;             // the list's tta line (ENS_TTA_NONE without one)
    NetScratch scratch;  // the members' activations and workspace, shared (net_use_scratch)
} Ensemble;

// Test-time augmentation: which views of each face are classified; their probabilities are
// averaged (per member, before the members are weighted).
//   ENS_TTA_NONE    1 view: the face.
//   ENS_TTA_FLIP    2 views: the face and its left-right mirror.
//   ENS_TTA_CROPS  10 views: the face padded by 4 pixels on each side by reflection (the pixel
//                  at -1 is the pixel at 1, as numpy's and torch's "reflect") to 56x56, then
//                  five 48x48 crops: the centre (= the face itself) and the four corners
//                  (offsets (0,0) (8,0) (0,8) (8,8)), each also mirrored. Corners are shifts of
//                  4 pixels diagonally.
//   ENS_TTA_LIST    (for ensemble_predict) each member as the list says (its tta=, else the
//                  list's tta line).
enum { ENS_TTA_LIST = -1, ENS_TTA_NONE = 0, ENS_TTA_FLIP = 1, ENS_TTA_CROPS = 2 };
enum { ENS_TTA_PAD = 4 };
int ensemble_tta_views(int tta);   // 1, 2 or 10; 0 for an unknown tta (ENS_TTA_LIST too)
int ensemble_tta_parse(const char *s);   // "none", "flip", "crops": ENS_TTA_*; else -1
const char *ensemble_tta_name(int tta);  // "none", "flip", "crops"; "?" for an unknown tta

// Write view v (0 .. ensemble_tta_views(tta)-1) of one 48x48 face to dst (48x48).
// v is crop-major: views 2k and 2k+1 are crop k and its mirror (crop 0 is the centre).
void ensemble_tta_view(const uint8_t *face, int tta, int v, uint8_t *dst);

// The tta member k classifies with when the caller asks for tta (ENS_TTA_LIST: its own).
int ensemble_member_tta(const Ensemble *e, int k, int tta);
// The one tta every member uses when the caller asks for tta, or ENS_TTA_LIST when the
// members' differ; and the views a face costs over all members (a face through a member once
// is one view).
int ensemble_uniform_tta(const Ensemble *e, int tta);
int ensemble_views(const Ensemble *e, int tta);

// Load a list (or a single weights file). NULL on error, with the reason in err.
Ensemble *ensemble_load(const char *path, char *err, size_t errlen);
// Parse list text (what ensemble_load does after reading the file): `file` names it in
// messages, and relative PATHs are taken from the folder `dir` ("." when NULL).
Ensemble *ensemble_parse(const char *text, const char *file, const char *dir, char *err, size_t errlen);
void ensemble_free(Ensemble *e);

// Class probabilities of n 48x48 8-bit gray faces ((n, 48, 48) row-major), written to
// probs (n, 7): each member's softmax, averaged over its views (tta, or with ENS_TTA_LIST its
// own), then averaged over the members by their normalised weights. The faces go through each member in batches (of at
// most 128 views, to bound memory). 0, or -1 when out of memory or tta is unknown.
int ensemble_predict(Ensemble *e, const uint8_t *faces, int n, float *probs, int tta);
