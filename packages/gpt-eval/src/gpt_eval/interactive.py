"""`uv run sample --interactive`: type a prompt, watch the reply stream, change the settings.

Each line is a new prompt (a `\\n` in it is a line break), continued by `sampling.sample_text`
exactly as `uv run sample` would; a line starting with `/` is a command (`/help`). Ctrl-C
during a reply stops that reply; Ctrl-C or Ctrl-D at the prompt ends the session.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gpt_core import SamplingConfig
from gpt_core.config import ConfigError, suggest
from gpt_tokenizers import TokenizerError
from gpt_train.interrupt import InterruptPerPress

from gpt_eval.errors import EvalError
from gpt_eval.sampling import prompt_ids, sample_text

if TYPE_CHECKING:
    from gpt_train.runs import LoadedRun

PROMPT = "> "
OFF = ("off", "none")  # the value that lifts a limit (/topk off) or unsets the seed


@dataclass(frozen=True)
class Settings:
    """What the next reply is sampled with; every command returns a changed copy."""

    sampling: SamplingConfig
    verbose: bool = False

    def describe(self) -> str:
        s = self.sampling
        return (
            f"temperature {s.temperature:g}, top-k {s.top_k or 'off'}, top-p "
            f"{s.top_p if s.top_p is not None else 'off'}, seed "
            f"{s.seed if s.seed is not None else 'off'}, max {s.max_new_tokens} tokens, "
            f"verbose {'on' if self.verbose else 'off'}"
        )


def _number(kind: type[int] | type[float], may_be_off: bool) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if may_be_off and text.lower() in OFF:
            return None
        try:
            return kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"expected {what}{' or off' if may_be_off else ''}") from None

    return parse


def _switch(text: str) -> bool:
    if text.lower() not in ("on", "off"):
        raise ValueError("expected on or off")
    return text.lower() == "on"


# command -> (SamplingConfig field, or "verbose"; the value's parser; what it sets)
SETTINGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "temp": ("temperature", _number(float, False), "temperature (0 picks the likeliest token)"),
    "topk": ("top_k", _number(int, True), "sample among the k likeliest tokens (off: all)"),
    "topp": ("top_p", _number(float, True), "sample among the smallest set of mass p (off)"),
    "seed": ("seed", _number(int, True), "a fixed seed: the same prompt, the same reply (off)"),
    "max": ("max_new_tokens", _number(int, False), "tokens per reply at most"),
    "verbose": ("verbose", _switch, "on: each step's 5 likeliest tokens and the pick"),
}
COMMANDS = [*SETTINGS, "settings", "help", "quit"]
HELP = "\n".join(
    [
        "type a prompt and press Enter for a reply (\\n in a prompt is a line break)",
        *(f"  /{name} VALUE  {what}" for name, (_, _, what) in SETTINGS.items()),
        "  /settings  show the settings",
        "  /help      this list",
        "  /quit      leave (or Ctrl-D; Ctrl-C stops a reply, at the prompt it leaves)",
    ]
)


class Quit(Exception):  # noqa: N818 - a request, not an error
    """Raised by /quit."""


def apply_command(settings: Settings, line: str) -> tuple[Settings, str]:
    """The settings after a `/command [value]` line and the line to show; a bad command or
    value is an EvalError (one line); /quit raises Quit."""
    name, _, value = line.strip()[1:].partition(" ")
    name, value = name.lower(), value.strip()
    if name in ("quit", "exit", "q"):
        raise Quit
    if name == "help":
        return settings, HELP
    if name == "settings":
        return settings, settings.describe()
    if name not in SETTINGS:
        hint = suggest(name, COMMANDS).replace("'", "/", 1).replace("'", "")
        raise EvalError(f"unknown command /{name}{hint}; /help lists the commands")
    field, parse, _ = SETTINGS[name]
    if not value:
        raise EvalError(f"/{name} needs a value, e.g. /{name} {_example(name)}")
    try:
        parsed = parse(value)
        if field == "verbose":
            settings = dataclasses.replace(settings, verbose=parsed)
        else:
            sampling = dataclasses.replace(settings.sampling, **{field: parsed})
            settings = dataclasses.replace(settings, sampling=sampling)
    except (ValueError, ConfigError) as exc:
        raise EvalError(f"/{name} {value}: {exc}") from None
    return settings, settings.describe()


def _example(name: str) -> str:
    return {"temp": "0.7", "topk": "40", "topp": "0.9", "seed": "1", "max": "200"}.get(name, "on")


def prompt_loop(
    run: LoadedRun,
    settings: Settings,
    *,
    stops: Sequence[str] = (),
    read: Callable[[str], str] = input,
    write: Callable[[str], object] = print,
) -> Settings:
    """Read prompts and commands with `read` until /quit, end of input or Ctrl-C at the
    prompt; stream each reply to `write`. Returns the settings it ended with."""
    write(f"type a prompt, /help for the commands ({settings.describe()})\n")
    with InterruptPerPress():
        while True:
            try:
                line = read(PROMPT)
            except (EOFError, KeyboardInterrupt):
                write("\n")
                return settings
            try:
                if line.lstrip().startswith("/"):
                    settings, message = apply_command(settings, line)
                    write(message + "\n")
                    continue
                ids = prompt_ids(run.tokenizer, line.replace("\\n", "\n"))
            except Quit:
                return settings
            except (EvalError, TokenizerError) as exc:
                write(f"error: {exc}\n")
                continue
            try:
                sample_text(run, ids, settings.sampling, write, stops, settings.verbose)
            except KeyboardInterrupt:
                write("\n(stopped)\n")
