"""LINE's account link driven in real headless browsers, end to end: the brand's login page
(a small app here, as a brand would write one against the link API), linecap's hosted page,
the fake LINE platform's account-link page, and a worker linking in Capillary.

- the user who logged in is sent on to LINE, and linked;
- a second browser opening the same link page is not sent on to LINE;
- a used link, and a link LINE reports as failed (someone else's LINE account on the page),
  each show their page, and the failed one links nobody.
"""

from __future__ import annotations

import threading
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask, redirect, render_template_string, request
from werkzeug.serving import make_server

from tests.helpers import CHANNEL_ID, new_user_id
from tests.integration.browser import missing, start_browser
from tests.integration.stack import Stack, wait_until
from tests.integration.test_linking import (
    follow_on_line,
    new_mobile,
    on_one_customer,
    seed_instore,
)

API_KEY = "browser-link-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
OWN_DB = 0  # see tests/integration/conftest.py

pytestmark = pytest.mark.skipif(missing() is not None,
                                reason=f"no headless browser: {missing()}")

_LOGIN = """<!doctype html><title>Brand login</title><h1 id="title">Sign in to Brand</h1>
<form method="post" action="/login"><input type="hidden" name="session" value="{{ s }}">
<input id="mobile" name="mobile"><button id="signin" type="submit">Sign in</button></form>"""
_ACCOUNT = """<!doctype html><title>Brand account</title>
<p id="line">{{ state }}: {{ name }}</p>"""


class BrandSite:
    """The brand's web server: its login (an OTP in real life) binds the session through
    linecap's API and redirects the browser that logged in straight to LINE."""

    def __init__(self) -> None:
        self.linecap_url = ""
        app = Flask("brand")

        @app.get("/login")
        def login_form():
            return render_template_string(_LOGIN, s=request.args.get("session", ""))

        @app.post("/login")
        def login():
            session = request.form["session"]
            bound = requests.post(f"{self.linecap_url}/api/v1/link-sessions/{session}/bind",
                                  json={"mobile": request.form["mobile"]}, headers=AUTH,
                                  timeout=10)
            if bound.status_code != 200:
                return f"<p id='error'>{bound.json()['message']}</p>", bound.status_code
            return redirect(bound.json()["account_link_url"], code=302)

        @app.get("/account")
        def account():
            status = requests.get(
                f"{self.linecap_url}/api/v1/link-sessions/{request.args['session']}",
                headers=AUTH, timeout=10).json()
            return render_template_string(_ACCOUNT, state=status.get("outcome"),
                                          name=status.get("line_display_name"))

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def brand():
    site = BrandSite()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def stack(redis_url, tmp_path_factory, brand):
    from tests.integration.conftest import clean_database

    stack = Stack(clean_database(redis_url, OWN_DB), tmp_path_factory.mktemp("browser"),
                  LINECAP_API_KEYS=API_KEY, LINECAP_LINK_LOGIN_URL=f"{brand.url}/login")
    try:
        stack.start_sandboxes()
        stack.env_overrides["LINE_ACCESS_BASE_URL"] = stack.line_url  # LINE's page is the fake's
        stack.start_web()
        stack.start_worker()
        brand.linecap_url = stack.web_url
        stack.console_webhook(f"{stack.web_url}/webhooks/line/{CHANNEL_ID}")
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def browsers(tmp_path):
    started = []

    def start():
        driver = start_browser(tmp_path / f"profile-{len(started)}")
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()


def by_id(driver, element_id: str, expected: str | None = None, timeout: float = 20) -> str:
    """The element's text once the page has it (`expected`, when given): a click starts a
    navigation, and the old page may still be there for a moment."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def read() -> str | None:
        try:
            text = driver.find_element(By.ID, element_id).text
        except (NoSuchElementException, StaleElementReferenceException):
            return None
        return text if expected is None or text == expected else None

    try:
        return wait_until(read, timeout, 0.1, f"#{element_id} on {driver.current_url}")
    except AssertionError:
        return driver.find_element(By.ID, element_id).text  # let the caller's assert show it


def shows(driver, element_id: str, text: str) -> None:
    assert by_id(driver, element_id, text) == text


def click(driver, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def logged_in_to_line(driver, stack: Stack, user: str) -> None:
    """The LINE app on this device is the user's (the fake reads it from a cookie)."""
    driver.get(f"{stack.line_url}/sandbox/browser-login?{urlencode({'user_id': user})}")
    shows(driver, "title", "Logged in to LINE")


def link_page_for(stack: Stack, user: str) -> tuple[str, str]:
    issued = requests.post(f"{stack.web_url}/api/v1/link-tokens", headers=AUTH, timeout=10,
                           json={"channel": CHANNEL_ID, "line_user_id": user})
    assert issued.status_code == 201, issued.text
    return issued.json()["session"], issued.json()["link_page_url"]


def sign_in(driver, brand: BrandSite, mobile: str) -> None:
    from selenium.webdriver.common.by import By

    shows(driver, "title", "Sign in to Brand")
    assert driver.current_url.startswith(f"{brand.url}/login?")
    driver.find_element(By.ID, "mobile").send_keys(mobile)
    click(driver, "signin")


def test_the_person_who_logged_in_is_sent_to_line_and_nobody_else(stack, brand, browsers):
    user, mobile = new_user_id(), new_mobile()
    customer_id = seed_instore(stack, mobile)
    line_only = follow_on_line(stack, user)
    session, page = link_page_for(stack, user)

    mine = browsers()
    logged_in_to_line(mine, stack, user)
    mine.get(page)
    sign_in(mine, brand, mobile)
    shows(mine, "title", "Link your LINE account?")
    dialog = mine.current_url
    assert dialog.startswith(f"{stack.line_url}/dialog/bot/accountLink?")

    # The link page's URL, forwarded to someone else after the login: no way on to LINE.
    other = browsers()
    other.get(page)
    shows(other, "title", "Sign in to Brand")
    assert other.current_url.startswith(f"{brand.url}/login?")
    assert "accountLink" not in other.current_url

    click(mine, "link")
    shows(mine, "title", "Accounts linked")
    wait_until(lambda: on_one_customer(stack, user, customer_id), 30,
               message="the LINE user linked to the mobile's customer")
    assert line_only["id"] != customer_id
    wait_until(lambda: requests.get(f"{stack.web_url}/api/v1/link-sessions/{session}",
                                    headers=AUTH, timeout=5).json()["outcome"] == "linked",
               message="the session marked linked")

    # The brand's page shows which LINE account is linked.
    mine.get(f"{brand.url}/account?session={session}")
    profile = requests.get(f"{stack.line_url}/sandbox/state", timeout=5).json()
    name = profile["channels"][CHANNEL_ID]["users"][user]["displayName"]
    shows(mine, "line", f"linked: {name}")

    # A used link shows its page, on linecap and on LINE (which sends no second event).
    mine.get(page)
    shows(mine, "title", "This link was already used")
    shows(mine, "text", "Your LINE account is linked.")
    deliveries = len(requests.get(f"{stack.line_url}/sandbox/deliveries", timeout=5).json()[
        "deliveries"])
    mine.get(dialog)
    shows(mine, "title", "This link cannot be used")
    assert "used" in by_id(mine, "text")
    assert len(requests.get(f"{stack.line_url}/sandbox/deliveries", timeout=5).json()[
        "deliveries"]) == deliveries


def test_a_link_finished_by_someone_else_fails_and_shows_its_page(stack, brand, browsers):
    victim_user, victim_mobile = new_user_id(), new_mobile()
    victim_customer = seed_instore(stack, victim_mobile)
    attacker = new_user_id()
    follow_on_line(stack, attacker)
    session, page = link_page_for(stack, attacker)  # the attacker's link, forwarded

    victim = browsers()
    logged_in_to_line(victim, stack, victim_user)
    victim.get(page)
    sign_in(victim, brand, victim_mobile)
    shows(victim, "title", "Link your LINE account?")
    click(victim, "link")
    shows(victim, "title", "Linking failed")  # LINE: not the token's user

    wait_until(lambda: requests.get(f"{stack.web_url}/api/v1/link-sessions/{session}",
                                    headers=AUTH, timeout=5).json()["state"] == "failed",
               message="the failed event burned the session")
    victim.get(page)
    shows(victim, "title", "Linking did not complete")
    assert on_one_customer(stack, attacker, victim_customer) is None
    assert all(c["id"] != victim_customer for c in stack.customers_with(attacker))

