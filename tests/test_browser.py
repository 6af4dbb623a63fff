"""The built book in a browser, as a reader opens it: ``_build/html`` from disk, with no network.

Headless Chromium (Debian's ``chromium`` package, driven over the DevTools protocol) loads the
landing page, every chapter and every other page of the table of contents, from ``file://``
URLs like a reader who follows the README, in a 1400-pixel-wide window. On every page: MathJax
loaded from the book itself and typeset every formula (no formula left as TeX, no TeX error),
every image loaded, nothing was requested from the network, the console shows no error, and no
code cell scrolls sideways. Without Chromium the test skips and
says how to install it; with ``SPDL_REQUIRE_BROWSER=1`` (set by ``.ci/run``) it fails instead.
"""

from __future__ import annotations

import os
import pathlib
import time

import pytest
from _book import toc_files
from _chromium import Chromium, find_chromium
from test_notebook_outputs import LONG_LINES_PENDING

HOW_TO_GET_IT = "install it with `apt-get install chromium chromium-driver` (Debian/Ubuntu)"
pytestmark = pytest.mark.skipif(
    find_chromium() is None and not os.environ.get("SPDL_REQUIRE_BROWSER"),
    reason=f"headless Chromium not found: {HOW_TO_GET_IT} to run the browser test",
)

PAGES = list(dict.fromkeys(toc_files()))

# What a reader's browser shows of the page, read after MathJax has finished typesetting.
PAGE_STATE = """(() => {
  const math = Array.from(document.querySelectorAll('.math'));
  return {
    math: math.length,
    untypeset: math.filter(m => !m.querySelector('mjx-container'))
                   .map(m => m.textContent.trim().slice(0, 80)),
    tex_errors: Array.from(document.querySelectorAll('mjx-merror'))
                     .map(e => e.getAttribute('data-mjx-error') || e.textContent),
    broken_images: Array.from(document.images)
                        .filter(i => !(i.complete && i.naturalWidth > 0))
                        .map(i => i.getAttribute('src')),
    images: document.images.length,
    wide_code: Array.from(document.querySelectorAll('div.cell_input pre'))
                    .filter(p => p.scrollWidth > p.clientWidth + 1)
                    .map(p => p.textContent.split('\\n')
                                .reduce((a, l) => l.length > a.length ? l : a, '')),
  };
})()"""

MATHJAX_DONE = """(window.MathJax && MathJax.startup && MathJax.startup.promise)
  ? MathJax.startup.promise.then(() => MathJax.version) : null"""


@pytest.fixture(scope="module")
def site(built_book):
    html, out = built_book
    if out.returncode != 0:
        pytest.fail("the book did not build; see test_book_builds_without_warnings")
    return html


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        pytest.fail(f"SPDL_REQUIRE_BROWSER is set but Chromium is missing: {HOW_TO_GET_IT}")
    chromium = Chromium(exe, tmp_path_factory.mktemp("chromium") / "profile")
    yield chromium
    chromium.close()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(site, browser, page):
    path = site / f"{page}.html"
    assert path.exists(), path
    browser.load(path.as_uri())
    version = browser.evaluate(MATHJAX_DONE, await_promise=True)
    state = browser.evaluate(PAGE_STATE)
    remote = [u for u in browser.requests() if not u.startswith(("file:", "data:", "blob:"))]
    errors = browser.errors()

    if page.startswith("chapters/"):
        assert state["math"] > 0, f"{page}: a chapter without mathematics?"
    if state["math"]:
        assert version, f"{page}: MathJax did not load (is sphinx-mathjax-offline enabled?)"
    assert not state["untypeset"], f"{page}: formulas left as TeX: {state['untypeset'][:5]}"
    assert not state["tex_errors"], f"{page}: MathJax errors: {state['tex_errors'][:5]}"
    assert not state["broken_images"], f"{page}: images that did not load: {state['broken_images']}"
    assert not remote, f"{page}: requests to the network: {remote}"
    if pathlib.PurePath(page).stem not in LONG_LINES_PENDING:
        # 100-character code lines (test_notebook_outputs) fit the column at 1400 px (book.css)
        assert not state["wide_code"], f"{page}: code cells scroll sideways: {state['wide_code']}"
    assert not errors, f"{page}: console errors: {errors}"


def test_index_html_opens_the_landing_page(site, browser):
    """The README says: open _build/html/index.html. It must lead to the landing page."""
    browser.load((site / "index.html").as_uri())
    deadline = time.monotonic() + 30
    while not browser.evaluate("location.href").endswith(f"/{PAGES[0]}.html"):
        assert time.monotonic() < deadline, browser.evaluate("location.href")
        time.sleep(0.1)
