#!/usr/bin/env bash
# The recipe of every weights file in vdeblur/weights/files/: data from scikit-image's photographs,
# then one `vdeblur train` per method. STEPS_SCALE multiplies every step count (the CPU run of
# 2026-11-22 used 1; a GPU can afford 20-50). Run from the repository root:
#   bash benchmarks/train_all.sh WORKDIR [STEPS_SCALE]
set -euo pipefail
W=${1:?usage: train_all.sh WORKDIR [STEPS_SCALE]}
S=${2:-1}
mkdir -p "$W"
python benchmarks/skimage_stills.py "$W/stills"
SYNTH="--frames-per-still 40 --size 320x240 --motion 1 --linearize --seed 6"
[ -d "$W/deblur" ] || vdeblur synth "$W/stills" -o "$W/deblur" $SYNTH
[ -d "$W/partial" ] || vdeblur synth "$W/stills" -o "$W/partial" --partial $SYNTH
for n in low moderate severe; do
  [ -d "$W/noisy-$n" ] || vdeblur synth "$W/stills" -o "$W/noisy-$n" --noise "$n" $SYNTH
done
steps() { echo $(( $1 * S )); }
T="vdeblur train --data $W/deblur --val-every 1000 --json"
vdeblur train --data "$W/partial" --val-every 500 --json -m fsm --steps "$(steps 1500)" --batch 8 --crop 256 --lr 1e-3 -o "$W/fsm-small.safetensors" > "$W/fsm.log"
$T -m srn --steps "$(steps 16000)" --batch 8 --crop 64 --lr 1e-3 -o "$W/srn-small.safetensors" > "$W/srn.log"
$T -m atrous --steps "$(steps 7000)" --batch 8 --crop 64 --lr 5e-4 -o "$W/atrous-small.safetensors" > "$W/atrous.log"
$T -m mlfa --steps "$(steps 2000)" --batch 8 --crop 64 --lr 5e-4 --init "stage1=$W/atrous-small.safetensors" --freeze stage1 -o "$W/mlfa-small.safetensors" > "$W/mlfa.log"
$T -m deblurnet --steps "$(steps 8000)" --batch 8 --crop 64 --lr 1e-3 -o "$W/deblurnet-small.safetensors" > "$W/deblurnet.log"
$T -m golf --stage f --steps "$(steps 3000)" --batch 8 --crop 64 --lr 1e-3 -o "$W/golf-f.safetensors" > "$W/golf-f.log"
$T -m golf --stage g --init "$W/golf-f.safetensors" --steps "$(steps 1000)" --batch 8 --crop 64 --lr 1e-3 -o "$W/golf-small.safetensors" > "$W/golf-g.log"
$T -m r2d4 --noise none,low,moderate,severe --steps "$(steps 1200)" --batch 8 --crop 64 --lr 5e-4 -o "$W/r2d4-small.safetensors" > "$W/r2d4.log"
echo "weights and logs (each ends with its weights.toml entry) in $W"
