"""Frame selection: blur_score, the streaming LaplacianSelector, NoSelector, make_selector.

Nahli et al. sec. III-B/III-C (select the blurred frames of a partially blurred video) and
sec. IV-E.3, Table 9 (classify only the middle frame of each batch of 15 frames).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pytest

from vdeblur.data import synth_clip
from vdeblur.errors import UsageError
from vdeblur.select import Decision, LaplacianSelector, NoSelector, blur_score, make_selector

SEEDS = (0, 1, 2, 3, 4)


@lru_cache(maxsize=None)
def _clip(seed: int, fraction: float = 0.5) -> tuple[list, list, list[bool]]:
    """(blurred luma planes, sharp luma planes, labels) of synth_clip(seed)."""
    c = synth_clip(seed=seed, blur_fraction=fraction)
    gray = lambda fs: [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in fs]  # noqa: E731
    return gray(c.blurred), gray(c.sharp), c.labels


def run(sel, frames: list[np.ndarray | None]) -> list[Decision]:
    """Drive a selector like the engine: hold frames until decided; check order and the bound."""
    out: list[Decision] = []
    for i, g in enumerate(frames):
        assert (i - len(out)) + 1 <= sel.lookahead + 1  # held frames, this one included
        out += sel.push(i, g if sel.needs_score(i) else None)
        assert i + 1 - len(out) <= sel.lookahead
    out += sel.flush()
    assert [d.index for d in out] == list(range(len(frames)))
    assert sel.flush() == []
    return out


def accuracy(decisions: list[Decision], labels: list[bool]) -> float:
    return float(np.mean([d.blurred == t for d, t in zip(decisions, labels)]))


def test_blur_score_scale_and_dtypes() -> None:
    g = _clip(0)[1][0]
    ref = blur_score(g)
    assert ref > 3 * blur_score(cv2.GaussianBlur(g, (0, 0), 1.5))
    # every depth is scored on the 8-bit scale
    assert blur_score(g.astype(np.uint16) * 257) == pytest.approx(ref, rel=1e-4)  # 16-bit
    assert blur_score(g.astype(np.uint16) * 4) == pytest.approx(ref, rel=1e-2)  # 10-bit, low bits
    assert blur_score(g.astype(np.uint16) * 16) == pytest.approx(ref, rel=1e-2)  # 12-bit
    assert blur_score(g.astype(np.float32)) == pytest.approx(ref, rel=1e-4)  # float, 0..255
    assert blur_score(g.astype(np.float32) * 257) == pytest.approx(ref, rel=1e-4)  # float, 16-bit
    assert blur_score(g / 255.0, data_range=1.0) == pytest.approx(ref, rel=1e-4)
    assert blur_score(g[:, ::2]) > 0  # a strided view
    big = cv2.resize(g, (1280, 720), interpolation=cv2.INTER_CUBIC)
    # analysis scale: shorter side 360 -> 720p is scored as its INTER_AREA 640x360 version
    small = cv2.resize(big, (640, 360), interpolation=cv2.INTER_AREA)
    assert blur_score(big) == pytest.approx(blur_score(small), rel=1e-6)
    with pytest.raises(ValueError):
        blur_score(np.zeros((4, 4, 3), np.uint8))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_on_partially_blurred_clips(seed: int) -> None:
    blurred, _, labels = _clip(seed)
    acc = accuracy(run(LaplacianSelector(), blurred), labels)
    print(f"seed {seed}: accuracy {acc:.3f}")
    assert acc >= 0.9


@pytest.mark.slow
def test_accuracy_mostly_blurred_clip() -> None:
    blurred, _, labels = _clip(1, 0.7)  # REBVIDS: up to 70% of frames blurred
    assert accuracy(run(LaplacianSelector(), blurred), labels) >= 0.9


def test_high_depth_luma_gives_the_same_decisions() -> None:
    blurred, _, labels = _clip(3)
    ref = [d.blurred for d in run(LaplacianSelector(), blurred)]
    for scale in (4, 257):  # 10-bit planes as decoders give them (low bits), full 16-bit
        frames = [g.astype(np.uint16) * scale for g in blurred]
        assert [d.blurred for d in run(LaplacianSelector(), frames)] == ref
        thr = [d.blurred for d in run(LaplacianSelector(threshold=400.0), frames)]
        assert thr == [d.blurred for d in run(LaplacianSelector(threshold=400.0), blurred)]


def test_no_blur_and_soft_videos_are_not_blurred() -> None:
    for seed in SEEDS[:3]:
        _, sharp, _ = _clip(seed)  # the same camera motion, every frame sharp
        assert sum(d.blurred for d in run(LaplacianSelector(), sharp)) <= 1
        soft = [cv2.GaussianBlur(g, (0, 0), 1.5) for g in sharp]  # out of focus, no motion blur
        assert sum(d.blurred for d in run(LaplacianSelector(), soft)) <= 1
    flat = [np.full((90, 160), 128, np.uint8)] * 20
    assert not any(d.blurred for d in run(LaplacianSelector(), flat))


def test_every_15_labels_groups_from_their_middles() -> None:
    _, sharp, _ = _clip(2)
    frames = list(sharp[:44])
    frames[22] = cv2.GaussianBlur(sharp[22], (0, 0), 3)  # only group 1's middle is blurred
    for total in (None, 44):
        sel = LaplacianSelector(every=15, total=total)
        mids = [i for i in range(44) if sel.needs_score(i)]
        assert mids == ([7, 22, 37] if total is None else [7, 22, 36])  # last group: 30..43
        dec = run(sel, [f if i in mids else None for i, f in enumerate(frames)])
        assert [d.index for d in dec if d.score is not None] == mids
        assert [d.blurred for d in dec] == [False] * 15 + [True] * 15 + [False] * 14
    # a stream ending before the short last group's nominal middle: that group has no score
    sel = LaplacianSelector(every=15)
    dec = run(sel, [f if sel.needs_score(i) else None for i, f in enumerate(frames[:34])])
    assert dec[-1].score is None and len(dec) == 34


def test_every_k_batch_mode_accuracy() -> None:
    for k in (3, 15):
        hits, frames_ok = [], []
        for seed in SEEDS:
            blurred, _, labels = _clip(seed)
            dec = run(LaplacianSelector(every=k, total=len(blurred)), blurred)
            assert all(d.blurred == dec[(d.index // k) * k].blurred for d in dec)  # whole groups
            hits += [d.blurred == labels[d.index] for d in dec if d.score is not None]
            frames_ok += [d.blurred == t for d, t in zip(dec, labels)]
        print(f"every={k}: middles {np.mean(hits):.3f} of {len(hits)}, "
              f"frames {np.mean(frames_ok):.3f}")
        # a middle is judged against few neighbours (one group ahead): a clip that opens with blur
        # can have no sharp reference yet, so this is looser than per-frame selection
        assert np.mean(hits) >= 0.85


@pytest.mark.parametrize("every", [1, 2, 4, 15])
@pytest.mark.parametrize("threshold", [None, 50.0])
def test_streaming_order_and_bound(every: int, threshold: float | None) -> None:
    rng = np.random.default_rng(every)
    frames = [rng.integers(0, 256, (24, 32), dtype=np.uint8) for _ in range(37)]
    sel = make_selector("laplacian", threshold=threshold, every=every)
    # the middle's offset, plus (adaptive rule) the last middle within radius 15 ahead
    ahead = 0 if threshold is not None else every * (15 // every)
    assert sel.lookahead == (every - 1) // 2 + ahead
    dec = run(sel, frames)
    assert all((d.score is None) != sel.needs_score(d.index) for d in dec)
    with pytest.raises(ValueError):
        LaplacianSelector().push(1, frames[0])  # out of order
    with pytest.raises(ValueError):
        LaplacianSelector().push(0, None)  # a scored frame needs its luma plane


def test_threshold_overrides() -> None:
    blurred, _, labels = _clip(0)
    assert not any(d.blurred for d in run(LaplacianSelector(threshold=0.0), blurred))
    assert all(d.blurred for d in run(LaplacianSelector(threshold=1e9), blurred))
    sel = LaplacianSelector(threshold=400.0)
    assert sel.lookahead == 0
    assert accuracy(run(sel, blurred), labels) >= 0.9


def test_no_selector_and_factory() -> None:
    sel = make_selector("none")
    assert isinstance(sel, NoSelector) and sel.lookahead == 0 and not sel.needs_score(0)
    assert run(sel, [None] * 5) == [Decision(i, None, True) for i in range(5)]
    assert isinstance(make_selector("Laplacian", every=15), LaplacianSelector)
    for bad in (dict(name="sobel"), dict(name="laplacian", every=0),
                dict(name="laplacian", threshold=-1.0), dict(name="laplacian", every=2.5)):
        with pytest.raises(UsageError):
            make_selector(**bad)


def test_streaming_takes_each_frame_noise_off(monkeypatch) -> None:
    """Sensor noise keeps a blurred frame's Laplacian variance up: the streaming rule judges the
    score less the frame's own noise share (without it, half of this noisy clip is wrong)."""
    import vdeblur.select.laplacian as lap

    blurred, _, labels = _clip(0)
    rng = np.random.default_rng(0)
    noisy = [np.clip(g + rng.normal(0, 8, g.shape), 0, 255).astype(np.uint8) for g in blurred]
    assert accuracy(run(LaplacianSelector(), noisy), labels) >= 0.95
    real = lap.stream_measures
    monkeypatch.setattr(lap, "stream_measures", lambda g, r=None: (lambda m: (m[0], 0.0, m[2]))(real(g, r)))
    assert accuracy(run(LaplacianSelector(), noisy), labels) < 0.8


def test_streaming_window_stays_in_its_shot(monkeypatch) -> None:
    """A cut from a detailed shot into a soft, brighter one: the soft shot is judged against its
    own frames, not called blurred because the detailed frames are still in the window."""
    import vdeblur.select.context as ctx

    _, sharp, _ = _clip(0)
    _, other, _ = _clip(1)
    soft = [(0.35 * cv2.GaussianBlur(g, (0, 0), 1.0) + 150).astype(np.uint8) for g in other[:24]]
    frames = list(sharp[:24]) + soft
    assert not any(d.blurred for d in run(LaplacianSelector(), frames))
    monkeypatch.setattr(ctx, "CUT", 2.0)  # no cut can be found: one window across both shots
    assert sum(d.blurred for d in run(LaplacianSelector(), frames)) >= 20
