// test_data_fer.c: the loaders on real FER2013 faces from ../shared/data/fer2013 (skipped,
// exit 77, where that is absent). A small copy of the folder layout and a Kaggle CSV made
// from the same images must load to the same faces, labels and splits; the real folder is
// enumerated in full (without decoding) to check the counts the README gives.
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cv.h"
#include "data.h"
#include "testutil.h"

enum { PER_FOLDER = 3 };

static char *fmt(const char *f, const char *a, const char *b, const char *c) {
    size_t len = strlen(f) + strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(len);
    snprintf(s, len, f, a, b, c);
    return s;
}




int main(void) {
    const char *fer = EMOCAM_SHARED "/data/fer2013";
    struct stat st;
    if (stat(fer, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("test_data_fer: skipped: %s is absent\n", fer);
        return 77;
    }
    const char *tmp = test_tmpdir();
    char *root = fmt("%s/fer%s%s", tmp, "", ""), *csv = fmt("%s/fer.csv%s%s", tmp, "", "");
    mkdir(root, 0755);
    FILE *out = fopen(csv, "wb");
    fputs("emotion,pixels,Usage\n", out);
    static const char *const TOPS[2] = {"train", "test"};
    int rows = 0;
    char err[512];
    for (int t = 0; t < 2; t++) {
        char *top = fmt("%s/%s%s", root, TOPS[t], "");
        mkdir(top, 0755);
        for (int c = 0; c < NCLASSES; c++) {
            char *src_dir = fmt("%s/%s/%s", fer, TOPS[t], CLASS_NAMES[c]);
            char *dst_dir = fmt("%s/%s%s", top, CLASS_NAMES[c], "");
            mkdir(dst_dir, 0755);
            char *names[PER_FOLDER];
            int n = first_files(src_dir, "", names, PER_FOLDER);
            CHECK(n == PER_FOLDER, "%s: %d images", src_dir, n);
            for (int i = 0; i < n; i++) {
                char *from = fmt("%s/%s%s", src_dir, names[i], ""), *to = fmt("%s/%s%s", dst_dir, names[i], "");
                CHECK(copy_file(from, to) == 0, "copy %s", from);
                Image im;
                CHECK(cv_imread(from, 1, &im, err, sizeof err) == 0 && im.w == 48 && im.h == 48, "%s", err);
                const char *usage = !strncmp(names[i], "Training_", 9) ? "Training"
                                    : !strncmp(names[i], "PublicTest_", 11) ? "PublicTest" : "PrivateTest";
                fprintf(out, "%d,", c);
                for (int k = 0; k < FACE_PIXELS; k++) fprintf(out, k ? " %d" : "%d", im.px[k]);
                fprintf(out, ",%s\n", usage);
                rows++;
                image_free(&im);
                free(from);
                free(to);
                free(names[i]);
            }
            free(src_dir);
            free(dst_dir);
        }
        free(top);
    }
    CHECK(fclose(out) == 0, "write %s", csv);

    Dataset a, b;
    int ra = dataset_load(root, NULL, &a, err, sizeof err, NULL, 0);
    CHECK(ra == 0, "folders: %s", err);
    int rb = dataset_load(csv, NULL, &b, err, sizeof err, NULL, 0);
    CHECK(rb == 0, "csv: %s", err);
    if (!ra && !rb) {
        CHECK(a.n == rows && b.n == rows, "n %d %d, want %d", a.n, b.n, rows);
        int same = a.n == b.n;
        for (int i = 0; same && i < a.n; i++)   // both in train/, test/, class, name order
            same = a.labels[i] == b.labels[i] && a.usage[i] == b.usage[i] &&
                   !memcmp(dataset_face(&a, i), dataset_face(&b, i), FACE_PIXELS);
        CHECK(same, "the folder and CSV loaders disagree");
        Split s;
        CHECK(dataset_split(&a, SPLIT_OFFICIAL, 0, &s, err, sizeof err) == 0, "%s", err);
        CHECK(s.ntrain == 7 * PER_FOLDER && s.nval == 7 * PER_FOLDER && s.ntest == 0, "official %d %d %d",
              s.ntrain, s.nval, s.ntest);
        split_free(&s);
    }
    if (!ra) dataset_free(&a);
    if (!rb) dataset_free(&b);

    // the whole folder, enumerated: the README's counts
    char *key = NULL;
    CHECK(dataset_source_key(fer, DATA_AUTO, &key, err, sizeof err) == 0, "key: %s", err);
    CHECK(key && strstr(key, " layout=fer2013 files=32298 "), "key '%s'", key ? key : "");
    free(key);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (!test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    free(root);
    free(csv);
    return test_result("test_data_fer");
}
