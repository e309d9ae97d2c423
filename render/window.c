// window.c: the SDL2 window (see window.h). The frame goes up as a streaming BGR24 texture;
// SDL's logical size keeps the aspect ratio on resize.
#include "window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>

struct Window {
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Texture *tex;
    int tw, th;          // the texture's (and logical) size
    Image bgr;           // a gray frame converted for upload
};

Window *window_open(const char *title, int w, int h, char *err, size_t errlen) {
    if (w <= 0 || h <= 0) {
        snprintf(err, errlen, "cannot open a %dx%d window", w, h);
        return NULL;
    }
    if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
        snprintf(err, errlen, "cannot open a window: %s (no display? 'emocam video FILE' needs none)",
                 SDL_GetError());
        return NULL;
    }
    Window *win = calloc(1, sizeof *win);
    if (!win) {
        snprintf(err, errlen, "cannot open a window: out of memory");
        SDL_QuitSubSystem(SDL_INIT_VIDEO);
        return NULL;
    }
    // fit the screen (90% of its usable area), keeping the aspect ratio
    int ww = w, wh = h;
    SDL_Rect usable;
    if (SDL_GetDisplayUsableBounds(0, &usable) == 0 && usable.w > 0 && usable.h > 0) {
        double s = SDL_min(0.9 * usable.w / w, 0.9 * usable.h / h);
        if (s < 1) {
            ww = SDL_max(1, (int)(w * s));
            wh = SDL_max(1, (int)(h * s));
        }
    }
    SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
    win->win = SDL_CreateWindow(title, SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, ww, wh,
                                SDL_WINDOW_RESIZABLE | SDL_WINDOW_ALLOW_HIGHDPI);
    if (win->win) win->ren = SDL_CreateRenderer(win->win, -1, 0);   // accelerated, else software
    if (!win->ren) {
        snprintf(err, errlen, "cannot open a window: %s", SDL_GetError());
        window_close(win);
        return NULL;
    }
    return win;
}

void window_close(Window *win) {
    if (!win) return;
    if (win->tex) SDL_DestroyTexture(win->tex);
    if (win->ren) SDL_DestroyRenderer(win->ren);
    if (win->win) SDL_DestroyWindow(win->win);
    image_free(&win->bgr);
    free(win);
    SDL_QuitSubSystem(SDL_INIT_VIDEO);
    SDL_Quit();
}

WindowEvent window_poll(Window *win) {
    (void)win;
    SDL_Event e;
    while (SDL_PollEvent(&e)) {
        if (e.type == SDL_QUIT) return WIN_QUIT;
        if (e.type == SDL_WINDOWEVENT && e.window.event == SDL_WINDOWEVENT_CLOSE) return WIN_QUIT;
        if (e.type != SDL_KEYDOWN || e.key.repeat) continue;
        switch (e.key.keysym.sym) {
        case SDLK_q:
        case SDLK_ESCAPE: return WIN_QUIT;
        case SDLK_SPACE: return WIN_PAUSE;
        case SDLK_s: return WIN_SNAPSHOT;
        case SDLK_h: return WIN_HELP;
        case SDLK_b: return WIN_BARS;
        default: break;
        }
    }
    return WIN_NONE;
}

static int present(Window *win, char *err, size_t errlen) {
    SDL_SetRenderDrawColor(win->ren, 0, 0, 0, 255);
    if (SDL_RenderClear(win->ren) != 0 || SDL_RenderCopy(win->ren, win->tex, NULL, NULL) != 0) {
        snprintf(err, errlen, "window: cannot draw the frame: %s", SDL_GetError());
        return -1;
    }
    return 0;
}

int window_show(Window *win, const Image *frame, char *err, size_t errlen) {
    const Image *im = frame;
    if (frame->ch != 3) {
        image_free(&win->bgr);
        if (cv_convert(frame, &win->bgr, 3)) {
            snprintf(err, errlen, "window: cannot convert the frame");
            return -1;
        }
        im = &win->bgr;
    }
    if (!win->tex || win->tw != im->w || win->th != im->h) {
        if (win->tex) SDL_DestroyTexture(win->tex);
        // BGR24: bytes B, G, R in memory, as OpenCV keeps them
        win->tex = SDL_CreateTexture(win->ren, SDL_PIXELFORMAT_BGR24, SDL_TEXTUREACCESS_STREAMING,
                                     im->w, im->h);
        if (!win->tex) {
            snprintf(err, errlen, "window: cannot make a %dx%d texture: %s", im->w, im->h, SDL_GetError());
            return -1;
        }
        win->tw = im->w;
        win->th = im->h;
        SDL_RenderSetLogicalSize(win->ren, im->w, im->h);   // letterboxed, aspect kept
    }
    if (SDL_UpdateTexture(win->tex, NULL, im->px, im->stride) != 0) {
        snprintf(err, errlen, "window: cannot upload the frame: %s", SDL_GetError());
        return -1;
    }
    if (present(win, err, errlen)) return -1;
    SDL_RenderPresent(win->ren);
    return 0;
}

int window_grab(Window *win, Image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!win->tex) {
        snprintf(err, errlen, "window: nothing shown yet");
        return -1;
    }
    int w, h;
    if (SDL_GetRendererOutputSize(win->ren, &w, &h) != 0 || image_new(out, w, h, 3)) {
        snprintf(err, errlen, "window: cannot read the picture back: %s", SDL_GetError());
        return -1;
    }
    // drawn again and read before SDL_RenderPresent (the back buffer is undefined after it);
    // the logical size is lifted for the read so that the whole window comes back
    SDL_RenderSetLogicalSize(win->ren, 0, 0);
    SDL_RenderSetViewport(win->ren, NULL);
    SDL_RenderSetLogicalSize(win->ren, win->tw, win->th);
    int rc = present(win, err, errlen);
    if (rc == 0) {
        SDL_RenderSetLogicalSize(win->ren, 0, 0);
        SDL_RenderSetViewport(win->ren, NULL);
        if (SDL_RenderReadPixels(win->ren, NULL, SDL_PIXELFORMAT_BGR24, out->px, out->stride) != 0) {
            snprintf(err, errlen, "window: cannot read the picture back: %s", SDL_GetError());
            rc = -1;
        }
        SDL_RenderSetLogicalSize(win->ren, win->tw, win->th);
    }
    SDL_RenderPresent(win->ren);
    if (rc) image_free(out);
    return rc;
}

int window_push_key(Window *win, char key) {
    (void)win;
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = SDL_KEYDOWN;
    e.key.state = SDL_PRESSED;
    e.key.keysym.sym = (SDL_Keycode)key;   // SDL keycodes of printable keys are their characters
    e.key.keysym.scancode = SDL_GetScancodeFromKey(e.key.keysym.sym);
    return SDL_PushEvent(&e) == 1 ? 0 : -1;
}
