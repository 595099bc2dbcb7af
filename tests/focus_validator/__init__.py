"""The FinOps Foundation's FOCUS validator (``focus-validator`` 1.0.0), in a venv of its own.

It pins pandas<3 and numpy<2 while the project runs pandas 3 and numpy 2, so it cannot share the
project's venv: ``.venv-focus`` at the repository root holds it. ``make test`` creates it before
the suite (``python -m tests.focus_validator``); a test that needs it and finds it missing creates
it too (once, under a file lock, so parallel workers wait for one install).

Two faults of 1.0.0 are worked around here, not hidden:

- it reads its currency list from a path relative to the working directory, so it runs with its
  own site-packages as the working directory (else every BillingCurrency check fails with
  ``FileNotFoundError``);
- its "1.0" rules name four columns by their FOCUS 0.5 ids and one rule reads the 0.5 column
  ``ChargeType``: ``overrides-1.0.0.yaml`` skips exactly those five checks, and the test checks
  the same rules on the FOCUS 1.0 columns itself.

It prints "Validation succeeded." or, after the failures, "Validation failed!" and exits 0 either way.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
OVERRIDES = HERE / "overrides-1.0.0.yaml"
VENV = Path(os.environ.get("FOCUS_VALIDATOR_VENV") or ROOT / ".venv-focus")
STAMP = VENV / ".installed"
LOCK = VENV.with_name(VENV.name + ".lock")
SUCCESS = "Validation succeeded."
FAILURE = "Validation failed"
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 300


class ValidatorUnavailable(RuntimeError):
    """The validator could not be installed (no package index, no network)."""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    output: str


def _python() -> Path:
    return VENV / "bin" / "python"


def _installed() -> bool:
    return _python().exists() and STAMP.exists() and STAMP.read_text() == REQUIREMENTS.read_text()


def ensure_installed() -> Path:
    """The validator venv's python, installing it first if it is missing or out of date."""
    if _installed():
        return _python()
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be installing it: wait for it
        if _installed():
            return _python()
        if not _python().exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        try:
            subprocess.run(
                [
                    str(_python()),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                    str(REQUIREMENTS),
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            output = (getattr(error, "stderr", "") or getattr(error, "stdout", "") or "").strip()
            lines = [line for line in output.splitlines() if "is ignored" not in line][-8:]
            raise ValidatorUnavailable(
                f"pip could not install {REQUIREMENTS.name} into {VENV}: " + "\n".join(lines)
            ) from error
        STAMP.write_text(REQUIREMENTS.read_text())
    return _python()


def _site_packages(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()


# Runs the validator's own command-line entry point once per file, in one process (pandas and the
# rules load once): each file is still read and typed on its own, exactly as the command does.
_RUNNER = """
import contextlib, io, json, sys
from focus_validator.main import main
version, overrides, *paths = sys.argv[1:]
outputs = {}
for path in paths:
    sys.argv = ["focus-validator", "--validate-version", version, "--data-file", path,
                "--override-file", overrides]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main()
        except SystemExit as exit:
            print(f"exit {exit.code}")
        except Exception as error:
            print(f"error: {error!r}")
    outputs[path] = out.getvalue()
sys.stdout.write(json.dumps(outputs))
"""


def validate_many(csv_paths: list[Path], *, version: str = "1.0") -> dict[Path, Outcome]:
    """``focus-validator --validate-version VERSION --data-file CSV --override-file ...`` for each file."""
    python = ensure_installed()
    paths = [str(path.resolve()) for path in csv_paths]
    result = subprocess.run(
        [str(python), "-c", _RUNNER, version, str(OVERRIDES), *paths],
        cwd=_site_packages(python),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"focus-validator did not run: {result.stderr.strip()[-2000:]}")
    outputs = json.loads(result.stdout)
    return {
        path: Outcome(SUCCESS in outputs[text] and FAILURE not in outputs[text], outputs[text])
        for path, text in zip(csv_paths, paths, strict=True)
    }


def validate(csv_path: Path, *, version: str = "1.0") -> Outcome:
    """The validator's verdict on one file (see ``validate_many``)."""
    return validate_many([csv_path], version=version)[csv_path]


def main() -> int:
    """``python -m tests.focus_validator``: install the validator venv (``make test`` runs this)."""
    try:
        python = ensure_installed()
    except ValidatorUnavailable as error:
        print(f"focus-validator: {error}", file=sys.stderr)
        return 1
    STAMP.touch()  # newer than requirements.txt: make sees it is done
    print(f"focus-validator 1.0.0 is installed in {python.parent.parent}")
    return 0
