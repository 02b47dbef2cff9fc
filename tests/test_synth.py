"""synth_clip: REBVIDS-style partially blurred clips (Nahli et al. sec. IV-B.2)."""

from __future__ import annotations

import cv2
import numpy as np

from vdeblur.data import synth_clip
from vdeblur.metrics import psnr
from vdeblur.select import blur_score


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def test_deterministic_and_shaped() -> None:
    a, b = synth_clip(n_frames=12, seed=4), synth_clip(n_frames=12, seed=4)
    c = synth_clip(n_frames=12, seed=5)
    assert len(a.blurred) == len(a.sharp) == len(a.labels) == len(a.blur_px) == 12
    for x, y in zip(a.blurred + a.sharp, b.blurred + b.sharp):
        assert x.shape == (180, 320, 3) and x.dtype == np.uint8
        assert np.array_equal(x, y)
    assert a.labels == b.labels
    assert not all(np.array_equal(x, y) for x, y in zip(a.sharp, c.sharp))
    small = synth_clip(n_frames=3, height=40, width=64, seed=1)
    assert small.sharp[0].shape == (40, 64, 3)


def test_runs_and_twins() -> None:
    clip = synth_clip(seed=0)
    labels = np.array(clip.labels)
    assert labels.sum() == 24  # blur_fraction 0.5 of 48
    starts = np.flatnonzero(np.diff(np.r_[0, labels.astype(int)]) == 1)
    assert len(starts) >= 2  # runs of blurred frames with sharp frames between (REBVIDS)
    assert not np.array_equal(clip.sharp[0], clip.sharp[-1])  # the camera and the object move
    for bl, sh, lab, px in zip(clip.blurred, clip.sharp, clip.labels, clip.blur_px):
        if lab:
            assert px >= 4.0
            assert blur_score(_gray(bl)) < 0.7 * blur_score(_gray(sh))
            assert psnr(bl, sh) < 32
        else:
            assert px == 0.0 and np.array_equal(bl, sh)


def test_blur_fraction_extremes() -> None:
    assert not any(synth_clip(n_frames=10, blur_fraction=0.0).labels)
    full = synth_clip(n_frames=10, blur_fraction=1.0, average=5)
    assert all(full.labels)
    for b, s in zip(full.blurred, full.sharp):
        assert blur_score(_gray(b)) < blur_score(_gray(s))
