"""Build docs/gptkit-tutorial.pdf: the tutorial and the theory typeset as one book (`make pdf`).

The build trains a tiny run on the names (gpt_train.train), draws its loss curve and an
attention map with gpt_eval's own plots, puts them where the tutorial marks them, converts the
Markdown (TeX math, fenced code) to Typst with pandoc and typesets it with typst. Both tools
install from PyPI (the `docs` dependency group: pypandoc-binary, typst), so no TeX is needed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "tutorial.md", ROOT / "docs" / "theory.md")
OUT = ROOT / "docs" / "gptkit-tutorial.pdf"
TITLE = "gptkit: a tutorial and the theory"
SUBTITLE = "Train, sample and study GPT language models from first principles"
# GitHub-flavoured Markdown as the docs are written, with $...$ / $$...$$ math, and an image
# alone in its paragraph becoming a numbered figure with its alt text as caption.
MARKDOWN = "gfm+tex_math_dollars+implicit_figures"
# `<!-- pdf-figure: NAME | caption -->` in a doc: the figure NAME the build draws goes here
# (an HTML comment, so GitHub shows nothing where the PDF shows the picture).
FIGURE_MARK = re.compile(r"^<!--\s*pdf-figure:\s*(?P<name>[^|]+?)\s*\|\s*(?P<caption>.+?)\s*-->$")
# pandoc's Typst writer still spells a few math symbols the way typst versions before 0.14
# did; typst now refuses them ("unknown symbol modifier").
TYPST_SYMBOLS = {"dot.circle": "dot.o"}
# ... and rounds TeX's spaces to whole ems: \! (-3/18 em) becomes -1 em, which overprints
# `\mathrm{softmax}\!\left(`, and \; (5/18 em) 0 em. Drop the first (a cosmetic kern) and
# say the second as \: (4/18 em), which Typst has a name for (med).
TEX_SPACES = {r"\!": "", r"\;": r"\:"}
# Set before the body: chapters start on a new page, code blocks stand out and wrap.
PREAMBLE = """\
#show heading.where(level: 1): it => { pagebreak(weak: true); it }
#show raw.where(block: true): set text(size: 8pt)
#show raw.where(block: true): it => block(
  fill: luma(246), inset: 6pt, radius: 3pt, width: 100%, it)
#set image(width: 88%)
"""

Ast = Any  # pandoc's JSON document: nested dicts and lists


class BuildError(Exception):
    """A problem with the inputs, said in one line (shown without a traceback)."""


def step(message: str) -> None:
    """One progress line, at once (the build's steps take seconds each)."""
    print(message, flush=True)


def check_docs(docs: Sequence[Path]) -> None:
    """Every doc must exist and open with its chapter title, a `# ` heading."""
    for doc in docs:
        if not doc.is_file():
            raise BuildError(f"{doc}: no such file (the PDF is built from {_names(docs)})")
        first = next((ln for ln in doc.read_text(encoding="utf-8").splitlines() if ln.strip()), "")
        if not first.startswith("# "):
            raise BuildError(f"{doc}: expected its first line to be the chapter title, '# Title'")


def _names(docs: Sequence[Path]) -> str:
    return ", ".join(d.name for d in docs)


def train_tiny_run(work: Path, steps: int) -> Path:
    """Train configs/names.yaml shortened to `steps` steps on the CPU; return its run folder."""
    from gpt_micro.train import DEFAULT_NAMES
    from gpt_train.config import load_config
    from gpt_train.trainer import train

    cfg = load_config(
        ROOT / "configs" / "names.yaml",
        values={
            "data": {"dir": str(work / "data"), "input": [str(DEFAULT_NAMES)]},
            "optim": {"warmup_steps": max(1, steps // 6)},
            "train": {"max_steps": steps, "device": "cpu", "threads": 1},
            "log": {
                "log_interval": max(1, steps // 20),
                "eval_interval": max(1, steps // 6),
                "eval_batches": 4,
                "checkpoint_interval": steps,
                "progress": False,
            },
        },
    )
    return train(cfg, work / "runs" / "names", overwrite=True).run_dir


def draw_figures(run_dir: Path, figures: Path) -> dict[str, Path]:
    """The run's loss curves and the attention of its first window of names, by file name."""
    from gpt_eval.attention_plot import save_prompt_attention
    from gpt_eval.plots import plot_runs
    from gpt_micro.train import DEFAULT_NAMES
    from gpt_train.runs import load_run

    drawn = plot_runs([run_dir], figures)
    run = load_run(run_dir)
    prompt = DEFAULT_NAMES.read_text(encoding="utf-8")[: run.model.config.max_seq_len]
    drawn.append(
        save_prompt_attention(run, run.tokenizer.encode(prompt), figures / "attention.png")
    )
    return {p.name: p for p in drawn}


def place_figures(doc: Path, text: str, figures: Mapping[str, Path]) -> str:
    """Replace each pdf-figure mark of `doc` by the drawn figure as a Markdown image."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        mark = FIGURE_MARK.match(line.strip())
        if mark is None:
            continue
        name = mark["name"]
        if name not in figures:
            raise BuildError(
                f"{doc}:{i + 1}: figure {name!r} is not one the build draws "
                f"(it draws {', '.join(sorted(figures))})"
            )
        lines[i] = f"![{mark['caption']}]({figures[name].as_posix()})"
    return "\n".join(lines) + "\n"


def _walk(node: Ast, fix: Callable[[dict[str, Any]], Ast]) -> Ast:
    """Rebuild a pandoc AST bottom-up, passing every element (a dict with a "t") to `fix`."""
    if isinstance(node, list):
        return [_walk(x, fix) for x in node]
    if isinstance(node, dict):
        out = {k: _walk(v, fix) for k, v in node.items()}
        return fix(out) if "t" in out else out
    return node


def chapter_id(doc: Path) -> str:
    """The label of a doc's chapter heading, the target of links to that doc."""
    return f"chapter-{doc.stem}"


def fix_targets(doc: Path, ast: Ast, chapters: Sequence[Path], work: Path) -> Ast:
    """Make `doc`'s relative links and images work in a PDF built in `work`.

    A link to another chapter (theory.md, theory.md#section) jumps there; a link to any other
    file of the repository has no meaning on paper, so only its text stays. A relative image is
    copied into `work`, where typst looks for it."""
    included = {d.resolve(): chapter_id(d) for d in chapters}
    titled = False

    def fix(el: dict[str, Any]) -> Ast:
        nonlocal titled
        kind = el["t"]
        if kind == "Header" and el["c"][0] == 1 and not titled:
            el["c"][1][0] = chapter_id(doc)  # the chapter heading, whatever its wording
            titled = True
        elif kind == "Math":
            for old, new in TEX_SPACES.items():  # not after a backslash: "\\;" is a line break
                template = new.replace("\\", "\\\\")
                el["c"][1] = re.sub(rf"(?<!\\){re.escape(old)}", template, el["c"][1])
        elif kind == "Link":
            attr, inlines, (target, title) = el["c"]
            split = urlsplit(target)
            if split.scheme or target.startswith("#"):
                return el
            path = (doc.parent / split.path).resolve()
            if path in included:
                el["c"][2] = [f"#{split.fragment or included[path]}", title]
                return el
            return {"t": "Span", "c": [attr, inlines]}
        elif kind == "Image":
            target = el["c"][2][0]
            if urlsplit(target).scheme:
                raise BuildError(f"{doc}: image {target} is not a local file (the PDF embeds it)")
            path = (doc.parent / target).resolve()
            if not path.is_file():
                raise BuildError(f"{doc}: image {target} not found (looked for {path})")
            if not path.is_relative_to(work):
                copy = work / "assets" / path.name
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)
                path = copy
            el["c"][2][0] = path.relative_to(work).as_posix()
        return el

    return _walk(ast, fix)


def to_typst(docs: Sequence[Path], texts: Sequence[str], work: Path) -> str:
    """The docs as one Typst document: a title, a table of contents, one chapter per doc."""
    import pypandoc

    blocks: list[Ast] = []
    ast: Ast = None
    for doc, text in zip(docs, texts, strict=True):
        ast = json.loads(pypandoc.convert_text(text, "json", format=MARKDOWN))
        blocks.extend(fix_targets(doc, ast, docs, work)["blocks"])
    ast["blocks"] = blocks
    ast["meta"] = {
        "title": {"t": "MetaString", "c": TITLE},
        "subtitle": {"t": "MetaString", "c": SUBTITLE},
    }
    source: str = pypandoc.convert_text(
        json.dumps(ast),
        "typst",
        format="json",
        extra_args=[
            "--standalone",
            "--toc",
            "--toc-depth=2",
            "--variable=papersize:a4",
            "--variable=fontsize:10pt",
            "--variable=page-numbering:1",
            "--variable=linkcolor:\\#1f4e9c",
            f"--variable=header-includes:{PREAMBLE}",
        ],
    )
    for old, new in TYPST_SYMBOLS.items():
        source = re.sub(rf"(?<![\w.]){re.escape(old)}(?![\w.])", new, source)
    return source


def typeset(source: str, work: Path) -> tuple[bytes, list[str]]:
    """Compile Typst source to PDF bytes with typst's bundled fonts only (same on every
    machine); returns the PDF and typst's warnings."""
    import typst

    path = work / "gptkit-tutorial.typ"
    path.write_text(source, encoding="utf-8")
    try:
        pdf, warnings = typst.compile_with_warnings(path, root=work, ignore_system_fonts=True)
    except typst.TypstError as exc:
        raise BuildError(f"typst could not typeset {path}: {exc.diagnostic or exc}") from None
    assert isinstance(pdf, bytes)
    return pdf, [w.message for w in warnings]


def build(docs: Sequence[Path], out: Path, work: Path, steps: int) -> Path:
    """Train, draw, convert and typeset; write the PDF to `out` (atomically) and return it."""
    from gpt_tokenizers.atomic import write_bytes_atomic

    check_docs(docs)
    start = time.perf_counter()
    step(f"[1/4] training a tiny run on the names ({steps} steps, CPU) in {work / 'runs'}")
    run_dir = train_tiny_run(work, steps)
    step(f"[2/4] drawing its loss curve and attention map in {work / 'figures'}")
    figures = draw_figures(run_dir, work / "figures")
    step(f"[3/4] converting {_names(docs)} to Typst (pandoc)")
    texts = [place_figures(d, d.read_text(encoding="utf-8"), figures) for d in docs]
    source = to_typst(docs, texts, work)
    step("[4/4] typesetting (typst)")
    pdf, warnings = typeset(source, work)
    for warning in warnings:
        step(f"  typst warning: {warning}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, pdf)
    step(f"wrote {out} ({len(pdf) / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="build_pdf.py",
        description="Typeset docs/tutorial.md and docs/theory.md as one PDF, with the loss "
        "curve and attention map of a tiny run trained during the build (`make pdf`).",
    )
    p.add_argument(
        "--out", type=Path, default=OUT, help=f"the PDF to write (default: {OUT.relative_to(ROOT)})"
    )
    p.add_argument(
        "--docs",
        type=Path,
        nargs="+",
        default=list(DOCS),
        help="the Markdown chapters, in order (default: docs/tutorial.md docs/theory.md)",
    )
    p.add_argument(
        "--steps", type=int, default=60, help="training steps of the tiny run (default: 60)"
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep the run, figures and Typst source here (default: a temporary folder)",
    )
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be at least 1, got {args.steps}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_docs(args.docs)  # before the imports of torch and friends: a typo fails at once
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from gpt_eval.errors import EvalError
    from gpt_train.errors import TrainError

    try:
        if args.work_dir is not None:
            args.work_dir.mkdir(parents=True, exist_ok=True)
            build(args.docs, args.out.resolve(), args.work_dir.resolve(), args.steps)
        else:
            with tempfile.TemporaryDirectory(prefix="gptkit-pdf-") as tmp:
                build(args.docs, args.out.resolve(), Path(tmp).resolve(), args.steps)
    except (BuildError, TrainError, EvalError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
