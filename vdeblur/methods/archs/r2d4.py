"""R2-D4: concurrent video denoising and deblurring with a cascade of two decoders.

Source: ``/work/shared/papers/r2d4-video-denoise-deblur.md`` (Section IV; Table 1 for the size).

What this module follows
------------------------
* Section IV-A1, Eq. 6: :class:`MECA` -- ECA (Eq. 4) fed with the channel-wise global average *and*
  max pooled features ("MGAP"): ``sigmoid o C_{c, 2 x k} o MGAP``, i.e. one bias-free 1D conv with
  2 input channels and kernel ``k`` across the channel axis; the weights multiply the input (Eq. 5).
* Section IV-A2, Eq. 7-9: :class:`RDB` (3 layers ``C_{g,3x3}`` + ReLU with dense concatenation, a
  ``C_{c,1x1}`` aggregation, residual sum), :class:`MSRDB` (the same with dilation rates 0, 1, 2 on
  its three layers, Eq. 8) and :class:`MSRDM` (``MS-RDB -> RDB``, concatenation of both outputs,
  ``MECA``, ``C_{c,1x1}`` and a module-level residual sum, Eq. 9).
* Section IV-B1, Eq. 10-11: the feature extractor ``F = RDM_MS32 o C_{32,3x3,2} o RDM_MS16 o
  C_{16,3x3,1}`` (strides 1 and 2; the subscript of ``RDM_MS`` is the growth factor, the channel
  count is that of the preceding conv). Two sets of weights: ``feat_current`` for ``x^t`` (3 input
  channels) and ``feat_past``, *one* module shared by every past frame, on the concatenation
  ``[x^{t-n}, y_hat^{t-n}]`` (6 input channels).
* Eq. 12-13: per past frame, a modulated deformable layer ``C^D_{128,3x3,1} o C_{27,3x3,1}``
  (:class:`~vdeblur.methods.archs.dcn.DCNv2Pack`): offsets/masks from ``[f^t, f^{t-n}]``, the
  deformable conv samples ``f^{t-n}``.
* Eq. 14-15: fusion ``RDB_32 o RDB_32 o C_{128,3x3,2} o RDB_32 o RDB_32 o C_{128,3x3,1}`` on the
  concatenated aligned features ``[f_a^{t-1}, f_a^{t-2}]``; ``f_shared`` is at 1/4 resolution.
* Section IV-B2, Eq. 16-18: two identical decoders ``C_{3,3x3,1} o RDB_16 o PS o C_{128,3x3,1} o
  RDB_32 o PS o C_{256,3x3,1}`` (pixel shuffle x2: 256 -> 64 and 128 -> 32 channels); residual
  connections ``k_hat = x^t + D_den(f_shared)`` and ``y_hat = k_hat + D_deb(f_shared)`` (Eq. 17-18
  plus the "additional residual connections" of Section IV). Encoder skip features are split in
  two halves, ``f_den`` for the denoising decoder and ``f_deb`` for the deblurring one.

Choices where the text is silent or ambiguous (Fig. 1-3 are not in the text)
-----------------------------------------------------------------------------
* Dilation "rate d" of Eq. 8 with d = 0, 1, 2 where 0 means "not dilated": ``dilation = d + 1``
  (1, 2, 3), padding = dilation so sizes are kept. Parameter counts do not depend on it.
* ``MECA_T`` in Eq. 9 is read as ``MECA_k`` with ECA's adaptive kernel
  ``k = odd(|log2(C) / 2 + 1 / 2|)`` (ECA-Net, gamma = 2, b = 1) for the ``2c`` channels it sees.
* Activation ``R`` = ReLU after every 3x3 conv of an RDB; ReLU also after the plain convs of F and
  of the fusion, and after each decoder's expansion conv (before the pixel shuffle). The 1x1
  aggregations, the deformable conv and the decoders' last ``C_3`` are linear. All convs have bias.
* One deformable layer per past frame (N = 2 layers, not shared): Eq. 12 defines "each modulated
  deformable layer" and Eq. 13 indexes the aligned features by t-N.
* The fusion sees only the aligned past features (Eq. 15, 2 x 128 channels in); the current frame
  reaches the decoders through the offsets, the encoder skips and the ``x^t`` residual.
* Skips ("from the encoder to the decoders", split in halves): the current frame's features
  after ``RDM_MS16`` (16 channels, full resolution) and ``f^t`` (32 channels, 1/2 resolution). Each
  decoder concatenates its half (8 resp. 16 channels) right after the matching pixel shuffle, so
  its ``RDB_32`` runs on 64 + 16 and its ``RDB_16`` on 32 + 8 channels.
* Past features: ``f^{t-2}`` at step t equals ``f^{t-1}`` at step t-1 (shared weights, same
  inputs). The module stays stateless; its caller may pass them back (``past_features``), as
  :func:`r2d4_step` (below) does: one past frame through the extractor per step, not N.

Parameter count. With these choices the "paper" variant has 2,584,612 parameters, about half of
the 5.1 M of Table 1 (breakdown in ``tests/test_arch_r2d4.py``): F 156,572 (current) + 157,004
(past), alignment 2 x 52,571, fusion 1,111,168, decoders 2 x 527,363. The equations fix nearly all
of it: the choices above move it by at most ~0.3 M (e.g. taking the skips from the fusion's
128-channel half-resolution features instead would add 2 x 111 k; feeding f^t to the fusion too,
37 k), so the gap must come from what Fig. 1 shows and the text does not. Table 1 also gives R2-D3, the
single-decoder ablation, 4.4 M, i.e. about 0.7 M per decoder against our 0.53 M, so most of the
missing ~2.5 M sits before the decoders. No layer is added or widened to hit the number.

Spatial sizes: F halves the resolution and the fusion halves it again, so H and W must be
multiples of :attr:`R2D4.pad_multiple` = 4 (the caller pads). At the start of a video there is no
past: pass copies of the current corrupted frame as both ``past_corrupted`` and ``past_restored``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vdeblur.methods.neural import autocast_key, register_net

from .dcn import DCNv2Pack

__all__ = [
    "MECA",
    "MSRDB",
    "MSRDM",
    "R2D4",
    "R2D4_VARIANTS",
    "RDB",
    "R2D4Decoder",
    "R2D4FeatureExtractor",
    "R2D4Fusion",
    "R2D4State",
    "eca_kernel_size",
    "r2d4_step",
]

#: Variants as data. "paper" is Section IV (Eq. 10-16, N = 2). "small" keeps F and the alignment
#: and narrows the fusion and the decoders (Section V-B: "we reduce the number of channels in the
#: decoders and the fusion module"; the paper gives no numbers for it, these are ours).
R2D4_VARIANTS: dict[str, dict] = {
    "paper": {
        "feat_channels": (16, 32),
        "feat_growth": (16, 32),
        "align_channels": 128,
        "fuse_channels": 128,
        "fuse_growth": 32,
        "fuse_blocks": (2, 2),
        "dec_channels": (256, 128),
        "dec_growth": (32, 16),
        "n_past": 2,
    },
    "small": {
        "feat_channels": (16, 32),
        "feat_growth": (16, 32),
        "align_channels": 64,
        "fuse_channels": 64,
        "fuse_growth": 16,
        "fuse_blocks": (1, 1),
        "dec_channels": (128, 64),
        "dec_growth": (16, 8),
        "n_past": 2,
    },
    # for CPUs (issue 15: at most 2 s a 720p frame on 2 cores): "small" is 214 GMAC a frame, over
    # what two cores compute in 2 s; this one narrows the extractors' full-scale stage as well
    "tiny": {
        "feat_channels": (8, 8),
        "feat_growth": (4, 8),
        "align_channels": 32,
        "fuse_channels": 32,
        "fuse_growth": 8,
        "fuse_blocks": (1, 1),
        "dec_channels": (32, 16),
        "dec_growth": (4, 4),
        "n_past": 2,
    },
}


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA-Net's adaptive 1D kernel size: the odd number nearest above ``|log2(C)/gamma + b/gamma|``."""
    t = int(abs(math.log2(channels) / gamma + b / gamma))
    return t if t % 2 else t + 1


def _conv(c_in: int, c_out: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=dilation * (k // 2), dilation=dilation)


class MECA(nn.Module):
    """Modulated efficient channel attention (Eq. 6): ``x * sigmoid(C_{2 x k}([GAP(x); MP(x)]))``.

    The average- and max-pooled channel descriptors form a 2-row signal over the C channels; one
    bias-free ``Conv1d(2 -> 1, k)`` (zero padding ``k // 2``) gives the C attention weights.
    ``kernel_size=None`` uses ECA's adaptive size for ``channels``.
    """

    def __init__(self, channels: int, kernel_size: int | None = None):
        super().__init__()
        k = eca_kernel_size(channels) if kernel_size is None else kernel_size
        if k < 1 or k % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {k}")
        self.channels = channels
        self.conv = nn.Conv1d(2, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.stack((x.mean(dim=(2, 3)), x.amax(dim=(2, 3))), dim=1)  # [B, 2, C]
        w = torch.sigmoid(self.conv(pooled))  # [B, 1, C]
        return x * w.transpose(1, 2).unsqueeze(-1)  # [B, C, 1, 1]


class RDB(nn.Module):
    """Residual dense block (Eq. 7; Eq. 8 with ``dilations``): ``x + C_{c,1x1}(dense(x))``.

    Layer i: ``ReLU(C_{g,3x3,dilation_i})`` on the concatenation of ``x`` and all previous layer
    outputs (``c + i g`` channels); the ``c + L g`` channels are aggregated by a 1x1 conv to ``c``.
    """

    def __init__(self, channels: int, growth: int, dilations: Sequence[int] = (1, 1, 1)):
        super().__init__()
        if channels < 1 or growth < 1 or not dilations:
            raise ValueError(f"bad RDB hyperparameters: channels={channels}, growth={growth}, {dilations}")
        self.layers = nn.ModuleList(
            nn.Sequential(_conv(channels + i * growth, growth, 3, dilation=d), nn.ReLU(inplace=True))
            for i, d in enumerate(dilations)
        )
        self.fuse = _conv(channels + len(dilations) * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x
        for layer in self.layers:
            feats = torch.cat((feats, layer(feats)), dim=1)
        return x + self.fuse(feats)


class MSRDB(RDB):
    """Multiscale RDB (Eq. 8): the three 3x3 layers have dilation rates 0, 1, 2 (dilation 1, 2, 3)."""

    def __init__(self, channels: int, growth: int, rates: Sequence[int] = (0, 1, 2)):
        super().__init__(channels, growth, dilations=tuple(r + 1 for r in rates))


class MSRDM(nn.Module):
    """Multiscale residual dense module (Eq. 9): ``x + C_{c,1x1}(MECA([a; RDB(a)]))``, ``a = MSRDB(x)``."""

    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.coarse = MSRDB(channels, growth)
        self.fine = RDB(channels, growth)
        self.attention = MECA(2 * channels)
        self.fuse = _conv(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.coarse(x)
        b = self.fine(a)
        return x + self.fuse(self.attention(torch.cat((a, b), dim=1)))


class R2D4FeatureExtractor(nn.Module):
    """F of Eq. 10: ``C_{c0,3x3,1} -> RDM_MS(g0) -> C_{c1,3x3,2} -> RDM_MS(g1)``.

    ``forward(x) -> (skip, feat)``: ``skip`` [B, c0, H, W] (after the first MS-RDM) and ``feat``
    [B, c1, H/2, W/2].
    """

    def __init__(
        self, in_channels: int, channels: Sequence[int] = (16, 32), growth: Sequence[int] = (16, 32)
    ):
        super().__init__()
        c0, c1 = channels
        g0, g1 = growth
        self.stage1 = nn.Sequential(_conv(in_channels, c0, 3), nn.ReLU(inplace=True), MSRDM(c0, g0))
        self.stage2 = nn.Sequential(_conv(c0, c1, 3, stride=2), nn.ReLU(inplace=True), MSRDM(c1, g1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.stage1(x)
        return skip, self.stage2(skip)


class R2D4Fusion(nn.Module):
    """F_fuse of Eq. 14: ``C_{c,3x3,1}``, RDBs, ``C_{c,3x3,2}``, RDBs, on the stacked aligned features."""

    def __init__(
        self, in_channels: int, channels: int = 128, growth: int = 32, blocks: Sequence[int] = (2, 2)
    ):
        super().__init__()
        self.body = nn.Sequential(
            _conv(in_channels, channels, 3),
            nn.ReLU(inplace=True),
            *(RDB(channels, growth) for _ in range(blocks[0])),
            _conv(channels, channels, 3, stride=2),
            nn.ReLU(inplace=True),
            *(RDB(channels, growth) for _ in range(blocks[1])),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class R2D4Decoder(nn.Module):
    """D of Eq. 16 with encoder skips.

    ``C_{e0} -> PS -> [.; skip_half] -> RDB -> C_{e1} -> PS -> [.; skip_full] -> RDB -> C_3``.

    ``forward(f_shared, skip_half_res, skip_full_res)``: ``f_shared`` [B, c, H/4, W/4], skips at
    H/2 and H; returns the 3-channel residual [B, 3, H, W]. Pixel shuffles upscale by 2 (e0 / 4 and
    e1 / 4 channels after them).
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int] = (256, 128),
        growth: Sequence[int] = (32, 16),
        skip_channels: Sequence[int] = (16, 8),
    ):
        super().__init__()
        e0, e1 = channels
        if e0 % 4 or e1 % 4:
            raise ValueError(f"decoder channels must be multiples of 4 (pixel shuffle x2), got {channels}")
        s_half, s_full = skip_channels
        c_half = e0 // 4 + s_half
        c_full = e1 // 4 + s_full
        self.up1 = nn.Sequential(_conv(in_channels, e0, 3), nn.ReLU(inplace=True), nn.PixelShuffle(2))
        self.rdb1 = RDB(c_half, growth[0])
        self.up2 = nn.Sequential(_conv(c_half, e1, 3), nn.ReLU(inplace=True), nn.PixelShuffle(2))
        self.rdb2 = RDB(c_full, growth[1])
        self.out = _conv(c_full, 3, 3)

    def forward(self, f: torch.Tensor, skip_half: torch.Tensor, skip_full: torch.Tensor) -> torch.Tensor:
        y = self.rdb1(torch.cat((self.up1(f), skip_half), dim=1))
        y = self.rdb2(torch.cat((self.up2(y), skip_full), dim=1))
        return self.out(y)


class R2D4(nn.Module):
    """R2-D4 (Section IV, Fig. 1): one recurrent step for the current frame.

    ``forward(current, past_corrupted, past_restored) -> (denoised, restored)``:

    * ``current`` [B, 3, H, W]: the corrupted frame ``x^t``;
    * ``past_corrupted`` [B, N, 3, H, W]: ``x^{t-1}, ..., x^{t-N}`` (index 0 is the most recent);
    * ``past_restored`` [B, N, 3, H, W]: the network's own earlier outputs ``y_hat^{t-1..t-N}``
      in the same order (recurrence). At the start of a video, pass copies of ``current`` for the
      missing past frames (both tensors).
    * ``past_features`` (optional): :meth:`past_features` of those two, when the caller kept them;
    * returns ``k_hat^t`` (the denoised, still blurry intermediate, Eq. 17) and ``y_hat^t`` (the
      restored frame, Eq. 18), both [B, 3, H, W], not clamped.

    H and W must be multiples of :attr:`pad_multiple` (4): F and the fusion each down-sample by 2.
    """

    pad_multiple = 4

    def __init__(
        self,
        feat_channels: Sequence[int] = (16, 32),
        feat_growth: Sequence[int] = (16, 32),
        align_channels: int = 128,
        fuse_channels: int = 128,
        fuse_growth: int = 32,
        fuse_blocks: Sequence[int] = (2, 2),
        dec_channels: Sequence[int] = (256, 128),
        dec_growth: Sequence[int] = (32, 16),
        n_past: int = 2,
        deformable_groups: int = 1,
    ):
        super().__init__()
        c0, c1 = feat_channels
        if n_past < 1:
            raise ValueError(f"n_past must be >= 1, got {n_past}")
        if c0 % 2 or c1 % 2:
            raise ValueError(f"feat_channels must be even (skips are split in halves), got {feat_channels}")
        self.n_past = n_past
        self.feat_current = R2D4FeatureExtractor(3, feat_channels, feat_growth)
        self.feat_past = R2D4FeatureExtractor(6, feat_channels, feat_growth)  # shared by all past frames
        self.align = nn.ModuleList(
            DCNv2Pack(c1, align_channels, 3, padding=1, deformable_groups=deformable_groups,
                      offset_in_channels=2 * c1)
            for _ in range(n_past)
        )
        self.fusion = R2D4Fusion(n_past * align_channels, fuse_channels, fuse_growth, fuse_blocks)
        skips = (c1 // 2, c0 // 2)
        self.decoder_den = R2D4Decoder(fuse_channels, dec_channels, dec_growth, skips)
        self.decoder_deb = R2D4Decoder(fuse_channels, dec_channels, dec_growth, skips)

    def past_features(self, past_corrupted: torch.Tensor, past_restored: torch.Tensor) -> torch.Tensor:
        """``f^{t-n}`` of Eq. 11 for each past frame: [B, n, 3, H, W] twice -> [B, n, c1, H/2, W/2].

        The n frames go through the one shared extractor as a single batch. A frame's features
        depend on that frame's pair alone, so a caller stepping through a video may keep them: at
        step t+1, past frame n+1 is step t's past frame n (see :func:`r2d4_step`).
        """
        b, n = past_corrupted.shape[:2]
        past = torch.cat((past_corrupted, past_restored), dim=2).flatten(0, 1)  # [B*n, 6, H, W]
        _, f_past = self.feat_past(past)
        return f_past.unflatten(0, (b, n))

    def forward(
        self,
        current: torch.Tensor,
        past_corrupted: torch.Tensor,
        past_restored: torch.Tensor,
        past_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if current.dim() != 4 or current.shape[1] != 3:
            raise ValueError(f"current must be [B, 3, H, W], got {list(current.shape)}")
        b, _, h, w = current.shape
        want = [b, self.n_past, 3, h, w]
        for name, t in (("past_corrupted", past_corrupted), ("past_restored", past_restored)):
            if list(t.shape) != want:
                raise ValueError(f"{name} must be {want}, got {list(t.shape)}")
        if h % self.pad_multiple or w % self.pad_multiple:
            raise ValueError(f"H and W must be multiples of {self.pad_multiple}, got {h}x{w}")

        skip_full, f_cur = self.feat_current(current)
        if past_features is None:
            past_features = self.past_features(past_corrupted, past_restored)
        elif list(past_features.shape) != [b, self.n_past, f_cur.shape[1], *f_cur.shape[2:]]:
            raise ValueError(f"past_features must be {[b, self.n_past, *f_cur.shape[1:]]}, "
                             f"got {list(past_features.shape)}")
        f_past = past_features
        aligned = [
            dc(f_past[:, i], torch.cat((f_cur, f_past[:, i]), dim=1)) for i, dc in enumerate(self.align)
        ]
        shared = self.fusion(torch.cat(aligned, dim=1))
        half_den, half_deb = f_cur.chunk(2, dim=1)
        full_den, full_deb = skip_full.chunk(2, dim=1)
        denoised = current + self.decoder_den(shared, half_den, full_den)
        restored = denoised + self.decoder_deb(shared, half_deb, full_deb)
        return denoised, restored


@dataclass
class R2D4State:
    """What r2d4 carries from frame to frame: the restored past (most recent first) and the past
    features it already computed, with the autocast/dtype/shape they were computed under."""

    restored: torch.Tensor  # [B, N, 3, H, W]
    features: torch.Tensor | None = None  # [B, N-1, C, H/2, W/2]: past slots 0..N-2 of the last step
    key: tuple = ()


def r2d4_step(net: nn.Module, window: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
    """Window [t-2, t-1, t] (corrupted); state: the two previous restored frames (most recent first).
    After a reset (start of the video, or a frame passed through) the corrupted past stands in
    for the restored past (r2d4-video-denoise-deblur.md, Section IV: N = 2 previous frames).

    The past frames' features are kept in the state: at step t+1, past slot n+1 holds exactly the
    pair (corrupted, restored) that slot n held at step t, so only slot 0 (frame t) goes through the
    extractor (a third of r2d4's work). Kept only without gradients, and for the same autocast,
    dtype and frame size; a plain tensor state (the restored frames alone) is accepted too."""
    cur = window[:, -1]
    past_corrupted = window[:, :-1].flip(1)  # index 0 = t-1, the most recent
    key = (window.dtype, tuple(window.shape), autocast_key(window.device))
    kept = None
    if state is None:
        past_restored = past_corrupted
    elif isinstance(state, R2D4State):
        past_restored = state.restored
        kept = state.features if state.key == key else None
    else:
        past_restored = state
    reuse = not torch.is_grad_enabled() and past_corrupted.shape[1] > 1
    if reuse and kept is not None:
        fresh = net.past_features(past_corrupted[:, :1], past_restored[:, :1])
        features = torch.cat([fresh, kept], 1)
    else:
        features = net.past_features(past_corrupted, past_restored)
    _denoised, restored = net(cur, past_corrupted, past_restored, past_features=features)
    new_restored = torch.cat([restored[:, None], past_restored[:, :-1]], 1).detach()
    return restored, R2D4State(new_restored, features[:, :-1].detach() if reuse else None, key)


# made for every frame (joint denoising): `vdeblur run` restores every frame by default
register_net("r2d4", build=R2D4, variants=R2D4_VARIANTS, default="small", step=r2d4_step, past=2,
             recurrent=True, every_frame=True,
             doc="R2-D4 joint video denoising and deblurring, recurrent (Katsaros et al., Concurrent Video Denoising and Deblurring, IV)")
