#!/usr/bin/env bash
# Installs the Debian 12 packages emocam needs that are not installed yet.
# As root it runs apt-get; otherwise it prints the exact command to run (exit 1).
#   scripts/install-deps.sh            build and run dependencies
#   scripts/install-deps.sh --quiet    no output when nothing is missing
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config            # compiler, build
  libopenblas-dev libopenblas-openmp-dev      # matrix math (the OpenMP build of OpenBLAS)
  libopencv-dev opencv-data                   # images, video files, Haar cascades
  libv4l-dev                                  # cameras (V4L2 through libv4l2)
  libsdl2-dev libsdl2-ttf-dev fonts-dejavu-core   # the window and the overlay's text
  xvfb xauth                                  # the window's tests, without a display
)

quiet=0
[[ "${1:-}" == "--quiet" ]] && quiet=1

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  [[ $quiet == 1 ]] || echo "install-deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  echo "install-deps: installing ${missing[*]}"
  bash -c "$cmd"
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root:  sudo bash -c '$cmd'" >&2
  exit 1
fi
