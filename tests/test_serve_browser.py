"""The web chat page in a real browser: Debian's Chromium, headless, driven by Selenium. The test
types a question, watches the answer arrive in pieces, sees the model name and settings, and
resets the conversation."""
from __future__ import annotations

import shutil
import time

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="the dev group's `selenium` package")
from selenium.webdriver.common.by import By  # noqa: E402

from tests.serve_fixtures import NAME, running, tiny_served  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not CHROMIUM or not DRIVER:
        pytest.skip("needs Debian's `chromium` and `chromium-driver` packages (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    # the Debian driver, named explicitly: Selenium must not try to download one
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("timed out waiting for the page")


def test_chat_page_streams_and_resets(browser):
    served = tiny_served(step_delay=0.03)  # ~30 ms a token: slow enough to watch the text grow
    with running(served) as url:
        browser.get(url + "/")
        _wait(lambda: NAME in browser.find_element(By.ID, "model").text)
        assert "context 64 tokens" in browser.find_element(By.ID, "model").text
        assert "temperature 0" in browser.find_element(By.ID, "summary").get_attribute("textContent")
        browser.find_element(By.CSS_SELECTOR, "#settings summary").click()  # open the settings
        browser.find_element(By.ID, "max_tokens").clear()
        browser.find_element(By.ID, "max_tokens").send_keys("30")
        assert "max_tokens 30" in browser.find_element(By.ID, "summary").text
        box = browser.find_element(By.ID, "input")
        box.send_keys("What does the MPI rank send?")
        browser.find_element(By.ID, "send").click()

        reply = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".msg.assistant"))[0]
        seen = set()  # the reply's text while it is still streaming
        while "done" not in reply.get_attribute("class"):
            text = reply.text
            if text and "streaming" in reply.get_attribute("class"):
                seen.add(text)
            time.sleep(0.01)
        final = reply.text
        assert len(seen) >= 3, seen                      # it grew piece by piece
        assert all(final.startswith(s) for s in seen)
        assert "error" not in reply.get_attribute("class")
        assert browser.find_element(By.CSS_SELECTOR, ".msg.user").text == "What does the MPI rank send?"
        assert "finished:" in browser.find_element(By.ID, "status").text

        browser.find_element(By.ID, "reset").click()
        _wait(lambda: not browser.find_elements(By.CSS_SELECTOR, ".msg"))
        assert browser.execute_script("return messages.length") == 0


def test_code_blocks_render_as_code(browser):
    with running(tiny_served()) as url:
        browser.get(url + "/")
        _wait(lambda: NAME in browser.find_element(By.ID, "model").text)
        browser.execute_script("bubble('assistant', arguments[0])",
                               "Use this:\n```c\nMPI_Init(&argc, &argv);\n```\n<b>not bold</b>")
        code = browser.find_element(By.CSS_SELECTOR, ".msg.assistant pre code")
        assert code.text == "MPI_Init(&argc, &argv);"
        assert browser.find_element(By.CSS_SELECTOR, ".msg.assistant pre .lang").text == "c"
        assert not browser.find_elements(By.CSS_SELECTOR, ".msg.assistant b")  # text, never HTML
