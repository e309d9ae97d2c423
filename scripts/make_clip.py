#!/usr/bin/python3
"""Make a camera-like test clip: IN letterboxed to WxH, played LOOPS times, at FPS.

emocam's live-speed check needs a 640x480, 30 FPS source, and no camera exists here, so this
writes one from a real clip for `emocam bench --realtime` and `emocam --realtime`:

    /usr/bin/python3 scripts/make_clip.py ../shared/media/video/pyfeat_single_face.mp4 \
        /tmp/face640x480.avi --size 640x480 --fps 30 --loops 10

Needs python3-opencv (a yardstick dependency, not one of emocam's). The output is MJPG, which
OpenCV decodes cheaply, as a webcam's MJPG stream would be."""
import argparse, os, sys

try:
    import cv2
    import numpy as np
except ImportError as e:
    sys.exit(f"make_clip.py: needs Python's OpenCV and numpy ({e}); install them with: apt-get install python3-opencv")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output", help="an .avi file (MJPG)")
    ap.add_argument("--size", default="640x480", help="WxH (default 640x480)")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--loops", type=int, default=10)
    a = ap.parse_args()
    try:
        w, h = (int(v) for v in a.size.lower().split("x"))
        assert 16 <= w <= 8192 and 16 <= h <= 8192
    except (ValueError, AssertionError):
        sys.exit(f"make_clip: --size {a.size}: want WxH, e.g. 640x480")
    cap = cv2.VideoCapture(a.input)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        s = min(w / f.shape[1], h / f.shape[0])   # letterbox: keep the faces' proportions
        r = cv2.resize(f, (round(f.shape[1] * s), round(f.shape[0] * s)), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((h, w, 3), np.uint8)
        y0, x0 = (h - r.shape[0]) // 2, (w - r.shape[1]) // 2
        canvas[y0:y0 + r.shape[0], x0:x0 + r.shape[1]] = r
        frames.append(canvas)
    if not frames:
        sys.exit(f"make_clip: {a.input}: no frames could be read")
    tmp = a.output + ".part.avi"
    out = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"MJPG"), a.fps, (w, h))
    if not out.isOpened():
        sys.exit(f"make_clip: {a.output}: cannot write")
    for _ in range(a.loops):
        for f in frames:
            out.write(f)
    out.release()
    os.replace(tmp, a.output)
    print(f"{a.output}: {len(frames) * a.loops} frames, {w}x{h}, {a.fps:g} FPS")


if __name__ == "__main__":
    main()
