"""``core`` is a library: importing any of it never imports Streamlit (DESIGN: pages are thin)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import core

CORE_DIR = Path(core.__file__).resolve().parent


def core_modules() -> list[str]:
    names = ["core"]
    for info in pkgutil.walk_packages([str(CORE_DIR)], prefix="core."):
        if ".migrations" not in info.name:  # alembic scripts run inside alembic, not as imports
            names.append(info.name)
    return sorted(names)


def test_core_modules_are_found() -> None:
    names = core_modules()
    assert {"core.cli", "core.ledger", "core.metering", "core.rating", "core.demo.seed"} <= set(names)


def test_importing_every_core_module_leaves_streamlit_out() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.'))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core imported Streamlit: {result.stdout.strip()}"


def test_no_core_source_mentions_streamlit_imports() -> None:
    offenders = []
    for path in sorted(CORE_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(name == "streamlit" or name.startswith("streamlit.") for name in names):
                offenders.append(f"{path.relative_to(CORE_DIR.parent)}:{node.lineno}")
    assert offenders == [], f"core must not import streamlit: {offenders}"
