// outfile.c: temporary name, then rename (see outfile.h).
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void outfile_clear(OutFile *o) {
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}

int outfile_open(OutFile *o, const char *path, int stream, char *err, size_t errlen) {
    memset(o, 0, sizeof *o);
    if (!path || !*path) {
        snprintf(err, errlen, "no output file given");
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a folder, not a file", path);
        return -1;
    }
    size_t len = strlen(path), cap = len + 40;
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (dot && (dot == path || (slash && dot < slash + 2))) dot = NULL;   // ".hidden", "a/.b": no extension
    size_t stem = dot ? (size_t)(dot - path) : len;
    o->path = malloc(len + 1);
    o->tmp = malloc(cap);
    if (!o->path || !o->tmp) {
        snprintf(err, errlen, "%s: out of memory", path);
        outfile_clear(o);
        return -1;
    }
    memcpy(o->path, path, len + 1);
    snprintf(o->tmp, cap, "%.*s.tmp%ld%s", (int)stem, path, (long)getpid(), dot ? dot : "");
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        outfile_clear(o);
        return -1;
    }
    if (!stream) {
        close(fd);
        return 0;
    }
    o->f = fdopen(fd, "w");
    if (!o->f) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(o->tmp);
        outfile_clear(o);
        return -1;
    }
    return 0;
}

int outfile_commit(OutFile *o, char *err, size_t errlen) {
    int e = 0;
    if (o->f) {
        if (fflush(o->f) != 0 || ferror(o->f)) e = errno ? errno : EIO;
        if (!e && fsync(fileno(o->f)) != 0) e = errno;
        if (fclose(o->f) != 0 && !e) e = errno ? errno : EIO;
        o->f = NULL;
    } else {
        int fd = open(o->tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0) e = errno;
        else {
            if (fsync(fd) != 0) e = errno;
            close(fd);
        }
    }
    if (!e && rename(o->tmp, o->path) != 0) e = errno;
    if (e) {
        snprintf(err, errlen, "%s: cannot write: %s", o->path, strerror(e));
        unlink(o->tmp);
        outfile_clear(o);
        return -1;
    }
    outfile_clear(o);
    return 0;
}

void outfile_abort(OutFile *o) {
    if (o->f) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    outfile_clear(o);
}
