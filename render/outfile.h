// outfile.h: output files that appear whole or not at all. Each is written under a temporary
// name beside the final one ("out.tmp1234.mp4": the extension is kept, so that a video writer
// can tell the container) and renamed into place once complete; a failure, or an interrupted
// run, leaves nothing under the final name and removes the temporary file.
#pragma once
#include <stddef.h>
#include <stdio.h>

typedef struct {
    char *path;   // the final name
    char *tmp;    // the temporary name being written
    FILE *f;      // the stream (outfile_open with stream), else NULL
} OutFile;

// Create the temporary file (which proves the folder writable). With stream, f is open on it
// for writing; without, the file is left empty for another writer (a video) to fill. 0, or
// -1 with a one-line reason naming path.
int outfile_open(OutFile *o, const char *path, int stream, char *err, size_t errlen);
// Flush, fsync and close the temporary file, then rename it to the final name. 0, or -1 (the
// temporary file is removed).
int outfile_commit(OutFile *o, char *err, size_t errlen);
// Close and remove the temporary file. A zeroed OutFile is fine.
void outfile_abort(OutFile *o);
