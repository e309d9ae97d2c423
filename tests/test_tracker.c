// test_tracker.c: the IoU tracker on made-up boxes: ids stay with a moving face, new faces get
// new ids (never reused), tracks survive max_missed frames and then end, matching is greedy
// by highest IoU, and the probabilities follow the exponential moving average exactly.
#include <math.h>
#include <string.h>

#include "faces.h"
#include "testutil.h"

static int update(Tracker *t, const Box *b, const float *p, int n, const Track **tr) {
    int m = tracker_update(t, b, p, n, tr);
    CHECK(m == n, "tracker_update returned %d for %d boxes", m, n);
    return m;
}

static void test_ids(void) {
    TrackerConfig c = tracker_defaults();
    c.max_missed = 2;
    Tracker *t = tracker_new(&c);
    const Track *tr;
    // one face moving 4 px a frame keeps id 1
    for (int i = 0; i < 10; i++) {
        Box b = {100 + 4 * i, 50, 80, 80};
        update(t, &b, NULL, 1, &tr);
        CHECK(tr[0].id == 1 && tr[0].age == i + 1 && tr[0].missed == 0 && tr[0].label == -1,
              "frame %d: id %d age %d", i, tr[0].id, tr[0].age);
        CHECK(!memcmp(&tr[0].box, &b, sizeof b), "the track's box is this frame's");
    }
    // a second face elsewhere gets id 2; the returned tracks follow the order of the boxes
    Box two[2] = {{400, 60, 70, 70}, {140, 50, 80, 80}};
    update(t, two, NULL, 2, &tr);
    CHECK(tr[0].id == 2 && tr[1].id == 1, "ids %d %d", tr[0].id, tr[1].id);
    CHECK(tracker_count(t) == 2, "%d tracks", tracker_count(t));
    // face 2 vanishes for max_missed frames: still alive, and comes back with its id
    for (int i = 0; i < c.max_missed; i++) {
        update(t, &two[1], NULL, 1, &tr);
        CHECK(tr[0].id == 1 && tracker_count(t) == 2, "missed %d: %d tracks", i + 1, tracker_count(t));
    }
    update(t, two, NULL, 2, &tr);
    CHECK(tr[0].id == 2 && tr[1].id == 1, "back after %d missed frames: ids %d %d", c.max_missed, tr[0].id, tr[1].id);
    // one frame more than max_missed: it ends; the same place later gets a new id, 3
    for (int i = 0; i < c.max_missed + 1; i++) update(t, &two[1], NULL, 1, &tr);
    CHECK(tracker_count(t) == 1, "%d tracks after expiry", tracker_count(t));
    update(t, two, NULL, 2, &tr);
    CHECK(tr[0].id == 3 && tr[1].id == 1, "ids after expiry %d %d (never reused)", tr[0].id, tr[1].id);
    // an empty frame ages everything; all end after max_missed + 1 of them
    for (int i = 0; i <= c.max_missed; i++) update(t, NULL, NULL, 0, &tr);
    CHECK(tracker_count(t) == 0, "%d tracks left", tracker_count(t));
    update(t, &two[1], NULL, 1, &tr);
    CHECK(tr[0].id == 4, "id %d", tr[0].id);
    tracker_free(t);
}

// Track A = [0,100), B = [60,160); detections d0 = [40,140) and d1 = [-45,55).
// IoU: A-d0 0.43, B-d0 0.67, A-d1 0.38, B-d1 0. Highest first gives B-d0 then A-d1; taking
// A's best first would give A-d0 and leave B and d1 apart (a new id).
static void test_greedy(void) {
    Tracker *t = tracker_new(NULL);
    const Track *tr;
    Box ab[2] = {{0, 0, 100, 100}, {60, 0, 100, 100}};
    update(t, ab, NULL, 2, &tr);
    CHECK(tr[0].id == 1 && tr[1].id == 2, "ids %d %d", tr[0].id, tr[1].id);
    Box d[2] = {{40, 0, 100, 100}, {-45, 0, 100, 100}};
    update(t, d, NULL, 2, &tr);
    CHECK(tr[0].id == 2 && tr[1].id == 1, "d0 -> track %d (want 2), d1 -> track %d (want 1)", tr[0].id, tr[1].id);
    CHECK(tracker_count(t) == 2, "%d tracks", tracker_count(t));
    // below min_iou (0.3): a new track; no overlap never matches, even with min_iou 0
    Box far = {30 + 60, 0, 100, 100};   // IoU with d0's track ([40,140)): 50/150 = 0.33 -> matches
    update(t, &far, NULL, 1, &tr);
    CHECK(tr[0].id == 2, "IoU 0.33 continues track 2, got %d", tr[0].id);
    Box further = {160, 0, 100, 100};   // IoU with [90,190): 30/170 = 0.18 -> new
    update(t, &further, NULL, 1, &tr);
    CHECK(tr[0].id == 3, "IoU 0.18 starts track 3, got %d", tr[0].id);
    tracker_free(t);
    TrackerConfig c = tracker_defaults();
    c.min_iou = 0;
    t = tracker_new(&c);
    Box x = {0, 0, 10, 10}, y = {50, 50, 10, 10};
    update(t, &x, NULL, 1, &tr);
    update(t, &y, NULL, 1, &tr);
    CHECK(tr[0].id == 2, "boxes that do not overlap never match (id %d)", tr[0].id);
    tracker_free(t);
}

static void test_smoothing(void) {
    TrackerConfig c = tracker_defaults();
    CHECK(fabs(c.smoothing - 0.6) < 1e-12, "default smoothing %g", c.smoothing);
    Tracker *t = tracker_new(&c);
    const Track *tr;
    Box b = {10, 10, 50, 50};
    float p1[7] = {1, 0, 0, 0, 0, 0, 0}, p2[7] = {0, 1, 0, 0, 0, 0, 0};
    update(t, &b, p1, 1, &tr);
    CHECK(tr[0].probs[0] == 1 && tr[0].label == 0, "first frame: probs are the frame's");
    update(t, &b, p2, 1, &tr);
    // probs = 0.6 old + 0.4 new
    CHECK(fabsf(tr[0].probs[0] - 0.6f) < 1e-6f && fabsf(tr[0].probs[1] - 0.4f) < 1e-6f && tr[0].label == 0,
          "after one step %g %g label %d", tr[0].probs[0], tr[0].probs[1], tr[0].label);
    CHECK(tr[0].raw[1] == 1 && tr[0].raw[0] == 0, "raw is this frame's");
    update(t, &b, p2, 1, &tr);
    CHECK(fabsf(tr[0].probs[0] - 0.36f) < 1e-6f && fabsf(tr[0].probs[1] - 0.64f) < 1e-6f && tr[0].label == 1,
          "after two steps %g %g label %d", tr[0].probs[0], tr[0].probs[1], tr[0].label);
    // a frame without probabilities keeps them
    update(t, &b, NULL, 1, &tr);
    CHECK(fabsf(tr[0].probs[1] - 0.64f) < 1e-6f && tr[0].label == 1, "kept without probabilities");
    // general: n steps of a constant q from p give q + 0.6^n (p - q)
    for (int i = 0; i < 5; i++) update(t, &b, p1, 1, &tr);
    float want = 1 + powf(0.6f, 5) * (0.36f - 1);
    CHECK(fabsf(tr[0].probs[0] - want) < 1e-5f, "after 5 more steps %g, want %g", tr[0].probs[0], want);
    tracker_free(t);
    // smoothing 0: probs are the frame's
    c.smoothing = 0;
    t = tracker_new(&c);
    update(t, &b, p1, 1, &tr);
    update(t, &b, p2, 1, &tr);
    CHECK(tr[0].probs[0] == 0 && tr[0].probs[1] == 1 && tr[0].label == 1, "no smoothing");
    tracker_free(t);
    // two faces, each smoothed with its own history
    t = tracker_new(NULL);
    Box two[2] = {{0, 0, 40, 40}, {200, 0, 40, 40}};
    float pp[14] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    update(t, two, pp, 2, &tr);
    Box swapped[2] = {two[1], two[0]};
    float qq[14] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1};
    update(t, swapped, qq, 2, &tr);
    CHECK(tr[0].id == 2 && fabsf(tr[0].probs[6] - 1) < 1e-6f && tr[0].label == 6, "face 2: %g", tr[0].probs[6]);
    CHECK(tr[1].id == 1 && fabsf(tr[1].probs[0] - 0.6f) < 1e-6f && fabsf(tr[1].probs[6] - 0.4f) < 1e-6f,
          "face 1: %g %g", tr[1].probs[0], tr[1].probs[6]);
    tracker_free(t);
}

int main(void) {
    test_ids();
    test_greedy();
    test_smoothing();
    return test_result("test_tracker");
}
