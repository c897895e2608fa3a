"""Ceiling for part 1: a Flask hello-world on the webhook's path, under the same gunicorn
settings as linecap's receiver (`bench.hello_app:create_app()`). It reads the body and answers
200 with nothing else: what this stack (gunicorn, Flask, loopback) can do at most here."""

from __future__ import annotations

from flask import Flask, request


def create_app() -> Flask:
    app = Flask("bench_hello")

    @app.post("/webhooks/line/<channel_id>")
    def hello(channel_id: str) -> tuple[str, int]:
        request.get_data()
        return "OK", 200

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "OK", 200

    return app
