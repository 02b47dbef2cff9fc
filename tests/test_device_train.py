"""benchmarks/device_train.sh, the one GPU device call of issue 11, rehearsed on the CPU as CI runs
it: every net trained concurrently for a budget of seconds on a few photographs, without PyAV
(the device has none), then device_check.sh, with at most 8 files under OUT."""

import json
import os
import subprocess
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
NETS = ("atrous", "mlfa", "srn", "golf", "r2d4")


def _photos(root: Path) -> Path:
    from vdeblur.data.synth import _canvas

    for split, k in (("train", 3), ("val", 1)):
        (root / split).mkdir(parents=True)
        for i in range(k):
            img = _canvas(np.random.default_rng([i, len(split)]), 96, 128)
            cv2.imwrite(str(root / split / f"p{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


@pytest.mark.slow
def test_device_train_rehearsal_on_the_cpu(tmp_path):
    photos = _photos(tmp_path / "photos")
    noav = tmp_path / "noav" / "av"  # `import av` fails, as on the device
    noav.mkdir(parents=True)
    (noav / "__init__.py").write_text("raise ImportError('no PyAV on the device')\n")
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PHOTOS": str(photos), "TRAIN_MIN": "0.02", "BUDGET_S": "60",
           "CROP": "32", "BATCH": "2", "OMP_NUM_THREADS": "1", "WORK": str(tmp_path / "work"),
           "PYTHONPATH": str(noav.parent), "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run(["bash", "benchmarks/device_train.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in files), files
    assert {p.name for p in files} >= {"device_train.log", "train.tar.gz", "device_check.log", "test_cuda.xml",
                                       "speed.jsonl"}
    log = (out / "device_train.log").read_text()
    assert "device cpu" in log and "training PASS" in log and "device_check exit 0" in log
    with tarfile.open(out / "train.tar.gz") as tar:
        names = set(tar.getnames())
        for net in NETS:
            assert {f"{net}/{net}.safetensors", f"{net}/{net}.toml", f"{net}/{net}.log"} <= names, (net, names)
            rows = [json.loads(x) for x in tar.extractfile(f"{net}/{net}.log").read().decode().splitlines()
                    if x.startswith("{")]
            assert rows and rows[-1]["step"] >= 1 and rows[-1]["samples_per_s"] > 0 and "val_psnr" in rows[-1]
            entry = tar.extractfile(f"{net}/{net}.toml").read().decode()
            assert f'file = "{net}.safetensors"' in entry
            assert f"--init vdeblur/weights/files/{net}-small.safetensors" in entry and "--crop 32" in entry
        assert "--noise none,low,moderate,severe" in tar.extractfile("r2d4/r2d4.toml").read().decode()
    # each entry names the file beside it, with its checksum: loadable through VDEBLUR_WEIGHTS_TOML
    from vdeblur.weights.spec import load_specs
    from vdeblur.weights.store import locate, verify

    with tarfile.open(out / "train.tar.gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    for net in NETS:
        (spec,) = load_specs(tmp_path / "unpacked" / net / f"{net}.toml")
        assert spec.method == net
        verify(spec, locate(spec))
    speed = [json.loads(x) for x in (out / "speed.jsonl").read_text().splitlines()]
    assert speed and all(x["run"] == "speed_cpu_rehearsal" for x in speed)
