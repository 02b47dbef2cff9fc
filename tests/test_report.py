"""vdeblur.report: per-frame report plots (panels, reduction of long videos, atomic writes, early checks)."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from vdeblur import report
from vdeblur.errors import OutputError, UsageError
from vdeblur.report import ReportCollector, check_report_path


def _run_rows(n=50, fps=25.0):
    rows = []
    for i in range(n):
        blurred = i % 7 in (3, 4)
        rows.append({
            "frame": i, "pts": i / fps, "blur_score": 100.0 + 10 * math.sin(i / 3) - (40 if blurred else 0),
            "blurred": blurred, "restored": blurred, "ms": 12.5 + i % 3 if blurred else 0.0,
            "psnr": math.inf if i == 5 else 30.0 + (i % 5), "psnr_input": 25.0 + (i % 4),
        })
    return rows


def _collector(rows):
    c = ReportCollector()
    for r in rows:
        c.add(r)
    return c


def _no_temp_left(folder, keep):
    return sorted(os.listdir(folder)) == sorted(keep)


def test_run_report_png(tmp_path):
    from matplotlib.image import imread

    c = _collector(_run_rows())
    assert len(c) == 50
    assert report._panels(c) == ["blur", "restored", "ms", "psnr"]
    fig = report._figure(c, title="in.mp4")
    assert len(fig.axes) == 4
    assert fig.axes[-1].get_xlabel() == "time (s)"  # every row has pts
    summary = fig._suptitle.get_text()
    assert summary.startswith("in.mp4\n50 frames, 14 blurred, 14 restored")
    assert "mean PSNR" in summary and "inf" not in summary.split("mean PSNR")[1].split(",")[0]
    # the inf PSNR is not drawn, and counted in the legend
    psnr_ax = fig.axes[3]
    ys = psnr_ax.lines[0].get_ydata()
    assert np.isnan(ys[5]) and np.isfinite(np.delete(ys, 5)).all()
    assert "1 identical" in psnr_ax.get_legend().get_texts()[0].get_text()

    out = tmp_path / "report.png"
    c.save(str(out), title="in.mp4")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG")
    img = imread(str(out))
    assert img.shape[0] > 400 and img.shape[1] > 800
    assert img.std() > 0.01  # not a blank image
    assert _no_temp_left(tmp_path, ["report.png"])


def test_save_replaces_existing_and_svg(tmp_path):
    c = _collector(_run_rows(20))
    out = tmp_path / "r.svg"
    out.write_text("old")
    c.save(str(out), title="t")
    assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()
    assert _no_temp_left(tmp_path, ["r.svg"])


def test_classify_rows(tmp_path):
    c = ReportCollector()
    for i in range(40):  # classify: no restored, ms, psnr; and no pts -> frame axis
        c.add({"frame": i, "pts": None, "blur_score": float(i % 10), "blurred": i % 10 < 3})
    assert report._panels(c) == ["blur", "blurred"]
    fig = report._figure(c, title="clip")
    assert len(fig.axes) == 2
    assert fig.axes[-1].get_xlabel() == "frame"
    assert "restored" not in fig._suptitle.get_text()
    assert "12 blurred" in fig._suptitle.get_text()
    blur_ax = fig.axes[0]
    assert [coll.get_label() for coll in blur_ax.collections] == ["blurred"]  # the shaded spans
    assert blur_ax.get_ylim()[0] > -1  # shading (axes-fraction y) leaves the score's limits alone
    c2 = ReportCollector()
    for i in range(40):
        c2.add({"frame": i, "blur_score": 50.0 + i % 10, "blurred": i % 10 < 3})
    assert report._figure(c2, title="t").axes[0].get_ylim()[0] > 45
    out = tmp_path / "c.png"
    c.save(str(out), title="clip")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_missing_keys_and_zero_ms():
    c = ReportCollector()
    c.add({})
    c.add({"frame": 7, "restored": False, "ms": 0.0, "psnr": None})
    assert len(c) == 2
    assert list(c.frame) == [0, 7]
    assert list(c.restored) == [-1, 0]
    # restored known on one row -> run strip; ms all zero -> no ms panel; no psnr panel
    assert report._panels(c) == ["blur", "restored"]
    fig = report._figure(c, title="x")
    assert len(fig.axes) == 2
    c.add({"frame": 8})  # a live figure must not pin the columns
    assert len(c) == 3


def test_zero_rows(tmp_path):
    c = ReportCollector()
    assert len(c) == 0 and report._panels(c) == []
    fig = report._figure(c, title="empty")
    assert fig.axes == [] and any(t.get_text() == "no frames" for t in fig.texts)
    out = tmp_path / "empty.png"
    c.save(str(out), title="empty")
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_many_rows_are_reduced(tmp_path):
    n = 100_000
    c = ReportCollector()
    rng = np.random.default_rng(0)
    scores = rng.normal(100, 10, n)
    for i in range(n):
        b = scores[i] < 85
        c.add({"frame": i, "pts": i / 60, "blur_score": scores[i], "blurred": b, "restored": b,
               "ms": 20.0 if b else 0.0, "psnr": 31.0 if i else math.inf, "psnr_input": 28.0})
    assert len(c) == n
    fig = report._figure(c, title="long")
    assert len(fig.axes) == 4
    for ax in fig.axes:  # each panel drawn from at most REDUCE_BINS points, not n
        for line in ax.lines:
            assert len(line.get_xdata()) <= report.REDUCE_BINS
    assert f"{n} frames in" in fig._suptitle.get_text()
    # restored strip is a share per bin, between 0 and 1 and not only 0/1
    strip = np.asarray(fig.axes[1].patches[0].get_data().values)
    assert len(strip) <= report.REDUCE_BINS
    assert ((strip > 0) & (strip < 1)).any() and strip.min() >= 0 and strip.max() <= 1
    out = tmp_path / "long.png"
    c.save(str(out), title="long")
    assert out.read_bytes().startswith(b"\x89PNG")
    assert _no_temp_left(tmp_path, ["long.png"])


def test_binned_mean_and_envelope_ignore_nan():
    b = report._Binned(10, 2)
    v = np.array([1, 2, 3, np.nan, np.inf, np.nan, np.nan, np.nan, np.nan, np.nan], dtype=float)
    assert list(b.starts) == [0, 5]
    mean = b.mean(v)
    assert mean[0] == pytest.approx(2.0) and np.isnan(mean[1])
    lo, hi = b.envelope(v)
    assert (lo[0], hi[0]) == (1.0, 3.0) and np.isnan(lo[1]) and np.isnan(hi[1])


# ---------------------------------------------------------------- check_report_path


def test_check_report_path_ok(tmp_path):
    for name in ("r.png", "r.SVG", "r.pdf"):
        check_report_path(str(tmp_path / name))


@pytest.mark.parametrize("name", ["r.xyz", "report"])
def test_check_report_path_bad_extension(tmp_path, name):
    with pytest.raises(UsageError, match="not an image type"):
        check_report_path(str(tmp_path / name))


def test_check_report_path_missing_folder(tmp_path):
    with pytest.raises(OutputError, match="no folder"):
        check_report_path(str(tmp_path / "nope" / "r.png"))


def test_check_report_path_is_folder(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_report_path(str(tmp_path / "d.png"))


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root writes anywhere")
def test_check_report_path_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_report_path(str(ro / "r.png"))
    finally:
        ro.chmod(0o700)


def test_check_report_path_not_writable(tmp_path, monkeypatch):
    monkeypatch.setattr(report.os, "access", lambda p, mode: False)
    with pytest.raises(OutputError, match="not writable"):
        check_report_path(str(tmp_path / "r.png"))


def test_check_report_path_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match=r"^--report needs matplotlib: pip install matplotlib$"):
        check_report_path(str(tmp_path / "r.png"))
    with pytest.raises(UsageError, match="needs matplotlib"):
        _collector(_run_rows(3)).save(str(tmp_path / "r.png"), title="t")
    assert not (tmp_path / "r.png").exists()


def test_import_does_not_import_matplotlib():
    code = "import sys, vdeblur.report; assert 'matplotlib' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- failed writes


def test_failed_savefig_leaves_nothing(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def boom(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", boom)
    out = tmp_path / "r.png"
    out.write_bytes(b"previous")
    with pytest.raises(OutputError, match=r"cannot write the report .*r\.png: No space left on device"):
        _collector(_run_rows(10)).save(str(out), title="t")
    assert _no_temp_left(tmp_path, ["r.png"])
    assert out.read_bytes() == b"previous"  # the old report is untouched


def test_failed_replace_leaves_nothing(tmp_path):
    target = tmp_path / "d.png"
    target.mkdir()  # os.replace of a file onto a folder fails
    with pytest.raises(OutputError, match="cannot write the report"):
        _collector(_run_rows(10)).save(str(target), title="t")
    assert _no_temp_left(tmp_path, ["d.png"]) and os.listdir(target) == []


def test_missing_folder_on_save(tmp_path):
    with pytest.raises(OutputError, match="cannot write the report"):
        _collector(_run_rows(5)).save(str(tmp_path / "nope" / "r.png"), title="t")
    assert os.listdir(tmp_path) == []
