// testutil.h: the few helpers every test uses. A failed CHECK prints file:line and the
// condition, counts the failure, and the test goes on; main returns test_result().
#pragma once
#include <stdio.h>

extern int test_failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: FAILED %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            test_failures++;                                               \
        }                                                                  \
    } while (0)

// Exit code for ctest: 0 pass, 1 fail.
int test_result(const char *name);
// A scratch folder for this test's files (created; removed by the caller if it wants).
const char *test_tmpdir(void);
// The first k names (sorted) in dir that start with prefix ("" for all), hidden files left
// out; malloc'd into out. Returns how many.
int first_files(const char *dir, const char *prefix, char **out, int k);
// Copy a file. 0 or -1.
int copy_file(const char *from, const char *to);
