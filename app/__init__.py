"""The Flask application factory for the webhook receiver and its operational endpoints."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Settings, settings_or_exit


def create_app(settings: Settings | None = None, publisher=None, redis_client=None,
               celery_app=None) -> Flask:
    """Build the receiver. Tests may hand in settings, a publisher, Redis and a Celery app."""
    if settings is None:
        # 4 is gunicorn's "app failed to load": the master stops instead of rebooting workers.
        settings = settings_or_exit(exit_code=4)
        from core.logs import configure_logging, settings_secrets

        configure_logging(secrets=settings_secrets(settings))
    app = Flask("linecap")
    app.config["LINECAP_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.webhook_max_body_bytes
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

    app.extensions["linecap.redis"] = redis_client
    app.extensions["linecap.celery"] = celery_app
    app.extensions["linecap.publisher"] = publisher
    app.extensions["linecap.dead_letters"] = DeadLetterStore(redis_client)
    app.extensions["linecap.metrics"] = get_metrics()

    from app import health, linking, metrics_endpoint, ops, webhook

    app.register_blueprint(webhook.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(linking.bp)
    app.register_blueprint(metrics_endpoint.bp)
    # Behind Heroku's router (one proxy hop) the scheme and host of the link pages LINE sends
    # users to must be the public https ones, not the dyno's.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    return app
