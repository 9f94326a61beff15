"""The workspace wiring a fresh clone relies on: commands, --help, the tokenizer alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

COMMANDS = [
    "train",
    "sample",
    "sweep",
    "tokenizer",
    "prepare",
    "bench",
    "plot",
    "evaluate",
    "microgpt",
    "playground",
]


def _script(name: str) -> str:
    """The console script installed beside this interpreter (uv's .venv/bin)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"console script {name!r} is not installed in {path.parent}"
    return str(path)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = subprocess.run([_script(command), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {command}")


def test_importing_tokenizers_does_not_import_torch() -> None:
    code = "import sys, gpt_tokenizers; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tokenizer_wheel_declares_no_torch(repo_root: Path, tmp_path: Path) -> None:
    """A user who installs only gpt-tokenizers must not be handed torch."""
    subprocess.run(
        [
            "uv",
            "build",
            "--wheel",
            "--quiet",
            "--out-dir",
            str(tmp_path),
            str(repo_root / "packages" / "gpt-tokenizers"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("gpt_tokenizers-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta_name).decode()
        names = zf.namelist()
    requires = [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    dist_names = sorted(
        r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip() for r in requires
    )
    assert dist_names == ["regex", "tiktoken", "tqdm"]
    assert "gpt_tokenizers/py.typed" in names
