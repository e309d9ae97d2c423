#include "testutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int test_failures = 0;

int test_result(const char *name) {
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

const char *test_tmpdir(void) {
    static char dir[256];   // one per process, made once
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/emocam-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int first_files(const char *dir, const char *prefix, char **out, int k) {
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int n = 0, cap = 1024;
    char **all = malloc(sizeof *all * (size_t)cap);
    struct dirent *e;
    while (all && (e = readdir(dp))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix))) continue;
        if (n == cap) {
            char **na = realloc(all, sizeof *all * (size_t)(cap *= 2));
            if (!na) break;
            all = na;
        }
        all[n++] = strdup(e->d_name);
    }
    closedir(dp);
    if (!all) return 0;
    qsort(all, (size_t)n, sizeof *all, cmp_str);
    int m = n < k ? n : k;
    for (int i = 0; i < n; i++)
        if (i < m) out[i] = all[i];
        else free(all[i]);
    free(all);
    return m;
}

int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    char buf[8192];
    size_t got;
    while (ok && (got = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, got, b) == got;
    if (a) fclose(a);
    if (b && fclose(b) != 0) ok = 0;
    return ok ? 0 : -1;
}
