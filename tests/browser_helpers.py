"""Helpers of the browser test: servers on free 127.0.0.1 ports, stopped by PID, and headless Chromium.

Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``)
are driven through Selenium with an explicit driver path, so Selenium Manager downloads nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1600,1200")


def browser_missing() -> str | None:
    """Why the browser test cannot run here (the install hint), or None when it can."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return INSTALL_HINT
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "pip install selenium (the dev extra)"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log when it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def launch(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (its workers die with it), output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


@contextmanager
def servers(specs: Sequence[tuple[Sequence[str], str, int, Path]],
            env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """Start every ``(cmd, ready_path, port, log)`` at once, wait until each answers on 127.0.0.1;
    yields their base URLs; stops them all by PID."""
    procs: list[subprocess.Popen] = []
    try:
        for cmd, _, _, log in specs:
            procs.append(launch(cmd, log, env))
        bases = [f"http://127.0.0.1:{port}" for _, _, port, _ in specs]
        for proc, base, (_, ready, _, log) in zip(procs, bases, specs):
            wait_http(base + ready, proc, log)
        yield bases
    finally:
        for proc in procs:
            stop(proc)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group led by ``proc`` (by its PID), then SIGKILL after ``grace`` s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def chromium() -> Iterator:
    """A headless Debian Chromium under Selenium, with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="musicml-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_text(driver, texts: Sequence[str], timeout: float = 60.0,
                  shot: Callable[[], None] | None = None) -> str:
    """Wait until the page's visible text holds every one of ``texts``; returns that text.

    On a timeout, ``shot`` (a screenshot) runs first and the assertion names what is missing.
    """
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        try:
            body = driver.find_element("tag name", "body").text
        except Exception:  # the page is re-rendering
            body = ""
        if all(t in body for t in texts):
            return body
        time.sleep(0.5)
    if shot is not None:
        shot()
    missing = [t for t in texts if t not in body]
    raise AssertionError(f"{driver.current_url}: missing {missing}; page text: {body[:3000]!r}")
