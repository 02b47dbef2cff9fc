"""Exact colour: a frame a method returns unchanged comes back as it went in (io/colour.py)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from media import write_video
from vdeblur.io.colour import ColourSpec, encode_frame, frame_to_rgb, layout_of, spec_for
from vdeblur.io.reader import Frame, VideoReader

BT601, BT709 = 6, 1


def yuv_planes(i: int, w: int, h: int, bits: int, sub: str, full: bool) -> list[np.ndarray]:
    """Textured Y, Cb, Cr samples inside the legal range of ``bits`` / ``full``."""
    k = 1 << (bits - 8)
    lo, hi = (0, (1 << bits) - 1) if full else (16 * k, 235 * k)
    clo, chi = (0, (1 << bits) - 1) if full else (16 * k, 240 * k)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    y = 0.5 + 0.45 * np.sin((xx + 3 * i) / 4.0) * np.cos(yy / 5.0)
    cw, ch = (w + 1) // 2 if sub in ("420", "422") else w, (h + 1) // 2 if sub == "420" else h
    cy, cx = np.mgrid[0:ch, 0:cw].astype(np.float64)
    cb = 0.5 + 0.3 * np.sin((cx - 2 * i) / 3.0)
    cr = 0.5 + 0.3 * np.cos((cy + cx) / 4.0)
    dtype = np.uint16 if bits > 8 else np.uint8
    return [np.round(lo + (hi - lo) * y).astype(dtype),
            np.round(clo + (chi - clo) * cb).astype(dtype),
            np.round(clo + (chi - clo) * cr).astype(dtype)]


def make_frame(planes: list[np.ndarray], pix_fmt: str) -> av.VideoFrame:
    h, w = planes[0].shape
    vf = av.VideoFrame(w, h, pix_fmt)
    item = planes[0].dtype.itemsize
    for p, src in zip(vf.planes, planes):
        a = np.frombuffer(p, src.dtype).reshape(p.height, p.line_size // item)
        a[:, : src.shape[1]] = src
    return vf


def write_yuv_clip(path, pix_fmt: str, colorspace: int, full: bool, n: int = 3, size=(48, 32)) -> None:
    """A lossless (FFV1) clip with the given samples and colour tags."""
    lay = layout_of(pix_fmt)
    sub = {(2, 2): "420", (2, 1): "422", (1, 1): "444"}[(lay.sx, lay.sy)]
    frames = [make_frame(yuv_planes(i, size[0], size[1], lay.bits, sub, full), pix_fmt) for i in range(n)]
    write_video(path, size=size, codec="ffv1", pix_fmt=pix_fmt, frames=frames, colorspace=colorspace,
                color_range=2 if full else 1)


def decoded(path, high_depth: bool = False) -> list[tuple[list[np.ndarray], np.ndarray]]:
    """Each frame's planes (copied) and its RGB through vdeblur's reader."""
    out = []
    with VideoReader(str(path), copy_streams=False) as r:
        r.high_depth = high_depth
        for it in r.items():
            if isinstance(it, Frame):
                lay = layout_of(it.av_frame.format.name)
                item = 2 if lay.bits > 8 else 1
                planes = []
                for i, p in enumerate(it.av_frame.planes[:3]):
                    w = it.av_frame.width if i == 0 else -(-it.av_frame.width // lay.sx)
                    a = np.frombuffer(p, lay.dtype).reshape(p.height, p.line_size // item)[:, :w]
                    planes.append(a.copy())
                out.append((planes, it.rgb().copy()))
    return out


def test_swscale_default_would_darken():
    """The bug this module fixes: swscale's default round trip darkens an unchanged frame."""
    planes = yuv_planes(0, 48, 32, 8, "420", False)
    vf = make_frame(planes, "yuv420p")
    rgb = vf.to_ndarray(format="rgb24")
    back = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    assert back.to_ndarray(format="rgb24").astype(float).mean() < rgb.astype(float).mean() - 0.5
    spec = ColourSpec(BT601, False)
    mine = encode_frame("yuv420p", spec, restored=frame_to_rgb(vf, spec), source=vf, source_spec=spec)
    assert np.array_equal(frame_to_rgb(mine, spec), frame_to_rgb(vf, spec))


@pytest.mark.parametrize("sub", ["420", "444"])
@pytest.mark.parametrize("bits", [8, 10])
@pytest.mark.parametrize("full", [False, True], ids=["limited", "full"])
@pytest.mark.parametrize("colorspace", [BT601, BT709], ids=["601", "709"])
def test_unchanged_frame_comes_back(cli, tmp_path, colorspace, full, bits, sub):
    check_unchanged(cli, tmp_path, colorspace, full, bits, sub, "pyav")


@pytest.mark.parametrize("case", [(BT709, True, 10, "420"), (BT601, False, 8, "444"), (BT709, False, 8, "420")])
def test_unchanged_frame_comes_back_through_ffmpeg(cli, tmp_path, case):
    check_unchanged(cli, tmp_path, *case, "ffmpeg")


def check_unchanged(cli, tmp_path, colorspace, full, bits, sub, io):
    pix_fmt = f"yuv{sub}p" + ("10le" if bits > 8 else "")
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_yuv_clip(src, pix_fmt, colorspace, full)
    r = cli("run", src, "-o", out, "--method", "unsharp", "-p", "amount=0", "--select", "none",
            "--codec", "ffv1", "--pix-fmt", pix_fmt, "--io", io)
    assert r.exit_code == 0, r.output
    a, b = decoded(src, bits > 8), decoded(out, bits > 8)
    assert len(a) == len(b) == 3
    for (pa, ra), (pb, rb) in zip(a, b):
        diff = rb.astype(np.int64) - ra.astype(np.int64)
        level = 257 if bits > 8 else 1  # RGB is on 0..65535 for 10-bit
        assert np.abs(diff).max() <= level
        assert np.abs(diff).mean() < 0.05 * level
        for x, y in zip(pa, pb):
            assert np.array_equal(x, y)  # the samples themselves, bit for bit
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.colorspace, cc.color_range) == (colorspace, 2 if full else 1)


def test_rgb_matches_the_standard_matrices():
    """Pure colours convert by the textbook formulas (BT.709 limited: Y=16 is black, 235 white)."""
    spec = ColourSpec(BT709, False)
    vf = make_frame([np.full((2, 2), v, np.uint8) for v in (235, 128, 128)], "yuv444p")
    assert (frame_to_rgb(vf, spec) == 255).all()
    # red in BT.709 limited: Y = 16 + 219 * 0.2126, Cr = 128 + 224 * 0.5
    y, cb = 0.2126, -0.2126 / (2 * (1 - 0.0722))
    vf = make_frame([np.full((2, 2), round(v), np.uint8) for v in (16 + 219 * y, 128 + 224 * cb, 240)], "yuv444p")
    rgb = frame_to_rgb(vf, spec).astype(int)
    assert rgb[0, 0, 0] >= 253 and rgb[0, 0, 1] <= 2 and rgb[0, 0, 2] <= 4
    full = ColourSpec(BT601, True)
    vf = make_frame([np.full((2, 2), v, np.uint8) for v in (100, 128, 128)], "yuvj444p")
    assert (frame_to_rgb(vf, full) == 100).all()


def test_change_keeps_its_mean():
    """A uniform change of +3 levels to every channel comes out as that change, unbiased."""
    spec = ColourSpec(BT601, False)
    y, cb, cr = (p.astype(int) for p in yuv_planes(1, 48, 32, 8, "420", False))
    mild = [60 + y // 2, 128 + (cb - 128) // 4, 128 + (cr - 128) // 4]  # well inside the RGB gamut
    vf = make_frame([p.astype(np.uint8) for p in mild], "yuv420p")
    rgb = frame_to_rgb(vf, spec)
    brighter = np.clip(rgb.astype(int) + 3, 0, 255).astype(np.uint8)
    assert (brighter.astype(int) - rgb == 3).all()  # no clipping in this test pattern
    out = encode_frame("yuv420p", spec, restored=brighter, source=vf, source_spec=spec, source_rgb=rgb)
    y0 = np.frombuffer(vf.planes[0], np.uint8).reshape(32, -1)[:, :48].astype(float)
    y1 = np.frombuffer(out.planes[0], np.uint8).reshape(32, -1)[:, :48].astype(float)
    assert (y1 - y0).mean() == pytest.approx(3 * 219 / 255, abs=0.15)
    ideal = 16 + 219 / 255 * (brighter.astype(float) @ [0.299, 0.587, 0.114])  # BT.601 limited
    assert np.abs(y1 - ideal).max() <= 0.5 + 1e-3  # each changed sample correctly rounded
    back = frame_to_rgb(out, spec).astype(float)
    assert abs(back.mean() - brighter.mean()) < 0.15  # the 8-bit luma step of this small frame
    assert np.abs(back - brighter).max() <= 2


def test_unspecified_matrix_defaults_by_size():
    assert spec_for(2, 0, 640, 272).colorspace == BT601
    assert spec_for(2, 0, 1920, 1080).colorspace == BT709
    assert spec_for(0, 0, 1280, 720).colorspace == BT709  # RGB input: YUV output by size
    assert not spec_for(2, 0, 640, 480).full
    assert spec_for(2, 0, 640, 480, "yuvj420p").full
    assert spec_for(9, 1, 64, 48).colorspace == 9


@pytest.mark.parametrize("io", ["pyav", "ffmpeg"])
def test_restored_and_passed_frames_agree(cli, tmp_path, io):
    """The same content restored unchanged (--select none) or passed through (--threshold 0:
    nothing is blurred) comes out the same, 10-bit input to the default 8-bit output included."""
    src = tmp_path / "in.mkv"
    write_yuv_clip(src, "yuv420p10le", BT709, False)
    outs = {}
    for how, sel in (("restored", ["--select", "none"]), ("passed", ["--threshold", "0"])):
        out = tmp_path / f"{how}.mkv"
        r = cli("run", src, "-o", out, "--method", "unsharp", "-p", "amount=0", *sel, "--codec", "ffv1",
                "--io", io, "--json")
        assert r.exit_code == 0, r.output
        outs[how] = decoded(out)
    for (pa, ra), (pb, rb) in zip(outs["restored"], outs["passed"]):
        assert abs(ra.astype(float).mean() - rb.astype(float).mean()) < 0.05
        assert np.abs(ra.astype(int) - rb.astype(int)).max() <= 1
    ref = decoded(src, high_depth=True)
    for (_, r10), (_, r8) in zip(ref, outs["passed"]):
        assert abs(r10.astype(float).mean() / 257 - r8.astype(float).mean()) < 0.2  # 10 -> 8 bit keeps brightness


@pytest.mark.parametrize("size", [(10, 16), (10, 15), (7, 6), (1, 1)])
@pytest.mark.parametrize("sub", [(2, 2), (2, 1), (1, 2)])
def test_chroma_downsampling_inverts_upsampling(size, sub):
    """down(up(c)) == c: chroma a method leaves alone, or replaces by the upsampled chroma of other
    samples, comes back as those samples (a strong change is not sharpened or smoothed on the way)."""
    from vdeblur.io.colour import downsample, upsample

    (h, w), (sx, sy) = size, sub
    c = np.random.default_rng(1).random((-(-h // sy), -(-w // sx), 2)).astype(np.float32)
    assert np.abs(downsample(upsample(c, sx, sy, w, h), sx, sy) - c).max() < 1e-6
    assert downsample(np.ones((h, w), np.float32), sx, sy) == pytest.approx(1.0)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "yuv420p10le"])
@pytest.mark.parametrize("full", [False, True])
def test_fast_path_equals_the_general_one(pix_fmt, full):
    """The OpenCV path for the common case (output laid out as the input) gives the general
    numpy path's samples (a rounding tie aside)."""
    from vdeblur.io.colour import _planes

    rng = np.random.default_rng(3)
    high = "10" in pix_fmt
    src = av.VideoFrame.from_ndarray(rng.integers(0, 256, (36, 50, 3), dtype=np.uint8), format="rgb24")
    src = src.reformat(format=pix_fmt)
    spec = ColourSpec(BT709, full)
    rgb = frame_to_rgb(src, spec, high_depth=high)
    changed = rgb.astype(np.int64) + rng.integers(-20, 21, rgb.shape) * (257 if high else 1)
    changed = np.clip(changed, 0, 65535 if high else 255).astype(rgb.dtype)
    changed[:10] = rgb[:10]  # some rows left as they were
    fast = encode_frame(pix_fmt, spec, restored=changed, source=src, source_spec=spec, source_rgb=rgb)
    general = encode_frame(pix_fmt, spec, restored=changed, source=src, source_spec=spec)  # no source_rgb
    lay = layout_of(pix_fmt)
    for a, b in zip(_planes(fast, lay), _planes(general, lay)):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1 and (a != b).mean() < 0.01
    for a, b in zip(_planes(fast, lay), _planes(src, lay)):
        assert np.array_equal(a[:4], b[:4])  # rows a method left alone: the decoded samples


@pytest.mark.parametrize("size", [(10, 16), (7, 5), (1, 1)])
@pytest.mark.parametrize("sub", [(2, 2), (2, 1), (1, 2)])
def test_upsampling_is_sited_bilinear(size, sub):
    """Horizontally co-sited (even columns kept, odd ones the mean of two), vertically centred
    (3/4 of the nearer chroma row, 1/4 of the other), edges replicated."""
    from vdeblur.io.colour import upsample

    (h, w), (sx, sy) = size, sub
    c = np.random.default_rng(2).random((-(-h // sy), -(-w // sx))).astype(np.float64)
    ref = c
    if sy == 2:
        prev, nxt = np.concatenate([ref[:1], ref[:-1]]), np.concatenate([ref[1:], ref[-1:]])
        ref = np.stack([0.75 * ref + 0.25 * prev, 0.75 * ref + 0.25 * nxt], 1).reshape(-1, ref.shape[1])
    if sx == 2:
        nxt = np.concatenate([ref[:, 1:], ref[:, -1:]], 1)
        ref = np.stack([ref, 0.5 * (ref + nxt)], 2).reshape(ref.shape[0], -1)
    assert np.abs(upsample(c.astype(np.float32), sx, sy, w, h) - ref[:h, :w]).max() < 1e-6


def test_rgb_input_becomes_444_without_bias(cli, tmp_path):
    """An RGB clip (FFV1 bgr0, as `vdeblur synth` writes) is restored into 4:4:4 with the default
    matrix, unbiased: only the 8-bit YUV steps remain."""
    from media import pattern

    from vdeblur.io.writer import write_rgb_video

    src, out = tmp_path / "rgb.mkv", tmp_path / "out.mkv"
    write_rgb_video(str(src), [pattern(i, 48, 64) for i in range(3)])
    r = cli("run", src, "-o", out, "--method", "unsharp", "-p", "amount=0", "--select", "none", "--codec", "ffv1")
    assert r.exit_code == 0, r.output
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.format.name == "yuv444p"
    for (_, a), (_, b) in zip(decoded_rgb(src), decoded_rgb(out)):
        d = b.astype(int) - a.astype(int)
        assert np.abs(d).max() <= 2 and abs(d.mean()) < 0.05 and np.abs(d).mean() < 0.6


def decoded_rgb(path):
    with VideoReader(str(path), copy_streams=False) as r:
        return [(it.index, it.rgb().copy()) for it in r.items() if isinstance(it, Frame)]


def test_rgb_output_holds_the_rgb_the_method_saw(cli, tmp_path):
    """--pix-fmt bgr0 (FFV1): the output holds exactly the RGB vdeblur's reader gives, restored
    frames and passed-through ones alike."""
    src = tmp_path / "in.mkv"
    write_yuv_clip(src, "yuv420p", BT709, False)
    for sel in (["--select", "none"], ["--threshold", "0"]):
        out = tmp_path / f"out{len(sel[1])}.mkv"
        r = cli("run", src, "-o", out, "--method", "unsharp", "-p", "amount=0", *sel, "--codec", "ffv1",
                "--pix-fmt", "bgr0")
        assert r.exit_code == 0, r.output
        for (_, a), (_, b) in zip(decoded_rgb(src), decoded_rgb(out)):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv420p10le", "yuv444p"])
@pytest.mark.parametrize("size", [(36, 50), (35, 49)])
def test_bands_of_rows_give_the_whole_frame_result(monkeypatch, pix_fmt, size):
    """A large frame is converted in bands of rows (float copies of one band at a time): the
    result is the whole frame's, to the bit, both ways."""
    import vdeblur.io.colour as colour

    rng = np.random.default_rng(4)
    high = "10" in pix_fmt
    src = av.VideoFrame.from_ndarray(rng.integers(0, 256, size + (3,), dtype=np.uint8), format="rgb24")
    src = src.reformat(format=pix_fmt)
    spec = ColourSpec(BT601, False)
    whole = frame_to_rgb(src, spec, high_depth=high)
    changed = np.clip(whole.astype(np.int64) + rng.integers(-9, 10, whole.shape), 0, 65535 if high else 255)
    changed = changed.astype(whole.dtype)
    enc_whole = encode_frame(pix_fmt, spec, restored=changed, source=src, source_spec=spec, source_rgb=whole)
    monkeypatch.setattr(colour, "BAND_PIXELS", 400)  # bands of 8 rows
    assert len(colour._bands(*size)) > 3
    assert np.array_equal(frame_to_rgb(src, spec, high_depth=high), whole)
    enc_bands = encode_frame(pix_fmt, spec, restored=changed, source=src, source_spec=spec, source_rgb=whole)
    lay = layout_of(pix_fmt)
    for a, b in zip(colour._planes(enc_whole, lay), colour._planes(enc_bands, lay)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("pix_fmt, full", [("yuv420p", False), ("yuv422p", True), ("yuv444p10le", False)])
def test_scaled_rgb_is_the_area_averaged_frame(pix_fmt, full):
    """frame_to_rgb_scaled (planes scaled, then converted: the fsm pre-pass's analysis copy) is the
    full conversion area-averaged to the same size, but for rounding and chroma siting."""
    import cv2

    from vdeblur.io.colour import frame_to_rgb_scaled

    lay = layout_of(pix_fmt)
    sub = {(2, 2): "420", (2, 1): "422", (1, 1): "444"}[(lay.sx, lay.sy)]
    y, cb, cr = yuv_planes(0, 96, 64, lay.bits, sub, full)
    mid = 1 << (lay.bits - 1)  # chroma a third as strong: colours inside the RGB cube (clipping is
    cb, cr = ((mid + (c.astype(np.int64) - mid) // 3).astype(c.dtype) for c in (cb, cr))  # not linear)
    vf = make_frame([y, cb, cr], pix_fmt)
    spec = spec_for(BT709, 2 if full else 1, 96, 64, pix_fmt)
    ref = cv2.resize(frame_to_rgb(vf, spec), (48, 32), interpolation=cv2.INTER_AREA).astype(np.float64)
    got = frame_to_rgb_scaled(vf, 48, 32, spec)
    assert got.shape == (32, 48, 3) and got.dtype == np.uint8
    assert np.abs(got - ref).mean() < 2.5  # this texture's chroma changes every few samples; 0.4 on video
    assert np.abs(got - ref).mean() < 0.2 * np.abs(ref - ref.mean((0, 1))).mean()  # not a flat stand-in
