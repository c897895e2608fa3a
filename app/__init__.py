"""The Flask application factory for the webhook receiver and its operational endpoints."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Settings, settings_or_exit


class LinecapFlask(Flask):
    """Flask whose error log names the route, not the path: a path can carry an id meant for
    one person (a link session in /link/<session>), and logs are read by many."""

    def log_exception(self, exc_info) -> None:  # type: ignore[no-untyped-def]
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        self.logger.error("Exception on %s [%s]", rule, request.method, exc_info=exc_info)


def create_app(settings: Settings | None = None, publisher=None, redis_client=None,
               celery_app=None) -> Flask:
    """Build the receiver. Tests may hand in settings, a publisher, Redis and a Celery app."""
    if settings is None:
        # 4 is gunicorn's "app failed to load": the master stops instead of rebooting workers.
        settings = settings_or_exit(exit_code=4)
        from core.logs import configure_logging, settings_secrets

        configure_logging(secrets=settings_secrets(settings))
    app = LinecapFlask("linecap")
    app.config["LINECAP_SETTINGS"] = settings
    # One byte more than any body may have, so app.bodies.read_body sees that a chunked body
    # went past the limit instead of werkzeug cutting it there.
    app.config["MAX_CONTENT_LENGTH"] = settings.webhook_max_body_bytes + 1
    if redis_client is None:
        from core.store.connection import redis_client as make_client

        redis_client = make_client(settings.redis_url, socket_timeout=2.0, fail_fast=True)
    if celery_app is None:
        from workers.celery_app import make_celery

        celery_app = make_celery(settings)
    if publisher is None:
        from app.publisher import CeleryEventPublisher

        publisher = CeleryEventPublisher(celery_app, probe=redis_client.ping)
    from core.metrics import get_metrics
    from core.store.dead_letters import DeadLetterStore
    from core.store.history import HistoryStore

    app.extensions["linecap.redis"] = redis_client
    app.extensions["linecap.celery"] = celery_app
    app.extensions["linecap.publisher"] = publisher
    app.extensions["linecap.dead_letters"] = DeadLetterStore(
        redis_client, settings.dead_letter_ttl_seconds)
    app.extensions["linecap.history"] = HistoryStore.from_settings(redis_client, settings)
    app.extensions["linecap.metrics"] = get_metrics()

    from app import health, linking, metrics_endpoint, ops, ops_users, webhook

    app.register_blueprint(webhook.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(ops_users.bp)
    app.register_blueprint(linking.bp)
    app.register_blueprint(metrics_endpoint.bp)
    if settings.forwarded_hops:
        # Behind Heroku's router (one hop) the client's address and the https scheme come in
        # X-Forwarded-For/-Proto. Only as many hops as configured are believed: without a proxy
        # a client could write them itself. X-Forwarded-Host is never believed (Heroku's router
        # passes the Host header through and does not set it, so a client's value would win).
        hops = settings.forwarded_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                x_host=0, x_port=0, x_prefix=0)
    return app
