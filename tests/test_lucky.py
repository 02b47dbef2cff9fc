"""`--method lucky`: a blurred frame restored from its sharp neighbours (issue 13), and the labels
that reach it (`classify --json`, `run --labels`)."""

import json

import cv2
import numpy as np
import pytest

from media import read_video, write_video
from motion_media import held_out_photo, make_clip, psnr

H264 = {"preset": "medium", "crf": "18", "threads": "1"}  # one thread: the same bytes on every run (x264 threads race under load)


def _view(photo: np.ndarray, x: float, y: float, size=(192, 128)) -> np.ndarray:
    """The ``size`` view of ``photo`` whose top-left corner is at (x, y), float32."""
    m = np.float32([[1, 0, -x], [0, 1, -y]])
    return cv2.warpAffine(photo, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT).astype(np.float32)


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def _shift_clip(tmp_path, sticker: bool = False, step: tuple[float, float] = (5, 2)):
    """Three frames of a camera moving ``step`` (default (5, 2)) pixels a frame over a held-out photograph: sharp,
    blurred (the mean of 9 views along a horizontal motion centred on its own view), sharp;
    H.264-compressed. ``sticker``: a red square that sits at one place in the sharp frames and at
    another in the blurred one (it moved, so each frame's content behind it is seen elsewhere).
    Returns (decoded frames, true frames, the sticker's place in the sharp frames, in the blurred)."""
    photo = held_out_photo()
    x0, y0 = 200.0, 150.0
    truth = [_view(photo, x0 + step[0] * t, y0 + step[1] * t) for t in range(3)]
    blurred = np.mean([_view(photo, x0 + step[0] + d, y0 + step[1]) for d in np.linspace(-4, 4, 9)], axis=0)
    frames = [truth[0], blurred, truth[2]]
    a, c = (slice(40, 72), slice(30, 62)), (slice(40, 72), slice(120, 152))
    if sticker:
        for f in (frames[0], frames[2]):
            f[a] = (230, 20, 30)
        frames[1][c] = truth[1][c] = (230, 20, 30)
    frames = [_u8(f) for f in frames]
    truth = [_u8(f) for f in truth]
    path = tmp_path / "shift.mp4"
    write_video(path, frames=frames, size=(192, 128), options=H264)
    return read_video(path)["frames"], truth, a, c


def test_known_shift_is_restored_within_half_a_db_of_the_sharp_frame(tmp_path):
    from vdeblur.methods.lucky import lucky

    dec, truth, _, _ = _shift_clip(tmp_path)
    m = lucky()
    assert m.pick(1, {0: False, 1: True, 2: False}) == [0, 2]
    out = m.restore_frame(dec[1], [dec[0], dec[2]])
    inner = (slice(8, -8), slice(8, -8))  # the borders: content the neighbours saw only in part
    sharp = psnr(dec[0][inner], truth[0][inner])
    assert psnr(dec[1][inner], truth[1][inner]) < sharp - 5  # the blur is real
    assert psnr(out[inner], truth[1][inner]) >= sharp - 0.5


def test_a_large_shift_is_found_and_restored(tmp_path):
    """A camera moving 56 px a frame on a 192 px frame (a fast pan, or a neighbour a few frames
    away): out of DIS's reach from a zero start (its coarsest level is a few patches wide); the
    global shift (phase correlation) finds it and DIS refines the rest."""
    from vdeblur.methods.lucky import global_shift, lucky

    dec, truth, _, _ = _shift_clip(tmp_path, step=(56, 8))
    g = lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255  # noqa: E731
    dx, dy = global_shift(g(dec[1]), g(dec[2]))  # dec[2](x + d) ~ dec[1](x)
    assert abs(dx + 56) < 4 and abs(dy + 8) < 4
    m = lucky()
    out = m.restore_frame(dec[1], [dec[0], dec[2]])
    inner = (slice(16, -16), slice(64, -64))  # content both neighbours saw
    sharp = psnr(dec[0][inner], truth[0][inner])
    assert psnr(dec[1][inner], truth[1][inner]) < sharp - 5  # the blur is real
    assert psnr(out[inner], truth[1][inner]) >= sharp - 2.5


def test_a_misleading_global_shift_is_not_followed(tmp_path, monkeypatch):
    """Where the correlation's peak is the wrong motion (parallax, a large moving object, roll can
    make one), the flow from zero is tried too and the one with the larger expected gain kept."""
    import vdeblur.methods.lucky as lk

    dec, truth, _, _ = _shift_clip(tmp_path)
    monkeypatch.setattr(lk, "global_shift", lambda a, b, min_response=None: (30.0, -12.0))
    out = lk.lucky().restore_frame(dec[1], [dec[0], dec[2]])
    inner = (slice(8, -8), slice(8, -8))
    sharp = psnr(dec[0][inner], truth[0][inner])
    assert psnr(out[inner], truth[1][inner]) >= sharp - 0.5


def test_an_occluder_is_not_ghosted(tmp_path):
    """Where the sharp frames show the square and the blurred frame shows what is behind it, the
    square does not appear; where the blurred frame shows it, it stays."""
    from vdeblur.methods.lucky import lucky

    dec, truth, a, c = _shift_clip(tmp_path, sticker=True)
    m = lucky()
    out = m.restore_frame(dec[1], [dec[0], dec[2]])
    # the square's colour where the sharp frames had it (content moved 5 px a frame: their square
    # lands 5 px to the right of ``a`` in the blurred frame's coordinates; ``a`` covers it less 5 px)
    red = lambda img, s: float(np.mean(img[s][..., 0].astype(int) - img[s][..., 1].astype(int)))  # noqa: E731
    behind = (a[0], slice(a[1].start + 5, a[1].stop))
    assert red(out, behind) < red(truth[1], behind) + 10
    assert psnr(out[behind], truth[1][behind]) >= psnr(dec[1][behind], truth[1][behind]) - 0.1
    # where the blurred frame shows the square, it stays: as red as it is, and within a quarter dB
    # of the input on its 32x32 pixels (its compressed edges move a little with the neighbours)
    assert red(out, c) > red(truth[1], c) - 10
    assert psnr(out[c], truth[1][c]) >= psnr(dec[1][c], truth[1][c]) - 0.25
    assert psnr(out, truth[1]) > psnr(dec[1], truth[1]) + 1


def test_a_sharp_frame_labelled_blurred_is_left_as_it_is(tmp_path):
    """The guard: a sharp frame the selector wrongly labels blurred has nothing the blur took away;
    its neighbours' warps would only bring their own error (misalignment, compression), so no
    neighbour is used and the frame is the input."""
    from vdeblur.methods.lucky import lucky
    from vdeblur.io.writer import write_rgb_video

    photo = held_out_photo()
    frames = [_u8(_view(photo, 200.0 + 5 * t, 150.0 + 2 * t)) for t in range(3)]
    path = tmp_path / "sharp.mkv"
    write_rgb_video(str(path), frames)  # FFV1: lossless, the middle frame is exactly sharp
    dec = read_video(path)["frames"]
    m = lucky()
    out = m.restore_frame(dec[1], [dec[0], dec[2]])
    assert m.last_coverage == 0.0
    assert np.array_equal(out, dec[1])


def test_a_sharp_frame_whose_nearest_neighbour_is_blurrier_is_left_as_it_is():
    """The blur is fitted between the frame and its nearest neighbour; when that neighbour is the
    blurrier of the two (a sharp frame labelled blurred next to a frame labelled sharp that is
    not quite), the fitted blur cannot gain there and is not verified: no other neighbour (here a
    shifted, noisy sharp view) is trusted with it, and the frame is the input."""
    from vdeblur.methods.lucky import lucky

    photo = held_out_photo()
    frame = _u8(_view(photo, 200.0, 150.0))
    blurrier = _u8(cv2.blur(_view(photo, 203.0, 150.0), (15, 1)))
    noisy = _u8(_view(photo, 206.0, 152.0) + np.random.default_rng(0).normal(0, 4, frame.shape))
    m = lucky()
    out = m.restore_frame(frame, [blurrier, noisy])
    assert m.last_coverage == 0.0
    assert np.array_equal(out, frame)


def test_high_depth_frames_stay_high_depth(tmp_path):
    """uint16 frames (10-bit inputs are decoded so) are restored as uint16, as well as 8-bit ones."""
    from vdeblur.methods.lucky import lucky

    dec, truth, _, _ = _shift_clip(tmp_path)
    wide = [f.astype(np.uint16) * 257 for f in dec]
    out8 = lucky().restore_frame(dec[1], [dec[0], dec[2]])
    out16 = lucky().restore_frame(wide[1], [wide[0], wide[2]])
    assert out16.dtype == np.uint16 and out16.shape == dec[1].shape
    assert abs(psnr((out16 / 257.0).round().astype(np.uint8), truth[1]) - psnr(out8, truth[1])) < 0.2


def test_pick_takes_the_nearest_sharp_frames_within_the_radius():
    from vdeblur.methods.lucky import lucky

    m = lucky(radius=3, per_side=2)
    labels = {i: b for i, b in enumerate([False, True, False, True, True, True, True, True, False, False])}
    assert m.pick(4, labels) == [2]  # 0 and 8 are 4 away
    assert m.pick(6, labels) == [8, 9]
    assert m.pick(5, labels) == [2, 8]
    assert lucky(radius=1).pick(5, labels) == []
    assert lucky(radius=8, per_side=1).pick(6, labels) == [8, 2]
    assert lucky(radius=8).pick(6, labels) == [8, 9, 2, 0]


@pytest.mark.parametrize("param, msg", [("radius=0", "radius"), ("per_side=x", "per_side"),
                                        ("fallback=lucky", "single-frame"), ("fallback=nope", "unknown method")])
def test_bad_params_are_usage_errors(cli, clip, tmp_path, param, msg):
    r = cli("run", clip, "-o", tmp_path / "o.mkv", "-m", "lucky", "-p", param)
    assert r.exit_code == 2 and msg in r.output, r.output
    assert not (tmp_path / "o.mkv").exists()


def _labels_file(path, blurred):
    path.write_text("".join(json.dumps({"frame": i, "pts": i / 25, "blur_score": 1.0, "blurred": b}) + "\n"
                            for i, b in enumerate(blurred)) + json.dumps({"summary": {}}) + "\n")
    return path


def _motion_ffv1(tmp_path, n, size=(128, 96), seed=1, blurred=None):
    from vdeblur.io.writer import write_rgb_video

    c = make_clip(n, size, seed=seed, blurred=blurred)
    path = tmp_path / "in.mkv"
    write_rgb_video(str(path), c.frames)  # FFV1: lossless, every frame a keyframe
    return path, c


def test_frames_without_a_sharp_neighbour_are_the_fallbacks_output(cli, tmp_path):
    """Labels from a file: frame 0 sharp, the rest blurred; with radius 2 frames 3.. have no sharp
    neighbour: they are the input itself (written as any restored frame is: as unsharp with
    amount 0 writes it), or with fallback=unsharp exactly unsharp's output. The clip is blurred
    as labelled (a sharp frame labelled blurred is left as it is: the guard)."""
    path, c = _motion_ffv1(tmp_path, 8, blurred=[False] + [True] * 7)
    labels = _labels_file(tmp_path / "labels.jsonl", [False] + [True] * 7)
    src = read_video(path)["frames"]
    outs = {}
    for name, args in {"lucky": ["-m", "lucky", "-p", "radius=2"],
                       "lucky_unsharp": ["-m", "lucky", "-p", "radius=2", "-p", "fallback=unsharp"],
                       "unsharp": ["-m", "unsharp"],
                       "unchanged": ["-m", "unsharp", "-p", "amount=0"]}.items():  # restored as it was
        out = tmp_path / f"{name}.mkv"
        r = cli("run", path, "-o", out, *args, "--labels", labels, "--codec", "ffv1", "--pix-fmt", "bgr0", "--json")
        assert r.exit_code == 0, r.output
        rows = [json.loads(x) for x in r.stdout.splitlines()][:-1]
        assert [x["blurred"] for x in rows] == [False] + [True] * 7
        outs[name] = read_video(out)["frames"]
    assert np.array_equal(outs["lucky"][0], src[0])  # sharp: passed through
    for i in range(3, 8):
        assert np.array_equal(outs["lucky"][i], outs["unchanged"][i]), i
        assert np.array_equal(outs["lucky_unsharp"][i], outs["unsharp"][i]), i
    assert not np.array_equal(outs["lucky"][1], outs["unchanged"][1])  # restored from frame 0


def test_labels_from_classify_json_equal_the_selectors(cli, tmp_path):
    """`classify --json` saves labels; `run --labels` with them restores what the selector's run
    restores; a file for another video is an input error, a missing one a usage error."""
    path, _ = _motion_ffv1(tmp_path, 12)
    r = cli("classify", path, "--json")
    assert r.exit_code == 0, r.output
    labels = tmp_path / "labels.jsonl"
    labels.write_text(r.stdout)
    frames = {}
    for name, extra in {"selector": [], "labels": ["--labels", labels]}.items():
        out = tmp_path / f"{name}.mkv"
        r = cli("run", path, "-o", out, "-m", "unsharp", "--codec", "ffv1", *extra)
        assert r.exit_code == 0, r.output
        frames[name] = read_video(out)["frames"]
    assert all(np.array_equal(a, b) for a, b in zip(frames["selector"], frames["labels"]))
    short = _labels_file(tmp_path / "short.jsonl", [False, True])
    r = cli("run", path, "-o", tmp_path / "x.mkv", "-m", "unsharp", "--labels", short)
    assert r.exit_code == 3 and "no label for frame 2" in r.output, r.output
    long = _labels_file(tmp_path / "long.jsonl", [False, True] * 7)
    r = cli("run", path, "-o", tmp_path / "y.mkv", "-m", "unsharp", "--labels", long)
    assert r.exit_code == 3 and "labels 14 frames" in r.output, r.output
    r = cli("run", path, "-o", tmp_path / "z.mkv", "-m", "unsharp", "--labels", tmp_path / "none.jsonl")
    assert r.exit_code == 2 and "no such file" in r.output, r.output
    assert not any((tmp_path / n).exists() for n in ("x.mkv", "y.mkv", "z.mkv"))


def test_segments_restore_as_one_pass(cli, tmp_path):
    """A segmented run decodes the radius's frames (and the selector's window) across each border:
    every frame equals the one-pass run's."""
    path, c = _motion_ffv1(tmp_path, 40, size=(96, 64), seed=2)
    outs, rows = {}, {}
    for seg in ("0", "0.4"):
        out = tmp_path / f"o{seg}.mkv"
        r = cli("run", path, "-o", out, "-m", "lucky", "-p", "radius=4", "--segment", seg, "--codec", "ffv1", "--json")
        assert r.exit_code == 0, r.output
        outs[seg] = read_video(out)["frames"]
        rows[seg] = [(x["frame"], x["blurred"], x["restored"]) for x in map(json.loads, r.stdout.splitlines()[:-1])]
    assert rows["0.4"] == rows["0"] and 0 < sum(x[2] for x in rows["0"]) < 40
    assert all(np.array_equal(a, b) for a, b in zip(outs["0"], outs["0.4"]))


@pytest.mark.slow
def test_motion_clip_gains_on_blurred_frames_and_loses_on_none(tmp_path):
    """Camera pan and shake, a parallax layer and a moving object, partly blurred as REBVIDS is,
    H.264: the laplacian selector's labels, lucky's output against the true frames."""
    from vdeblur.jobs import RunOptions, Sink, run_file

    c = make_clip(30, (320, 192), seed=3)
    src, out = tmp_path / "in.mp4", tmp_path / "out.mkv"
    write_video(src, frames=c.frames, size=(320, 192), options=H264)
    rows = []

    class Rows(Sink):
        def frame(self, inp, r):
            rows.append(r)

    run_file(str(src), str(out), RunOptions(method="lucky", codec="ffv1", crf=None, device="cpu"), sink=Rows())
    inp, got = read_video(src)["frames"], read_video(out)["frames"]
    gains = [psnr(got[i], c.references[i]) - psnr(inp[i], c.references[i]) for i in range(30) if c.blurred[i]]
    assert min(gains) >= -0.1
    assert np.mean(gains) >= 1.5
    for i, r in enumerate(rows):
        if not r.blurred:
            assert np.array_equal(got[i], inp[i])


def test_select_none_says_every_frame_gets_the_fallback(cli, tmp_path):
    """lucky with --select none has no frame labelled sharp to draw from: stderr says so once;
    with the selector it says nothing."""
    from media import write_video

    clip = tmp_path / "c.mp4"
    write_video(clip, 6, (64, 48))
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "--select", "none", "--json")
    assert r.exit_code == 0, r.output
    assert len([line for line in r.stderr.splitlines() if "every frame gets the fallback" in line]) == 1
    r = cli("run", clip, "-o", tmp_path / "o2.mp4", "--json")
    assert r.exit_code == 0, r.output
    assert "fallback" not in r.stderr
