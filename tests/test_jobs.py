"""vdeblur.jobs: a run is a plan of spans wired once; the method is built once per process; results
go to one sink, in order."""

import pytest

from media import GOP10, read_video, write_video
from vdeblur.errors import OutputError, UsageError
from vdeblur.jobs import JobOptions, RunOptions, Sink, run_file, run_jobs
from vdeblur.jobs import build as build_mod


class Recorder(Sink):
    def __init__(self):
        self.events = []

    def warn(self, message):
        self.events.append(("warn", message))

    def file_started(self, inp, frames):
        self.events.append(("start", inp, frames))

    def frame(self, inp, r):
        self.events.append(("frame", inp, r.frame))

    def file_done(self, res):
        self.events.append(("done", res.input, res.ok, res.segments))


@pytest.fixture
def count_builds(monkeypatch):
    """How many times a method is made (its net built, its weights read and checked)."""
    import vdeblur.methods.registry as registry

    made = []
    real = registry.create

    def counting(name, **cfg):
        made.append(name)
        return real(name, **cfg)

    monkeypatch.setattr(registry, "create", counting)
    build_mod._CACHE.clear()
    yield made
    build_mod._CACHE.clear()


@pytest.mark.parametrize("segment", [0.0, 0.4])
def test_method_built_once_for_every_span_and_file(tmp_path, count_builds, segment):
    """Two files, one span each or six segments each: the method is built once in the process."""
    pairs = []
    for k in range(2):
        src = tmp_path / f"in{k}.mp4"
        write_video(src, 60, (64, 48), options=GOP10)
        pairs.append((str(src), str(tmp_path / f"out{k}.mkv")))
    sink = Recorder()
    opts = RunOptions(method="unsharp", select="none", codec="ffv1", crf=None, device="cpu")
    results = run_jobs(pairs, opts, JobOptions(segment=segment), sink)
    assert [r.ok for r in results] == [True, True]
    assert [r.segments for r in results] == ([1, 1] if segment == 0 else [6, 6])
    assert count_builds == ["unsharp"]
    for inp, out in pairs:
        assert len(read_video(out)["frames"]) == 60
        frames = [e[2] for e in sink.events if e[0] == "frame" and e[1] == inp]
        assert frames == list(range(60))  # every frame once, in order, numbered in the whole video
    kinds = [e[0] for e in sink.events if e[0] != "frame"]
    assert kinds == ["start", "done", "start", "done"]


def test_segmented_and_one_span_give_the_same_frames(tmp_path):
    """The same wiring for both plans: a deterministic method, lossless output, equal frames."""
    src = tmp_path / "in.mp4"
    write_video(src, 60, (64, 48), options=GOP10)
    opts = RunOptions(method="unsharp", select="laplacian", codec="ffv1", crf=None, device="cpu")
    one, seg = tmp_path / "one.mkv", tmp_path / "seg.mkv"
    a = run_file(str(src), str(one), opts)
    b = run_file(str(src), str(seg), opts, segment=0.4)
    assert a.frames == b.frames == 60 and a.restored == b.restored
    fa, fb = read_video(one)["frames"], read_video(seg)["frames"]
    assert all((x == y).all() for x, y in zip(fa, fb, strict=True))


def test_checks_before_anything_is_written(tmp_path, count_builds):
    """Option errors come from the registered spec, before a net is built or a file is opened."""
    src = tmp_path / "in.mp4"
    write_video(src, 10, (64, 48))
    with pytest.raises(UsageError, match="does not take --bogus"):
        run_file(str(src), str(tmp_path / "o.mp4"), RunOptions(method="atrous", method_cfg={"bogus": 1}))
    assert count_builds == []
    (tmp_path / "o.mp4").write_bytes(b"keep me")
    with pytest.raises(OutputError, match="output exists"):
        run_file(str(src), str(tmp_path / "o.mp4"), RunOptions(method="unsharp", device="cpu"))
    assert (tmp_path / "o.mp4").read_bytes() == b"keep me"
