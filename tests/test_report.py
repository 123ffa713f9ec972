"""`tower report --html FILE`: the same cards, rendered into one self-contained page, checked in Chromium."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import asyncpg
import pytest

from metabase import spec
from metabase.report import build_report
from tests.support import dashboard_data
from tower import cli

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = os.environ.get("TOWER_CHROMIUM", "/usr/bin/chromium")
DASHBOARDS = spec.load_all()


@pytest.fixture
def loaded(db_dsn, monkeypatch):
    """The data set in this test's database, and TOWER_DSN pointing at it (the CLI runs its own loop)."""

    async def fill():
        conn = await asyncpg.connect(db_dsn)
        try:
            await dashboard_data.load(conn)
        finally:
            await conn.close()

    asyncio.run(fill())
    monkeypatch.setenv("TOWER_DSN", db_dsn)
    return db_dsn


def report(tmp_path: Path, *args: str) -> tuple[int, str]:
    out = tmp_path / "report.html"
    code = cli.main(["report", "--html", str(out), *args])
    return code, out.read_text()


def test_report_renders_every_card_with_charts_and_no_external_resources(loaded, tmp_path):
    code, page = report(tmp_path)
    assert code == 0
    for d in DASHBOARDS:
        assert f"<h2>{d.name}</h2>" in page
        for card in d.cards:
            assert f"<h3>{card.name}</h3>" in page
    charts = sum(1 for d in DASHBOARDS for c in d.cards if c.display in spec.CHART_DISPLAYS)
    assert page.count("<svg ") == charts
    assert "<polyline" in page and "<rect" in page
    assert 'class="error"' not in page and "No results" not in page
    # Self-contained: nothing fetched from anywhere (the SVG namespace is an identifier, not a fetch).
    assert not re.search(r"<script|<link|<img|@import|url\(", page)
    assert not re.findall(r'(?:src|href)="', page)
    # Stale feed highlighted the way the Metabase card's conditional formatting says.
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*<td>hyperliquid</td><td>ETH</td>(?:(?!</tr>).)*</tr>", page)
    assert row and "#ED6E6E" in row.group(0) and ">down</td>" in row.group(0)


def test_report_applies_the_filters_like_the_dashboards(loaded, tmp_path):
    code, page = report(tmp_path, "--dashboard", "ops_overview", "--venue", "binance", "--hours", "1")
    assert code == 0
    assert "<h2>Ops Overview</h2>" in page and "<h2>Risk Monitor</h2>" not in page
    assert "Venue: <b>binance</b>" in page and "Hours back: <b>1</b>" in page
    assert "<td>binance</td>" in page and "<td>hyperliquid</td>" not in page
    assert "nan_price" not in page  # 3 hours old, outside the 1-hour window


async def test_a_failing_card_shows_its_error_and_the_rest_still_render(conn):
    await dashboard_data.load(conn)
    d = DASHBOARDS[0]
    broken = dataclasses.replace(d.cards[0], sql="SELECT no_such_column FROM ops.raw_trades")
    page, failed = await build_report(conn, [dataclasses.replace(d, cards=(broken, *d.cards[1:]))], {})
    assert failed == 1
    assert 'class="error"' in page and "no_such_column" in page
    assert page.count("<article") == len(d.cards)


def test_unknown_dashboard_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOWER_DSN", "postgresql://nobody@127.0.0.1:9/none")
    assert cli.main(["report", "--html", str(tmp_path / "x.html"), "--dashboard", "nope"]) == 2
    assert "choose from" in capsys.readouterr().err


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.skipif(
    not shutil.which(CHROMIUM),
    reason=f"headless Chromium not found at {CHROMIUM} (Debian package `chromium`; scripts/bootstrap installs it)",
)
def test_report_renders_in_headless_chromium(loaded, tmp_path, license):
    code, _ = report(tmp_path)
    assert code == 0
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{license}.png"
    shot.unlink(missing_ok=True)
    html = tmp_path / "report.html"
    shutil.copy(html, ARTIFACTS / f"report-{license}.html")
    screenshot(html, shot, 1400, 2000)
    assert _png_size(shot) == (1400, 2000)
    assert shot.stat().st_size > 50_000  # a blank or error page compresses to a few kB
    # The whole page too, for looking at every dashboard.
    screenshot(html, ARTIFACTS / f"report-{license}-full.png", 1400, 6400)


def screenshot(html: Path, shot: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                f"--window-size={width},{height}",
                "--hide-scrollbars",
                html.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]


# Run in the page after layout: the tables whose content is wider than their card (columns cut off or
# only reachable by scrolling, which a screenshot or a printed page cannot do).
_OVERFLOW_PROBE = """<script>
window.addEventListener("load", () => {
  const cut = [...document.querySelectorAll(".card")].filter(card => {
    const t = card.querySelector("table");
    return t && t.getBoundingClientRect().right > card.getBoundingClientRect().right + 1;
  }).map(card => card.querySelector("h3").textContent);
  document.body.dataset.cut = JSON.stringify(cut);
});
</script>"""


@pytest.mark.skipif(
    not shutil.which(CHROMIUM),
    reason=f"headless Chromium not found at {CHROMIUM} (Debian package `chromium`; scripts/bootstrap installs it)",
)
def test_wide_tables_wrap_so_every_column_stays_visible(loaded, tmp_path):
    code, page = report(tmp_path)
    assert code == 0
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", _OVERFLOW_PROBE + "</body>"))
    dom = dump_dom(probed, 1400, 2000)
    found = re.search(r'<body[^>]* data-cut="([^"]*)"', dom)
    assert found, dom[-2000:]
    assert json.loads(html.unescape(found.group(1))) == []


def dump_dom(page: Path, width: int, height: int) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
