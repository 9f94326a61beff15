"""Fixtures shared by every test in the workspace (test module names must be unique)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The root of the gptkit checkout."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def prepared_prefix(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """prepared(n): a data folder prepared by gpt_train (char tokenizer, default split) from
    the first n bytes of the committed corpora/tinyshakespeare.txt, made once per n for the
    session. Tests only read it: their runs write to folders of their own."""
    made: dict[int, Path] = {}

    def prepared(n: int) -> Path:
        if n not in made:
            from gpt_train.prepare import prepare_data  # torch: only for tests that train

            tmp = tmp_path_factory.mktemp(f"prefix{n}")
            src = tmp / "shakespeare.txt"
            src.write_bytes((REPO_ROOT / "corpora" / "tinyshakespeare.txt").read_bytes()[:n])
            prepare_data([str(src)], tmp / "prepared", progress=False)
            made[n] = tmp / "prepared"
        return made[n]

    return prepared


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test on one torch thread (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    for tiny models, torch's thread pool on a busy machine only waits on itself."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _pickle(file: Path) -> None:
    import torch

    class Evil:  # unpickling it would run print("pwned"): a safe loader must refuse it
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    torch.save({"evil": Evil()}, file)


# Ways a checkpoint file breaks: case -> (file in the checkpoint folder, how it is damaged,
# what the error or skip message must say). Used through the `checkpoint_break` fixture.
CHECKPOINT_BREAKS: dict[str, tuple[str, Callable[[Path], object], str]] = {
    "truncated weights": ("model.safetensors", _truncate, "is truncated or corrupt"),
    "truncated state": ("state.pt", _truncate, "is truncated or corrupt"),
    "corrupt meta": ("meta.json", lambda f: f.write_text('{"step": 4, "tok'), "is corrupt"),
    "meta without a step": ("meta.json", lambda f: f.write_text("[1, 2]"), "step number"),
    "pickled state": ("state.pt", _pickle, "something other than tensors and plain containers"),
    "no state": ("state.pt", lambda f: f.unlink(), "no state.pt"),
}


@pytest.fixture(params=list(CHECKPOINT_BREAKS))
def checkpoint_break(request: pytest.FixtureRequest) -> tuple[str, Callable[[Path], object], str]:
    """(file name, damage(path), expected message) for each way in CHECKPOINT_BREAKS; a test
    takes a few of them with `@pytest.mark.parametrize("checkpoint_break", [...],
    indirect=True)`."""
    return CHECKPOINT_BREAKS[request.param]
