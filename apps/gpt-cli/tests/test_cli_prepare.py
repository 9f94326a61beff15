"""`uv run prepare`: the command line over gpt_train.prepare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpt_cli.prepare import main


def test_prepare_writes_the_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "a.txt"
    src.write_text("hello world, hello gptkit\n" * 50)
    main(["--input", str(src), "--out", str(tmp_path / "d"), "--char", "--val-fraction", "0.2",
          "--quiet"])  # fmt: skip
    assert f"wrote {tmp_path / 'd'}" in capsys.readouterr().out
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert meta["dtype"] == "uint16"
    assert meta["val_fraction"] == 0.2
    assert {p.name for p in (tmp_path / "d").iterdir()} == {
        "train.bin", "val.bin", "meta.json", "tokenizer.json"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "missing.txt"], "input not found: missing.txt"),
        (["--input", "x.txt", "--sha256", "ab"], "1 --sha256 value(s) for 0 URL input(s)"),
        (["--input", "x.txt", "--vocab-size", "100"], "at least 257"),
    ],
)
def test_prepare_errors_are_one_line(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path / "d")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
