"""PSNR/SSIM: hand-computed values and agreement with scikit-image (Nahli et al. sec. IV-C)."""

from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest
import torch

from vdeblur.metrics import ReferenceMetrics, psnr, ssim, ssim_many

SK_SSIM = dict(channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def _structured(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    for _ in range(12):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        centre = tuple(int(v) for v in rng.integers(0, (w, h)))
        cv2.circle(img, centre, int(rng.integers(3, 30)), c, -1)
    cv2.putText(img, "GoPro 720p", (5, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return img


def _pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    s = _structured()
    noisy = np.clip(s.astype(int) + rng.integers(-20, 21, s.shape), 0, 255).astype(np.uint8)
    binary = (rng.random((50, 70, 3)) > 0.5).astype(np.uint8) * 255
    return [
        (a, rng.integers(0, 256, a.shape, dtype=np.uint8)),  # unrelated noise
        (s, cv2.GaussianBlur(s, (0, 0), 2.0)),  # blurred
        (s, noisy),
        (binary, 255 - binary),  # extreme contrast, negative SSIM
        (s, np.roll(s, 3, axis=1)),  # shift
    ]


def test_psnr_hand_computed() -> None:
    a = _structured().astype(np.int16)
    b = np.clip(a, 0, 254)
    a8, b8 = (b + 1).astype(np.uint8), b.astype(np.uint8)  # differ by exactly 1 everywhere: MSE 1
    assert psnr(a8, b8) == pytest.approx(20 * math.log10(255), abs=1e-9)  # 48.1308 dB
    assert psnr(a8, b8) == pytest.approx(48.1308, abs=1e-4)
    assert psnr(a8, a8) == math.inf
    a16 = b8.astype(np.uint16) * 257  # <= 65278: +1 does not wrap
    assert psnr(a16, a16 + 1) == pytest.approx(20 * math.log10(65535), abs=1e-9)


def test_psnr_inputs() -> None:
    a, b = _pairs()[1]
    ref = psnr(a, b)
    assert psnr(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref, abs=1e-12)
    chw = torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1)
    assert psnr(*chw, channel_axis=0) == pytest.approx(ref, abs=1e-12)
    assert psnr(a / 255.0, b / 255.0, data_range=1.0) == pytest.approx(ref, abs=1e-9)
    with pytest.raises(ValueError):
        psnr(a / 255.0, b / 255.0)  # float frames must say their range
    with pytest.raises(ValueError):
        psnr(a, b[:-1])
    with pytest.raises(ValueError):
        psnr(a, b.astype(np.uint16))


def test_ssim_identical_and_symmetric() -> None:
    a, b = _pairs()[1]
    assert ssim(a, a) == 1.0 and ssim(a, a, dtype=torch.float64) == 1.0
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-9)
    assert 0 < ssim(a, b) < 1
    with pytest.raises(ValueError):
        ssim(a[:8, :8], b[:8, :8])  # smaller than the 11x11 window


def test_matches_skimage() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    for a, b in _pairs():
        ref_s = metrics.structural_similarity(a, b, data_range=255, **SK_SSIM)
        assert ssim(a, b) == pytest.approx(ref_s, abs=1e-4)
        assert ssim(a, b, dtype=torch.float64) == pytest.approx(ref_s, abs=1e-10)
        assert ssim(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref_s, abs=1e-4)
        ref_p = metrics.peak_signal_noise_ratio(a, b, data_range=255)
        assert psnr(a, b) == pytest.approx(ref_p, abs=1e-4)
    a, b = _pairs()[1]
    ga, gb = a[..., 0].copy(), b[..., 0].copy()  # 2-D frames
    ref = metrics.structural_similarity(ga, gb, data_range=255, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)
    assert ssim(ga, gb) == pytest.approx(ref, abs=1e-4)


def test_uint16_matches_skimage() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(3)
    a = (cv2.GaussianBlur(_structured(), (0, 0), 1.0).astype(np.uint16) * 257
         + rng.integers(0, 257, (120, 160, 3)).astype(np.uint16))
    b = cv2.GaussianBlur(a, (0, 0), 1.5)
    ref = metrics.structural_similarity(a, b, data_range=65535, **SK_SSIM)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-4)
    a10, b10 = a >> 6, b >> 6  # 10-bit content in uint16 containers: pass the range
    ref10 = metrics.structural_similarity(a10, b10, data_range=1023, **SK_SSIM)
    assert ssim(a10, b10, data_range=1023) == pytest.approx(ref10, abs=1e-4)
    assert psnr(a10, b10, data_range=1023) == pytest.approx(
        metrics.peak_signal_noise_ratio(a10, b10, data_range=1023), abs=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    for a, b in _pairs():
        assert ssim(a, b, device="cuda") == pytest.approx(ssim(a, b), abs=1e-5)
        assert psnr(a, b, device="cuda") == pytest.approx(psnr(a, b), abs=1e-9)


def _slow_ssim(a: np.ndarray, b: np.ndarray, r: float) -> float:
    """The textbook formula, window by window in float64: 11x11 Gaussian (sigma 1.5) weights,
    population (co)variances, the mean over the windows inside the frame, then over channels."""
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    g /= g.sum()
    win = np.outer(g, g)
    a = a.astype(np.float64).reshape(*a.shape[:2], -1)
    b = b.astype(np.float64).reshape(*b.shape[:2], -1)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    vals = []
    for c in range(a.shape[2]):
        wa = np.lib.stride_tricks.sliding_window_view(a[..., c], (11, 11))
        wb = np.lib.stride_tricks.sliding_window_view(b[..., c], (11, 11))
        mx, my = (wa * win).sum((-2, -1)), (wb * win).sum((-2, -1))
        vx = (wa**2 * win).sum((-2, -1)) - mx**2
        vy = (wb**2 * win).sum((-2, -1)) - my**2
        cxy = (wa * wb * win).sum((-2, -1)) - mx * my
        s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        vals.append(s.mean())
    return float(np.mean(vals))


@pytest.mark.parametrize("h, w, c", [(11, 11, 3), (41, 50, 3), (43, 37, 3), (75, 33, 3), (100, 64, 1),
                                     (97, 45, 5), (130, 70, 2)])
def test_ssim_matches_the_window_by_window_formula(h: int, w: int, c: int) -> None:
    """Every strip layout of the CPU path (frames shorter than a strip, a partial last strip, many
    strips on the thread pool), 1 to 5 channels, against the formula computed window by window."""
    rng = np.random.default_rng(h * w + c)
    base = rng.integers(0, 256, (h, w, c)).astype(np.float32)
    a = cv2.GaussianBlur(base, (0, 0), 1.2).reshape(h, w, c).round().astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-25, 26, a.shape), 0, 255).astype(np.uint8)
    ref = _slow_ssim(a, b, 255.0)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-4)
    assert ssim(a, b, dtype=torch.float64) == pytest.approx(ref, abs=1e-9)
    assert ssim(a, a) == 1.0
    chw = torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1)
    assert ssim(*chw, channel_axis=0) == pytest.approx(ref, abs=1e-4)
    fa, fb = a / 255.0, b / 255.0  # float frames in [0, 1]
    assert ssim(fa, fb, data_range=1.0, dtype=torch.float64) == pytest.approx(ref, abs=1e-9)
    if c == 1:
        assert ssim(a[..., 0], b[..., 0]) == pytest.approx(ref, abs=1e-4)


def test_ssim_cpu_path_is_opencv_and_thread_independent(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU, SSIM filters with OpenCV on strips (the torch shifted-slice filter it replaced
    cost ~4x as much at 720p and slowed down by orders of magnitude when torch's threads had to
    share the cores); the strips' sums are added in order, so the thread count does not change a bit."""
    import importlib

    mod = importlib.import_module("vdeblur.metrics.ssim")  # the module (the package exports the function)

    def no_torch_filter(*args, **kwargs):
        raise AssertionError("the CPU path must not run the torch filter")

    monkeypatch.setattr(mod, "_filter_valid", no_torch_filter)
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    b = cv2.GaussianBlur(a, (0, 0), 1.0)
    monkeypatch.setattr(mod, "_workers", lambda: 4)
    many = ssim(a, b)
    monkeypatch.setattr(mod, "_workers", lambda: 1)
    assert ssim(a, b) == many
    assert ssim(a, b, device="cpu") == many
    assert ssim(torch.from_numpy(a), torch.from_numpy(b)) == many


def test_psnr_integer_path_is_exact() -> None:
    rng = np.random.default_rng(9)
    for dtype, peak in ((np.uint8, 255), (np.uint16, 65535)):
        a = rng.integers(0, peak + 1, (37, 53, 3)).astype(dtype)
        b = rng.integers(0, peak + 1, (37, 53, 3)).astype(dtype)
        sse = int(((a.astype(np.int64) - b.astype(np.int64)) ** 2).sum())
        exact = 10 * math.log10(peak * peak * a.size / sse)
        assert psnr(a, b) == pytest.approx(exact, rel=1e-12)
        chw = torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1)
        assert psnr(*chw, channel_axis=0) == pytest.approx(exact, rel=1e-12)
        assert psnr(a[::2, 1::3], b[::2, 1::3]) == pytest.approx(
            10 * math.log10(peak * peak * a[::2, 1::3].size
                            / int(((a[::2, 1::3].astype(np.int64) - b[::2, 1::3]) ** 2).sum())), rel=1e-12)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_ssim_in_a_forked_child_after_the_pool_started() -> None:
    """A child forked after the strip pool started computes SSIM too (the pool's threads are not
    copied by fork; the child starts its own)."""
    import importlib

    mod = importlib.import_module("vdeblur.metrics.ssim")
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (400, 120, 3), dtype=np.uint8)
    b = cv2.GaussianBlur(a, (0, 0), 1.0)
    want = ssim(a, b)
    if mod._workers() == 1:
        pytest.skip("one core: no pool")
    assert mod._POOL is not None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: write the value, exit without running the test session's teardown
        try:
            os.write(w, repr(ssim(a, b)).encode())
        finally:
            os._exit(0)
    import select
    import signal

    os.close(w)
    ready, _, _ = select.select([r], [], [], 120)  # a child stuck on the parent's pool never answers
    got = os.read(r, 1024) if ready else b""
    os.close(r)
    if not got:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert got, "the forked child did not compute SSIM (stuck on the parent's thread pool?)"
    assert float(got) == want


def test_compare_matches_skimage_with_and_without_an_output() -> None:
    """compare(inp, out, ref): PSNR and SSIM of the input and of the output against the reference,
    each within 1e-4 of scikit-image, and the same figures as psnr()/ssim() one pair at a time;
    out=None (a frame passed through) repeats the input's figures."""
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(11)
    ref = _structured(200, 300, seed=4)  # several strips, a partial last one
    inp = cv2.GaussianBlur(ref, (0, 0), 2.0)
    out = np.clip(inp.astype(int) + rng.integers(-12, 13, inp.shape), 0, 255).astype(np.uint8)
    m = ReferenceMetrics("cpu")
    p_in, s_in, p_out, s_out = m.compare(inp, out, ref)
    for p, s, x in ((p_in, s_in, inp), (p_out, s_out, out)):
        assert s == pytest.approx(metrics.structural_similarity(x, ref, data_range=255, **SK_SSIM), abs=1e-4)
        assert p == pytest.approx(metrics.peak_signal_noise_ratio(ref, x, data_range=255), abs=1e-4)
        assert s == ssim(x, ref) and p == psnr(x, ref)
    assert s_in != s_out and p_in != p_out
    assert m.compare(inp, None, ref) == (p_in, s_in, p_in, s_in)
    assert m.compare(ref, None, ref) == (math.inf, 1.0, math.inf, 1.0)
    assert m.compare(inp, ref, ref)[2:] == (math.inf, 1.0)


def test_ssim_many_is_ssim_one_by_one() -> None:
    """Sharing the reference's moments changes no figure, in any precision, for any channel count,
    for frames that are not 8-bit, and for a mixture of 8-bit and float frames."""
    rng = np.random.default_rng(12)
    for shape in ((90, 140, 3), (90, 140), (61, 47, 6)):
        ref = rng.integers(0, 256, shape, dtype=np.uint8)
        frames = [cv2.GaussianBlur(ref, (0, 0), 1.0).reshape(shape), ref.copy(),
                  rng.integers(0, 256, shape, dtype=np.uint8)]
        for dtype in (torch.float32, torch.float64):
            assert ssim_many(frames, ref, dtype=dtype) == [ssim(f, ref, dtype=dtype) for f in frames]
        assert ssim_many(frames, ref)[1] == 1.0
        ff = [f / 255.0 for f in frames]
        assert ssim_many(ff, ref / 255.0, data_range=1.0) == [ssim(f, ref / 255.0, data_range=1.0) for f in ff]
        mixed = ssim_many([frames[0].astype(np.float32)], ref, data_range=255)[0]
        assert mixed == pytest.approx(ssim(frames[0], ref), abs=1e-5)
    assert ssim_many([], ref) == []
