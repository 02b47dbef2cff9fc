#!/usr/bin/env bash
# Train every shipped net on pairs made on the fly from photographs (vdeblur/data/online.py:
# camera shake, moving objects, defocus, Poisson-Gaussian noise, JPEG), each for MINUTES of wall
# time (the cosine schedule runs over the time), starting from the shipped weights. One net at a
# time, in the order of their gain so far. Checkpoints (resumable, --resume) and logs in WORKDIR;
# each net's EMA export is WORKDIR/NET.safetensors and its weights.toml entry ends its .log.
#   bash benchmarks/train_all.sh WORKDIR MINUTES
# Environment: PHOTOS (a gather_photos.py folder; default WORKDIR/photos, built when absent),
# DEVICE (auto), CROP (64), BATCH (8), CKMIN (checkpoint every N minutes; 5), NETS (the list to
# train; default "atrous mlfa srn golf r2d4"). On a CPU run it with OMP_NUM_THREADS=1 beside
# other work; CI runs it with MINUTES=0.02 on a few photographs.
# The frame selector (fsm) is not trained here: it needs labelled frames (vdeblur synth --partial).
set -euo pipefail
W=${1:?usage: train_all.sh WORKDIR MINUTES}
M=${2:?usage: train_all.sh WORKDIR MINUTES}
P=${PHOTOS:-$W/photos}
DEVICE=${DEVICE:-auto}
CROP=${CROP:-64}
BATCH=${BATCH:-8}
CKMIN=${CKMIN:-5}
NETS=${NETS:-atrous mlfa srn golf r2d4}
F=vdeblur/weights/files
mkdir -p "$W"
[ -d "$P/train" ] || python benchmarks/gather_photos.py "$P"
T="vdeblur train --dataset photos --data $P --device $DEVICE --crop $CROP --batch $BATCH --checkpoint-minutes $CKMIN --json"
run() {  # NAME ARGS...: resumes its checkpoint when one is there
  local n=$1; shift
  local r=""; [ -f "$W/$n.ck" ] && r="--resume"
  $T "$@" --checkpoint "$W/$n.ck" $r -o "$W/$n.safetensors" > "$W/$n.log"
}
for net in $NETS; do
  case $net in
    atrous) run atrous -m atrous --minutes "$M" --lr 3e-4 --init $F/atrous-small.safetensors ;;
    mlfa) run mlfa -m mlfa --minutes "$M" --lr 3e-4 --init $F/mlfa-small.safetensors ;;
    srn) run srn -m srn --minutes "$M" --lr 5e-4 --init $F/srn-small.safetensors ;;
    golf) run golf -m golf --minutes "$M" --lr 3e-4 --init $F/golf-small.safetensors ;;  # F and G together
    r2d4) run r2d4 -m r2d4 --noise none,low,moderate,severe --minutes "$M" --lr 3e-4 --init $F/r2d4-small.safetensors ;;
    *) echo "unknown net $net" >&2; exit 2 ;;
  esac
done
echo "weights and logs (each ends with its weights.toml entry) in $W"
