#!/usr/bin/env bash
# End-to-end training speed (data, augmentation and math) of emocam-train against
# ../shared/bench/torch_baseline.py, side by side in one run, on the same data, network,
# batch (64) and threads. Each round trains EPOCHS epochs with PyTorch, then with emocam-train;
# rounds alternate so that both sides see the same (noisy) machine, and the best round of each
# side is reported. Images/s per epoch come from each program's own log (training only, not
# the evaluation after each epoch). Prints one JSON line per comparison.
#   scripts/train_vs_torch.sh [EPOCHS] [THREADS] [ROUNDS] [WHICH]
#   WHICH: all (default), simple (simple CNN v1, no augmentation) or deep_aug (the deeper CNN
#   with random crops and flips, the pair the trainer's speed bar names)
#   EMOCAM_TRAIN_ARGS: extra emocam-train options, e.g. --bf16 (PyTorch's baseline script has
#   no such switch: it stays in float32)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-1}
threads=${2:-2}
rounds=${3:-2}
which=${4:-all}
shared=${EMOCAM_SHARED:-../shared}
bin=${EMOCAM_BUILD:-build}/emocam-train
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[[ -x $bin ]] || { echo "train_vs_torch: build first ($bin is missing)" >&2; exit 1; }
/usr/bin/python3 -c 'import torch, cv2' 2>/dev/null || {
  echo "train_vs_torch: needs python3-torch and python3-opencv" >&2; exit 1; }
npz=${FER_NPZ:-/tmp/emocam-fer.npz}
[[ -f $npz ]] || /usr/bin/python3 "$shared/bench/fercache.py" "$shared/data/fer2013" "$npz" >&2

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }

compare() {   # name torch-model torch-flags emocam-arch emocam-aug
  local name=$1 tmodel=$2 tflags=$3 arch=$4 aug=$5
  local t=0 e=0 tr er ts="" es=""
  for ((r = 1; r <= rounds; r++)); do
    tr=$(/usr/bin/python3 "$shared/bench/torch_baseline.py" "$npz" "$tmodel" "$epochs" "$threads" $tflags |
         grep '"epoch"' | sed 's/.*"img_per_s": \([0-9.]*\).*/\1/' | sort -n | tail -1)
    rm -rf "$work/$name"
    "$bin" train --data "$shared/data/fer2013" --arch "$arch" --epochs "$epochs" --threads "$threads" \
      --aug "$aug" ${EMOCAM_TRAIN_ARGS:-} --out "$work/$name" >/dev/null
    er=$(tail -n +2 "$work/$name/log.csv" | cut -d, -f8 | sort -n | tail -1)
    t=$(max "$t" "$tr"); e=$(max "$e" "$er")
    ts+="${ts:+, }$tr"; es+="${es:+, }$er"
  done
  echo "{\"run\": \"$name\", \"emocam_args\": \"${EMOCAM_TRAIN_ARGS:-}\", \"epochs\": $epochs, \"threads\": $threads, \"rounds\": $rounds, \"torch_img_s\": [$ts], \"emocam_img_s\": [$es], \"torch_best\": $t, \"emocam_best\": $e, \"speedup\": $(awk -v e="$e" -v t="$t" 'BEGIN { printf "%.2f", e / t }')}"
}
case $which in
  all|simple) compare simple_cnn_v1 simple_cnn_v1 "" assets/models/simple_cnn_v1.arch none ;;&
  all|deep_aug) compare deep_cnn_v1_aug deep_cnn_v1 aug assets/models/deep_cnn_v1.arch \
                  "p_crop=1,crop_pad=4,crop_reflect=1,p_flip=0.5" ;;
  all|simple|deep_aug) ;;
  *) echo "train_vs_torch: WHICH is all, simple or deep_aug, not '$which'" >&2; exit 2 ;;
esac
