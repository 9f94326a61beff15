"""The playground's web app (FastAPI): the page, the run catalog, generation as server-sent
events and attention maps.

Every mistake a user can make in a request is a 4xx with a one-line `detail` the page
shows: 404 for a run or checkpoint that is not offered, 422 for a bad value, 429 when every
generation slot is taken.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from gpt_eval.errors import EvalError
from gpt_eval.playground.catalog import NotFoundError, RunCatalog
from gpt_eval.playground.generation import Generation, Slots, generation_events, pieces_json

STATIC = Path(__file__).parent / "static"
MAX_ATTENTION_TOKENS = 256  # the map covers at most the last this many tokens of the context


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how many generations may run at once."""

    max_new_tokens: int = 1000
    max_prompt_chars: int = 4000
    max_concurrent: int = 2


class RunRef(BaseModel):
    run: str = Field(min_length=1, max_length=200)
    checkpoint: str = Field(default="latest", min_length=1, max_length=200)


class TokenizeRequest(RunRef):
    text: str


class GenerateRequest(RunRef):
    prompt: str = ""
    max_new_tokens: int = Field(default=200, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=100)
    top_k: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=0, lt=2**63)


class AttentionRequest(RunRef):
    ids: list[int] = Field(min_length=1)
    layer: int = Field(default=0, ge=0)
    head: int = Field(default=0, ge=0)


def _sse(event: dict[str, Any]) -> str:
    """One server-sent event: its type on the `event:` line, the JSON on `data:`."""
    return f"event: {event['event']}\ndata: {json.dumps(event)}\n\n"


def _message(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one line: `field: what was wrong` for each."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(catalog: RunCatalog, limits: Limits | None = None) -> FastAPI:
    """The app serving `catalog`'s runs under `limits`."""
    from gpt_core import ConfigError, SamplingConfig
    from gpt_tokenizers import TokenizerError
    from gpt_train import TrainError

    limits = limits or Limits()
    slots = Slots(limits.max_concurrent)
    app = FastAPI(title="gptkit playground", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _message(exc)}, status_code=422)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    for error in (EvalError, ConfigError, TrainError, TokenizerError):

        @app.exception_handler(error)
        async def user_error(_: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    async def opened(ref: RunRef) -> Any:
        return await anyio.to_thread.run_sync(catalog.open, ref.run, ref.checkpoint)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/runs")
    async def runs() -> dict[str, Any]:
        names = await anyio.to_thread.run_sync(catalog.names)
        listed = [{"name": n, "checkpoints": catalog.checkpoints(n)} for n in names]
        return {"runs": listed, "root": str(catalog.root), "limits": limits.__dict__}

    @app.get("/api/runs/{name}")
    async def card(name: str, checkpoint: str = "latest") -> dict[str, Any]:
        return await anyio.to_thread.run_sync(catalog.card, name, checkpoint)

    @app.get("/api/health")
    async def health() -> dict[str, int]:
        return {"active": slots.active, "max_concurrent": slots.limit}

    @app.post("/api/tokenize")
    async def tokenize(req: TokenizeRequest) -> dict[str, Any]:
        if len(req.text) > limits.max_prompt_chars:
            raise EvalError(
                f"text is {len(req.text)} characters; at most {limits.max_prompt_chars}"
            )
        tok = (await opened(req)).run.tokenizer
        return {"pieces": pieces_json(tok, tok.encode(req.text))}

    @app.post("/api/generate")
    async def generate(req: GenerateRequest) -> Response:
        from gpt_eval.sampling import prompt_ids

        if req.max_new_tokens > limits.max_new_tokens:
            raise EvalError(
                f"max_new_tokens is {req.max_new_tokens}; this server allows at most "
                f"{limits.max_new_tokens}"
            )
        if len(req.prompt) > limits.max_prompt_chars:
            raise EvalError(
                f"the prompt is {len(req.prompt)} characters; at most {limits.max_prompt_chars}"
            )
        sampling = SamplingConfig(
            max_new_tokens=req.max_new_tokens,
            temperature=req.temperature,
            top_k=req.top_k,
            top_p=req.top_p,
            seed=req.seed,
        )
        run = (await opened(req)).run
        ids = prompt_ids(run.tokenizer, req.prompt)
        if not slots.take():
            return JSONResponse(
                {
                    "detail": f"busy: {slots.limit} generation(s) already running, the "
                    "most this server runs at once; try again when one ends"
                },
                status_code=429,
            )
        job = Generation(
            lambda: generation_events(run, ids, sampling), slots, asyncio.get_running_loop()
        )
        job.start()

        async def body() -> AsyncIterator[str]:
            async for event in job:
                yield _sse(event)

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @app.post("/api/attention")
    async def attention(req: AttentionRequest) -> dict[str, Any]:
        run = await opened(req)
        cfg = run.run.model.config
        vocab = run.run.tokenizer.vocab_size
        if any(not 0 <= i < vocab for i in req.ids):
            raise EvalError(f"ids must be token ids in [0, {vocab})")
        if req.layer >= cfg.n_layers or req.head >= cfg.n_heads:
            raise EvalError(
                f"layer {req.layer}, head {req.head} is not in this model "
                f"({cfg.n_layers} layers x {cfg.n_heads} heads)"
            )
        return await anyio.to_thread.run_sync(attention_map, run, req)

    return app


def attention_map(run: Any, req: AttentionRequest) -> dict[str, Any]:
    """The attention of one layer and head over the last tokens of `req.ids` (rows:
    queries, columns: keys), computed on the run's tracer copy of the model."""
    from gpt_eval.attention_plot import prompt_attention, token_labels

    context = req.ids[-min(run.run.model.config.max_seq_len, MAX_ATTENTION_TOKENS) :]
    with run.tracer_lock:
        window, maps = prompt_attention(run.tracer_model, context)
    weights = maps[req.layer][req.head]
    return {
        "layer": req.layer,
        "head": req.head,
        "n_layers": len(maps),
        "n_heads": int(maps[0].shape[0]),
        "offset": len(req.ids) - len(window),  # ids before the window (not in the map)
        "ids": window,
        "labels": token_labels(window, run.run.tokenizer.decode),
        "weights": [[round(float(w), 4) for w in row[: i + 1]] for i, row in enumerate(weights)],
    }
