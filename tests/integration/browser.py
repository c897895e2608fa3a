"""Headless Chromium for the tests that drive pages as a person would (Debian's `chromium` and
`chromium-driver`, through Selenium). `.ci/run` installs them; without them those tests skip
and say why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def missing() -> str | None:
    """Why no browser can be started here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (python3 dev.py install)"
    for path in (CHROMIUM, DRIVER):
        if not Path(path).exists() and shutil.which(Path(path).name) is None:
            return (f"{path} is missing: apt-get install -y chromium chromium-driver "
                    "(.ci/run does it)")
    return None


def start_browser(profile: Path):
    """A fresh headless Chromium with its own profile (cookies are per browser)."""
    reason = missing()
    if reason:
        pytest.skip(f"no headless browser: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver_path = DRIVER if Path(DRIVER).exists() else shutil.which("chromedriver")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    return driver
