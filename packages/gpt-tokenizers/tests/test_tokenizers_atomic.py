"""atomic_path: a target is replaced whole or left untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gpt_tokenizers.atomic import atomic_path, clean_leftovers, write_text_atomic


def test_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_failure_leaves_old_content(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("kept")

    def killed_midway() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        killed_midway()
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_folder_replaces_folder(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    for text in ("old", "new"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "w.bin").write_text(text)
    assert (target / "w.bin").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_clean_leftovers_restores_a_folder_moved_aside(tmp_path: Path) -> None:
    # A kill between "move the old folder aside" and "rename the new one in".
    (tmp_path / f".old-best-{os.getpid()}").mkdir()
    (tmp_path / f".old-best-{os.getpid()}" / "w").write_text("best")
    (tmp_path / ".tmp-best-99").mkdir()
    removed = clean_leftovers(tmp_path)
    assert [p.name for p in removed] == [".tmp-best-99"]
    assert (tmp_path / "best" / "w").read_text() == "best"
