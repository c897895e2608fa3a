"""The one reading of a rediss:// URL's TLS options, shared by the redis-py clients and the
Celery broker, so that every process verifies (or, when asked to, does not verify) the same way.

Here in config, so that a bad value stops start-up with the usual one line naming REDIS_URL.
"""

from __future__ import annotations

import ssl
from urllib.parse import parse_qsl, urlencode, urlparse

from config.settings import ConfigError

# The spellings kombu accepts (kombu/utils/url.py parse_ssl_cert_reqs). kombu parses the
# broker URL's query itself, so accepting any other spelling here would still crash the worker.
CERT_REQS: dict[str, ssl.VerifyMode] = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
    "CERT_NONE": ssl.CERT_NONE,
    "CERT_OPTIONAL": ssl.CERT_OPTIONAL,
    "CERT_REQUIRED": ssl.CERT_REQUIRED,
}
# redis-py only knows the lower-case names (redis/connection.py SSLConnection.__init__).
_REDIS_PY_NAMES = {ssl.CERT_NONE: "none", ssl.CERT_OPTIONAL: "optional",
                   ssl.CERT_REQUIRED: "required"}


def tls_options(url: str) -> dict[str, ssl.VerifyMode | str] | None:
    """`ssl_cert_reqs` (and `ssl_ca_certs`) of a rediss:// URL; None for redis:// and unix://.

    Without `ssl_cert_reqs` the certificate is verified: kombu alone would fall back to
    CERT_NONE for the broker while redis-py verifies, so the two would silently disagree.
    """
    parsed = urlparse(url)
    if parsed.scheme != "rediss":
        return None
    query = dict(parse_qsl(parsed.query))
    options: dict[str, ssl.VerifyMode | str] = {"ssl_cert_reqs": _cert_reqs(query)}
    if query.get("ssl_ca_certs"):
        options["ssl_ca_certs"] = query["ssl_ca_certs"]
    return options


def redis_py_url(url: str) -> str:
    """The URL with `ssl_cert_reqs=CERT_NONE` (etc.) spelled the way redis-py accepts it.

    redis-py lets the URL's options override keyword arguments, so the query itself is fixed.
    """
    parsed = urlparse(url)
    pairs = parse_qsl(parsed.query, keep_blank_values=True)
    if parsed.scheme != "rediss" or not any(key == "ssl_cert_reqs" for key, _ in pairs):
        return url
    name = _REDIS_PY_NAMES[_cert_reqs(dict(parse_qsl(parsed.query)))]
    query = [(key, name if key == "ssl_cert_reqs" else value) for key, value in pairs]
    return parsed._replace(query=urlencode(query)).geturl()


def _cert_reqs(query: dict[str, str]) -> ssl.VerifyMode:
    """The verify mode asked for, `required` when absent; the error never shows the URL,
    which holds the Redis password."""
    value = query.get("ssl_cert_reqs", "required")
    if value not in CERT_REQS:
        raise ConfigError(
            "REDIS_URL ssl_cert_reqs must be none, optional or required "
            "(or CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED)"
        )
    return CERT_REQS[value]
