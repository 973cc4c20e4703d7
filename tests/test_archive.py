"""Stage 2's archive reader on crafted archives: a real export of a tiny model, rewritten entry by
entry (graph JSON, tensor configs, payloads, zip headers) into each thing the reader must refuse."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.errors import SubmissionError
from harness.measure import archive, graph

from .conftest import exported

GRAPH = "models/model.json"
WEIGHTS = "data/weights/model_weights_config.json"


class Tiny(nn.Module):
    """Parameters, buffers (one int64), a symbolic batch size (the view), five counted and free operations."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(3, 2, 3, stride=4), nn.BatchNorm2d(2), nn.Linear(2 * 8 * 8, 10)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(y.view(y.shape[0], -1))


@pytest.fixture(scope="module")
def honest(tmp_path_factory) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    model = Tiny().eval()
    return model, exported(model, tmp_path_factory.mktemp("honest"))


@pytest.fixture
def src(honest) -> Path:
    return honest[1]


def craft(src: Path, dst: Path, program=None, weights=None, entries: dict | None = None,
          compress: str | None = None) -> Path:
    """Copy every entry of `src` into `dst`. `program(doc)` / `weights(doc)` edit the graph JSON /
    the weights config in place; `entries` maps an entry's name (after the root folder) to new bytes,
    None to drop it (names not in `src` are added); `compress` is an entry written deflated."""
    entries = dict(entries or {})
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            rel = info.filename[len(root) + 1:]
            data = zin.read(info)
            for suffix, edit in ((GRAPH, program), (WEIGHTS, weights)):
                if edit is not None and rel == suffix:
                    doc = json.loads(data)
                    edit(doc)
                    data = json.dumps(doc).encode()
            if rel in entries:
                data = entries.pop(rel)
                if data is None:
                    continue
            kind = zipfile.ZIP_DEFLATED if rel == compress else zipfile.ZIP_STORED
            zout.writestr(zipfile.ZipInfo(info.filename, info.date_time), data, compress_type=kind)
        for rel, data in entries.items():
            zout.writestr(f"{root}/{rel}", data)
    return dst


def refused(path: Path, match: str) -> archive.ArchiveError:
    with pytest.raises(archive.ArchiveError, match=match) as caught:
        archive.read(path)
    assert isinstance(caught.value, SubmissionError)
    assert printable(str(caught.value)), str(caught.value)
    return caught.value


def printable(text: str) -> bool:
    """A message safe to print on a terminal or a log line: no control characters, no line breaks."""
    return all(ch.isprintable() for ch in text)


def nodes(doc) -> list[dict]:
    return doc["graph_module"]["graph"]["nodes"]


def node(doc, name: str) -> dict:
    return next(n for n in nodes(doc) if n["name"] == name)


def specs(doc) -> dict:
    return doc["graph_module"]["signature"]


def meta(doc, fqn: str) -> dict:
    return doc["config"][fqn]


def rename_output(n: dict, new: str) -> None:
    (kind, value), = n["outputs"][0].items()
    if kind == "as_tensor":
        value["name"] = new
    else:
        value["as_name"] = new


def patch_central(path: Path, rel: str, offset: int, value: int, mask: bool = False) -> None:
    """Overwrite (or OR into) a 2-byte field of the central directory record of entry `rel`."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        length = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46: pos + 46 + length]).decode().endswith("/" + rel):
            old = struct.unpack_from("<H", data, pos + offset)[0]
            struct.pack_into("<H", data, pos + offset, (old | value) if mask else value)
        pos = data.find(b"PK\x01\x02", pos + 46)
    path.write_bytes(bytes(data))


# --- an honest archive, and the crafting helper itself


def test_honest_archive_reads_and_runs(honest, tmp_path):
    model, path = honest
    copy = craft(path, tmp_path / "copy.pt2", program=lambda doc: None, weights=lambda doc: None)
    for p in (path, copy):
        program = archive.read(p)
        assert {s.fqn for s in program.stored.values()} == set(model.state_dict())
        g = graph.Graph(program, torch.device("cpu"))
        x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            torch.testing.assert_close(g.run(x), model(x), rtol=1e-5, atol=1e-5)


def test_payload_bytes_are_never_unpickled(src, tmp_path, monkeypatch):
    """A pickle stored where raw bytes belong, of the right length, is only ever numbers."""
    payload = pickle.dumps(("os", "system", "echo owned"), protocol=2)
    payload = (payload + b"\0" * 216)[:216]  # conv.weight: 54 float32
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "Unpickler", lambda *a, **k: pytest.fail("unpickled"))
    program = archive.read(craft(src, tmp_path / "a.pt2", entries={"data/weights/weight_0": payload}))
    weight = next(s.tensor for s in program.stored.values() if s.fqn == "conv.weight")
    assert weight.flatten().numpy().tobytes() == payload


# --- payloads


def test_pickled_payload(src, tmp_path):
    def edit(doc):
        meta(doc, "conv.weight")["use_pickle"] = True

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "'conv.weight' is pickled; the judge never unpickles")


def test_pickle_in_place_of_raw_bytes(src, tmp_path):
    pickled = pickle.dumps(torch.zeros(2))  # shorter than the 10 x 128 floats of fc.weight
    pickled += b"\0" * (-len(pickled) % 4)
    refused(craft(src, tmp_path / "a.pt2", entries={"data/weights/weight_4": pickled}),
            "'fc.weight' reaches past its file")


def test_payload_that_is_not_a_tensor_file(src, tmp_path):
    def edit(doc):
        meta(doc, "conv.weight")["path_name"] = "../sample_inputs/model.pt"

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "'conv.weight' is not a tensor")


def test_offset_past_the_file(src, tmp_path):
    def edit(doc):
        meta(doc, "conv.bias")["tensor_meta"]["storage_offset"] = {"as_int": 1}  # 2 floats, from the 2nd

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "'conv.bias' reaches past its file")


def test_strides_past_the_file(src, tmp_path):
    def edit(doc):
        meta(doc, "conv.weight")["tensor_meta"]["strides"][0] = {"as_int": 28}

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "'conv.weight' reaches past its file")


def test_payload_shorter_than_its_shape(src, tmp_path):
    refused(craft(src, tmp_path / "a.pt2", entries={"data/weights/weight_4": b"\0" * 400}),
            "'fc.weight' reaches past its file")


def test_payload_not_whole_elements(src, tmp_path):
    refused(craft(src, tmp_path / "a.pt2", entries={"data/weights/weight_0": b"\0" * 215}),
            "weight_0: 215 bytes is not a whole number of torch.float32 elements")


def test_payload_missing(src, tmp_path):
    refused(craft(src, tmp_path / "a.pt2", entries={"data/weights/weight_0": None}), "weight_0")


def test_stored_tensor_missing_from_config(src, tmp_path):
    refused(craft(src, tmp_path / "a.pt2", weights=lambda doc: doc["config"].pop("fc.bias")),
            "stored tensor 'fc.bias' is missing from the archive")


def test_one_file_read_as_two_dtypes(src, tmp_path):
    def edit(doc):
        meta(doc, "conv.bias")["path_name"] = meta(doc, "bn.num_batches_tracked")["path_name"]

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "read as two dtypes")


@pytest.mark.parametrize("code", [99, 0, 9, "7", None, [7]])
def test_unknown_stored_dtype(src, tmp_path, code):
    def edit(doc):
        meta(doc, "conv.weight")["tensor_meta"]["dtype"] = code

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "dtype|malformed")


@pytest.mark.parametrize("field,value", [("sizes", [{"as_int": -1}]), ("strides", [{"as_int": -1}]),
                                         ("storage_offset", {"as_int": -1}), ("sizes", [{"as_int": 1}, {"as_int": 2}])])
def test_negative_or_mismatched_shape(src, tmp_path, field, value):
    def edit(doc):
        meta(doc, "conv.bias")["tensor_meta"][field] = value

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "'conv.bias' has a malformed shape")


@pytest.mark.parametrize("size", [{"as_name": "s0"}, {"as_int": True}, {"as_int": 2.0}, {"as_expr": "s0*2"}])
def test_symbolic_or_non_integer_shape(src, tmp_path, size):
    def edit(doc):
        meta(doc, "conv.bias")["tensor_meta"]["sizes"] = [size]

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "concrete integers")


@pytest.mark.parametrize("sizes", [[2**20, 2**20], [2**40], [2**62, 2**62], [2**70], [0, 2**70]])
def test_zero_strides_or_sizes_beyond_reason(src, tmp_path, sizes):
    """One float of bytes viewed as a terabyte (or more than int64 holds) with zero strides."""
    def edit(doc):
        tm = meta(doc, "conv.bias")["tensor_meta"]
        tm["sizes"] = [{"as_int": n} for n in sizes]
        tm["strides"] = [{"as_int": 0} for _ in sizes]

    refused(craft(src, tmp_path / "a.pt2", weights=edit), "'conv.bias' .*(elements|malformed shape)")


def test_tensors_over_the_byte_budget(src, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_TENSOR_BYTES", 1000)
    refused(craft(src, tmp_path / "a.pt2"), r"weight_\d: [\d,]+ bytes, over the [\d,]+ allowed")


# --- the archive itself


def test_not_a_zip(tmp_path):
    path = tmp_path / "a.pt2"
    path.write_bytes(b"\x80\x02 not a zip at all")
    refused(path, "not a .pt2 archive")


def test_too_many_entries(src, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_ENTRIES", 5)
    refused(craft(src, tmp_path / "a.pt2"), "holds 18 files, more than 5")


def test_graph_json_over_the_limit(src, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_JSON_BYTES", 1000)
    refused(craft(src, tmp_path / "a.pt2"), "model.json: .* bytes, over the 1,000 allowed")


def test_two_models(src, tmp_path):
    with zipfile.ZipFile(src) as z:
        second = z.read(next(n for n in z.namelist() if n.endswith(GRAPH)))
    refused(craft(src, tmp_path / "a.pt2", entries={"models/other.json": second}), "found 2")


def test_graph_not_json(src, tmp_path):
    refused(craft(src, tmp_path / "a.pt2", entries={GRAPH: b"\x80\x04K\x01."}), "malformed")


def test_deeply_nested_json(src, tmp_path):
    def edit(doc):
        node(doc, "relu")["metadata"] = "DEEP"

    path = craft(src, tmp_path / "a.pt2", program=edit)
    with zipfile.ZipFile(path) as z:
        text = z.read(next(n for n in z.namelist() if n.endswith(GRAPH)))
    deep = text.replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000)
    refused(craft(src, tmp_path / "b.pt2", entries={GRAPH: deep}), "malformed .*Recursion")


def test_encrypted_entry(src, tmp_path):
    path = craft(src, tmp_path / "a.pt2")
    patch_central(path, GRAPH, 8, 0x1, mask=True)  # general purpose flags: encrypted
    refused(path, "model.json.* cannot be read")


def test_unsupported_compression(src, tmp_path):
    path = craft(src, tmp_path / "a.pt2")
    patch_central(path, GRAPH, 10, 99)  # compression method: AES, unknown to zipfile
    refused(path, "model.json.* cannot be read")


def test_corrupt_compressed_entry(src, tmp_path):
    path = craft(src, tmp_path / "a.pt2", compress=GRAPH)
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(GRAPH))
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    data[info.header_offset + 30 + name_len + extra_len] = 0xFF  # a deflate block of the reserved type
    path.write_bytes(bytes(data))
    refused(path, "model.json.* cannot be read")


def test_odd_archive_root(src, tmp_path):
    path = tmp_path / "a.pt2"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            zout.writestr("\x1b[2J" + info.filename[info.filename.index("/"):], zin.read(info))
    refused(path, "expected one exported model in the archive, found 0")


# --- the signature


def test_custom_objects(src, tmp_path):
    def edit(doc):
        doc["graph_module"]["graph"]["custom_obj_values"] = {"obj": {"class_fqn": "os.system"}}

    refused(craft(src, tmp_path / "a.pt2", program=edit), "custom objects")


def test_input_of_another_kind(src, tmp_path):
    def edit(doc):
        specs(doc)["input_specs"].append({"custom_obj": {"arg": {"name": "obj"}, "custom_obj_name": "obj"}})

    refused(craft(src, tmp_path / "a.pt2", program=edit), "an input of kind 'custom_obj'")


def test_two_image_inputs(src, tmp_path):
    def edit(doc):
        specs(doc)["input_specs"].append({"user_input": {"arg": {"as_tensor": {"name": "y"}}}})

    refused(craft(src, tmp_path / "a.pt2", program=edit), "takes 2 inputs")


def test_buffer_mutation_output(src, tmp_path):
    def edit(doc):
        specs(doc)["output_specs"].insert(0, {"buffer_mutation": {"arg": {"as_tensor": {"name": "relu"}},
                                                                  "buffer_name": "bn.running_mean"}})

    refused(craft(src, tmp_path / "a.pt2", program=edit), "return one tensor")


# --- operations and arguments


def test_too_many_nodes(src, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_NODES", 3)
    refused(craft(src, tmp_path / "a.pt2"), "6 operations, more than the 3 allowed")


@pytest.mark.parametrize("target", ["torch.ops.aten.fft_fftn.default", "builtins.eval", "os.system",
                                    "torch.ops.aten.relu_.default", "torch.ops.aten.relu.default\x1b[2J"])
def test_unknown_operator(src, tmp_path, target):
    def edit(doc):
        node(doc, "relu")["target"] = target

    refused(craft(src, tmp_path / "a.pt2", program=edit), "operators the judge has no counting rule for")


@pytest.mark.parametrize("arg", [{"as_graph": {"name": "true_graph_0", "graph": {}}},
                                 {"as_custom_obj": {"name": "obj", "class_fqn": "os.system"}},
                                 {"as_operator": "torch.ops.aten.relu.default"},
                                 {"as_sym_int": {"as_expr": {"expr_str": "__import__('os').system('x')"}}},
                                 {"as_tensor": {"name": "x"}, "as_int": 1}])
def test_unknown_argument_encoding(src, tmp_path, arg):
    def edit(doc):
        node(doc, "relu")["inputs"][0]["arg"] = arg

    refused(craft(src, tmp_path / "a.pt2", program=edit), "encoded as|malformed")


@pytest.mark.parametrize("arg", [{"as_int": 1.5}, {"as_ints": [1] * 2000}, {"as_string": "s" * 100},
                                 {"as_bool": 1}, {"as_scalar_type": 99}, {"as_memory_format": 3},
                                 {"as_layout": 1}, {"as_floats": "NaN"}])
def test_malformed_literal(src, tmp_path, arg):
    def edit(doc):
        node(doc, "relu")["inputs"].append({"name": "extra", "arg": arg, "kind": 1})

    refused(craft(src, tmp_path / "a.pt2", program=edit), "malformed|unsupported|strided")


def test_positional_after_keyword(src, tmp_path):
    def edit(doc):
        node(doc, "conv2d")["inputs"][1]["kind"] = 2

    refused(craft(src, tmp_path / "a.pt2", program=edit), "a positional argument after keyword arguments")


def test_unknown_output_encoding(src, tmp_path):
    def edit(doc):
        node(doc, "relu")["outputs"] = [{"as_custom_obj": {"name": "relu", "class_fqn": "os.system"}}]

    refused(craft(src, tmp_path / "a.pt2", program=edit), "an output encoded as 'as_custom_obj'")


# --- names: each defined once, before it is used, in plain characters


@pytest.mark.parametrize("victim,new", [("relu", "conv2d"), ("relu", "p_conv_weight"), ("relu", "x"),
                                        ("relu", "b_bn_running_var"), ("sym_size_int_1", "x")])
def test_name_defined_twice(src, tmp_path, victim, new):
    """A node's output named like an earlier node's, a stored tensor's or the image's."""
    def edit(doc):
        rename_output(node(doc, victim), new)

    refused(craft(src, tmp_path / "a.pt2", program=edit), f"{new!r} is defined twice")


def test_input_names_defined_twice(src, tmp_path):
    def edit(doc):
        specs(doc)["input_specs"][1]["parameter"]["arg"]["name"] = "p_conv_weight"

    refused(craft(src, tmp_path / "a.pt2", program=edit), "'p_conv_weight' is defined twice")


def test_parameter_named_like_the_image(src, tmp_path):
    def edit(doc):
        specs(doc)["input_specs"][0]["parameter"]["arg"]["name"] = "x"

    refused(craft(src, tmp_path / "a.pt2", program=edit), "'x' is defined twice")


def test_two_outputs_of_one_node_share_a_name(src, tmp_path):
    def edit(doc):
        node(doc, "relu")["outputs"] = [{"as_tensors": [{"name": "relu"}, {"name": "relu"}]}]

    refused(craft(src, tmp_path / "a.pt2", program=edit), "'relu' is defined twice")


def test_name_used_before_it_is_defined(src, tmp_path):
    """relu moved before the convolution whose result it reads."""
    def edit(doc):
        ops = nodes(doc)
        ops.insert(1, ops.pop(3))

    refused(craft(src, tmp_path / "a.pt2", program=edit), "'batch_norm' before it is defined")


def test_symbolic_size_used_before_it_is_defined(src, tmp_path):
    def edit(doc):
        ops = nodes(doc)
        ops.append(ops.pop(0))

    refused(craft(src, tmp_path / "a.pt2", program=edit), "'sym_size_int_1' before it is defined")


def test_name_never_defined(src, tmp_path):
    def edit(doc):
        node(doc, "relu")["inputs"][0]["arg"] = {"as_tensor": {"name": "ghost"}}

    refused(craft(src, tmp_path / "a.pt2", program=edit), "'ghost' before it is defined")


def test_output_never_computed(src, tmp_path):
    def edit(doc):
        specs(doc)["output_specs"][0]["user_output"]["arg"]["as_tensor"]["name"] = "ghost"

    refused(craft(src, tmp_path / "a.pt2", program=edit), "output 'ghost' is never computed")


def test_node_reads_its_own_output(src, tmp_path):
    def edit(doc):
        node(doc, "relu")["inputs"][0]["arg"] = {"as_tensor": {"name": "relu"}}

    refused(craft(src, tmp_path / "a.pt2", program=edit), "'relu' before it is defined")


ODD = ["a b", "\x1b[2J", "a/b", "n" * 1000, "relu\n", "relu\x00", "", "é", "1x", "a.b"]


@pytest.mark.parametrize("name", ODD)
def test_odd_node_output_name(src, tmp_path, name):
    def edit(doc):
        rename_output(node(doc, "relu"), name)
        node(doc, "view")["inputs"][0]["arg"]["as_tensor"]["name"] = name

    refused(craft(src, tmp_path / "a.pt2", program=edit), "a malformed name")


@pytest.mark.parametrize("name", ODD)
def test_odd_node_name(src, tmp_path, name):
    def edit(doc):
        node(doc, "relu")["name"] = name

    refused(craft(src, tmp_path / "a.pt2", program=edit), "a malformed name")


@pytest.mark.parametrize("name", ODD)
def test_odd_keyword_name(src, tmp_path, name):
    def edit(doc):
        node(doc, "relu")["inputs"].append({"name": name, "arg": {"as_int": 1}, "kind": 2})

    refused(craft(src, tmp_path / "a.pt2", program=edit), "a malformed name")


@pytest.mark.parametrize("name", ODD)
def test_odd_input_and_output_names(src, tmp_path, name):
    def image(doc):
        specs(doc)["input_specs"][-1]["user_input"]["arg"]["as_tensor"]["name"] = name

    def stored(doc):
        specs(doc)["input_specs"][0]["parameter"]["arg"]["name"] = name

    def output(doc):
        specs(doc)["output_specs"][0]["user_output"]["arg"]["as_tensor"]["name"] = name

    for i, edit in enumerate((image, stored, output)):
        refused(craft(src, tmp_path / f"{i}.pt2", program=edit), "a malformed name")


@pytest.mark.parametrize("fqn", ["conv.weight\x1b[2J", "conv weight", "conv.weight\n", "w" * 400, "",
                                 "conv[0].weight", "conv;weight", "\u00e9.weight", "conv|w"])
def test_odd_stored_tensor_name(src, tmp_path, fqn):
    """The model's own name for a tensor labels the receipt's layers in a terminal, Markdown, CSV
    and pages: letters, digits, '_', '.' and '-', of sane length."""
    def program(doc):
        specs(doc)["input_specs"][0]["parameter"]["parameter_name"] = fqn

    def weights(doc):
        doc["config"][fqn] = doc["config"].pop("conv.weight")

    refused(craft(src, tmp_path / "a.pt2", program=program, weights=weights), "has characters a name may not have")
