"""Write weights.pt for hostile cases whose parameters are all set in the factory.

    python tests/hostile/_save_weights.py CASE_DIR [CASE_DIR ...]

For each CASE_DIR: when <model.code> imports `networks` and CASE_DIR has no networks.py, copy
_shared/networks.py (beside this script) there as networks.py; import CASE_DIR/<model.code> as a
fresh module (CASE_DIR first on sys.path), call the factory named in submission.yaml
(model.factory, default build_model) and torch.save(model.state_dict(), CASE_DIR/<model.weights>).
The case's sibling modules are dropped from sys.modules after it, so the next case imports its own.

Run it in a subprocess, never import it from pytest: some cases patch modules at import time
(json.dumps, harness.*), and every case's code runs here unconfined, so only use it on the
cases of this folder.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import torch
import yaml

SHARED = Path(__file__).resolve().with_name("_shared") / "networks.py"
_IMPORTS_NETWORKS = re.compile(r"^\s*(from\s+networks\s+import|import\s+networks\b)", re.MULTILINE)


def with_networks(folder: Path, code: str) -> None:
    """Copy the shared networks.py into folder if folder/code imports it and folder has none."""
    target = folder / "networks.py"
    if not target.exists() and _IMPORTS_NETWORKS.search((folder / code).read_text()):
        shutil.copyfile(SHARED, target)


def save(folder: Path) -> Path:
    folder = folder.resolve()
    doc = yaml.safe_load((folder / "submission.yaml").read_text()) or {}
    spec_doc = doc.get("model") or {}
    code = spec_doc.get("code", "model.py")
    factory = spec_doc.get("factory", "build_model")
    weights = spec_doc.get("weights", "weights.pt")
    with_networks(folder, code)
    name = f"_hostile_{folder.name}_{abs(hash(str(folder))):x}"
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(name, folder / code)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        model = getattr(module, factory)()
        state = model.state_dict()
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)
        for other in set(sys.modules) - before:  # its networks.py and any other sibling module
            if Path(getattr(sys.modules[other], "__file__", None) or "/").resolve().parent == folder:
                del sys.modules[other]
    target = folder / weights
    torch.save(state, target)
    return target


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    for arg in argv:
        print(save(Path(arg)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
