"""Dataset readers (vdeblur.data.datasets): tiny fake trees of each layout, read back and checked."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from vdeblur.data.datasets import KINDS, Sequence, open_dataset, read_rgb
from vdeblur.errors import InputError, UsageError

H, W = 6, 8
SEQS = ("seq_a", "seq_b")
NFR = 3


def _rgb(seq: int, frame: int, role: int) -> np.ndarray:
    """A constant image whose R,G,B encode (sequence, frame, role): distinct channels test RGB order."""
    img = np.zeros((H, W, 3), np.uint8)
    img[...] = (10 + 40 * seq + frame, 100 + role * 20 + frame, 250 - seq)
    return img


def _write(path, rgb: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _fill(dirs_for_seq, ext: str = ".png", names=None) -> None:
    """``dirs_for_seq(seq_name) -> [dir per role]``; role 0 input, 1 target, 2 noisy."""
    for s, name in enumerate(SEQS):
        for role, d in enumerate(dirs_for_seq(name)):
            for i in range(NFR):
                fname = (names[i] if names else f"{i:06d}") + ext
                _write(os.path.join(d, fname), _rgb(s, i, role))


def make_gopro(root, split="test", gamma=True):
    def dirs(n):
        out = [root / split / n / "blur", root / split / n / "sharp"]
        return out
    _fill(dirs)
    if gamma:  # blur_gamma: same names, role 2 values
        for s, n in enumerate(SEQS):
            for i in range(NFR):
                _write(root / split / n / "blur_gamma" / f"{i:06d}.png", _rgb(s, i, 2))
    return root


def make_bsd(root, split="test", exposure="2ms16ms"):
    _fill(lambda n: [root / f"BSD_{exposure}" / split / n / "Blur" / "RGB",
                     root / f"BSD_{exposure}" / split / n / "Sharp" / "RGB"])
    return root


def make_reds(root, split="val"):
    _fill(lambda n: [root / split / f"{split}_blur" / n, root / split / f"{split}_sharp" / n],
          names=[f"{i:08d}" for i in range(NFR)])
    return root


def make_dvd(root):
    _fill(lambda n: [root / "quantitative_datasets" / n / "input",
                     root / "quantitative_datasets" / n / "GT"], ext=".jpg")
    return root


def make_synth(root, split="test", noisy=True):
    _fill(lambda n: [root / split / n / "blur", root / split / n / "sharp"]
          + ([root / split / n / "noisy"] if noisy else []))
    return root


def _check(ds, exact=True, seq_names=None, roles=(0, 1)):
    seqs = ds.sequences()
    assert len(seqs) == 2 and len(ds) == 2 * NFR
    if seq_names:
        assert [s.name for s in seqs] == seq_names
    for s, seq in enumerate(seqs):
        assert isinstance(seq, Sequence) and len(seq) == NFR
        # paired by name: the same file name (or stem) on both sides
        for paths in seq.frame_paths:
            stems = {os.path.splitext(os.path.basename(p))[0] for p in paths}
            assert len(stems) == 1
        pairs = list(seq.frames())
        assert len(pairs) == NFR
        for i, (inp, tgt) in enumerate(pairs):
            for img, role in ((inp, roles[0]), (tgt, roles[1])):
                assert img.dtype == np.uint8 and img.shape == (H, W, 3)
                want = _rgb(s, i, role)[0, 0].astype(int)
                got = img.mean(axis=(0, 1))
                tol = 0.01 if exact else 3  # jpeg: near, not equal
                assert np.all(np.abs(got - want) <= tol), (seq.name, i, role, got, want)


# ----------------------------------------------------------------------------------- good trees


def test_gopro(tmp_path):
    make_gopro(tmp_path)
    ds = open_dataset("gopro", tmp_path)
    assert ds.kind == "GoPro" and ds.split == "test"
    _check(ds, seq_names=["test/seq_a", "test/seq_b"])
    seq = ds.sequences()[0]
    assert [os.path.basename(p[0]) for p in seq.frame_paths] == ["000000.png", "000001.png",
                                                                 "000002.png"]
    assert all("/blur/" in p[0].replace(os.sep, "/") and "/sharp/" in p[1].replace(os.sep, "/")
               for p in seq.frame_paths)
    _check(open_dataset("GoPro", tmp_path, gamma=True), roles=(2, 1))


def test_bsd(tmp_path):
    make_bsd(tmp_path, split="valid", exposure="1ms8ms")
    _check(open_dataset("bsd", tmp_path, split="valid", exposure="1ms8ms"),
           seq_names=["valid/seq_a", "valid/seq_b"])
    ds = open_dataset("bsd", tmp_path, split="val", exposure="BSD_1ms8ms")  # aliases
    assert ds.split == "valid" and len(ds) == 2 * NFR
    with pytest.raises(InputError, match=r"no BSD_2ms16ms/ folder \(found: BSD_1ms8ms\)"):
        open_dataset("bsd", tmp_path, split="valid")  # default exposure is 2ms16ms
    with pytest.raises(UsageError, match="exposure"):
        open_dataset("bsd", tmp_path, exposure="5ms")


def test_reds(tmp_path):
    make_reds(tmp_path)
    ds = open_dataset("reds", tmp_path, split="val")
    _check(ds, seq_names=["val/seq_a", "val/seq_b"])
    assert open_dataset("reds", tmp_path).split == "val"  # default "test" reads val
    assert os.path.basename(ds.sequences()[0].frame_paths[0][0]) == "00000000.png"


def test_dvd(tmp_path):
    make_dvd(tmp_path)
    ds = open_dataset("dvd", tmp_path, split=None)
    assert ds.split is None
    _check(ds, exact=False, seq_names=["seq_a", "seq_b"])
    assert len(open_dataset("dvd", tmp_path)) == 2 * NFR  # default "test" accepted
    with pytest.raises(UsageError, match="DVD has no split 'train'"):
        open_dataset("dvd", tmp_path, split="train")


def test_synth_with_noisy(tmp_path):
    make_synth(tmp_path)
    ds = open_dataset("synth", tmp_path)
    _check(ds)
    seq = ds.sequences()[1]
    assert seq.has_noisy and all(len(p) == 3 for p in seq.frame_paths)
    _inp, _tgt, noisy = next(seq.frames(include_noisy=True))
    assert tuple(noisy[0, 0]) == tuple(_rgb(1, 0, 2)[0, 0])
    make_synth(tmp_path, split="train", noisy=False)
    assert not open_dataset("synth", tmp_path, "train").sequences()[0].has_noisy


def test_hidden_files_other_exts_and_sorting(tmp_path):
    make_synth(tmp_path, noisy=False)
    seq_dir = tmp_path / "test" / "seq_a"
    (seq_dir / "blur" / ".DS_Store").write_bytes(b"junk")
    (seq_dir / "sharp" / "._000000.png").write_bytes(b"junk")
    (seq_dir / "sharp" / "notes.txt").write_text("x")
    (tmp_path / "test" / ".hidden_seq").mkdir()
    (tmp_path / "test" / "README").write_text("not a sequence")
    _write(seq_dir / "blur" / "000003.jpeg", _rgb(0, 3, 0))
    _write(seq_dir / "sharp" / "000003.jpeg", _rgb(0, 3, 1))
    ds = open_dataset("synth", tmp_path)
    assert [s.name for s in ds.sequences()] == ["test/seq_a", "test/seq_b"]
    assert [os.path.basename(p[1]) for p in ds.sequences()[0].frame_paths][-1] == "000003.jpeg"
    assert len(ds) == 2 * NFR + 1


def test_limit(tmp_path):
    make_gopro(tmp_path, gamma=False)
    ds = open_dataset("gopro", tmp_path, limit=4)
    assert len(ds) == 4 and [len(s) for s in ds.sequences()] == [3, 1]
    assert len(open_dataset("gopro", tmp_path, limit=2).sequences()) == 1
    with pytest.raises(UsageError, match="limit"):
        open_dataset("gopro", tmp_path, limit=0)


def test_usage_errors(tmp_path):
    make_gopro(tmp_path, gamma=False)
    with pytest.raises(UsageError) as e:
        open_dataset("vimeo", tmp_path)
    for k in KINDS:
        assert k in str(e.value)
    with pytest.raises(UsageError, match="no split 'valid'"):
        open_dataset("gopro", tmp_path, split="valid")
    with pytest.raises(UsageError, match="no option exposure"):
        open_dataset("gopro", tmp_path, exposure="1ms8ms")


# ------------------------------------------------------------------------------ malformed trees


def test_missing_root_and_empty_root(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_dataset("gopro", tmp_path / "nope")
    with pytest.raises(InputError, match=r"GoPro root .*: no test/ folder"):
        open_dataset("gopro", tmp_path)
    (tmp_path / "test").mkdir()
    with pytest.raises(InputError, match=r"no sequences under .*test"):
        open_dataset("gopro", tmp_path)
    with pytest.raises(InputError, match="no quantitative_datasets/ folder"):
        open_dataset("dvd", tmp_path)
    with pytest.raises(InputError, match="no val/ folder"):
        open_dataset("reds", tmp_path)


def test_missing_sharp_folder(tmp_path):
    make_gopro(tmp_path, gamma=False)
    for f in (tmp_path / "test" / "seq_b" / "sharp").iterdir():
        f.unlink()
    (tmp_path / "test" / "seq_b" / "sharp").rmdir()
    with pytest.raises(InputError, match=r"GoPro sequence test/seq_b: no sharp/ folder"):
        open_dataset("gopro", tmp_path)
    with pytest.raises(InputError, match=r"test/seq_a: no blur_gamma/ folder"):
        open_dataset("gopro", tmp_path, gamma=True)


def test_missing_bsd_sharp_and_reds_sequence(tmp_path):
    make_bsd(tmp_path)
    sharp = tmp_path / "BSD_2ms16ms" / "test" / "seq_a" / "Sharp" / "RGB"
    for f in sharp.iterdir():
        f.unlink()
    sharp.rmdir()
    with pytest.raises(InputError, match=r"BSD sequence BSD_2ms16ms/test/seq_a: no Sharp/RGB/ folder"):
        open_dataset("bsd", tmp_path)
    with pytest.raises(InputError, match=r"no BSD_2ms16ms/train/ folder"):
        open_dataset("bsd", tmp_path, split="train")

    reds = make_reds(tmp_path / "reds")
    seq = reds / "val" / "val_sharp" / "seq_b"
    for f in seq.iterdir():
        f.unlink()
    seq.rmdir()
    with pytest.raises(InputError, match=r"missing from val_sharp/: seq_b"):
        open_dataset("reds", reds)


def test_unequal_counts_names_missing_file(tmp_path):
    make_gopro(tmp_path, gamma=False)
    os.remove(tmp_path / "test" / "seq_a" / "sharp" / "000001.png")
    with pytest.raises(InputError) as e:
        open_dataset("gopro", tmp_path)
    msg = str(e.value)
    assert "sequence test/seq_a" in msg
    assert "blur/ has 3 frames, sharp/ has 2" in msg
    assert "missing from sharp/: 000001.png" in msg


def test_unequal_noisy_and_empty_folder(tmp_path):
    make_synth(tmp_path)
    os.remove(tmp_path / "test" / "seq_b" / "noisy" / "000002.png")
    with pytest.raises(InputError, match=r"noisy/ has 2 .*missing from noisy/: 000002.png"):
        open_dataset("synth", tmp_path)
    make_dvd(tmp_path / "dvd")
    gt = tmp_path / "dvd" / "quantitative_datasets" / "seq_a" / "GT"
    for f in gt.iterdir():
        f.unlink()
    with pytest.raises(InputError, match=r"seq_a: GT/ has no images"):
        open_dataset("dvd", tmp_path / "dvd")


def test_unreadable_image(tmp_path):
    make_gopro(tmp_path, gamma=False)
    bad = tmp_path / "test" / "seq_b" / "sharp" / "000001.png"
    bad.write_bytes(b"this is not a png")
    ds = open_dataset("gopro", tmp_path)  # listing does not decode
    list(ds.sequences()[0].frames())
    it = ds.sequences()[1].frames()
    next(it)
    with pytest.raises(InputError, match=r"cannot read image .*000001\.png"):
        next(it)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.png"):
        read_rgb(str(empty))


def test_size_mismatch(tmp_path):
    make_gopro(tmp_path, gamma=False)
    p = tmp_path / "test" / "seq_a" / "sharp" / "000000.png"
    _write(p, np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(InputError, match=r"8x8 but .* is 8x6"):
        next(open_dataset("gopro", tmp_path).sequences()[0].frames())
