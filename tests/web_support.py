"""The web app under a real uvicorn server on 127.0.0.1, port 0, in a thread.

Usable by any test module (``from web_support import bound_socket, running``)::

    sock, base = bound_socket()          # bind first: the base URL goes into the config
    with running(create_app(config, store), sock):
        httpx.get(base + "/unsubscribe/...")
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def bound_socket() -> tuple[socket.socket, str]:
    """A listening-ready TCP socket on a free loopback port, and its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def running(app: Any, sock: socket.socket) -> Iterator[uvicorn.Server]:
    """Serve ``app`` on ``sock`` until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
