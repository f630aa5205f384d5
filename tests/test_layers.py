"""The package's layers: data -> models -> separation -> (train, experiments, pretrained) -> api -> book.

``models/`` and ``separation/`` are the mathematics; they never import the training code, the
experiments, the model resolver, the API or the book (``sepcore.pretrained`` is the one place that
loads or trains models). The check reads every import statement, at module level or inside a
function, so a lazy import cannot hide an upward dependency.
"""

import ast
from pathlib import Path

import pytest

from sepcore.utils import REPO_ROOT

LOWER = ("models", "separation")
UPPER = ("sepcore.train", "sepcore.experiments", "sepcore.pretrained", "sepcore.api", "sepcore.book", "sepcore.results")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_never_import_upward(layer):
    offenders = [f"{path.relative_to(REPO_ROOT)} imports {name}"
                 for path in sorted((REPO_ROOT / "sepcore" / layer).rglob("*.py"))
                 for name in imported_modules(path) if name.startswith(UPPER)]
    assert not offenders, offenders


def test_the_scan_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from sepcore.train.flow import train_flow\n    import sepcore.api\n")
    assert imported_modules(module) == ["sepcore.train.flow", "sepcore.api"]
