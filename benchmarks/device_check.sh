#!/usr/bin/env bash
# One GPU device call for vdeblur (issue 15): the CUDA tests, then the speed tables on the GPU.
#
#   OUT=/tmp/devcheck bash benchmarks/device_check.sh          # rehearsal on a CPU: CUDA parts skip
#   (device tool) run: command 'bash benchmarks/device_check.sh', timeout_s 540, no carry needed
#   ($OUT is set there; then commit $OUT's files under benchmarks/results/ and the table in README)
#
# Fits one device call: BUDGET_S (default 450 s) of work after start-up; every section has its own
# timeout and the speed tables stop when the budget runs out. Needs torch (and torchvision for the
# DCN kernel) but not PyAV: vdeblur is imported from this checkout (PYTHONPATH; no pip run, so pip
# never looks for torch), and the tests run with --noconftest (the fixtures' clips need PyAV).
# Writes at most 8 files under $OUT:
#   device_check.log         everything printed (tee'd, unbuffered: a run cut short keeps its log)
#   env.txt                  torch, CUDA, card, torchvision, PyAV
#   test_cuda.xml            tests/test_cuda.py as JUnit XML (each test prints its measured error)
#   sync_debug.txt           host-device syncs per restored frame (torch.cuda.set_sync_debug_mode)
#   speed_<prec>_<size>[_cudnnbench].jsonl   benchmarks/methods_speed.py rows (up to 3 files)
# DEVCHECK_FEW=1 (benchmarks/device_train.sh sets it) writes 3 files: device_check.log,
# test_cuda.xml and speed.jsonl (every speed table's rows, each tagged "run": <the name above>);
# env.txt and sync_debug.txt are then in the log only.
# Exit status: 0 when the tests passed (or skipped cleanly without CUDA), 1 otherwise.
set -u -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/devcheck}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
exec > >(tee -a "$OUT/device_check.log") 2>&1
FEW=${DEVCHECK_FEW:-0}
side() { [ "$FEW" = 1 ] && echo /dev/null || echo "$OUT/$1"; }  # side FILE: where a side file goes
speed_json() { [ "$FEW" = 1 ] && echo "$OUT/.speed_$1.jsonl" || echo "$OUT/$1.jsonl"; }
speed_keep() {  # speed_keep TAG: with DEVCHECK_FEW, append TAG's rows to speed.jsonl
    local f="$OUT/.speed_$1.jsonl"
    [ "$FEW" = 1 ] || return 0
    [ -f "$f" ] && sed "s/^{/{\"run\": \"$1\", /" "$f" >> "$OUT/speed.jsonl"
    rm -f "$f"
}

T0=$(date +%s)
BUDGET_S=${BUDGET_S:-450}
DEVCHECK_SIZES=${DEVCHECK_SIZES:-1920x1080 1280x720}
left() { echo $((BUDGET_S - ($(date +%s) - T0))); }
cap() {  # cap SECONDS: the smaller of SECONDS and what is left of the budget less 5 s
    local l; l=$(($(left) - 5)); [ "$1" -lt "$l" ] && echo "$1" || echo "$l"
}
say() { echo "== [$(($(date +%s) - T0)) s] $*"; }

say "environment"
$PY - <<'EOF' | tee "$(side env.txt)"
import importlib.util, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("card", p.name, f"{p.total_memory / 2**30:.1f} GiB", "capability", f"{p.major}.{p.minor}")
for m in ("torchvision", "av", "cv2"):
    print(m, "yes" if importlib.util.find_spec(m) else "no")
from vdeblur.methods.archs import dcn
print("dcn kernel", "torchvision" if dcn.HAS_TORCHVISION else "pure PyTorch")
EOF
CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))")

say "tests/test_cuda.py"
timeout "$(cap 240)" $PY -m pytest -q -p no:cacheprovider --noconftest -rs -s \
    --junitxml="$OUT/test_cuda.xml" tests/test_cuda.py
TESTS=$?
say "tests exit $TESTS"

# DEVCHECK_DEVICE=cpu runs this GPU branch on the CPU (with DEVCHECK_SIZES=160x96 and
# DEVCHECK_ONLY=identity,fsm:small it takes a minute): a rehearsal of the script itself
DEV=${DEVCHECK_DEVICE:-cuda}
if [ "$CUDA" = 1 ] || [ -n "${DEVCHECK_DEVICE:-}" ]; then
    say "host-device syncs per restored frame (sync debug mode) on $DEV"
    DEV=$DEV SIZE=${DEVCHECK_SIZES%% *} timeout "$(cap 60)" $PY - <<'EOF2' 2>&1 | tee "$(side sync_debug.txt)"
import os, warnings, numpy as np, torch
from vdeblur.engine.restorer import Restorer
from vdeblur.errors import WeightsError
from vdeblur.methods.registry import create
from vdeblur.methods.neural import make_untrained
dev = torch.device(os.environ["DEV"])
w, h = map(int, os.environ["SIZE"].split("x"))
frame = (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)
for name in ("unsharp", "golf", "srn", "r2d4"):
    try:
        m = create(name)
    except WeightsError:
        m = make_untrained(name)[0]
    r = Restorer(m, dev, "fp16" if dev.type == "cuda" else "fp32")
    win = [[frame] * m.window]
    r.restore(win)  # warm-up
    if dev.type == "cuda":
        torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r.restore(win)
    if dev.type == "cuda":
        torch.cuda.set_sync_debug_mode(0)
    where = sorted({str(x.message).splitlines()[0][:100] for x in caught})
    print(f"{name} {w}x{h}: {len(caught)} syncs per frame", where[:4])
EOF2
    for size in ${DEVCHECK_SIZES:-1920x1080 1280x720}; do
        for bench in 0 1; do
            [ "$bench" = 1 ] && [ "$size" != "${DEVCHECK_SIZES%% *}" ] && continue  # cudnn.benchmark: first size only
            prec=$([ "$DEV" = cpu ] && echo fp32 || echo fp16)
            tag="speed_${prec}_${size}$([ "$bench" = 1 ] && echo _cudnnbench)"
            if [ "$(left)" -lt 60 ]; then say "budget spent: $tag skipped"; continue; fi
            say "benchmarks/methods_speed.py on $DEV $prec $size cudnn.benchmark=$bench"
            timeout "$(cap 150)" $PY benchmarks/methods_speed.py --baseline none --device "$DEV" \
                --precision "$prec" --size "$size" --repeat "${DEVCHECK_REPEAT:-10}" \
                --only "${DEVCHECK_ONLY:-}" $([ "$bench" = 1 ] && echo --cudnn-benchmark) \
                --json "$(speed_json "$tag")" || say "speed table $tag: exit $?"
            speed_keep "$tag"
        done
    done
else
    say "no CUDA: CUDA tests skipped; speed table rehearsed on the CPU (tiny frame, three entries)"
    timeout "$(cap 120)" $PY benchmarks/methods_speed.py --baseline none --device cpu \
        --only identity,unsharp,fsm:small --size 320x176 --repeat 1 --json "$(speed_json speed_cpu_rehearsal)"
    [ $? -eq 0 ] || TESTS=1
    speed_keep speed_cpu_rehearsal
fi

say "done: tests $([ "$TESTS" = 0 ] && echo PASS || echo FAIL), cuda $CUDA, files: $(ls "$OUT" | tr '\n' ' ')"
exit $([ "$TESTS" = 0 ] && echo 0 || echo 1)
