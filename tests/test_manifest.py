"""The manifest contract: defaults, and a clear message for every kind of bad field."""

from __future__ import annotations

import pytest

from harness.config import load_rules
from harness.errors import ConfigError, SubmissionError
from harness.judge import files
from harness.manifest import parse

GOOD = "team: alpha\n"


def write(tmp_path, text, files=("model.py", "weights.pt")):
    d = tmp_path / "my-sub"
    d.mkdir(exist_ok=True)
    for f in files:
        (d / f).write_text("")
    (d / "submission.yaml").write_text(text)
    return d


def load_manifest(folder):
    """The manifest of `folder` as the judge reads it: its files (bounded, no links out), then `parse`."""
    return parse(folder, files.read(folder, 2**20).manifest)


def test_defaults(tmp_path):
    m = load_manifest(write(tmp_path, GOOD))
    assert m.team == "alpha" and m.name == "my-sub"
    assert (m.model.code, m.model.factory, m.model.weights, m.model.normalize) == ("model.py", "build_model",
                                                                                  "weights.pt", None)
    assert m.compression.weight_bits == 32 and m.compression.structured_pruning == 0.0


def test_full_manifest(tmp_path):
    text = """
team: alpha
name: resnet18-fp16
model:
  code: net.py
  factory: make
  weights: w.pt
  normalize: {mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26]}
compression: {structured_pruning: 0.1, unstructured_pruning: 0.5, weight_bits: 4, activation_bits: 8}
"""
    m = load_manifest(write(tmp_path, text, files=("net.py", "w.pt")))
    assert m.name == "resnet18-fp16" and m.model.factory == "make" and m.compression.unstructured_pruning == 0.5


BAD = [
    ("team: [unclosed\n", ["not valid YAML", "line"]),
    ("- a\n- b\n", ["expected a mapping"]),
    ("name: x\n", ["team", "Field required"]),
    ("team: 'has space'\n", ["team", "pattern"]),
    ("team: 42\n", ["team", "string"]),
    ("team: a\ncolour: red\n", ["colour", "unknown key", "allowed here: team, name, model, compression"]),
    ("team: a\nname: 'bad/name'\n", ["name", "pattern"]),
    ("team: a\nmodel: {factory: 'not-valid'}\n", ["model.factory", "pattern"]),
    ("team: a\nmodel: {weigths: w.pt}\n", ["model.weigths", "unknown key", "code, factory, weights, normalize"]),
    ("team: a\nmodel: {code: /etc/passwd}\n", ["model.code"]),
    ("team: a\nmodel: {code: ../outside.py}\n", ["model.code", "outside the submission directory"]),
    ("team: a\nmodel: {weights: missing.pt}\n", ["model.weights", "not found"]),
    ("team: a\nmodel: {normalize: {mean: [0.5, 0.5], std: [1, 1, 1]}}\n", ["model.normalize.mean", "at least 3"]),
    ("team: a\nmodel: {normalize: {mean: [0, 0, 0], std: [1, 0, 1]}}\n", ["model.normalize.std.1", "greater than 0"]),
    ("team: a\nmodel: {normalize: {mean: [0, 0, 0]}}\n", ["model.normalize.std", "Field required"]),
    ("team: a\ncompression: {weight_bits: 0}\n", ["compression.weight_bits", "greater than or equal to 1"]),
    ("team: a\ncompression: {weight_bits: 33}\n", ["compression.weight_bits", "less than or equal to 32"]),
    ("team: a\ncompression: {weight_bits: 8.5}\n", ["compression.weight_bits", "integer"]),
    ("team: a\ncompression: {activation_bits: '8'}\n", ["compression.activation_bits", "integer"]),
    ("team: a\ncompression: {structured_pruning: -0.1}\n", ["compression.structured_pruning", "greater than"]),
    ("team: a\ncompression: {unstructured_pruning: 1.0}\n", ["compression.unstructured_pruning", "less than 1"]),
    ("team: a\ncompression: {structured_pruning: 0.5, unstructured_pruning: 0.5}\n", ["below 1"]),
    ("team: a\ncompression: {pruning: 0.5}\n", ["compression.pruning", "unknown key", "structured_pruning"]),
    ("team: a\ncompression: {weight_bits: true}\n", ["compression.weight_bits", "integer"]),
]


@pytest.mark.parametrize("text,needles", BAD, ids=[b[0].strip()[:40] for b in BAD])
def test_bad_manifests_name_file_key_and_rule(tmp_path, text, needles):
    with pytest.raises(SubmissionError) as err:
        load_manifest(write(tmp_path, text))
    message = str(err.value)
    assert "submission.yaml" in message
    for needle in needles:
        assert needle in message, message


def test_missing_manifest_and_directory(tmp_path):
    with pytest.raises(SubmissionError, match="submission.yaml: file not found"):
        load_manifest(write(tmp_path, GOOD).parent)
    with pytest.raises(SubmissionError, match="not a directory"):
        load_manifest(tmp_path / "nope")


def test_rules_defaults_and_overrides(tmp_path):
    assert load_rules().reference_params == 5.6e6 and load_rules().accuracy_threshold == 0.90
    f = tmp_path / "c.yaml"
    f.write_text("accuracy_threshold: 0.5\n")
    assert load_rules(f).accuracy_threshold == 0.5
    f.write_text("treshold: 0.5\n")
    with pytest.raises(ConfigError, match="treshold: unknown key"):
        load_rules(f)
