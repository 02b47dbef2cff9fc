"""The engine's contracts: frame accounting, windows, recurrent state, batching, precision."""

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import torch

from vdeblur.engine.pipeline import Engine, reflect
from vdeblur.engine.restorer import Restorer
from vdeblur.io.reader import CopyPacket, Frame
from vdeblur.methods.base import Method
from vdeblur.methods.registry import create, list_methods


@dataclass
class D:
    index: int
    score: float | None
    blurred: bool


class FixedSelector:
    """Labels from a list, decided with a look-ahead, like the real selector."""

    def __init__(self, labels, lookahead=0):
        self.labels, self.lookahead, self.seen = labels, lookahead, []

    def needs_score(self, i):
        return True

    def push(self, i, gray):
        self.seen.append(i)
        ready = [j for j in self.seen if j + self.lookahead <= i]
        self.seen = [j for j in self.seen if j + self.lookahead > i]
        return [D(j, float(j), self.labels[j]) for j in ready]

    def flush(self):
        out = [D(j, float(j), self.labels[j]) for j in self.seen]
        self.seen = []
        return out


def frames(n, h=12, w=16, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def items(arrays, packets_every=0):
    out = []
    for i, a in enumerate(arrays):
        out.append(Frame(i, i * 40, Fraction(1, 1000), array=a))
        if packets_every and i % packets_every == 0:
            out.append(CopyPacket(f"pkt{i}", 1))
    return out


def run(method, arrays, labels=None, batch=1, lookahead=0, packets_every=0, precision="fp32"):
    sel = FixedSelector(labels or [True] * len(arrays), lookahead)
    written, packets = [], []
    eng = Engine(Restorer(method, torch.device("cpu"), precision), sel, batch_size=batch)
    s = eng.run(iter(items(arrays, packets_every)), lambda f, o: written.append((f, o)), packets.append)
    return s, written, packets


class TemporalMean(Method):
    past, future = 2, 1

    def restore(self, window, state=None):
        return window.mean(dim=1), None


class Counter(Method):
    """Recurrent: outputs how many frames it has restored since its state was last reset."""

    recurrent = True

    def restore(self, window, state=None):
        n = 1 if state is None else state + 1
        return torch.full_like(window[:, 0], n / 255), n


class Pad8(Method):
    pad_multiple = 8

    def restore(self, window, state=None):
        x = window[:, 0]
        assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0
        return x, None


def test_reflect():
    assert [reflect(i, 4) for i in range(-3, 8)] == [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]
    assert reflect(-2, 0) == 0 and reflect(3, 1) == 1


@pytest.mark.parametrize("spec", list_methods(), ids=lambda s: s.name)
@pytest.mark.parametrize("labels", ["all", "some", "none"])
def test_frame_accounting_every_method(spec, labels, tmp_path):
    """Frames out == frames in, in order, with their timestamps, for every registered method."""
    cfg = {"psf": "motion:5:0"} if "psf" in spec.accepts() else {}
    if spec.kind == "neural":
        from nets import random_weights

        cfg = {"variant": "small", "weights": random_weights(spec.name, tmp_path)[1]}
    method = create(spec.name, **cfg)
    arrays = frames(9, 20, 24)
    lab = {"all": [True] * 9, "some": [i % 3 == 0 for i in range(9)], "none": [False] * 9}[labels]
    s, written, packets = run(method, arrays, lab, batch=2, lookahead=2, packets_every=2)
    assert [f.index for f, _ in written] == list(range(9))
    assert [f.pts for f, _ in written] == [i * 40 for i in range(9)]
    assert packets == [CopyPacket(f"pkt{i}", 1) for i in range(0, 9, 2)]
    assert s.frames == 9
    assert s.restored == (0 if method.is_identity else sum(lab))
    for (f, out), blurred in zip(written, lab):
        if not blurred or method.is_identity:
            assert out is None  # passed through untouched
        else:
            assert out.shape == arrays[f.index].shape and out.dtype == np.uint8


def test_streaming_equals_batch_for_temporal_windows():
    arrays = frames(10)
    _, written, _ = run(TemporalMean(), arrays, lookahead=3)
    x = torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() / 255 for a in arrays])
    for f, out in written:
        idx = [reflect(f.index + k, 9) for k in range(-2, 2)]
        want = (x[idx].mean(0).clamp(0, 1) * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)
        assert np.array_equal(out, want), f.index


@pytest.mark.parametrize("batch", [1, 3, 4])
def test_batching_does_not_change_results(batch):
    arrays = frames(11)
    labels = [i % 4 != 1 for i in range(11)]
    _, a, _ = run(create("unsharp"), arrays, labels, batch=1)
    _, b, _ = run(create("unsharp"), arrays, labels, batch=batch)
    for (fa, oa), (fb, ob) in zip(a, b):
        assert fa.index == fb.index
        assert (oa is None and ob is None) or np.array_equal(oa, ob)


def test_recurrent_state_resets_when_frames_are_skipped():
    labels = [True, True, True, False, True, True, False, False, True]
    _, written, _ = run(Counter(), frames(9), labels, batch=4)
    counts = [None if o is None else int(o[0, 0, 0]) for _, o in written]
    assert counts == [1, 2, 3, None, 1, 2, None, None, 1]


def test_padding_is_done_by_the_engine_and_cropped():
    arrays = frames(3, 13, 21)
    _, written, _ = run(Pad8(), arrays)
    for f, out in written:
        assert out.shape == (13, 21, 3)
        assert np.array_equal(out, arrays[f.index])


def test_bf16_runs_and_matches_fp32_closely():
    arrays = frames(3, 32, 32)
    _, a, _ = run(create("unsharp"), arrays)
    _, b, _ = run(create("unsharp"), arrays, precision="bf16")
    for (_, oa), (_, ob) in zip(a, b):
        assert np.abs(oa.astype(int) - ob).max() <= 3


class Nan(Method):
    def restore(self, window, state=None):
        x = window[:, 0] * 1.0
        if torch.is_autocast_enabled("cpu"):
            x = x * float("nan")
        return x, None


def test_nan_under_autocast_falls_back_to_fp32():
    warnings = []
    r = Restorer(Nan(), torch.device("cpu"), "bf16", warn=warnings.append)
    arr = frames(1)[0]
    out, _ = r.restore([[arr]])
    assert np.array_equal(out[0], arr)
    assert warnings and "fp32" in warnings[0]


def test_memory_is_bounded():
    """The engine never holds more than look-ahead + window + batch frames, however long the video."""
    held = []

    class Spy(Method):
        def restore(self, window, state=None):
            return window[:, 0], None

    n = 200
    sel = FixedSelector([i % 5 == 0 for i in range(n)], lookahead=4)
    alive = {"n": 0, "max": 0}

    def gen():
        for it in items(frames(n, 4, 4)):
            alive["n"] += 1
            alive["max"] = max(alive["max"], alive["n"])
            yield it

    def write(f, o):
        alive["n"] -= 1

    eng = Engine(Restorer(Spy(), torch.device("cpu")), sel, batch_size=4, queue_size=4)
    s = eng.run(gen(), write, held.append)
    assert s.frames == n
    # queues of 4 on each side + look-ahead 4 + batch 4 + a little slack
    assert alive["max"] < 30, alive["max"]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_videos_shorter_than_the_window(n):
    arrays = frames(n)
    s, written, _ = run(TemporalMean(), arrays, lookahead=1)
    assert [f.index for f, _ in written] == list(range(n))
    if n == 1:
        assert np.array_equal(written[0][1], arrays[0])


class SmallConvNet(Method):
    """Fully convolutional (receptive field 7x7): tiles with enough overlap change nothing."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(8, 3, 3, padding=1))

    def restore(self, window, state=None):
        x = window[:, self.past]
        return x + 0.1 * self.net(x), None


def test_tiled_equals_untiled_through_the_restorer():
    arr = frames(1, 67, 93)[0]
    whole = Restorer(SmallConvNet(), torch.device("cpu"))
    tiled = Restorer(SmallConvNet(), torch.device("cpu"), tile=32, tile_overlap=16)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None, None].float() / 255
    with torch.no_grad():
        a = whole.method(x)[0]
    from vdeblur.engine.tiling import tiled_call

    with torch.no_grad():
        b = tiled_call(lambda c: tiled.method(c)[0], x, 32, 16)
    assert (a - b).abs().max() < 1e-3
    # and through restore(): identical 8-bit frames, or off by one level where rounding flips
    oa, ob = whole.restore([[arr]])[0][0], tiled.restore([[arr]])[0][0]
    assert np.abs(oa.astype(int) - ob).max() <= 1


def test_recurrent_methods_refuse_tiles():
    from vdeblur.errors import UsageError

    with pytest.raises(UsageError, match="recurrent"):
        Restorer(Counter(), torch.device("cpu"), tile=64)


def test_tile_option_on_the_cli(cli, clip, tmp_path):
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "--method", "unsharp", "--select", "none",
            "--tile", "32", "--tile-overlap", "16")
    assert r.exit_code == 0, r.output


def test_self_ensemble():
    from vdeblur.engine.restorer import self_ensemble

    x = torch.rand(2, 1, 3, 10, 14)
    assert torch.allclose(self_ensemble(lambda t: t[:, 0] * 2, x), x[:, 0] * 2)  # equivariant: unchanged
    # a direction-dependent op (shift right) is averaged over all directions
    shifted = self_ensemble(lambda t: torch.roll(t[:, 0], 1, dims=-1), x)
    want = sum(torch.roll(x[:, 0], s, dims=d) for d in (-1, -2) for s in (1, -1)) * 2 / 8
    assert torch.allclose(shifted, want, atol=1e-6)


def test_ensemble_option_on_the_cli(cli, clip, tmp_path):
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "--method", "unsharp", "--select", "none", "--ensemble")
    assert r.exit_code == 0, r.output
