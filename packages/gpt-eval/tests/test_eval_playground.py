"""The playground's web app over HTTP on a real server: the run catalog and its limits,
streamed generation (char, word and BPE runs), attention maps, 422/404/429 answers, and a
client that goes away mid-stream."""

from __future__ import annotations

import json
import math
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from gpt_core import SamplingConfig, generate
from gpt_eval.playground.app import Limits, create_app
from gpt_eval.playground.catalog import RunCatalog
from gpt_eval.playground.server import PlaygroundServer
from gpt_eval.sampling import prompt_ids, with_eot_stop
from gpt_tokenizers import WordTokenizer
from gpt_train.config import load_config
from gpt_train.metrics import read_metrics
from gpt_train.prepare import prepare_data
from gpt_train.runs import load_run
from gpt_train.trainer import train

ROOT = Path(__file__).resolve().parents[3]
KINDS = ("char", "word", "bpe")


def build_runs(root: Path) -> Path:
    """runs/{char,word,bpe}: a 2-layer model trained 4 steps on each kind of tokenizer."""
    text = (ROOT / "corpora" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000]
    src = root / "text.txt"
    src.write_text(text, encoding="utf-8")
    WordTokenizer.from_text(text, vocab_size=300, eos=True).save(root / "word.json")
    specs = {"char": ("char", None), "word": (str(root / "word.json"), None), "bpe": ("bpe", 300)}
    for kind, (tokenizer, vocab) in specs.items():
        prepare_data([str(src)], root / f"data-{kind}", tokenizer, vocab, progress=False)
        values: dict[str, Any] = {
            "model": {"max_seq_len": 32, "d_model": 16, "n_layers": 2, "n_heads": 2},
            "data": {"dir": str(root / f"data-{kind}")},
            "optim": {"lr": 3e-3, "warmup_steps": 1},
            "train": {"max_steps": 4, "batch_size": 2, "device": "cpu"},
            "log": {"log_interval": 1, "eval_interval": 2, "eval_batches": 1,
                    "sample_interval": 0, "checkpoint_interval": 2, "progress": False},
        }  # fmt: skip
        train(load_config(values=values), root / "runs" / kind)
    (root / "runs" / "notes").mkdir()  # a folder that is not a run: not offered
    return root / "runs"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return build_runs(tmp_path_factory.mktemp("playground"))


@pytest.fixture(scope="module")
def server(runs_dir: Path) -> Iterator[PlaygroundServer]:
    limits = Limits(max_new_tokens=20_000, max_prompt_chars=200, max_concurrent=2)
    srv = PlaygroundServer(create_app(RunCatalog(runs_dir), limits), "127.0.0.1", 0)
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def client(server: PlaygroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Parse a server-sent event stream into (event, data) pairs."""
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            yield kind, json.loads(line[len("data: ") :])


def generate_all(client: httpx.Client, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    with client.stream("POST", "/api/generate", json=body) as res:
        assert res.status_code == 200, res.read()
        return list(events(res.iter_lines()))


def test_the_page_and_its_scripts_are_served(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="attention"' in page.text
    for asset in ("/static/playground.js", "/static/playground.css"):
        assert client.get(asset).status_code == 200


def test_only_run_folders_under_the_runs_dir_are_listed(client: httpx.Client) -> None:
    data = client.get("/api/runs").json()
    assert [r["name"] for r in data["runs"]] == sorted(KINDS)
    assert all(r["checkpoints"][:2] == ["latest", "best"] for r in data["runs"])
    assert data["limits"]["max_new_tokens"] == 20_000


@pytest.mark.parametrize("kind", KINDS)
def test_model_card(client: httpx.Client, runs_dir: Path, kind: str) -> None:
    card = client.get(f"/api/runs/{kind}", params={"checkpoint": "best"}).json()
    run = load_run(runs_dir / kind, "best")
    assert card["parameters"] == run.model.num_parameters()
    assert card["tokenizer"]["vocab_size"] == run.tokenizer.vocab_size
    assert card["tokenizer"]["type"] == kind
    assert card["model"]["n_layers"] == 2
    rows = read_metrics(runs_dir / kind / "metrics.csv")
    vals = [float(r["val_loss"]) for r in rows if r["val_loss"]]
    assert card["best_val_loss"] == pytest.approx(min(vals))
    assert card["curves"]["val"]["loss"] == pytest.approx(vals)
    assert len(card["curves"]["train"]["step"]) == len(rows)
    assert "max_seq_len: 32" in card["config_yaml"]


@pytest.mark.parametrize("kind", KINDS)
def test_streamed_generation_is_the_libraries_generation(
    client: httpx.Client, runs_dir: Path, kind: str
) -> None:
    prompt = "ROMEO: the"
    got = generate_all(
        client, run=kind, prompt=prompt, max_new_tokens=24, temperature=0.9, top_k=20, seed=3
    )
    names = [e for e, _ in got]
    assert names[0] == "start"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"token"}
    start, done = got[0][1], got[-1][1]
    tokens = [d for e, d in got if e == "token"]

    run = load_run(runs_dir / kind)
    ids = prompt_ids(run.tokenizer, prompt)
    sampling = SamplingConfig(max_new_tokens=24, temperature=0.9, top_k=20, seed=3)
    out = generate(run.model, torch.tensor([ids]), with_eot_stop(sampling, run.tokenizer))
    expected = out[0, len(ids) :].tolist()
    if run.tokenizer.eot_id in expected:
        expected = expected[: expected.index(run.tokenizer.eot_id)]
    assert [t["id"] for t in tokens] == expected
    assert start["prompt_ids"] == ids
    assert done["ids"] == ids + expected
    # The text streamed piece by piece is the decoded output; the token view covers it.
    text = "".join(t["text"] for t in tokens) + done["text"]
    assert text == run.tokenizer.decode(expected)
    pieces = [p for t in tokens for p in t["pieces"]] + done["pieces"]
    assert [i for p in pieces for i in p["ids"]] == expected
    assert "".join(p["text"] for p in start["prompt_pieces"]) == run.tokenizer.decode(ids)
    for t in tokens:  # top-k 20 >= 5: the pick is always among the 5 shown when it leads
        probs = [c["p"] for c in t["top"]]
        assert len(probs) == 5
        assert probs == sorted(probs, reverse=True)
        assert t["p"] <= probs[0] + 1e-6
        assert all(c["text"] == run.tokenizer.decode([c["id"]]) for c in t["top"])


def test_attention_rows_are_distributions_over_earlier_tokens(client: httpx.Client) -> None:
    res = client.post("/api/attention", json={"run": "char", "ids": list(range(40)), "layer": 1})
    assert res.status_code == 200, res.text
    a = res.json()
    assert (a["n_layers"], a["n_heads"]) == (2, 2)
    assert a["offset"] == 8
    assert a["ids"] == list(range(8, 40))
    assert [len(row) for row in a["weights"]] == list(range(1, 33))  # causal: keys <= query
    assert all(math.isclose(sum(row), 1.0, abs_tol=2e-3) for row in a["weights"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"temperature": -1}, "temperature: Input should be greater than or equal to 0"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_new_tokens": 20_001}, "this server allows at most 20000"),
        ({"prompt": "x" * 201}, "the prompt is 201 characters; at most 200"),
        ({"seed": "abc"}, "seed: Input should be a valid integer"),
        ({"checkpoint": "step-999"}, "has no checkpoint 'step-999'"),
    ],
)
def test_bad_parameters_get_a_422_with_a_message(
    client: httpx.Client, body: dict[str, Any], message: str
) -> None:
    res = client.post("/api/generate", json={"run": "char", "prompt": "a", **body})
    assert res.status_code == (404 if "checkpoint" in body else 422)
    assert message in res.json()["detail"]


def test_bad_attention_requests_get_a_422(client: httpx.Client) -> None:
    res = client.post("/api/attention", json={"run": "char", "ids": [1, 2], "layer": 2})
    assert res.status_code == 422
    assert "not in this model (2 layers x 2 heads)" in res.json()["detail"]
    res = client.post("/api/attention", json={"run": "char", "ids": [10**6]})
    assert res.status_code == 422
    assert "token ids in [0, " in res.json()["detail"]


def test_runs_outside_the_runs_dir_cannot_be_opened(client: httpx.Client, runs_dir: Path) -> None:
    outside = runs_dir.parent / "outside"
    if not outside.exists():  # a real run folder beside the runs dir
        shutil.copytree(runs_dir / "char", outside)
    ckpt = runs_dir / "char" / "checkpoints" / "best"
    for name in ("../outside", str(outside), "char/../../outside", "..", ".", "notes"):
        res = client.post("/api/generate", json={"run": name, "prompt": "a", "max_new_tokens": 1})
        assert res.status_code == 404, name
        assert "no run named" in res.json()["detail"]
        assert client.post("/api/tokenize", json={"run": name, "text": "a"}).status_code == 404
    res = client.get("/api/runs/..%2Foutside")
    assert res.status_code == 404
    res = client.post("/api/tokenize", json={"run": "char", "checkpoint": str(ckpt), "text": "a"})
    assert res.status_code == 404  # a checkpoint is one the run lists, never a path
    assert "has no checkpoint" in res.json()["detail"]


def test_a_busy_server_says_429_and_a_vanished_client_frees_its_slot(
    client: httpx.Client, server: PlaygroundServer
) -> None:
    # Greedy: this model never picks end-of-text, so each stream would run 20000 tokens.
    body = {"run": "char", "prompt": "a", "max_new_tokens": 20_000, "temperature": 0}
    streams, readers = [], []
    for _ in range(2):  # both slots: readers that take one event, then stop reading
        cm = client.stream("POST", "/api/generate", json=body)
        res = cm.__enter__()
        assert res.status_code == 200
        readers.append(res.iter_lines())
        assert next(readers[-1]) == "event: start"
        streams.append(cm)
    assert client.get("/api/health").json() == {"active": 2, "max_concurrent": 2}
    busy = client.post("/api/generate", json={**body, "max_new_tokens": 5})
    assert busy.status_code == 429
    assert "busy: 2 generation(s) already running" in busy.json()["detail"]
    for cm in streams:  # the clients go away mid-stream
        cm.__exit__(None, None, None)
    got = _wait_for_free_slots(client)
    assert got == {"active": 0, "max_concurrent": 2}
    # ... and the server goes on serving: two at once, each whole and the same for one seed.
    results: list[list[tuple[str, dict[str, Any]]]] = []

    def one() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            results.append(generate_all(c, **{**body, "max_new_tokens": 30}))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    assert results[0][-1][0] == "done"
    assert results[0][-1][1]["ids"] == results[1][-1][1]["ids"]


def _wait_for_free_slots(client: httpx.Client, timeout: float = 10.0) -> dict[str, int]:
    import time

    deadline = time.monotonic() + timeout
    health: dict[str, int] = client.get("/api/health").json()
    while health["active"] and time.monotonic() < deadline:
        time.sleep(0.05)
        health = client.get("/api/health").json()
    return health


def _chromium() -> str | None:
    """The system Chromium (CI installs Debian's), or CHROMIUM when set."""
    import os

    given = os.environ.get("CHROMIUM")
    if given:
        return given
    return next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )


def test_the_page_in_a_real_browser(
    server: PlaygroundServer, client: httpx.Client, tmp_path: Path
) -> None:
    """Pick a run, generate, read the token view, the top-5 panel and the attention canvas;
    a bad value shows its message; Stop ends a long generation."""
    import os

    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 980})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        page.select_option("#run", "char")
        page.wait_for_function("document.querySelector('#card').textContent.includes('char,')")
        assert "best val loss" in page.inner_text("#card")
        page.fill("#prompt", "ROMEO:")
        for field, value in [("#temperature", "1"), ("#top_k", "5"), ("#seed", "1"),
                             ("#max_new_tokens", "60")]:  # fmt: skip
            page.fill(field, value)
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('done')")
        page.wait_for_selector("#attention[data-drawn]")
        assert "char, " in page.inner_text("#card")  # the card of the run chosen, not the first
        output = page.inner_text("#output")
        assert output.startswith("ROMEO:")
        assert len(output) > len("ROMEO:")
        # The token view: one span per character here, ids on hover.
        assert page.locator(".tok.prompt").count() == len("ROMEO:")
        gen = page.locator(".tok.gen")
        assert gen.count() == 60  # every generated character (no end-of-text: see the status)
        assert page.inner_text("#status") == "done: 60 tokens (length)"
        assert gen.first.get_attribute("data-step") == "0"
        assert (page.locator(".tok.prompt").first.get_attribute("title") or "").startswith("id ")
        gen.nth(9).click()  # its top-5 candidates, the pick marked (top-k 5: always among them)
        assert page.locator("#candidates tbody tr").count() == 5
        assert page.locator("#candidates tr.chosen").count() == 1
        assert page.inner_text("#cand-title") == "(step 9)"
        page.select_option("#layer", "1")
        page.wait_for_selector('#attention[data-drawn="1,0"]')
        # The context step 9 was picked from: the prompt and the 9 tokens before it.
        assert "over the context step 9 was picked from (last row, red): 15 tokens" in (
            page.inner_text("#att-info")
        )
        lit = page.evaluate(
            """() => { const c = document.querySelector('#attention');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 0; i < d.length; i += 4)
              if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) n++;
            return n / (c.width * c.height); }"""
        )
        assert 0.3 < lit < 0.8  # the lower triangle is drawn, the upper one left blank
        shot = page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)
        assert len(shot) > 10_000
        if os.environ.get("PLAYGROUND_SCREENSHOT"):  # a copy for the developer to look at
            shutil.copy(tmp_path / "playground.png", os.environ["PLAYGROUND_SCREENSHOT"])

        page.fill("#max_new_tokens", "20001")  # over the server's cap: the page says why
        page.click("#generate")
        page.wait_for_selector("#error:not([hidden])")
        assert "at most 20000" in page.inner_text("#error")

        page.fill("#max_new_tokens", "20000")  # a long greedy run, then Stop
        page.fill("#temperature", "0")
        page.click("#generate")
        page.wait_for_function(
            "/generating… [1-9]/.test(document.querySelector('#status').textContent)"
        )
        page.click("#stop")
        page.wait_for_function(
            "document.querySelector('#status').textContent.startsWith('stopped')"
        )
        assert page.is_enabled("#generate")
        browser.close()
    assert errors == []
    assert _wait_for_free_slots(client)["active"] == 0
