"""`vdeblur run` over several inputs and directories; --keep-going; per-file results; --report."""

import json
import os

import pytest

from media import read_video, write_video


@pytest.fixture
def three(tmp_path):
    d = tmp_path / "clips"
    (d / "sub").mkdir(parents=True)
    write_video(d / "a.mp4", 6, (64, 48), audio=True)
    write_video(d / "sub" / "b.mkv", 5, (64, 48))
    write_video(d / "c.mov", 4, (64, 48))
    (d / "notes.txt").write_text("not a video")
    (d / ".hidden.mp4").write_text("skipped: hidden")
    return d


def test_directory_in_directory_out_names_kept(three, cli, tmp_path):
    out = tmp_path / "out"
    r = cli("run", three, "-o", out, "-m", "identity", "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [os.path.relpath(x["output"], out) for x in rows] == ["a.mp4", "c.mov", os.path.join("sub", "b.mkv")]
    assert all(x["ok"] and x["exit_code"] == 0 and x["error"] is None for x in rows)
    assert [x["frames"] for x in rows] == [6, 4, 5]
    assert len(read_video(out / "sub" / "b.mkv")["frames"]) == 5
    assert read_video(out / "a.mp4")["audio_packets"] > 0


def test_several_files_and_table(three, cli, tmp_path):
    out = tmp_path / "o"
    r = cli("run", three / "a.mp4", three / "c.mov", "-o", out, "-m", "unsharp")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(out)) == ["a.mp4", "c.mov"]
    assert "2 of 2 files restored" in r.stdout


def test_keep_going_reports_each_file_and_exits_7(three, cli, tmp_path):
    bad = three / "bad.mp4"
    bad.write_text("this is not a video")
    out = tmp_path / "out"
    r = cli("run", three, "-o", out, "-m", "identity", "--keep-going", "--json")
    assert r.exit_code == 7, r.output
    rows = {os.path.basename(x["input"]): x for x in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == {"a.mp4", "bad.mp4", "b.mkv", "c.mov"}
    assert rows["bad.mp4"]["ok"] is False and rows["bad.mp4"]["exit_code"] == 3
    assert "bad.mp4" in rows["bad.mp4"]["error"]
    assert all(rows[k]["ok"] for k in ("a.mp4", "b.mkv", "c.mov"))
    assert (out / "c.mov").exists() and not (out / "bad.mp4").exists()
    assert "1 of 4 files failed" in r.stderr


def test_without_keep_going_stops_at_first_failure(three, cli, tmp_path):
    bad = three / "b0.mp4"  # sorted after a.mp4, before c.mov
    bad.write_text("this is not a video")
    out = tmp_path / "out"
    r = cli("run", three, "-o", out, "-m", "identity")
    assert r.exit_code == 3, r.output
    assert (out / "a.mp4").exists() and not (out / "c.mov").exists()


@pytest.mark.parametrize("case", ["collision", "output-is-file", "empty-dir", "reference"])
def test_batch_usage_errors(case, three, cli, tmp_path):
    out = tmp_path / "out"
    if case == "collision":
        other = tmp_path / "x"
        other.mkdir()
        write_video(other / "a.mp4", 3, (64, 48))
        args, code = [three / "a.mp4", other / "a.mp4", "-o", out], 2
    elif case == "output-is-file":
        out.write_text("a file")
        args, code = [three / "a.mp4", three / "c.mov", "-o", out], 2
    elif case == "empty-dir":
        (tmp_path / "empty").mkdir()
        args, code = [tmp_path / "empty", "-o", out], 3
    else:
        args, code = [three, "-o", out, "--reference", three / "a.mp4"], 2
    r = cli("run", *args, "-m", "identity")
    assert r.exit_code == code, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_bad_option_writes_nothing(three, cli, tmp_path):
    out = tmp_path / "out"
    r = cli("run", three, "-o", out, "-m", "no-such-method")
    assert r.exit_code == 2 and not out.exists()


def test_run_and_classify_report(clip, cli, tmp_path):
    import matplotlib.image

    png = tmp_path / "run.png"
    r = cli("run", clip, "-o", tmp_path / "o.mp4", "-m", "unsharp", "--reference", clip, "--report", png)
    assert r.exit_code == 0, r.output
    assert matplotlib.image.imread(str(png)).ndim == 3
    png2 = tmp_path / "classify.png"
    r = cli("classify", clip, "--report", png2, "--json")
    assert r.exit_code == 0, r.output
    assert png2.read_bytes()[:4] == b"\x89PNG"
    r = cli("classify", clip, "--report", tmp_path / "x.nope")
    assert r.exit_code == 2


def test_batch_report_directory(three, cli, tmp_path):
    rep = tmp_path / "reports"
    r = cli("run", three, "-o", tmp_path / "out", "-m", "identity", "--report", rep)
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(rep)) == ["a.mp4.png", "c.mov.png", "sub_b.mkv.png"]


def test_resume_of_a_batch_skips_finished_files(three, cli, tmp_path):
    """A batch stopped part-way: --resume skips the outputs that are complete (no parts pending)
    and does the rest; without --resume a finished output is an error (exit 4), as always."""
    out = tmp_path / "out"
    out.mkdir()
    r = cli("run", three / "a.mp4", "-o", out / "a.mp4", "-m", "identity")
    assert r.exit_code == 0, r.output
    before = (out / "a.mp4").stat().st_mtime_ns
    r = cli("run", three, "-o", out, "-m", "identity", "--json")
    assert r.exit_code == 4
    r = cli("run", three, "-o", out, "-m", "identity", "--resume", "--json")
    assert r.exit_code == 0, r.output
    rows = {os.path.basename(x["input"]): x for x in map(json.loads, r.stdout.splitlines())}
    assert rows["a.mp4"]["skipped"] and not rows["c.mov"]["skipped"] and rows["c.mov"]["frames"] == 4
    assert (out / "a.mp4").stat().st_mtime_ns == before and (out / "sub" / "b.mkv").exists()
    r = cli("run", three / "c.mov", "-o", out / "c.mov", "-m", "identity", "--resume", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"summary": None, "skipped": True}


def test_damaged_file_in_a_batch_reports_what_it_wrote(three, cli, tmp_path):
    full = tmp_path / "full.mkv"
    write_video(full, 40, (64, 48))
    data = full.read_bytes()
    (three / "cut.mkv").write_bytes(data[: int(len(data) * 0.6)])
    r = cli("run", three, "-o", tmp_path / "out", "-m", "identity", "--keep-going", "--json")
    assert r.exit_code == 7, r.output
    row = next(x for x in map(json.loads, r.stdout.splitlines()) if x["input"].endswith("cut.mkv"))
    assert row["ok"] is False and row["exit_code"] == 6 and "lost" in row["error"]
    assert 0 < row["frames"] < 40 and (tmp_path / "out" / "cut.mkv").exists()


def _frames_of(path):
    return [f.tobytes() for f in read_video(path)["frames"]]


def test_output_directory_inside_the_input_is_not_walked(cli, tmp_path):
    """`run bd -o bd/sub --force` with bd/sub/a.mp4 there: bd/sub is the output directory, so its
    files are not inputs (they were restored into bd/sub/sub/ and bd/sub/a.mp4 was overwritten
    while it was itself an input)."""
    bd = tmp_path / "bd"
    (bd / "sub").mkdir(parents=True)
    write_video(bd / "a.mp4", 5, (64, 48))
    write_video(bd / "sub" / "a.mp4", 3, (64, 48))
    r = cli("run", bd, "-o", bd / "sub", "-m", "identity", "--force", "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [os.path.relpath(x["input"], bd) for x in rows] == ["a.mp4"]
    assert not (bd / "sub" / "sub").exists()
    assert len(read_video(bd / "sub" / "a.mp4")["frames"]) == 5
    assert "output directory" in r.stderr


@pytest.mark.parametrize("flag", ["--resume", "--keep-going"])
def test_rerun_into_a_subdirectory_does_not_restore_the_outputs(cli, tmp_path, flag):
    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "a.mp4", 4, (64, 48))
    out = clips / "restored"
    r = cli("run", clips, "-o", out, "-m", "identity")
    assert r.exit_code == 0, r.output
    r = cli("run", clips, "-o", out, "-m", "identity", flag, "--json")
    assert not (out / "restored").exists()
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [os.path.basename(x["input"]) for x in rows] == ["a.mp4"]
    if flag == "--resume":
        assert r.exit_code == 0 and rows[0]["skipped"]
    else:  # the output exists without --force: that file fails, nothing else is touched
        assert r.exit_code == 7 and rows[0]["exit_code"] == 4


def test_an_output_that_is_an_input_through_a_symlink_is_refused(cli, tmp_path):
    """No output may be an input of the same run, symlinks resolved: refused before anything
    is written."""
    d = tmp_path / "d"
    d.mkdir()
    write_video(d / "a.mp4", 4, (64, 48))
    write_video(d / "b.mp4", 3, (64, 48))
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(d / "b.mp4", out / "a.mp4")  # the output of a.mp4 is b.mp4, another input
    before = _frames_of(d / "b.mp4")
    r = cli("run", d / "a.mp4", d / "b.mp4", "-o", out, "-m", "identity", "--force")
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "b.mp4" in r.stderr
    assert _frames_of(d / "b.mp4") == before and not (out / "b.mp4").exists()
    # an output directory that is a link into the input directory is not walked either
    os.symlink(d, tmp_path / "link")
    r = cli("run", tmp_path / "link", "-o", d / "restored", "-m", "identity")
    assert r.exit_code == 0, r.output
    os.symlink(d / "restored", tmp_path / "restored-link")
    r = cli("run", d, "-o", tmp_path / "restored-link", "-m", "identity", "--force", "--json")
    assert r.exit_code == 0, r.output
    assert sorted(os.path.basename(json.loads(x)["input"]) for x in r.stdout.splitlines()) == ["a.mp4", "b.mp4"]
    assert not (d / "restored" / "restored").exists()
