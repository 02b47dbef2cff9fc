#!/usr/bin/env bash
# One GPU device call that trains every shipped net and checks the GPU (issue 11, issue 15):
#   1. every net of benchmarks/train_all.sh (atrous, mlfa, srn, golf, r2d4 with --noise
#      none,low,moderate,severe), CONCURRENTLY on the one GPU: one train_all.sh process per net
#      (same recipe: --init the shipped weights, its learning rate, EMA 0.999, checkpoints), each
#      for TRAIN_MIN minutes of wall time, fp32 (cuDNN convolutions use TF32; the train loop has no
#      GradScaler for fp16), crop 192 and batch 16 (the CPU's are 64 and 8;
#      crop 192 because runs/photos are 480-800 px high and a view is supersampled 4x at 0.75-1.5
#      photo px each: at 192 a 480 px photo still gives 2.5 photo px per output px, at 256 only 1.9);
#      Memory: autograd's saved tensors per step (counted on the CPU with saved_tensors_hooks at
#      64x64, scaled to 192x192 x 16) ~1.7 GiB atrous, 5.4 mlfa, 0.7 srn, 4.2 golf, 8.4 r2d4:
#      ~20 GiB for all five of the H200's 139, so BATCH=32 would fit too;
#   2. packs the EMA exports, their weights.toml entries and the training logs into train.tar.gz;
#   3. runs benchmarks/device_check.sh (CUDA tests, sync count, speed tables) with what is left of
#      BUDGET_S, writing 3 files (DEVCHECK_FEW=1).
# Needs torch, opencv, safetensors; no PyAV (the photos path reads with OpenCV and uses JPEG as the
# codec stand-in) and no pip: vdeblur is imported from this checkout (PYTHONPATH; `vdeblur` is a
# shim for `python3 -m vdeblur`). Without CUDA it runs the same steps on the CPU (the rehearsal):
#   TRAIN_MIN=0.02 BUDGET_S=60 OUT=/tmp/devtrain PHOTOS=SMALL_FOLDER CROP=32 BATCH=2 \
#       bash benchmarks/device_train.sh
#
# THE DEVICE CALL (a session lent a GPU runs this first; everything else waits for it):
#   python benchmarks/gather_photos.py runs/photos --long-side 960 --quality 90   # once, here
#   run(command="bash benchmarks/device_train.sh", timeout_s=540,
#       carry=["runs/photos/train", "runs/photos/val"])
#   the photographs (245 in 2026-11: 184 train, 27 MB, and 19 val, 3 MB, at that size; the test
#   ones stay here) travel with the call; the
#   default budget: ~30 s start-up, TRAIN_MIN=4 of training, export, then device_check.sh on the
#   rest of BUDGET_S=500 (its speed tables stop when that is spent). A shorter call: TRAIN_MIN=3.
# Files under $OUT (5, each well under 16 MB; at most 8 with a speed table cut short):
#   device_train.log   everything this script printed (tee'd, unbuffered: a cut run keeps it),
#                      ending with a table of steps, samples/s and validation PSNR per net
#   train.tar.gz       NET/NET.safetensors (fp16 EMA export; NET.ck.ema.* when a net was cut
#                      short), NET/NET.toml (its weights.toml entry, file relative to the toml),
#                      NET/NET.log (JSON line per step, then the entry), NET/NET.ck.json (val
#                      history), NET/out.txt (stderr)
#   device_check.log, test_cuda.xml, speed.jsonl   from benchmarks/device_check.sh
# AFTER THE CALL (on the session's machine): commit device_check's figures as its header says;
# then  mkdir -p runs/devtrain && tar xzf FILES_AT/train.tar.gz -C runs/devtrain  and bench each
# net on the held-out test trees against the shipped weights, as runs/bench/eval_ck.sh does:
#   for t in blurred partial sharp noisy-low noisy-moderate noisy-severe; do
#     x=""; case $t in noisy-*) x=--noisy;; esac
#     VDEBLUR_WEIGHTS_TOML=runs/devtrain/NET/NET.toml vdeblur bench --dataset synth \
#       --root runs/testset/$t $x --methods NET --selectors '' --device cpu --json   # new
#     vdeblur bench --dataset synth --root runs/testset/$t $x --methods NET --selectors '' \
#       --device cpu --json                                                          # shipped
#   done
# and copy NET.safetensors into vdeblur/weights/files/NET-small.safetensors (with its entry's
# sha256, size and recipe in weights.toml) only where it beats the shipped file on that test.
#
# Environment: OUT, BUDGET_S (the whole script's seconds; 500), TRAIN_MIN (4), PHOTOS
# (runs/photos), NETS (train_all.sh's five), CROP, BATCH (192/16 on CUDA, 64/8 on the CPU),
# THREADS (CPU threads per trainer; 3 on CUDA, else OMP_NUM_THREADS or 1), CKMIN (checkpoint
# minutes; 1), GRACE_S (a trainer is killed TRAIN_MIN*60 + GRACE_S after its start; 90),
# DC_MIN_S (device_check gets at least this; 40), WORK (trainers' folder; a new /tmp folder).
# Exit status: 0 when every net trained and exported and device_check.sh passed, else 1.
set -u -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/devtrain}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
exec > >(tee -a "$OUT/device_train.log") 2>&1

T0=$(date +%s)
BUDGET_S=${BUDGET_S:-500}
TRAIN_MIN=${TRAIN_MIN:-4}
PHOTOS=${PHOTOS:-runs/photos}
NETS=${NETS:-atrous mlfa srn golf r2d4}
CKMIN=${CKMIN:-1}
GRACE_S=${GRACE_S:-90}
DC_MIN_S=${DC_MIN_S:-40}
WORK=${WORK:-$(mktemp -d /tmp/devtrain.XXXXXX)}
say() { echo "== [$(($(date +%s) - T0)) s] $*"; }

if [ ! -d "$PHOTOS/train" ]; then
    say "no photographs at $PHOTOS/train: carry runs/photos (benchmarks/gather_photos.py) or set PHOTOS"
    exit 2
fi
read -r CUDA CARD < <($PY -c "import torch; c = torch.cuda.is_available(); print(int(c), (torch.cuda.get_device_name(0) if c else 'no CUDA: CPU rehearsal') + ', torch ' + torch.__version__)")
[ -n "${CUDA:-}" ] || { say "torch does not import"; exit 2; }
if [ "$CUDA" = 1 ]; then
    DEVICE=cuda CROP=${CROP:-192} BATCH=${BATCH:-16} THREADS=${THREADS:-3}
    export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
else
    DEVICE=cpu CROP=${CROP:-64} BATCH=${BATCH:-8} THREADS=${THREADS:-${OMP_NUM_THREADS:-1}}
fi
say "device $DEVICE ($CARD)"
say "nets: $NETS; $TRAIN_MIN min each, concurrently; crop $CROP, batch $BATCH, fp32, $THREADS CPU thread(s) each; photos $PHOTOS ($(ls "$PHOTOS/train" | wc -l) train); budget $BUDGET_S s; work $WORK"

# train_all.sh calls `vdeblur`: without pip that is `python3 -m vdeblur` from this checkout
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nexec %s -m vdeblur "$@"\n' "$PY" > "$WORK/bin/vdeblur"
chmod +x "$WORK/bin/vdeblur"
HARD=$(awk "BEGIN { print int($TRAIN_MIN * 60 + $GRACE_S) }")

declare -A PID
for net in $NETS; do
    mkdir -p "$WORK/$net"
    PATH="$WORK/bin:$PATH" PHOTOS="$PHOTOS" NETS=$net DEVICE=$DEVICE CROP=$CROP BATCH=$BATCH CKMIN=$CKMIN \
        OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS \
        timeout -k 10 "$HARD" bash benchmarks/train_all.sh "$WORK/$net" "$TRAIN_MIN" > "$WORK/$net/out.txt" 2>&1 &
    PID[$net]=$!
done
say "started ${#PID[@]} trainers (each killed after $HARD s)"

progress() {  # one line per net: the last step's figures
    for net in $NETS; do
        local last
        last=$(grep '^{' "$WORK/$net/$net.log" 2>/dev/null | tail -n 1 | grep -o '"\(step\|loss\|samples_per_s\|elapsed_s\|val_psnr\)": [-0-9.e]*' | tr -d '"' | tr '\n' ' ')
        echo "   $net: ${last:-(starting)}"
    done
}
POLL=$(awk "BEGIN { p = int($TRAIN_MIN * 60 / 6); print (p < 5 ? 5 : (p > 30 ? 30 : p)) }")
tick=0
while :; do
    alive=0
    for net in $NETS; do kill -0 "${PID[$net]}" 2>/dev/null && alive=$((alive + 1)); done
    [ "$alive" = 0 ] && break
    sleep 1
    tick=$((tick + 1))
    if [ $((tick % POLL)) = 0 ]; then say "training, $alive running"; progress; fi
done
FAIL=0
for net in $NETS; do
    wait "${PID[$net]}"; rc=$?
    [ -s "$WORK/$net/$net.safetensors" ] || { [ "$rc" = 0 ] && rc=1; }
    [ "$rc" = 0 ] || { FAIL=1; say "$net: exit $rc; its stderr ends:"; tail -n 5 "$WORK/$net/out.txt"; }
done
say "training done"

# per net: the weights.toml entry beside its export (file relative to the toml), then one tar
for net in $NETS; do
    d="$WORK/$net"
    if [ -s "$d/$net.safetensors" ]; then
        sed -n '/^\[\[weights\]\]/,$p' "$d/$net.log" | sed "s|^file = \"files/|file = \"|" > "$d/$net.toml"
    fi
done
( cd "$WORK" && tar czf "$OUT/train.tar.gz" $(for net in $NETS; do
    for f in "$net.safetensors" "$net.toml" "$net.log" "$net.ck.json" out.txt "$net.ck.ema.safetensors" "$net.ck.ema.toml"; do
        [ -f "$net/$f" ] || continue
        case $f in *.ck.ema.*) [ -f "$net/$net.safetensors" ] && continue ;; esac  # the cut-short fallback only
        echo "$net/$f"
    done; done) )
say "train.tar.gz: $(du -k "$OUT/train.tar.gz" | cut -f1) KB"; tar tzvf "$OUT/train.tar.gz" | awk '{ print "   " $3, $6 }'

# samples/s, steps and validation PSNR per net (the last JSON line of each log)
$PY - "$WORK" $NETS <<'EOF'
import json, os, sys
work, nets = sys.argv[1], sys.argv[2:]
print("\n| net | steps | samples/s | val PSNR dB (input) | export |\n|---|---|---|---|---|")
for n in nets:
    rows = []
    try:
        with open(os.path.join(work, n, n + ".log")) as fh:
            rows = [json.loads(x) for x in fh if x.startswith("{")]
    except OSError:
        pass
    last = rows[-1] if rows else {}
    val = [r for r in rows if "val_psnr" in r]
    v = f"{val[-1]['val_psnr']:.2f} ({val[-1]['val_psnr_input']:.2f})" if val else "-"
    ok = "yes" if os.path.isfile(os.path.join(work, n, n + ".safetensors")) else "NO"
    print(f"| {n} | {last.get('step', 0)} | {last.get('samples_per_s', 0):.1f} | {v} | {ok} |")
print()
EOF

LEFT=$((BUDGET_S - ($(date +%s) - T0)))
DC=$([ "$LEFT" -gt "$DC_MIN_S" ] && echo "$LEFT" || echo "$DC_MIN_S")
say "benchmarks/device_check.sh with BUDGET_S=$DC (its log: $OUT/device_check.log)"
DEVCHECK_FEW=1 BUDGET_S=$DC OUT="$OUT" PYTHON="$PY" bash benchmarks/device_check.sh > /dev/null 2>&1
DCRC=$?
grep '^== ' "$OUT/device_check.log" | tail -n 4
say "done: training $([ "$FAIL" = 0 ] && echo PASS || echo FAIL), device_check exit $DCRC, files: $(ls "$OUT" | tr '\n' ' ')"
exit $([ "$FAIL" = 0 ] && [ "$DCRC" = 0 ] && echo 0 || echo 1)
