"""`uv run playground`: its one-line errors, and the real server started by the command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from gpt_cli import playground


def error_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exc:
        playground.main(list(args))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip()


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        playground.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--run", "--runs-dir", "--host", "--port", "--max-concurrent"):
        assert flag in out


def test_bad_inputs_are_one_line_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert error_of(capsys, "--runs-dir", str(missing)) == (
        f"error: runs directory not found: {missing}"
    )
    (tmp_path / "half").mkdir()
    assert "is not a run folder (it needs config.yaml and tokenizer.json)" in error_of(
        capsys, "--run", str(tmp_path / "half")
    )
    assert error_of(capsys, "--max-concurrent", "0") == (
        "error: --max-concurrent must be at least 1, got 0"
    )
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        err = error_of(capsys, "--runs-dir", str(tmp_path), "--port", str(port))
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert err.endswith("pick another --port")


def test_the_command_prints_its_url_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gpt_cli.playground", "--runs-dir", str(tmp_path)]
    # Another loopback address stands for "not 127.0.0.1": the command warns about it.
    proc = subprocess.Popen(
        [*cmd, "--host", "127.0.0.2", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("open http://127.0.0.2:"), line
        url = line.split()[1]
        with urllib.request.urlopen(url + "api/runs", timeout=10) as res:
            assert json.load(res)["runs"] == []
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "warning: listening on 127.0.0.2 makes the playground reachable" in err
    assert f"0 run(s) from {tmp_path.resolve()}" in err
