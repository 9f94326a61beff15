"""Serving the playground with uvicorn on a socket bound before the server starts, so the
URL printed (port 0 picks a free one) is the one that answers."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

from gpt_eval.errors import EvalError

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or an EvalError saying why not."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise EvalError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port"
        ) from None


class PlaygroundServer:
    """uvicorn serving `app` on host:port; run() blocks, start() serves from a thread."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
        import uvicorn

        self.socket = bind(host, port)
        bound_host, bound_port = self.socket.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}/"
        config = uvicorn.Config(
            app, log_level="warning", timeout_graceful_shutdown=2, access_log=False
        )
        self.server: uvicorn.Server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until Ctrl-C (uvicorn handles the signal and shuts down cleanly)."""
        self.server.run(sockets=[self.socket])

    def start(self, timeout: float = 10.0) -> None:
        """Serve from a background thread; returns once the server answers."""
        self.thread = threading.Thread(target=self.run, name="playground-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise EvalError(f"the playground server did not start on {self.url}")
            time.sleep(0.02)

    def close(self) -> None:
        """Stop serving (from start()) and wait for the thread."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.socket.close()
