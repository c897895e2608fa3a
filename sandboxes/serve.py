"""Serve a sandbox app over real HTTP until Ctrl-C or SIGTERM (how the stack stops it)."""

from __future__ import annotations

import signal
from types import FrameType

from flask import Flask
from werkzeug.serving import make_server


def serve(app: Flask, host: str, port: int, banner: str) -> None:
    """`banner` may use {url}; it is printed once the socket is listening."""
    server = make_server(host, port, app, threaded=True)

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(banner.format(url=f"http://{host}:{server.server_port}"), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
