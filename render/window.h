// window.h: an SDL2 window that shows annotated BGR frames. The picture keeps the frame's
// aspect ratio whatever the window's size (black bars fill the rest). Keys come back as
// events: q or Esc quit, space pauses, s takes a snapshot, h toggles the help, b the bars;
// closing the window quits.
#pragma once
#include <stddef.h>

#include "cv.h"

typedef enum {
    WIN_NONE = 0,
    WIN_QUIT,
    WIN_PAUSE,
    WIN_SNAPSHOT,
    WIN_HELP,
    WIN_BARS,
} WindowEvent;

typedef struct Window Window;

// A window for w x h frames, scaled down to fit the screen if need be. NULL with a one-line
// reason (no display, ...).
Window *window_open(const char *title, int w, int h, char *err, size_t errlen);
// The next pending event, WIN_NONE when there is none (never blocks).
WindowEvent window_poll(Window *win);
// Upload a BGR (or gray) frame and show it. 0 or -1 (err says why).
int window_show(Window *win, const Image *frame, char *err, size_t errlen);
// The window's picture as it is on screen, letterbox included, as a new BGR image.
int window_grab(Window *win, Image *out, char *err, size_t errlen);
// Queue a key press as if typed (SDL_PushEvent), for tests and scripted runs: 'q', 's', ...
int window_push_key(Window *win, char key);
void window_close(Window *win);   // NULL is fine
