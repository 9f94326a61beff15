"""log.backends: TensorBoard and W&B receive the rows of metrics.csv, resume included."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_train.config import load_config
from gpt_train.dashboards import SCALARS, TENSORBOARD_DIR, WANDB_DIR, wandb_mode
from gpt_train.errors import TrainError
from gpt_train.metrics import read_metrics
from gpt_train.trainer import Trainer, train

TEXT = "the quick brown fox jumps over the lazy dog.\n" * 60


class CrashError(Exception):
    """Stands for a run killed after logging steps its last checkpoint does not hold."""


def _config(tmp_path: Path, backends: list[str], max_steps: int) -> Any:
    (tmp_path / "text.txt").write_text(TEXT)
    return load_config(
        values={
            "model": {"max_seq_len": 16, "d_model": 16, "n_layers": 1, "n_heads": 2},
            "data": {"dir": str(tmp_path / "data"), "input": [str(tmp_path / "text.txt")]},
            "optim": {"lr": 3e-3, "warmup_steps": 2},
            "train": {"max_steps": max_steps, "batch_size": 2, "device": "cpu", "threads": 1},
            "log": {
                "log_interval": 1,
                "eval_interval": 2,
                "eval_batches": 1,
                "sample_interval": 0,
                "checkpoint_interval": 4,
                "progress": False,
                "backends": backends,
            },
        }
    )


def _crash_at(step: int) -> Any:
    def hook(now: int, trainer: Trainer) -> None:
        if now == step:
            raise CrashError

    return hook


def _train_with_a_crash_and_resume(tmp_path: Path, backends: list[str]) -> Path:
    """Steps 1-6 logged, checkpoint at 4, crash; the resume logs 5-10 again."""
    run = tmp_path / "run"
    with pytest.raises(CrashError):
        train(_config(tmp_path, backends, 10), run, on_step=_crash_at(6))
    assert [r["step"] for r in read_metrics(run / "metrics.csv")][-1] == "6"
    result = train(_config(tmp_path, backends, 10), run, resume=True)
    assert result.step == 10
    return run


def _csv_series(run: Path, column: str) -> list[tuple[int, float]]:
    rows = read_metrics(run / "metrics.csv")
    return [(int(r["step"]), float(r[column])) for r in rows if r[column]]


@pytest.mark.slow
def test_tensorboard_events_hold_the_rows_of_metrics_csv(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = _train_with_a_crash_and_resume(tmp_path, ["tensorboard"])
    assert [int(r["step"]) for r in read_metrics(run / "metrics.csv")] == list(range(1, 11))
    events = EventAccumulator(str(run / TENSORBOARD_DIR))
    events.Reload()
    assert set(events.Tags()["scalars"]) >= {"train/loss", "val/loss", "train/lr"}
    for column in ("train_loss", "val_loss", "lr", "grad_norm"):
        logged = [(e.step, e.value) for e in events.Scalars(SCALARS[column])]
        expected = _csv_series(run, column)
        # each step once: the events of steps 5-6 from before the crash were purged
        assert [s for s, _ in logged] == [s for s, _ in expected], column
        # metrics.csv keeps 6 significant digits, the event file float32
        assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-5)
    assert [s for s, _ in _csv_series(run, "val_loss")] == [2, 4, 6, 8, 10]


def _wandb_records(path: Path) -> list[Any]:
    """The protobuf records of a .wandb file (a LevelDB-style log of 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    records, pending, pos, block = [], b"", 7, 32 * 1024
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _wandb_history(run_file: Path) -> dict[str, list[tuple[int, float]]]:
    history: dict[str, list[tuple[int, float]]] = {}
    for record in _wandb_records(run_file):
        if record.WhichOneof("record_type") != "history":
            continue
        items = {
            "/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item
        }
        for tag, value in items.items():
            if not tag.startswith("_"):
                history.setdefault(tag, []).append((int(items["_step"]), float(value)))
    return history


@pytest.mark.slow
def test_wandb_logs_offline_without_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no wandb settings of the user's
    assert wandb_mode() == "offline"
    run = _train_with_a_crash_and_resume(tmp_path, ["wandb"])
    sessions = sorted((run / WANDB_DIR).glob("offline-run-*"))
    assert len(sessions) == 2  # the first session and the resume
    run_ids = {p.name.rsplit("-", 1)[1] for p in sessions}
    assert len(run_ids) == 1  # the resume continues the same W&B run
    first, second = (_wandb_history(next(p.glob("*.wandb"))) for p in sessions)
    assert [s for s, _ in first["train/loss"]] == [1, 2, 3, 4, 5, 6]
    # the resumed session logs from the checkpoint on: what metrics.csv holds for 5-10
    for column in ("train_loss", "val_loss", "lr"):
        expected = [(s, v) for s, v in _csv_series(run, column) if s > 4]
        logged = second[SCALARS[column]]
        assert [s for s, _ in logged] == [s for s, _ in expected], column
        assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-5)


def test_wandb_mode_follows_the_users_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() is None  # wandb reads WANDB_MODE itself
    monkeypatch.delenv("WANDB_MODE")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "0" * 40 + "\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert wandb_mode() == "online"  # logged in with `wandb login`
    monkeypatch.setenv("NETRC", str(tmp_path / "missing"))
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    assert wandb_mode() == "online"


def test_an_unknown_backend_is_one_line_with_a_suggestion() -> None:
    with pytest.raises(TrainError) as exc:
        load_config(overrides=["log.backends=[csv, tensorbord]"])
    assert str(exc.value) == (
        "config: log.backends = ['csv', 'tensorbord']: 'tensorbord' is not one of "
        "csv, tensorboard, wandb (did you mean 'tensorboard'?)"
    )
    assert load_config(overrides=["log.backends=wandb"]).log.backends == ["csv", "wandb"]


def test_threads_from_the_config_are_what_torch_uses(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cfg = _config(tmp_path, ["csv"], 1)
        train(cfg, tmp_path / "run")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(TrainError, match=r"train.threads = 0 must be > 0"):
        load_config(overrides=["train.threads=0"])


@pytest.mark.parametrize("backend", ["tensorboard", "wandb"])
def test_a_missing_dashboard_package_is_one_line_and_writes_nothing(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, backend, None)  # `import backend` now fails
    cfg = _config(tmp_path, [backend], 2)
    with pytest.raises(TrainError) as exc:
        train(cfg, tmp_path / "run")
    assert str(exc.value) == (
        f"log.backends includes {backend}, but its package is not installed: install the "
        "dashboards extra (uv sync --group dashboards, or pip install "
        "'gpt-train[dashboards]'), or remove it from log.backends"
    )
    assert not (tmp_path / "run" / "config.yaml").exists()  # the next try starts cleanly
