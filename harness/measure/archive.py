"""Read an exported program (`torch.export.save`'s .pt2 archive) without executing anything from it.

The archive is written by stage 1, beside the submission's code, so it is as hostile as the
submission. `torch.export.load` is not safe on such a file: it unpickles tensors the archive
marks as pickled, imports modules named in its tree specs, evaluates symbolic shapes with
`sympy.sympify` (Python's `eval`) and resolves operators by walking attributes of `torch`.
This reader uses none of that. It takes from the zip only

* `models/<name>.json`: the graph, read as plain JSON; every operator is looked up by name in
  the counting table (`harness.ops`), never resolved dynamically, and every argument
  must be one of a few literal encodings (tensor names, numbers, lists, dtypes, devices);
* `data/weights|constants/*_config.json` and the raw tensor files they name: bytes turned into
  tensors by dtype, shape and strides, bounds-checked; pickled payloads are refused.

Every name of the graph is an identifier, defined once (the image, the stored tensors, then each
operation's outputs, in order) and before anything reads it; the model's own names for its tensors
(they label the receipt) use letters, digits, `_`, `.` and `-` only. Sizes are bounded: files,
JSON, operations, and the elements stored tensors hold (a view of a few bytes with zero strides
must not stand for terabytes). Whatever an error quotes from the archive is escaped, so a message
is one printable line.

Everything else in the archive (sample inputs, metadata, stack traces, guards) is never read.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import torch

from .. import ops
from ..errors import SubmissionError

MAX_JSON_BYTES = 64 * 2**20  # the graph's JSON
MAX_TENSOR_BYTES = 4 * 2**30  # all stored tensors together
MAX_NODES = 20_000  # operations in one graph
MAX_ENTRIES = 100_000  # files in the archive
MAX_DIM = 2**62  # a stored tensor's sizes, strides and offset
_DTYPES = {1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64, 6: torch.float16,
           7: torch.float32, 8: torch.float64, 12: torch.bool, 13: torch.bfloat16}
_MEMORY_FORMATS = {0: None, 1: torch.contiguous_format, 2: torch.channels_last, 4: torch.preserve_format}
_STRIDED = 7  # schema.Layout.Strided
_LITERALS = ("as_int", "as_ints", "as_float", "as_floats", "as_bool", "as_bools", "as_string", "as_strings")
_QUANTISER = re.compile(r"\.\w+_quant(?:\.|$)")  # brevitas: layer.weight_quant..., layer.act_quant...
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")  # fullmatch: `$` would let a trailing newline in
_FQN = re.compile(r"[A-Za-z0-9_.-]{1,300}")  # a model's name for a tensor: it becomes the receipt's layer name
_PART = r"[A-Za-z0-9_.\-]+"  # the archive's root folder and model name


class ArchiveError(SubmissionError):
    """The exported program is malformed or uses something the judge does not run."""


@dataclass(frozen=True)
class Ref:
    """A reference to a value of the graph by name (a tensor, or an integer such as a batch size)."""

    name: str


@dataclass(frozen=True)
class Node:
    """One operation: its table entry, arguments (with `Ref`s) and the names of its outputs."""

    name: str
    op: ops.Op
    args: tuple
    kwargs: dict
    outputs: tuple  # names; None for an output nobody may use; a tuple of names for a list output


@dataclass
class Stored:
    """A tensor the program stores: parameter, buffer or lifted constant."""

    name: str  # the graph's placeholder name
    fqn: str  # its name in the model (e.g. group1.conv1.weight)
    kind: str  # parameter | buffer | constant
    tensor: torch.Tensor
    storage: str  # the archive file holding its elements (several tensors may share one)


@dataclass
class Program:
    """What stage 2 runs: stored tensors, one image input, operations in order, one output."""

    stored: dict[str, Stored]
    input: str
    nodes: list[Node]
    output: str
    storage_sizes: dict[str, int] = field(default_factory=dict)  # archive file -> elements


def read(path: str | Path) -> Program:
    """The program in the archive at `path`, or `ArchiveError` saying what is wrong."""
    try:
        with zipfile.ZipFile(path) as z:
            return _read(z)
    except zipfile.BadZipFile as err:
        raise ArchiveError(f"the exported program is not a .pt2 archive ({err})") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as err:
        raise ArchiveError(f"the exported program is malformed ({type(err).__name__}: {_shown(str(err)[:200])})") \
            from None


def _read(z: zipfile.ZipFile) -> Program:
    infos = z.infolist()
    if len(infos) > MAX_ENTRIES:
        raise ArchiveError(f"the archive holds {len(infos)} files, more than {MAX_ENTRIES}")
    models = [i.filename for i in infos if re.fullmatch(f"{_PART}/models/{_PART}\\.json", i.filename)]
    if len(models) != 1:
        raise ArchiveError(f"expected one exported model in the archive, found {len(models)}")
    root, model = models[0].split("/models/")
    model = model[: -len(".json")]
    program = json.loads(_bytes(z, models[0], MAX_JSON_BYTES))
    graph_module = program["graph_module"]
    graph, signature = graph_module["graph"], graph_module["signature"]
    if graph.get("custom_obj_values"):
        raise ArchiveError("the graph holds custom objects (torchbind); only tensors are accepted")
    budget = [MAX_TENSOR_BYTES, MAX_TENSOR_BYTES]  # bytes left to read; bytes left for tensors to stand for
    weights = _payloads(z, f"{root}/data/weights", f"{model}_weights_config.json", budget)
    constants = _payloads(z, f"{root}/data/constants", f"{model}_constants_config.json", budget)
    stored: dict = {}
    user_inputs: list = []
    defined: set[str] = set()
    for spec in signature["input_specs"]:
        (kind, body), = spec.items()
        if kind == "user_input":
            user_inputs.append(_define(_name(body["arg"]["as_tensor"]["name"]), defined, "the graph's inputs"))
            continue
        fqn_key = {"parameter": "parameter_name", "buffer": "buffer_name", "tensor_constant": "tensor_constant_name"}
        if kind not in fqn_key:
            raise ArchiveError(f"the graph takes an input of kind {kind!r}; "
                               "only tensors and one image batch are accepted")
        fqn = _fqn(body[fqn_key[kind]])
        source = weights if fqn in weights else constants
        if fqn not in source:
            raise ArchiveError(f"stored tensor {fqn!r} is missing from the archive")
        tensor, storage = source[fqn]
        name = _define(_name(body["arg"]["name"]), defined, "the graph's inputs")
        stored[name] = Stored(name=name, fqn=fqn, kind={"tensor_constant": "constant"}.get(kind, kind),
                              tensor=tensor, storage=storage)
    if len(user_inputs) != 1:
        raise ArchiveError(f"the model takes {len(user_inputs)} inputs; it must take one batch of images")
    outputs = signature["output_specs"]
    if len(outputs) != 1 or "user_output" not in outputs[0]:
        raise ArchiveError("the model must return one tensor (the logits) and change no buffer")
    output = _name(outputs[0]["user_output"]["arg"]["as_tensor"]["name"])
    nodes = graph["nodes"]
    if len(nodes) > MAX_NODES:
        raise ArchiveError(f"the graph has {len(nodes)} operations, more than the {MAX_NODES} allowed")
    unknown = sorted({_shown(str(n["target"])[:120]) for n in nodes if ops.lookup(str(n["target"])) is None})
    if unknown:
        raise ArchiveError(ops.refusal(unknown))
    program_nodes = [_node(n) for n in nodes]
    for node in program_nodes:  # one pass in order: each name defined once, before it is read
        for ref in _refs((node.args, node.kwargs)):
            if ref not in defined:
                raise ArchiveError(f"operation {node.name!r} ({node.op.name}) reads {ref!r} before it is defined")
        for name in _flat(node.outputs):
            _define(name, defined, f"operation {node.name!r}")
    if output not in defined:
        raise ArchiveError(f"the model's output {output!r} is never computed")
    sizes: dict[str, int] = {}
    for _, (tensor, storage) in {**weights, **constants}.items():
        sizes[storage] = max(sizes.get(storage, 0), tensor.untyped_storage().nbytes() // tensor.element_size())
    return Program(stored=stored, input=user_inputs[0], nodes=program_nodes, output=output,
                   storage_sizes=sizes)


def _node(raw: dict) -> Node:
    op = ops.lookup(raw["target"])
    if op is None:  # refused before any node is built (`ops.refusal`): never reached by a graph that loads
        raise ArchiveError(f"the operator {raw['target']!r} has no counting rule")
    args, kwargs = [], {}
    for item in raw["inputs"]:
        value = _arg(item["arg"])
        if item.get("kind", 1) == 2:
            kwargs[_name(item["name"])] = value
        elif kwargs:
            raise ArchiveError(f"{raw['target']}: a positional argument after keyword arguments")
        else:
            args.append(value)
    outputs = tuple(_output(o) for o in raw["outputs"])
    name = raw.get("name")  # absent (None) in archives of older torch versions
    return Node(name=_name("node" if name is None else name), op=op, args=tuple(args), kwargs=kwargs, outputs=outputs)


def _arg(arg: dict):
    """A literal, or a `Ref` to a value of the graph; any other encoding is refused."""
    (kind, value), = arg.items()
    if kind in _LITERALS:
        return _literal(kind, value)
    if kind == "as_none":
        return None
    if kind == "as_tensor":
        return Ref(_name(value["name"]))
    if kind == "as_tensors":
        return [Ref(_name(v["name"])) for v in value]
    if kind == "as_optional_tensors":
        return [None if "as_none" in v else Ref(_name(v["as_tensor"]["name"])) for v in value]
    if kind == "as_optional_tensor":
        return None if "as_none" in value else Ref(_name(value["as_tensor"]["name"]))
    if kind in ("as_sym_int", "as_sym_float", "as_sym_bool"):
        return _sym(value)
    if kind in ("as_sym_ints", "as_sym_floats", "as_sym_bools"):
        return [_sym(v) for v in value]
    if kind == "as_scalar_type":
        if value not in _DTYPES:
            raise ArchiveError(f"unsupported dtype code {value!r}")
        return _DTYPES[value]
    if kind == "as_memory_format":
        return _MEMORY_FORMATS[value]
    if kind == "as_layout":
        if value != _STRIDED:
            raise ArchiveError("only strided (dense) tensors are accepted")
        return torch.strided
    if kind == "as_device":
        return DEVICE  # every device named in the graph is the device stage 2 runs on
    raise ArchiveError(f"an argument encoded as {kind!r} "
                       "(only tensors, numbers, lists, dtypes and devices are accepted)")


DEVICE = object()  # stands for the run device; `harness.measure.graph` substitutes it


def _literal(kind: str, value):
    kinds: dict[str, type | tuple[type, ...]] = {"as_int": int, "as_ints": int, "as_float": (int, float),
                                                 "as_floats": (int, float), "as_bool": bool, "as_bools": bool,
                                                 "as_string": str, "as_strings": str}
    types = kinds[kind]
    if isinstance(value, list) != kind.endswith("s"):
        raise ArchiveError(f"a malformed {kind} argument")
    items = value if isinstance(value, list) else [value]
    if kind in ("as_float", "as_floats"):
        items = [float(v) if v in ("Infinity", "-Infinity", "NaN") else v for v in items]
    if len(items) > 1024 or not all(isinstance(v, types) for v in items) or any(isinstance(v, str) and len(v) > 64
                                                                                  for v in items):
        raise ArchiveError(f"a malformed {kind} argument")
    return items if isinstance(value, list) else items[0]


def _sym(value: dict):
    (kind, inner), = value.items()
    if kind == "as_name":
        return Ref(_name(inner))
    if kind in ("as_int", "as_float", "as_bool"):
        return _literal(kind, inner)
    raise ArchiveError(f"a symbolic value encoded as {kind!r}")


def _output(out: dict):
    (kind, value), = out.items()
    if kind == "as_tensor":
        return _name(value["name"])
    if kind in ("as_sym_int", "as_sym_float", "as_sym_bool"):
        return _name(value["as_name"])
    if kind == "as_tensors":
        return tuple(_name(v["name"]) for v in value)
    if kind == "as_none":
        return None
    raise ArchiveError(f"an output encoded as {kind!r}")


def _name(text) -> str:
    if not isinstance(text, str) or not _NAME.fullmatch(text):
        raise ArchiveError(f"a malformed name in the graph: {str(text)[:60]!r}")
    return text


def _fqn(text) -> str:
    if not isinstance(text, str) or not _FQN.fullmatch(text):
        raise ArchiveError(f"a stored tensor's name {ascii(str(text)[:60])} has characters a name may not "
                           "have: module and tensor names may use letters, digits, '_', '.' and '-' only "
                           "(at most 300 characters); rename the module")
    return text


def _define(name: str, defined: set[str], where: str) -> str:
    if name in defined:
        raise ArchiveError(f"the name {name!r} is defined twice (again by {where})")
    defined.add(name)
    return name


def _refs(value) -> list[str]:
    """The names a node's arguments read."""
    if isinstance(value, Ref):
        return [value.name]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    return []


def _flat(outputs: tuple) -> list[str]:
    """The names a node's outputs define."""
    return [n for o in outputs for n in (o if isinstance(o, tuple) else (o,)) if n is not None]


def _shown(text: str) -> str:
    """Text from the archive, quotable in a one-line message: control characters and non-ASCII escaped."""
    return text.encode("unicode_escape").decode("ascii")


def _bytes(z: zipfile.ZipFile, name: str, limit: int) -> bytes:
    info = z.getinfo(name)
    if info.file_size > limit:
        raise ArchiveError(f"{name}: {info.file_size:,} bytes, over the {limit:,} allowed")
    try:
        with z.open(info) as f:
            data = f.read(limit + 1)
    except (RuntimeError, NotImplementedError, EOFError, zlib.error) as err:  # encrypted, unknown compression,
        # corrupt stream (a bad CRC is zipfile.BadZipFile, which `read` reports)
        raise ArchiveError(f"{name} cannot be read ({type(err).__name__}: {_shown(str(err)[:120])})") from None
    if len(data) > limit:
        raise ArchiveError(f"{name}: larger than it says")
    return data


def _payloads(z: zipfile.ZipFile, folder: str, config_name: str, budget: list[int]) -> dict:
    """FQN -> (tensor, storage file) for one payload config; pickled payloads are refused."""
    names = set(z.namelist())
    config_path = f"{folder}/{config_name}"
    if config_path not in names:
        return {}
    config = json.loads(_bytes(z, config_path, MAX_JSON_BYTES))["config"]
    files: dict[str, torch.Tensor] = {}
    out = {}
    for fqn, meta in config.items():
        if meta.get("use_pickle"):
            raise ArchiveError(f"stored tensor {str(fqn)[:100]!r} is pickled; the judge never unpickles")
        file = str(meta["path_name"])
        if not re.fullmatch(r"(weight|tensor)_\d+", file):
            raise ArchiveError(f"stored object {str(fqn)[:100]!r} is not a tensor ({file[:40]!r})")
        tm = meta["tensor_meta"]
        dtype = _DTYPES.get(tm["dtype"])
        if dtype is None:
            raise ArchiveError(f"stored tensor {str(fqn)[:100]!r} has an unsupported dtype code "
                               f"{str(tm['dtype'])[:20]!r}")
        if file not in files:
            data = _bytes(z, f"{folder}/{file}", budget[0])
            budget[0] -= len(data)
            if len(data) % torch.empty(0, dtype=dtype).element_size():
                raise ArchiveError(f"{file}: {len(data)} bytes is not a whole number of {dtype} elements")
            files[file] = torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)
        flat = files[file]
        if flat.dtype != dtype:
            raise ArchiveError(f"{file} is read as two dtypes")
        sizes = [_int(s) for s in tm["sizes"]]
        strides = [_int(s) for s in tm["strides"]]
        offset = _int(tm["storage_offset"])
        every = sizes + strides + [offset]
        if len(sizes) != len(strides) or len(sizes) > 64 or min(every) < 0 or max(every) > MAX_DIM:
            raise ArchiveError(f"stored tensor {str(fqn)[:100]!r} has a malformed shape")
        budget[1] -= prod(max(n, 1) for n in sizes) * flat.element_size()  # zero strides repeat bytes
        if budget[1] < 0:
            raise ArchiveError(f"stored tensor {str(fqn)[:100]!r} stands for {prod(sizes):,} elements: the stored "
                               f"tensors would hold over {MAX_TENSOR_BYTES:,} bytes")
        last = offset + sum((n - 1) * s for n, s in zip(sizes, strides, strict=True)) if all(sizes) else -1
        if last >= flat.numel():
            raise ArchiveError(f"stored tensor {str(fqn)[:100]!r} reaches past its file")
        tensor = flat.as_strided(sizes, strides, offset) if all(sizes) else torch.zeros(sizes, dtype=dtype)
        out[str(fqn)] = (tensor, file)
    return out


def _int(value: dict) -> int:
    (kind, v), = value.items()
    if kind != "as_int" or not isinstance(v, int) or isinstance(v, bool):
        raise ArchiveError("a stored tensor's shape must be concrete integers")
    return v


def module_of(fqn: str) -> str:
    """The module a stored tensor belongs to: `a.conv.weight` -> `a.conv`; a brevitas quantiser's
    tensors (`a.conv.weight_quant.tensor_quant.scaling_impl.value`) -> the layer, `a.conv`."""
    layer = _QUANTISER.split(fqn)[0]
    if layer == fqn:
        layer = fqn.rsplit(".", 1)[0] if "." in fqn else fqn
    return layer[:200]
