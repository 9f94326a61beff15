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
        (["--input", "x.txt", "--download-timeout", "0"], "download timeout must be positive"),
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


def test_an_out_that_is_a_file_is_one_line_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "a.txt"
    src.write_text("hello world\n" * 50)
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    with pytest.raises(SystemExit) as exc:
        main(["--input", str(src), "--out", str(out), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: output {out} is a file; give a folder (new, empty or a dataset)\n"
    assert out.read_text() == "mine"


def test_a_failed_rerun_keeps_the_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "a.txt"
    src.write_text("hello world\n" * 50)
    main(["--input", str(src), "--out", str(tmp_path / "d"), "--quiet"])
    before = {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()}
    with pytest.raises(SystemExit) as exc:
        main(["--input", str(tmp_path / "a.txtt"), "--out", str(tmp_path / "d"), "--quiet"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()} == before
