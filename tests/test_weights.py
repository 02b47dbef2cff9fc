"""weights.toml parsing, sha256 checks, safetensors round trip, hub errors, `vdeblur weights`."""

import pytest
import torch
from torch import nn

from vdeblur.errors import WeightsError
from vdeblur.weights.spec import find_spec, load_specs
from vdeblur.weights.store import load_state_dict, load_weights, locate, save_state_dict, sha256_file

ENTRY = """
[[weights]]
name = "{name}"
method = "toy"
variant = "small"
{where}
sha256 = "{sha}"
size = {size}
license = "MIT"
data = "random"
recipe = "none"
good_for = "tests only"
"""


def toy():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))


def make_entry(tmp_path, name="toy-small"):
    (tmp_path / "files").mkdir(exist_ok=True)
    path = tmp_path / "files" / f"{name}.safetensors"
    sha, size = save_state_dict(toy().state_dict(), path, metadata={"method": "toy"})
    toml = tmp_path / "weights.toml"
    toml.write_text(ENTRY.format(name=name, where=f'file = "files/{name}.safetensors"', sha=sha, size=size))
    return toml, path


def test_packaged_list_parses():
    assert isinstance(load_specs(), list)


def test_round_trip_gives_identical_output(tmp_path):
    toml, path = make_entry(tmp_path)
    spec = find_spec("toy-small", toml)
    assert spec.sha256 == sha256_file(path)
    net = toy()
    sd = {k: v.half().float() for k, v in net.state_dict().items()}  # stored as fp16
    net.load_state_dict(sd)
    other = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))
    other.load_state_dict({k: v.float() for k, v in load_weights(spec).items()})
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(net(x), other(x))


def test_corrupted_file_is_refused(tmp_path):
    toml, path = make_entry(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch.*toy-small|toy-small.*sha256 mismatch"):
        load_weights(find_spec("toy-small", toml))


def test_truncated_file_is_refused(tmp_path):
    toml, path = make_entry(tmp_path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(WeightsError, match="bytes, expected"):
        load_weights(find_spec("toy-small", toml))


def test_missing_file_names_the_entry(tmp_path):
    toml, path = make_entry(tmp_path)
    path.unlink()
    with pytest.raises(WeightsError, match="'toy-small': file missing"):
        locate(find_spec("toy-small", toml))


def test_a_pickle_is_never_loaded(tmp_path):
    p = tmp_path / "evil.safetensors"
    torch.save({"w": torch.zeros(1)}, p)  # a pickle with a safetensors name
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_state_dict(p)


def test_hub_entry_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    toml = tmp_path / "weights.toml"
    where = 'hub = { repo = "vdeblur/none", filename = "x.safetensors", revision = "0123456789abcdef" }'
    toml.write_text(ENTRY.format(name="hubbed", where=where, sha="0" * 64, size=1))
    with pytest.raises(WeightsError, match="put the file at .*x.safetensors"):
        locate(find_spec("hubbed", toml), download=True)


@pytest.mark.parametrize("bad, msg", [
    ('[[weights]]\nname = "x"\n', "lacks"),
    ("not toml [", "not valid TOML"),
])
def test_malformed_list(tmp_path, bad, msg):
    toml = tmp_path / "weights.toml"
    toml.write_text(bad)
    with pytest.raises(WeightsError, match=msg):
        load_specs(toml)


def test_weights_cli(cli, monkeypatch, tmp_path):
    toml, path = make_entry(tmp_path)
    monkeypatch.setenv("VDEBLUR_WEIGHTS_TOML", str(toml))
    r = cli("weights", "list", "--json")
    assert r.exit_code == 0 and '"toy-small"' in r.stdout
    assert cli("weights", "verify").exit_code == 0
    path.write_bytes(b"x" + path.read_bytes()[1:])
    r = cli("weights", "verify", "toy-small")
    assert r.exit_code == 5 and "failed verification" in r.stderr


def test_shipped_weights_verify_and_run():
    """Every packaged entry: size and sha256 check, the network loads it, one small frame runs."""
    import numpy as np

    from vdeblur.methods.registry import create
    from vdeblur.select import make_selector
    from vdeblur.weights.spec import load_specs, DEFAULT_TOML

    specs = load_specs(DEFAULT_TOML)
    assert {s.method for s in specs} >= {"fsm", "srn", "atrous", "mlfa", "golf", "r2d4"}
    for s in specs:
        assert s.file and s.size < 20_000_000 and s.license and s.data and s.recipe and s.good_for
        if s.method == "fsm":
            sel = make_selector("fsm")
            assert sel.fsm.probability(np.zeros((32, 48, 3), np.uint8)) >= 0  # the stream rule's classifier
            continue
        m = create(s.method, variant=s.variant)
        x = torch.rand(1, m.past + m.future + 1, 3, 32, 32)
        out, _ = m(x)
        assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


GOOD = dict(name='"w"', method='"toy"', variant='"small"', file='"files/w.safetensors"', sha256='"' + "a" * 64 + '"',
            size="10", license='"MIT"', data='"d"', recipe='"r"', good_for='"g"')


def _entry(**change):
    fields = {**GOOD, **change}
    return "[[weights]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)


@pytest.mark.parametrize("text, msg", [
    (_entry(size='"big"'), r"entry 'w': size = 'big' is a string, expected a whole number"),
    (_entry(method="3"), r"entry 'w': method = 3 is a number, expected a non-empty string"),
    (_entry(variant="1.5"), r"entry 'w': variant = 1.5 is a number"),
    (_entry(sha256='"xyz"'), r"entry 'w': sha256 = 'xyz' .*64 hexadecimal"),
    (_entry(size="-1"), r"entry 'w': size = -1 "),
    (_entry(size="true"), r"entry 'w': size = True is a boolean"),
    (_entry(license=None), r"entry 'w' lacks license"),
    (_entry(name="7"), r"entry #1: name = 7 is a number"),
    (_entry(file=None, hub='"x"'), r"entry 'w': hub needs repo, filename and revision"),
    (_entry(file="[1]"), r"entry 'w': file = \[1\] is a list"),
    ("weights = 3\n", r"weights is a number"),
    ("weights = [1]\n", r"weights entry #1 is a number, not a table"),
])
def test_wrong_types_are_weights_errors(cli, monkeypatch, tmp_path, text, msg):
    """A weights list with wrong types is exit 5 naming the entry and field, one line (issue 10)."""
    toml = tmp_path / "weights.toml"
    toml.write_text(text)
    with pytest.raises(WeightsError, match=msg):
        load_specs(toml)
    monkeypatch.setenv("VDEBLUR_WEIGHTS_TOML", str(toml))
    for args in (("weights", "list"), ("methods", "--json")):
        r = cli(*args)
        assert r.exit_code == 5, (args, r.output)
        assert r.stderr.count("\n") == 1 and "weights error" in r.stderr and "Traceback" not in r.output


@pytest.mark.parametrize("kind", ["folder", "binary", "latin-1"])
def test_weights_list_that_is_not_a_text_file(cli, monkeypatch, tmp_path, kind):
    """VDEBLUR_WEIGHTS_TOML naming a folder or a binary file: exit 5, one line saying so."""
    target = tmp_path / "w"
    if kind == "folder":
        target.mkdir()
    else:
        target.write_bytes(bytes(range(256)) if kind == "binary" else 'name = "caf\xe9"'.encode("latin-1"))
    monkeypatch.setenv("VDEBLUR_WEIGHTS_TOML", str(target))
    r = cli("weights", "list")
    assert r.exit_code == 5, r.output
    assert r.stderr.count("\n") == 1 and str(target) in r.stderr
    assert ("folder" if kind == "folder" else "not a text") in r.stderr
