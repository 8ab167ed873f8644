"""A real mlgate server on a free loopback port, in a thread of this process (demo only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mlgate.config import Settings
from mlgate.errors import ConfigError

__all__ = ["background_server"]


@contextmanager
def background_server(settings: Settings, *, seed: int = 7) -> Iterator[str]:
    """Serve the workspace's endpoints on 127.0.0.1; yields the base URL; stops on exit."""
    import uvicorn

    from mlgate.serving.app import ServeConfig, create_app

    app = create_app(settings, ServeConfig(poll_interval_s=0.2, seed=seed))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="mlgate-demo-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (server.started and server.servers):
            if time.monotonic() > deadline or not thread.is_alive():
                raise ConfigError("the demo server did not start on 127.0.0.1 within 30 s")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
