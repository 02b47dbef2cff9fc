"""Exact YUV <-> RGB for the frames vdeblur restores (OpenCV and numpy, vectorised).

FFmpeg's swscale converts without accurate rounding by default: a frame taken to RGB and back
came out about 1.4 levels darker, full-range video shifted further, and 4:2:0 chroma was
smoothed again at every round trip. Here:

* **YUV -> RGB** (what a method sees, and what the reference reader gives for PSNR) uses the
  stream's own matrix (BT.601 / 709 / 2020, FCC, SMPTE 240M; unspecified: BT.709 from 1280x720
  up, BT.601 below, as players do) and range (limited / full; ``yuvj*`` formats are full), any
  depth from 8 to 16 bits, with correct rounding. 4:2:0 / 4:2:2 / 4:4:0 chroma is upsampled
  bilinearly (horizontally co-sited, vertically centred: the MPEG-2 / H.264 siting).
* **RGB -> YUV** for a restored frame: luma is the restored pixel converted by the same matrix
  with correct rounding, except where the method left the pixel exactly as it was, which keeps
  the decoded sample. Chroma is the decoded frame's own samples plus the change the method made,
  converted and downsampled by the inverse of the upsampler on its range (LeGall 5/3 across,
  -1/4 3/4 3/4 -1/4 down: downsampling upsampled chroma gives the samples back exactly). A
  frame a method returns unchanged therefore comes back bit for bit, and restored and
  passed-through frames of the same content cannot differ in brightness. Without a decoded YUV
  frame (RGB input), the restored RGB is converted directly, with correct rounding; an RGB
  output format holds the RGB itself.

Pass-through frames whose format differs from the output's (10 -> 8 bit, 4:2:2 -> 4:2:0) are
converted by the same code, so they agree with restored frames. Cost: benchmarks/colour_cost.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import av
import cv2
import numpy as np

# AVColorSpace -> (name, Kr, Kb)
MATRICES: dict[int, tuple[str, float, float]] = {
    1: ("bt709", 0.2126, 0.0722),
    4: ("fcc", 0.30, 0.11),
    5: ("bt601", 0.299, 0.114),
    6: ("bt601", 0.299, 0.114),
    7: ("smpte240m", 0.212, 0.087),
    9: ("bt2020", 0.2627, 0.0593),
    10: ("bt2020", 0.2627, 0.0593),
}
BT709, BT601 = 1, 6  # the AVColorSpace codes of the defaults
RANGE_LIMITED, RANGE_FULL = 1, 2  # AVColorRange


@dataclass(frozen=True)
class ColourSpec:
    """How a stream's YUV samples map to RGB: the matrix (its AVColorSpace code) and the range."""

    colorspace: int
    full: bool

    @property
    def kr_kb(self) -> tuple[float, float]:
        return MATRICES[self.colorspace][1:]

    @property
    def name(self) -> str:
        return f"{MATRICES[self.colorspace][0]} {'full' if self.full else 'limited'}"


def default_colorspace(width: int, height: int) -> int:
    """The matrix players assume when a stream does not say: BT.709 for HD, BT.601 below."""
    return BT709 if width >= 1280 or height > 576 else BT601


def spec_for(colorspace: Any, color_range: Any, width: int, height: int, pix_fmt: str = "") -> ColourSpec:
    """The ColourSpec of a stream from its tags (ints or enums; 0 / None: unspecified)."""
    cs = int(colorspace or 0)
    if cs not in MATRICES:  # unspecified, RGB, YCgCo, ...: the usual default by size
        cs = default_colorspace(width, height)
    rng = int(color_range or 0)
    full = rng == RANGE_FULL or (rng != RANGE_LIMITED and pix_fmt.startswith("yuvj"))
    return ColourSpec(cs, full)


def spec_for_info(info: Any, pix_fmt: str | None = None) -> ColourSpec:
    """The ColourSpec of a VideoInfo (its colour tags), for samples in ``pix_fmt``."""
    c = info.color or {}
    return spec_for(c.get("colorspace"), c.get("color_range"), info.width, info.height, pix_fmt or info.pix_fmt)


def spec_for_frame(vf: Any) -> ColourSpec:
    return spec_for(vf.colorspace, vf.color_range, vf.width, vf.height, vf.format.name)


# -- sample layouts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """A planar YUV format vdeblur converts itself: bit depth and chroma subsampling (1 or 2)."""

    name: str
    bits: int
    sx: int
    sy: int

    @property
    def dtype(self) -> Any:
        return np.uint8 if self.bits <= 8 else np.uint16

    @property
    def max(self) -> int:
        return (1 << self.bits) - 1


_PLANAR = re.compile(r"^yuvj?(420|422|444|440)p(?:(9|10|12|14|16)le)?$")
_SUB = {"420": (2, 2), "422": (2, 1), "444": (1, 1), "440": (1, 2)}


def layout_of(pix_fmt: str) -> Layout | None:
    """The Layout of a planar YUV format (little-endian above 8 bits), else None."""
    m = _PLANAR.match(pix_fmt)
    if not m or (m.group(2) and np.little_endian is False):
        return None
    sx, sy = _SUB[m.group(1)]
    return Layout(pix_fmt, int(m.group(2) or 8), sx, sy)


def planar_equivalent(pix_fmt: str) -> str | None:
    """A planar YUV format holding the same samples as ``pix_fmt`` (nv12 -> yuv420p,
    p010le -> yuv420p10le, yuva444p -> yuv444p), for a lossless repack; None for RGB, grey,
    palettes and subsamplings vdeblur does not convert itself."""
    if layout_of(pix_fmt):
        return pix_fmt
    try:
        f = av.VideoFormat(pix_fmt)
    except ValueError:
        return None
    comps = f.components
    if f.is_rgb or f.has_palette or len(comps) < 3 or not comps[1].is_chroma:
        return None
    sx = 1024 // max(1, f.chroma_width(1024))
    sy = 1024 // max(1, f.chroma_height(1024))
    sub = {(2, 2): "420", (2, 1): "422", (1, 1): "444", (1, 2): "440"}.get((sx, sy))
    bits = comps[0].bits
    if sub is None or bits > 16:
        return None
    depth = "" if bits <= 8 else f"{next(b for b in (9, 10, 12, 14, 16) if b >= bits)}le"
    return f"yuv{'j' if pix_fmt.startswith('yuvj') else ''}{sub}p{depth}"


def _is_rgb(pix_fmt: str) -> bool:
    try:
        return av.VideoFormat(pix_fmt).is_rgb
    except ValueError:
        return False


def _planes(vf: Any, layout: Layout) -> list[np.ndarray]:
    """The Y, Cb, Cr planes of a frame as numpy views (no copy), cropped to their widths."""
    out = []
    item = np.dtype(layout.dtype).itemsize
    for i, p in enumerate(vf.planes[:3]):
        w = vf.width if i == 0 else -(-vf.width // layout.sx)
        a = np.frombuffer(p, layout.dtype).reshape(p.height, p.line_size // item)
        out.append(a[:, :w])
    return out


# -- chroma resampling ------------------------------------------------------------------------------

# OpenCV does the per-pixel work (SIMD, its own threads): upsampling is nearest-neighbour x2
# followed by a small separable filter, downsampling a filter followed by decimation.
_ONE = np.array([1.0], np.float32)
_KX_UP = np.array([0.0, 0.5, 0.5], np.float32)  # co-sited: even columns kept, odd ones the mean of two
_KY_UP = np.array([0.25, 0.5, 0.25], np.float32)  # centred: 3/4 of the nearer row, 1/4 of the other
_KX_DOWN = np.array([-0.125, 0.25, 0.75, 0.25, -0.125], np.float32)  # LeGall 5/3 analysis low-pass
_KY_DOWN = np.array([-0.25, 0.75, 0.75, -0.25], np.float32)


def upsample(c: np.ndarray, sx: int, sy: int, width: int, height: int) -> np.ndarray:
    """Chroma (H x W, or H x W x K) to the luma size, float32: bilinear, horizontally co-sited with
    the even luma columns, vertically centred between two luma rows (edges replicated)."""
    ch, cw = c.shape[:2]
    if sx == 1 and sy == 1:
        return c.astype(np.float32)
    r = cv2.resize(c, (cw * sx, ch * sy), interpolation=cv2.INTER_NEAREST)
    out = cv2.sepFilter2D(r, cv2.CV_32F, _KX_UP if sx == 2 else _ONE, _KY_UP if sy == 2 else _ONE,
                          borderType=cv2.BORDER_REPLICATE)
    return out[:height, :width]


def downsample(x: np.ndarray, sx: int, sy: int) -> np.ndarray:
    """Full-size chroma (H x W, or H x W x K) to the subsampled size, float32: the inverse of
    ``upsample`` on its range (downsample(upsample(c)) == c): LeGall 5/3 across (edges mirrored),
    -1/4 3/4 3/4 -1/4 over each pair of rows and their neighbours down (edges replicated)."""
    x = x.astype(np.float32, copy=False)
    if sx == 2:
        if x.shape[1] >= 3:
            x = cv2.filter2D(x, cv2.CV_32F, _KX_DOWN[None, :], borderType=cv2.BORDER_REFLECT_101)
        x = _even(x, 1)
    if sy == 2:
        if x.shape[0] % 2 and x.shape[0] >= 3:  # odd height: the row upsampling cropped, extrapolated
            x = np.concatenate([x, 1.5 * x[-1:] - 0.5 * x[-2:-1]], axis=0)
        x = cv2.filter2D(x, cv2.CV_32F, _KY_DOWN[:, None], anchor=(0, 1), borderType=cv2.BORDER_REPLICATE)
        x = _even(x, 0)
    return x


def _even(x: np.ndarray, axis: int) -> np.ndarray:
    """The even rows (axis 0) or columns (axis 1), contiguous (OpenCV's nearest-neighbour halving
    picks exactly those, faster than numpy copying a strided view)."""
    h, w = x.shape[:2]
    if (w if axis else h) % 2:  # odd: one more, to be dropped
        x = cv2.copyMakeBorder(x, 0, 0 if axis else 1, 0, 1 if axis else 0, cv2.BORDER_REPLICATE)
        h, w = x.shape[:2]
    size = (w // 2, h) if axis else (w, h // 2)
    if min(size) == 0:
        return np.ascontiguousarray(x[:, 0::2] if axis else x[0::2])
    return cv2.resize(x, size, interpolation=cv2.INTER_NEAREST)


# -- digital <-> normalised -------------------------------------------------------------------------

def _scales(bits: int, full: bool) -> tuple[float, float, float, float]:
    """(Y offset, Y scale, C offset, C scale): digital = offset + scale * normalised."""
    k = 1 << (bits - 8)
    if full:
        peak = float((1 << bits) - 1)
        return 0.0, peak, float(1 << (bits - 1)), peak
    return 16.0 * k, 219.0 * k, 128.0 * k, 224.0 * k


def _normalised(vf: Any, layout: Layout, spec: ColourSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y in 0..1 at luma size, Cb and Cr in -0.5..0.5 at chroma size (float32)."""
    yo, ys, co, cs = _scales(layout.bits, spec.full)
    y, cb, cr = _planes(vf, layout)
    f = np.float32
    return ((y.astype(f) - f(yo)) * f(1 / ys), (cb.astype(f) - f(co)) * f(1 / cs), (cr.astype(f) - f(co)) * f(1 / cs))


def _quantise(x: np.ndarray, offset: float, scale: float, peak: int, dtype: Any) -> np.ndarray:
    x = x * np.float32(scale)
    x += np.float32(offset + 0.5)
    np.clip(x, 0, peak, out=x)
    return x.astype(dtype)  # truncation of x + 0.5 >= 0: round half up


# -- the two directions -----------------------------------------------------------------------------

def frame_to_rgb(vf: Any, spec: ColourSpec | None = None, *, high_depth: bool = False) -> np.ndarray:
    """A decoded frame as RGB HxWx3 (uint8, or uint16 on 0..65535 with ``high_depth``)."""
    fmt = "rgb48le" if high_depth else "rgb24"
    name = vf.format.name
    layout = layout_of(name)
    if layout is None:
        eq = planar_equivalent(name)
        if eq is None:  # RGB (an exact repack), grey, palettes: swscale, rounding accurately
            return vf.to_ndarray(format=fmt, **_SWS)
        vf = vf.reformat(format=eq, **_SWS)
        layout = layout_of(eq)
        assert layout is not None
    spec = spec or spec_for_frame(vf)
    y, cb, cr = _planes(vf, layout)
    h, w = y.shape
    out = np.empty((h, w, 3), np.uint16 if high_depth else np.uint8)
    for r0, r1 in _bands(h, w):  # a large frame in bands of rows: float copies of a band only
        if layout.sy == 2:  # the chroma rows these luma rows are upsampled from, and one more each side
            c0, c1 = max(0, r0 // 2 - 1), min(cb.shape[0], -(-r1 // 2) + 1)
        else:
            c0, c1 = r0, r1
        skip = r0 - layout.sy * c0
        out[r0:r1] = _rgb_band(y[r0:r1], cb[c0:c1], cr[c0:c1], skip, layout, spec, high_depth)
    return out


BAND_PIXELS = 1 << 21  # frames above about 2 megapixels are converted in bands of rows


def _bands(h: int, w: int) -> list[tuple[int, int]]:
    rows = max(8, (BAND_PIXELS // max(1, w)) // 2 * 2)  # even: bands start on a chroma row
    return [(r, min(h, r + rows)) for r in range(0, h, rows)]


def frame_to_rgb_scaled(vf: Any, width: int, height: int, spec: ColourSpec | None = None) -> np.ndarray:
    """A decoded frame as 8-bit RGB at ``width`` x ``height`` (smaller than the frame), area-averaged:
    the Y, Cb and Cr planes are scaled first and converted after (the conversion is affine, so this
    is the area-averaged RGB frame but for rounding and chroma siting), at a fraction of
    :func:`frame_to_rgb`'s cost for a small analysis copy (the fsm selector's pre-pass)."""
    layout = layout_of(vf.format.name)
    if layout is None:
        return cv2.resize(frame_to_rgb(vf, spec), (width, height), interpolation=cv2.INTER_AREA)
    spec = spec or spec_for_frame(vf)
    y, cb, cr = _planes(vf, layout)
    f = np.float32
    ycc = cv2.merge([cv2.resize(y.astype(f), (width, height), interpolation=cv2.INTER_AREA),
                     cv2.resize(cb.astype(f), (width, height), interpolation=cv2.INTER_AREA),
                     cv2.resize(cr.astype(f), (width, height), interpolation=cv2.INTER_AREA)])
    return _ycc_to_rgb(ycc, layout, spec, False)


def _rgb_band(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, skip: int, layout: Layout, spec: ColourSpec,
              high_depth: bool) -> np.ndarray:
    """RGB of luma rows ``y``; ``cb``, ``cr`` hold their chroma rows, ``skip`` upsampled rows early."""
    h, w = y.shape
    c = upsample(cv2.merge([cb, cr]), layout.sx, layout.sy, w, skip + h)[skip:]
    return _ycc_to_rgb(cv2.merge([y.astype(np.float32), np.ascontiguousarray(c)]), layout, spec, high_depth)


def _ycc_to_rgb(ycc: np.ndarray, layout: Layout, spec: ColourSpec, high_depth: bool) -> np.ndarray:
    """Digital Y, Cb, Cr (float32 H x W x 3, one size) -> RGB on 0..peak, one affine map per pixel."""
    peak = 65535 if high_depth else 255
    yo, ys, co, cs = _scales(layout.bits, spec.full)
    m = np.zeros((3, 4), np.float64)
    m[:, 0] = peak / ys
    m[:, 1:3] = _chroma_to_rgb(spec).T * (peak / cs)
    m[:, 3] = -yo * peak / ys - m[:, 1:3].sum(axis=1) * co
    rgb = cv2.transform(ycc, m.astype(np.float32))
    if not high_depth:  # clamped below, rounded and clamped above by OpenCV
        return cv2.convertScaleAbs(cv2.max(rgb, 0.0))
    rgb += np.float32(0.5)
    np.clip(rgb, 0, peak, out=rgb)
    return rgb.astype(np.uint16)  # truncation of value + 0.5 >= 0: rounding


def _chroma_to_rgb(spec: ColourSpec) -> np.ndarray:
    """(2, 3): R, G, B = Y + [Cb, Cr] @ this."""
    kr, kb = spec.kr_kb
    kg = 1.0 - kr - kb
    return np.array([[0.0, -2 * kb * (1 - kb) / kg, 2 - 2 * kb],
                     [2 - 2 * kr, -2 * kr * (1 - kr) / kg, 0.0]], np.float32)


def _rgb_to_ycc_matrix(spec: ColourSpec) -> np.ndarray:
    """(3, 3): [Y, Cb, Cr] = RGB @ this (RGB and Y in 0..1, Cb and Cr in -0.5..0.5)."""
    kr, kb = spec.kr_kb
    kg = 1.0 - kr - kb
    y = np.array([kr, kg, kb])
    cb = (np.array([0.0, 0.0, 1.0]) - y) * (0.5 / (1 - kb))
    cr = (np.array([1.0, 0.0, 0.0]) - y) * (0.5 / (1 - kr))
    return np.stack([y, cb, cr], axis=1).astype(np.float32)


_ACCURATE = (av.video.reformatter.Interpolation.BICUBIC | av.video.reformatter.Interpolation.ACCURATE_RND
             | av.video.reformatter.Interpolation.FULL_CHR_H_INT | av.video.reformatter.Interpolation.FULL_CHR_H_INP)
# swscale's own slice threads are off (threads=1): vdeblur converts on its pipeline threads
# already, and a test run hung inside swscale's slice-thread pool (avpriv_slicethread_execute
# waiting forever, its workers gone) while the pipeline's threads were converting frames.
_SWS = {"interpolation": _ACCURATE, "threads": 1}


def encode_frame(pix_fmt: str, spec: ColourSpec, *, restored: np.ndarray | None = None, source: Any = None,
                 source_spec: ColourSpec | None = None, source_rgb: np.ndarray | None = None) -> Any:
    """A VideoFrame in ``pix_fmt`` (samples mapped by ``spec``) holding ``restored`` (RGB).

    ``source`` is the decoded frame that was restored and ``source_rgb`` the RGB the method saw
    (``frame_to_rgb`` of it): the result is the source's own samples plus the converted change.
    With ``restored`` None the source is only re-laid-out (depth, chroma subsampling, range).
    """
    if _is_rgb(pix_fmt):  # RGB output: the RGB itself, repacked
        rgb = restored if restored is not None else source_rgb
        if rgb is None:
            high = max(c.bits for c in av.VideoFormat(pix_fmt).components) > 8
            rgb = frame_to_rgb(source, source_spec, high_depth=high)
        fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=fmt)
        return vf if pix_fmt == fmt else vf.reformat(format=pix_fmt, **_SWS)
    out_layout = layout_of(pix_fmt)
    build = pix_fmt if out_layout else (planar_equivalent(pix_fmt) or ("yuv444p16le" if "16" in pix_fmt or "10" in pix_fmt or "12" in pix_fmt else "yuv444p"))
    out_layout = layout_of(build)
    assert out_layout is not None
    src_layout = None
    if source is not None:
        eq = planar_equivalent(source.format.name)
        if eq is not None:
            if eq != source.format.name:
                source = source.reformat(format=eq, **_SWS)
            src_layout = layout_of(eq)
    if (src_layout == out_layout and restored is not None and source_rgb is not None
            and (source_spec or spec_for_frame(source)) == spec
            and restored.dtype == (np.uint16 if out_layout.bits > 8 else np.uint8)
            and source_rgb.dtype == restored.dtype and source_rgb.shape == restored.shape):
        return _encode_same_layout(source, out_layout, spec, restored, source_rgb)
    if src_layout is not None:
        sspec = source_spec or spec_for_frame(source)
        y, cb, cr = _normalised(source, src_layout, sspec)
        h, w = y.shape
        if (src_layout.sx, src_layout.sy) != (out_layout.sx, out_layout.sy):
            cb = downsample(upsample(cb, src_layout.sx, src_layout.sy, w, h), out_layout.sx, out_layout.sy)
            cr = downsample(upsample(cr, src_layout.sx, src_layout.sy, w, h), out_layout.sx, out_layout.sy)
        if restored is not None:
            if source_rgb is None:
                source_rgb = frame_to_rgb(source, sspec, high_depth=restored.dtype == np.uint16)
            m = _rgb_to_ycc_matrix(sspec) * np.float32(1 / (65535.0 if restored.dtype == np.uint16 else 255.0))
            rf = restored.astype(np.float32)
            # luma: the restored pixel converted directly (its rounding dithers), except where the
            # method left the pixel as it was: there the source's own sample, bit for bit
            eq = restored == source_rgb
            unchanged = eq[..., 0] & eq[..., 1] & eq[..., 2]
            y = np.where(unchanged, y, rf @ m[:, 0])
            # chroma: the source's samples plus the change, downsampled (D(U(c)) != c, so the
            # samples themselves must be kept for an unchanged frame to come back unchanged)
            rf -= source_rgb
            cb = cb + downsample(rf @ m[:, 1], out_layout.sx, out_layout.sy)
            cr = cr + downsample(rf @ m[:, 2], out_layout.sx, out_layout.sy)
    else:
        rgb = restored if restored is not None else source_rgb
        if rgb is None:
            raise ValueError("encode_frame needs restored pixels or a source frame")
        h, w = rgb.shape[:2]
        rf = rgb.astype(np.float32)
        m = _rgb_to_ycc_matrix(spec) * np.float32(1 / (65535.0 if rgb.dtype == np.uint16 else 255.0))
        y = rf @ m[:, 0]
        cb = downsample(rf @ m[:, 1], out_layout.sx, out_layout.sy)
        cr = downsample(rf @ m[:, 2], out_layout.sx, out_layout.sy)
    yo, ys, co, cs = _scales(out_layout.bits, spec.full)
    planes = (
        _quantise(y, yo, ys, out_layout.max, out_layout.dtype),
        _quantise(cb, co, cs, out_layout.max, out_layout.dtype),
        _quantise(cr, co, cs, out_layout.max, out_layout.dtype),
    )
    vf = av.VideoFrame(w, h, build)
    for dst, src in zip(_planes(vf, out_layout), planes):
        dst[:, :] = src
    if build != pix_fmt:
        vf = vf.reformat(format=pix_fmt, **_SWS)
    vf.colorspace = spec.colorspace
    vf.color_range = RANGE_FULL if spec.full else RANGE_LIMITED
    return vf


def _plane(a: np.ndarray) -> np.ndarray:
    return a[..., 0] if a.ndim == 3 else a


_ONES_1X3 = np.ones((1, 3), np.float32)


def _encode_same_layout(source: Any, layout: Layout, spec: ColourSpec, restored: np.ndarray,
                        source_rgb: np.ndarray) -> Any:
    """``encode_frame``'s common case, the output laid out as the decoded frame (same depth,
    subsampling, matrix and range), with OpenCV doing the per-pixel work: the same result.
    A large frame goes in bands of rows."""
    y_src, cb_src, cr_src = _planes(source, layout)
    h, w = y_src.shape
    yo, ys, co, cs = _scales(layout.bits, spec.full)
    m = _rgb_to_ycc_matrix(spec).T.astype(np.float64) / (65535.0 if restored.dtype == np.uint16 else 255.0)
    my = np.zeros((1, 4), np.float64)
    my[0, :3] = m[0] * ys
    my[0, 3] = yo + 0.5
    my, mc = my.astype(np.float32), (m[1:] * cs).astype(np.float32)
    vf = av.VideoFrame(w, h, layout.name)
    y_out, cb_out, cr_out = _planes(vf, layout)
    for r0, r1 in _bands(h, w):
        # luma: each restored pixel converted directly, rounded, except where the method left the
        # pixel as it was: there the decoded sample itself
        yf = _plane(cv2.transform(restored[r0:r1].astype(np.float32), my))
        np.clip(yf, 0, layout.max, out=yf)
        y = y_out[r0:r1]
        np.copyto(y, yf, casting="unsafe")  # truncation of value + 0.5 >= 0: rounding
        # unchanged pixels: the integer difference (saturating sum of the channels' |d|) is 0
        same = _plane(cv2.transform(cv2.absdiff(restored[r0:r1], source_rgb[r0:r1]), _ONES_1X3)) == 0
        np.copyto(y, y_src[r0:r1], where=same)
        # chroma: the decoded samples plus the change, converted and downsampled; the pairs of
        # rows of this band with their neighbours (two more rows each side)
        if layout.sy == 2:
            a, b = max(0, r0 - 2), min(h, r1 + 2)
            j0, j1 = r0 // 2, -(-r1 // 2)
        else:
            a, b, j0, j1 = r0, r1, r0, r1
        # the change as float, straight from the integers (exact: no float copies of both frames)
        d = cv2.subtract(restored[a:b], source_rgb[a:b], dtype=cv2.CV_32F)
        dc = downsample(cv2.transform(d, mc), layout.sx, layout.sy)
        dc = dc[j0 - a // layout.sy: j1 - a // layout.sy]
        for k, (src, dst) in enumerate(((cb_src, cb_out), (cr_src, cr_out))):
            c = dc[..., k] + src[j0:j1]
            c += np.float32(0.5)
            np.clip(c, 0, layout.max, out=c)
            dst[j0:j1] = c.astype(layout.dtype)
    vf.colorspace = spec.colorspace
    vf.color_range = RANGE_FULL if spec.full else RANGE_LIMITED
    return vf
