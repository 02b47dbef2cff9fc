"""`vdeblur synth`: GoPro-layout datasets from a video or stills; degradations (vdeblur.data.degrade)."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from media import pattern, write_video
from vdeblur.cli.synth import synth
from vdeblur.data.degrade import (NOISE_PRESETS, average_frames, camera_motion_stack,
                                  poisson_gaussian, rebvids_plan)
from vdeblur.errors import InputError, OutputError, UsageError


@pytest.fixture
def video(tmp_path) -> Path:
    path = tmp_path / "clip.mkv"
    write_video(path, 30, (64, 48), codec="ffv1", pix_fmt="bgr0")
    return path


@pytest.fixture
def stills(tmp_path) -> Path:
    d = tmp_path / "stills"
    d.mkdir()
    rng = np.random.default_rng(1)
    for k in range(3):
        img = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (80, 60), interpolation=cv2.INTER_CUBIC)
        cv2.putText(img, f"S{k}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        cv2.imwrite(str(d / f"still{k}.png"), img)
    return d


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read(p: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)


def _check_layout(root: Path, kinds=("blur", "sharp")) -> dict[str, list[str]]:
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    seqs: dict[str, list[str]] = {}
    for split in ("train", "test"):
        for seq in sorted((root / split).iterdir()):
            assert sorted(p.name for p in seq.iterdir()) == sorted(kinds)
            names = [sorted(p.name for p in (seq / k).iterdir()) for k in kinds]
            assert names[0] and all(n == names[0] for n in names)
            assert names[0] == [f"{i:06d}.png" for i in range(len(names[0]))]
            seqs.setdefault(split, []).append(seq.name)
    return seqs


def test_video_gopro_layout_split_and_determinism(video, tmp_path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    synth(str(video), out=str(a), average=3, sequence_length=10, test_fraction=0.34, noise="low", json=True)
    lines = [jsonlib.loads(x) for x in capsys.readouterr().out.splitlines()]
    seqs = _check_layout(a, ("blur", "sharp", "noisy"))
    assert len(seqs["train"]) == 2 and len(seqs["test"]) == 1  # the last chunk is held out
    assert not set(seqs["train"]) & set(seqs["test"])
    assert seqs["test"] == ["clip_002"]
    assert lines[-1]["summary"]["frames"] == 3 * 8 and lines[-1]["summary"]["test"] == 1
    assert {(x["split"], x["sequence"], x["frames"]) for x in lines[:-1]} == {
        ("train", "clip_000", 8), ("train", "clip_001", 8), ("test", "clip_002", 8)}
    # sharp frame k of chunk c is source frame 10c + k + 1 (the centre of its 3-frame window)
    sharp = _read(a / "test" / "clip_002" / "sharp" / "000000.png").astype(int)
    assert np.abs(sharp - pattern(21, 48, 64)).max() <= 2
    blur = _read(a / "train" / "clip_000" / "blur" / "000004.png").astype(int)
    mean = np.mean([pattern(i, 48, 64) for i in (4, 5, 6)], axis=0)
    assert np.abs(blur - mean).max() <= 2
    synth(str(video), out=str(b), average=3, sequence_length=10, test_fraction=0.34, noise="low")
    assert "3 sequences" in capsys.readouterr().out
    assert _tree(a) == _tree(b)


def test_video_average_one_and_partial(video, tmp_path) -> None:
    one = tmp_path / "one"
    synth(str(video), out=str(one), average=1, sequence_length=15, linearize=True)
    for seq in (one / "train").iterdir():
        for p in (seq / "blur").iterdir():
            assert p.read_bytes() == (seq / "sharp" / p.name).read_bytes()
    part = tmp_path / "part"
    synth(str(video), out=str(part), partial=True, sequence_length=30, test_fraction=0.0)
    seqs = _check_layout(part)
    assert seqs == {"train": ["clip_000"]}
    blur_dir = part / "train" / "clip_000" / "blur"
    same = [(blur_dir / n).read_bytes() == (part / "train" / "clip_000" / "sharp" / n).read_bytes()
            for n in sorted(p.name for p in blur_dir.iterdir())]
    assert any(same) and not all(same)  # partially blurred: sharp frames between blurred ones


def test_stills_layout_heldout_determinism(stills, tmp_path, capsys) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    kw = dict(frames_per_still=4, average=5, size="48x32", test_fraction=0.2, linearize=True)
    synth(str(stills), out=str(a), seed=3, **kw)
    synth(str(stills), out=str(b), seed=3, **kw)
    synth(str(stills), out=str(c), seed=4, **kw)
    seqs = _check_layout(a)
    assert len(seqs["train"]) == 2 and len(seqs["test"]) == 1
    assert sorted(seqs["train"] + seqs["test"]) == ["still0", "still1", "still2"]
    assert _tree(a) == _tree(b)
    assert _tree(a) != _tree(c)
    seq = a / "train" / seqs["train"][0]
    img = _read(seq / "blur" / "000000.png")
    assert img.shape == (32, 48, 3)
    assert not np.array_equal(img, _read(seq / "sharp" / "000000.png"))
    assert len(list((seq / "blur").iterdir())) == 4
    capsys.readouterr()


def test_errors(video, stills, tmp_path) -> None:
    with pytest.raises(UsageError):
        synth(str(video), out=str(tmp_path / "x"), noise="extreme")
    with pytest.raises(UsageError):
        synth(str(video), out=str(tmp_path / "x"), average=0)
    with pytest.raises(UsageError):
        synth(str(video), out=str(tmp_path / "x"), size="64by48")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError):
        synth(str(empty), out=str(tmp_path / "x"))
    with pytest.raises(InputError):
        synth(str(tmp_path / "missing.mp4"), out=str(tmp_path / "x"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError):
        synth(str(bad), out=str(tmp_path / "x"))
    with pytest.raises(OutputError):
        synth(str(stills), out=str(stills))
    assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x")]


def test_poisson_gaussian_matches_eq1() -> None:
    alpha, sigma = NOISE_PRESETS["moderate"]
    rng = np.random.default_rng(0)
    for y in (40, 128):
        flat = np.full((200, 200, 3), y, np.uint8)
        noisy = poisson_gaussian(flat, alpha, sigma, rng)
        d = noisy.astype(float) - y
        assert abs(d.mean()) < 0.2
        assert d.var() == pytest.approx(alpha * y + sigma ** 2, rel=0.2)
    a = poisson_gaussian(flat, 7.1, 3.3, np.random.default_rng(5))
    assert np.array_equal(a, poisson_gaussian(flat, 7.1, 3.3, np.random.default_rng(5)))


def test_average_frames() -> None:
    f = [np.full((4, 4, 3), v, np.uint8) for v in (0, 255)]
    assert average_frames(f, linearize=False)[0, 0, 0] == 128
    lin = average_frames(f, linearize=True)[0, 0, 0]
    assert lin == round(255 * 0.5 ** (1 / 2.2))
    x = np.random.default_rng(0).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    assert np.array_equal(average_frames([x, x, x], linearize=True), x)
    assert np.array_equal(average_frames([x], linearize=True), x)


def test_rebvids_plan() -> None:
    for seed in range(20):
        n = 50 + 13 * seed
        plan = rebvids_plan(n, np.random.default_rng(seed))
        pos = 0
        for step in plan:  # every source frame used once, in order
            if step is None:
                pos += 1
            else:
                assert step[0] == pos and 7 <= step[1] - step[0] <= 12
                pos = step[1]
        assert pos == n
        blurred = [s is not None for s in plan]
        assert sum(blurred) <= 0.7 * len(plan) and any(blurred) and not all(blurred)
        assert not blurred[0]  # sharp frames before and between the blurred runs
        for i in range(1, len(plan) + 1):
            assert sum(blurred[:i]) <= 0.7 * i + 1e-9
    assert rebvids_plan(30, np.random.default_rng(1)) == rebvids_plan(30, np.random.default_rng(1))


def test_camera_motion_stack() -> None:
    still = cv2.resize(np.random.default_rng(2).integers(0, 256, (10, 10, 3), dtype=np.uint8), (60, 60))
    a = camera_motion_stack(still, 7, np.random.default_rng(0), size=(40, 30))
    b = camera_motion_stack(still, 7, np.random.default_rng(0), size=(40, 30))
    assert len(a) == 7 and a[0].shape == (30, 40, 3) and a[0].dtype == np.uint8
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[-1])  # the camera and the object move


def test_synth_through_the_cli_then_bench(cli, tmp_path):
    """`vdeblur synth` from stills, then `vdeblur bench --dataset synth` reads what it wrote."""
    import json

    import cv2
    import numpy as np

    stills = tmp_path / "stills"
    stills.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        img = cv2.GaussianBlur(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), (0, 0), 1.0)
        cv2.imwrite(str(stills / f"s{i}.png"), img)
    out = tmp_path / "ds"
    r = cli("synth", stills, "-o", out, "--frames-per-still", "6", "--seed", "1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[-1])["summary"]
    r = cli("bench", "--dataset", "synth", "--root", out, "--methods", "identity", "--selectors", "", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout.splitlines()[0])
    assert row["method"] == "identity" and row["frames"] > 0


def test_exposure_centre_target() -> None:
    """render(ks) is the view at the exposure's mean pose: one sub-frame gives that sub-frame, and
    the blur of an exposure is closer to its centre target than to its first or last sub-frame."""
    from vdeblur.data.degrade import camera_motion_renderer

    still = cv2.GaussianBlur(np.random.default_rng(3).integers(0, 256, (160, 160, 3), dtype=np.uint8), (0, 0), 3)
    render = camera_motion_renderer(still, 70, np.random.default_rng(1), size=(64, 48), object_size=0)
    assert np.array_equal(render([5]), render(5))
    for start in (0, 20, 40):
        ks = list(range(start, start + 7))
        blur = average_frames([render(k) for k in ks], True).astype(float)
        err = lambda img: np.abs(blur - img.astype(float)).mean()  # noqa: E731
        assert err(render(ks)) < np.mean([err(render(k)) for k in ks])
    with pytest.raises(ValueError):
        camera_motion_renderer(still, 7, np.random.default_rng(0), motion=0)


def test_synth_then_bench_without_flags(cli, video, tmp_path):
    """`vdeblur synth VIDEO -o DS` then `vdeblur bench --root DS`: a short video (one sequence) still
    gets a test split, and bench tells the kind from the layout (issue 10)."""
    ds = tmp_path / "ds"
    r = cli("synth", video, "-o", ds)
    assert r.exit_code == 0, r.output
    assert "1 train, 1 test" in r.stdout
    r = cli("bench", "--root", ds, "--methods", "identity", "--selectors", "", "--json")
    assert r.exit_code == 0, r.output
    row = jsonlib.loads(r.stdout.splitlines()[0])
    assert row["method"] == "identity" and row["frames"] == 5  # 24 pairs (30 frames, --average 7): 20 %


def test_one_sequence_is_split_train_then_test(video, tmp_path, capsys) -> None:
    """The test split of a single sequence is its last frames, renumbered; nothing lost or shared."""
    out = tmp_path / "one"
    synth(str(video), out=str(out), average=3, test_fraction=0.2, noise="low", json=True)
    lines = [jsonlib.loads(x) for x in capsys.readouterr().out.splitlines()]
    seqs = _check_layout(out, ("blur", "sharp", "noisy"))
    assert seqs == {"train": ["clip_000"], "test": ["clip_000_test"]}
    assert {(x["split"], x["frames"]) for x in lines[:-1]} == {("train", 22), ("test", 6)}  # 28 pairs
    s = lines[-1]["summary"]
    assert (s["frames"], s["train_frames"], s["test_frames"], s["blurred_frames"]) == (28, 22, 6, 28)
    # sharp pair k is source frame k + 1 (centre of a 3-frame window): test starts at source frame 23
    assert np.abs(_read(out / "test" / "clip_000_test" / "sharp" / "000000.png").astype(int)
                  - pattern(23, 48, 64)).max() <= 2
    assert np.abs(_read(out / "train" / "clip_000" / "sharp" / "000021.png").astype(int)
                  - pattern(22, 48, 64)).max() <= 2
    none = tmp_path / "none"  # --test-fraction 0: everything is training data, as asked
    synth(str(video), out=str(none), average=3, test_fraction=0.0)
    assert _check_layout(none) == {"train": ["clip_000"]}


def test_bench_says_how_to_get_a_test_split(cli, video, tmp_path):
    ds = tmp_path / "ds"
    assert cli("synth", video, "-o", ds, "--test-fraction", "0").exit_code == 0
    r = cli("bench", "--root", ds, "--methods", "identity")
    assert r.exit_code == 3 and r.stderr.count("\n") == 1, r.output
    assert "no test sequences" in r.stderr and "vdeblur synth" in r.stderr and "--split train" in r.stderr
    r = cli("bench", "--root", ds, "--methods", "identity", "--selectors", "", "--split", "train", "--json")
    assert r.exit_code == 0, r.output


def test_bench_tells_the_dataset_kind_from_the_layout(tmp_path):
    from vdeblur.cli.bench import detect_kind
    from vdeblur.errors import UsageError

    layouts = {
        "gopro": ["train/GOPR0001/blur", "train/GOPR0001/blur_gamma", "train/GOPR0001/sharp"],
        "synth": ["test/s/blur", "test/s/sharp", "test/s/noisy"],
        "reds": ["val/val_blur/000", "val/val_sharp/000"],
        "bsd": ["BSD_2ms16ms/test/000/Blur/RGB"],
        "dvd": ["quantitative_datasets/IMG_0003/input"],
    }
    for kind, dirs in layouts.items():
        for d in dirs:
            (tmp_path / kind / d).mkdir(parents=True)
        assert detect_kind(str(tmp_path / kind)) == kind
    (tmp_path / "other" / "x").mkdir(parents=True)
    with pytest.raises(UsageError, match="pass --dataset"):
        detect_kind(str(tmp_path / "other"))
