"""The playground: a local web page to try a trained run (streamed generation, token view,
top-5 candidates, attention maps). Needs the `playground` extra (FastAPI, uvicorn).

    catalog = RunCatalog(Path("runs"))
    server = PlaygroundServer(create_app(catalog), "127.0.0.1", 8000)
    server.run()
"""

from __future__ import annotations

from gpt_eval.errors import EvalError


def require_web_stack() -> None:
    """Raise a one-line EvalError when FastAPI or uvicorn is not installed."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise EvalError(
            f"the playground needs {' and '.join(missing)}: install the playground extra "
            "(uv sync --group playground, or pip install 'gpt-eval[playground]')"
        )
