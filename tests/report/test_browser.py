"""The HTML report in a real browser: Debian's headless chromium (installed by .ci/run) loads it
from disk, runs plotly, and we read the DOM after the scripts ran. Checks: no console messages
(errors, warnings or logs), every plot drew its SVG, the funnel shows a pipeline's known counts.
A screenshot is kept as a test artefact (out/test-artifacts/report.png and the test's tmp dir)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app

from ._pipe import pipeline_text

REQUIRE = os.environ.get("CURATE_REQUIRE_SERVICES") == "1"
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRE,
    reason="no chromium on PATH (apt-get install chromium; .ci/run installs it)")


def _chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed but CURATE_REQUIRE_SERVICES=1 (apt-get install chromium)")
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", "--virtual-time-budget=4000"]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text(pipeline_text(tmp_path))
    res = CliRunner().invoke(app, ["build", str(pf), "-q"])
    assert res.exit_code == 0, res.output
    page = tmp_path / "out/rep/report.html"
    url = page.resolve().as_uri()

    dom = _chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], "console messages:\n" + "\n".join(console)
    html = dom.stdout
    plots = int(re.search(r'data-plots="(\d+)"', html).group(1))
    drawn = int(re.search(r'data-plots-rendered="(\d+)"', html).group(1))
    assert plots >= 4 and drawn == plots                       # every figure drew its SVG
    assert re.search(r'data-errors="0"', html)
    assert html.count('class="main-svg"') >= plots
    funnel = re.findall(r'data-step="([^"]+)" data-in="(\d+)" data-out="(\d+)" data-rejected="(\d+)"', html)
    assert funnel == [("source sms", "61", "61", "0"), ("1. clean", "61", "57", "4"),
                      ("2. dedup", "57", "51", "6"), ("3. balance", "51", "48", "3")]

    shot = tmp_path / "report.png"
    sc = _chromium("--hide-scrollbars", "--window-size=1280,3000", f"--screenshot={shot}", url)
    assert sc.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, sc.stderr[-2000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report.png")
