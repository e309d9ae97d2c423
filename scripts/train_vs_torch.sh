#!/usr/bin/env bash
# End-to-end training speed (data, augmentation and math) of emocam-train against
# ../shared/bench/torch_baseline.py, side by side in one run, on the same data, network,
# batch (64) and threads. Each side trains EPOCHS epochs (default 1); images/s per epoch come
# from each program's own log. Prints one JSON line per comparison.
#   scripts/train_vs_torch.sh [EPOCHS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-1}
threads=${2:-2}
shared=${EMOCAM_SHARED:-../shared}
bin=${EMOCAM_BUILD:-build}/emocam-train
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[[ -x $bin ]] || { echo "train_vs_torch: build first ($bin is missing)" >&2; exit 1; }
/usr/bin/python3 -c 'import torch, cv2' 2>/dev/null || {
  echo "train_vs_torch: needs python3-torch and python3-opencv" >&2; exit 1; }
npz=${FER_NPZ:-/tmp/emocam-fer.npz}
[[ -f $npz ]] || /usr/bin/python3 "$shared/bench/fercache.py" "$shared/data/fer2013" "$npz" >&2

compare() {   # name torch-model torch-flags emocam-arch emocam-aug
  local name=$1 tmodel=$2 tflags=$3 arch=$4 aug=$5
  local t e
  t=$(/usr/bin/python3 "$shared/bench/torch_baseline.py" "$npz" "$tmodel" "$epochs" "$threads" $tflags |
      grep '"epoch"' | sed 's/.*"img_per_s": \([0-9.]*\).*/\1/' | sort -n | tail -1)
  "$bin" train --data "$shared/data/fer2013" --arch "$arch" --epochs "$epochs" --threads "$threads" \
    --aug "$aug" --out "$work/$name" >/dev/null
  e=$(tail -n +2 "$work/$name/log.csv" | cut -d, -f8 | sort -n | tail -1)
  echo "{\"run\": \"$name\", \"epochs\": $epochs, \"threads\": $threads, \"torch_img_s\": $t, \"emocam_img_s\": $e, \"speedup\": $(awk -v e="$e" -v t="$t" 'BEGIN { printf "%.2f", e / t }')}"
}
compare simple_cnn_v1 simple_cnn_v1 "" assets/models/simple_cnn_v1.arch none
compare deep_cnn_v1_aug deep_cnn_v1 aug assets/models/deep_cnn_v1.arch \
  "p_crop=1,crop_pad=4,crop_reflect=1,p_flip=0.5"
