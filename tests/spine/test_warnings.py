"""A step that removes more than half of its input, and any warning a step writes into its
stats, reaches the manifest and the lines under the closing table."""
from __future__ import annotations

from curate import Pipeline
from curate.report.table import closing_warnings


def test_harsh_step_warns_in_manifest_and_table(tmp_path):
    rows = [{"text": f"message number {i} is here", "label": "ham" if i < 18 else "spam"} for i in range(20)]
    p = Pipeline(name="warn", sources=[{"inline": {"rows": rows}}],
                 steps=[{"balance": {"method": "undersample", "label": "label"}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    r = p.run()
    step = r.manifest["steps"][0]
    assert step["rows_in"] == 20 and step["rows_rejected"] == 16
    assert any("removed 16 of 20 rows (80.0%)" in w for w in step["warnings"])
    assert {"at": "step balance", "message": step["warnings"][0]} in r.manifest["warnings"]
    assert any(line.startswith("step balance: ") and "80.0%" in line for line in closing_warnings(r))
    # a second, cached run still warns
    again = p.run()
    assert again.manifest["steps"][0]["cached"] and again.manifest["warnings"] == r.manifest["warnings"]


def test_gentle_step_does_not_warn(tmp_path):
    rows = [{"text": f"message number {i} is here"} for i in range(10)] + [{"text": "message number 1 is here"}]
    p = Pipeline(name="nowarn", sources=[{"inline": {"rows": rows}}], steps=[{"dedup": {}}],
                 workdir=str(tmp_path / ".curate"), out_dir=str(tmp_path / "out"))
    r = p.run()
    assert r.manifest["steps"][0]["rows_rejected"] == 1 and r.manifest["warnings"] == []
