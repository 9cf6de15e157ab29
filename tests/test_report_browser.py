"""The report in a real browser (headless Chromium over the DevTools protocol, without network), and the browser
helper itself on a page with known faults."""

from __future__ import annotations

from pathlib import Path

from tests.browser import open_page, require_browser

# A 1x1 GIF (the smallest valid image) and a page with four known faults: a console.error, an uncaught
# exception, an image from the internet (the browser has no network) and a hidden element.
_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="
_FAULTY = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>faults</title></head><body>
<h2 id="shown">shown</h2><div id="hidden" style="display:none">hidden</div>
<img id="local" src="{_GIF}"><img id="remote" src="https://example.com/x.png">
<script>console.error("boom"); setTimeout(() => {{ throw new Error("late"); }}, 0);</script></body></html>"""


def test_helper_sees_console_errors_failed_loads_and_hidden_elements(tmp_path: Path) -> None:
    require_browser()
    page = tmp_path / "faulty.html"
    page.write_text(_FAULTY, encoding="utf-8")
    shot = tmp_path / "faulty.png"
    r = open_page(page, selectors=("#shown", "#hidden", "#absent"), screenshot=shot, expression="6 * 7")
    assert r.title == "faults" and r.value == 42
    assert r.elements == {
        "#shown": {"count": 1, "visible": 1},
        "#hidden": {"count": 1, "visible": 0},
        "#absent": {"count": 0, "visible": 0},
    }
    errors = " | ".join(r.console_errors)
    assert "boom" in errors and "late" in errors and "example.com" in errors
    sizes = [(i["natural_width"], i["natural_height"]) for i in r.images]
    assert sizes == [(1, 1), (0, 0)]  # the GIF is 1x1; the remote image never loaded
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
