"""``curate report``: one self-contained HTML file showing what a run did to the data — the step
funnel with reasons, label and length distributions, languages and PII, near-duplicate pairs,
verification, samples of every output and of the rejects, and the run's config, seed, versions
and timings. plotly.js is inlined once; the file needs no network."""
from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

import polars as pl

from curate import records as R
from curate.extras import require
from curate.report import figures as F
from curate.report.rundata import RunData

TEXT_COLUMNS = ("text", "prompt", "instruction", "input", "question", "body")
SAMPLE_ROWS = 5
REJECT_SAMPLES = 3
PAIR_SAMPLES = 8
LENGTH_SAMPLE = 20_000     # rows of each table the length histograms are drawn from

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin-top:36px;border-bottom:2px solid #dde1e8;padding-bottom:4px}
section{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:16px 20px;margin:16px 0}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #eceef2;padding:4px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.cell{max-width:480px;white-space:pre-wrap;word-break:break-word}
.muted{color:#687083}.bad{color:#b42318;font-weight:600}.ok{color:#067647;font-weight:600}
pre{background:#f3f4f7;padding:10px;border-radius:6px;overflow:auto;font-size:12px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}.pair>div{background:#f8f9fb;padding:8px;border-radius:6px}
nav a{margin-right:12px}
"""

# Counts the plots that drew (plotly adds .main-svg) into <body data-plots-rendered>, and any
# script error into data-errors: the browser test reads both from the DOM.
CHECK_JS = """
window.__curateErrors = [];
window.addEventListener('error', function (e) { window.__curateErrors.push(String(e.message)); });
window.addEventListener('load', function () {
  var figs = document.querySelectorAll('.plotly-graph-div');
  var drawn = 0;
  figs.forEach(function (f) { if (f.querySelector('.main-svg')) { drawn += 1; } });
  document.body.setAttribute('data-plots', String(figs.length));
  document.body.setAttribute('data-plots-rendered', String(drawn));
  document.body.setAttribute('data-errors', String(window.__curateErrors.length));
});
"""


def esc(v: Any, limit: int = 600) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    if len(s) > limit:
        s = s[:limit] + " …"
    return html.escape(s)


def table_html(rows: list[dict[str, Any]], numeric: tuple[str, ...] = (), attrs: Any = None) -> str:
    """A plain HTML table from dicts (first row's keys are the columns)."""
    if not rows:
        return '<p class="muted">none</p>'
    cols = list(rows[0])
    head = "".join(f'<th class="{"n" if c in numeric else ""}">{esc(c)}</th>' for c in cols)
    body = []
    for r in rows:
        extra = attrs(r) if attrs else ""
        cells = "".join(
            f'<td class="n">{r[c]:,}</td>' if c in numeric and isinstance(r.get(c), (int, float))
            else f'<td class="cell">{esc("" if r.get(c) is None else r.get(c))}</td>' for c in cols)
        body.append(f"<tr{extra}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def text_column(df: pl.DataFrame | None) -> str | None:
    if df is None:
        return None
    return next((c for c in TEXT_COLUMNS if c in df.columns and df.schema[c] == pl.String), None)


class Report:
    """Collects sections (HTML + plotly figures) for one run and renders the page."""

    def __init__(self, run: RunData) -> None:
        self.run, self.m = run, run.manifest
        self.sections: list[tuple[str, str, str]] = []      # (anchor, title, html)
        self.figures = 0

    def fig(self, fig) -> str:
        if fig is None:
            return ""
        self.figures += 1
        return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig{self.figures}",
                           config={"displaylogo": False, "responsive": True})

    def add(self, anchor: str, title: str, body: str) -> None:
        if body:
            self.sections.append((anchor, title, body))

    # ------------------------------------------------------------------ sections
    def header(self) -> str:
        m = self.m
        status = m.get("status", "ok")
        cls = "ok" if status == "ok" else "bad"
        parts = [f"<h1>curate report: {esc(m['pipeline'])}</h1>",
                 f'<p>status <span class="{cls}" id="status">{esc(status)}</span> · '
                 f"file {esc(m.get('file') or '(python)')} · started {esc(m.get('started_at'))} · "
                 f"{m.get('seconds', 0)} s · seed {esc(m.get('seed'))}</p>"]
        if m.get("only"):
            parts.append(f"<p>--only run: {esc(m['only']['description'])}</p>")
        err = m.get("error")
        if err:
            parts.append(f'<section><p class="bad">{esc(err["type"])} at {esc(err.get("at"))}</p>'
                         f"<pre>{esc(err['message'], 4000)}</pre><p>What to do: {esc(err.get('hint'))}</p></section>")
        t = m.get("totals") or {}
        if t:
            parts.append(f"<p>read {t.get('rows_read', 0):,} rows · final {t.get('rows_final') or 0:,} · "
                         f"rejected {t.get('rows_rejected', 0):,} · created {t.get('rows_created', 0):,}</p>")
        return "".join(parts)

    def funnel(self, rejects: pl.DataFrame) -> None:
        rows = []
        for s in self.m.get("sources", []):
            rows.append({"kind": "source", "label": f"source {s['name']}", "name": s["name"],
                         "in": s["rows"] + s["rejected"], "out": s["rows"], "rejected": s["rejected"],
                         "created": 0, "seconds": s.get("seconds", 0)})
        for e in self.m.get("steps", []):
            rows.append({"kind": "step", "label": f"{e['index'] + 1}. {e['name']}", "name": e["name"],
                         "in": e["rows_in"], "out": e["rows_out"], "rejected": e["rows_rejected"],
                         "created": e.get("rows_created", 0), "seconds": e.get("seconds", 0)})
        reasons: dict[str, dict[str, int]] = {}
        if rejects.height and R.REASON in rejects.columns:
            for step, reason, n in rejects.group_by(R.STEP, R.REASON).len().sort("len", descending=True).rows():
                reasons.setdefault(str(step), {})[str(reason)] = n
        for r in rows:
            key = r["name"] if r["kind"] == "step" else f"source:{r['name']}"
            r["reasons"] = ", ".join(f"{k} {v:,}" for k, v in reasons.get(key, {}).items())
        shown = [{k: r[k] for k in ("label", "in", "out", "rejected", "created", "reasons")} for r in rows]
        tab = table_html(shown, ("in", "out", "rejected", "created"), attrs=lambda r: (
            f' class="funnel-row" data-step="{esc(r["label"])}" data-in="{r["in"]}" '
            f'data-out="{r["out"]}" data-rejected="{r["rejected"]}"'))
        self.add("funnel", "Step funnel", self.fig(F.funnel(rows)) + tab)

    def labels(self) -> None:
        body = ""
        for e in self.m.get("steps", []):
            st = e.get("stats") or {}
            if isinstance(st.get("before"), dict) and isinstance(st.get("after"), dict):
                body += self.fig(F.label_distribution(st["before"], st["after"],
                                                      f"Labels before/after {e['index'] + 1}. {e['name']}"))
        if not body:
            before, after = self.run.input_table(limit=0), self.run.final_table(limit=0)    # columns
            if before is not None and after is not None and "label" in before.columns and "label" in after.columns:
                before, after = self.run.input_table(["label"]), self.run.final_table(["label"])
                def counts(df):
                    return {str(k): n for k, n in df["label"].cast(pl.String).value_counts().rows()}
                body = self.fig(F.label_distribution(counts(before), counts(after), "Labels: input vs final"))
        self.add("labels", "Label distribution", body)

    def lengths(self) -> None:
        # a sample of each table (its first rows; the input's in the first step's kept/rejected
        # proportions): the histograms' shapes without reading whole tables
        before, after = self.run.input_table(limit=LENGTH_SAMPLE), self.run.final_table(limit=LENGTH_SAMPLE)
        col = text_column(after) or text_column(before)
        body = self.fig(F.histograms({"input": F.word_counts(before, col), "final": F.word_counts(after, col)},
                                     f"Words per row ({col})", "words"))
        tok = next((e["config"].get("tokenizer") for e in self.m.get("steps", [])
                    if isinstance(e.get("config"), dict) and e["config"].get("tokenizer")), None)
        if tok:
            counts = F.token_counts(after, col, tok)
            body += self.fig(F.histograms({"final": counts}, f"Model tokens per row ({tok})", "tokens")) if counts \
                else f'<p class="muted">tokenizer {esc(tok)} could not be loaded here: token histogram skipped</p>'
        self.add("lengths", "Lengths", body)

    def languages_pii(self) -> None:
        body = ""
        for e in self.m.get("steps", []):
            st = e.get("stats") or {}
            if isinstance(st.get("languages_detected"), dict):
                body += self.fig(F.bars(st["languages_detected"], f"Languages detected ({e['name']})"))
            if isinstance(st.get("pii_redacted"), dict) and st["pii_redacted"]:
                body += self.fig(F.bars(st["pii_redacted"], f"PII redactions by type ({e['name']})", "redactions"))
        self.add("languages", "Languages and PII", body)

    def duplicates(self, rejects: pl.DataFrame) -> None:
        if "duplicate_of" not in rejects.columns:
            return
        dup = rejects.filter(pl.col("duplicate_of").is_not_null())
        if not dup.height:
            return
        sizes = dup.group_by("duplicate_of").len()["len"].to_list()
        body = self.fig(F.histograms({"cluster size": [n + 1 for n in sizes]},
                                     "Duplicate clusters (kept row + its duplicates)", "rows in cluster"))
        col = text_column(dup)
        sample = dup.sort("similarity", descending=False, nulls_last=True) if "similarity" in dup.columns else dup
        sample = sample.head(PAIR_SAMPLES)
        kept_text: dict[str, Any] = {}
        wanted = sample["duplicate_of"].cast(pl.String).unique().to_list()   # only the pairs shown
        for s in self.run.steps:
            if s.name in set(sample[R.STEP].to_list()) and col:
                kept_text.update(s.texts(wanted, col))
        pairs = []
        for r in sample.iter_rows(named=True):
            sim = r.get("similarity")
            pairs.append(f'<div class="pair-row"><p class="muted">{esc(r.get(R.REASON))} · similarity '
                         f'{"" if sim is None else f"{sim:.3f}"} · {esc(r.get(R.ID))} duplicate of '
                         f'{esc(r["duplicate_of"])}</p><div class="pair"><div>{esc(kept_text.get(r["duplicate_of"], "(kept row not in cache)"))}</div>'
                         f"<div>{esc(r.get(col) if col else '')}</div></div></div>")
        body += f"<p>{dup.height:,} duplicates in {len(sizes):,} clusters; least similar pairs first (kept left, removed right).</p>"
        self.add("duplicates", "Near-duplicates", body + "".join(pairs))

    def verification(self) -> None:
        body = ""
        for e in self.m.get("steps", []):
            checks = (e.get("stats") or {}).get("checks")
            if isinstance(checks, dict) and checks:
                rates = {k: v.get("acceptance_rate") or 0.0 for k, v in checks.items() if isinstance(v, dict)}
                body += self.fig(F.bars(rates, f"Acceptance per check ({e['name']})", "accepted", percent=True))
        final = self.run.final_table(limit=0)          # its columns
        if final is not None and "margin" in final.columns:
            final = self.run.final_table(["margin"])
            body += self.fig(F.histograms({"margin": final["margin"].drop_nulls().to_list()},
                                          "DPO margin (chosen − rejected score)", "margin"))
        self.add("verification", "Verification and preferences", body)

    def samples(self, rejects: pl.DataFrame) -> None:
        from curate.report.inspect import read_rows
        body = ""
        for o in self.m.get("outputs", []):
            for f in o.get("files", []):
                try:
                    _, df = read_rows(Path(f["path"]), SAMPLE_ROWS)
                except Exception as e:                  # a removed file must not break the report
                    body += f'<p class="muted">{esc(f["path"])}: {esc(str(e))}</p>'
                    continue
                body += f"<h3>{esc(o['name'])}: {esc(f['path'])}</h3>" + table_html(df.to_dicts())
        self.add("outputs", "Sample rows of every output", body)
        if rejects.height and R.REASON in rejects.columns:
            parts = []
            for (reason,), grp in rejects.group_by(R.REASON, maintain_order=True):
                cols = [c for c in (R.STEP, R.REASON, R.DETAIL, R.SOURCE, text_column(grp)) if c and c in grp.columns]
                parts.append(f"<h3>{esc(reason)} ({grp.height:,})</h3>" + table_html(grp.select(cols).head(REJECT_SAMPLES).to_dicts()))
            self.add("rejects", "Rejects per reason (samples)", "".join(parts))

    def config(self) -> None:
        m = self.m
        names = [f"source {s['name']}" for s in m.get("sources", [])] + \
                [f"{e['index'] + 1}. {e['name']}" for e in m.get("steps", [])] + \
                [f"output {o['name']}" for o in m.get("outputs", [])]
        secs = [s.get("seconds", 0) for s in m.get("sources", [])] + [e.get("seconds", 0) for e in m.get("steps", [])]
        body = self.fig(F.timings(names[:len(secs)], secs))
        cfg = {"sources": [s.get("config") for s in m.get("sources", [])],
               "steps": [{e["name"]: e.get("config")} for e in m.get("steps", [])],
               "outputs": [{o["name"]: o.get("config")} for o in m.get("outputs", [])]}
        body += f"<h3>Config (as written; secrets stay ${{env:...}} references)</h3><pre>{esc(json.dumps(cfg, indent=2, ensure_ascii=False, default=str), 100_000)}</pre>"
        info = [{"key": k, "value": m.get(k)} for k in ("seed", "curate_version", "executor", "platform",
                                                         "started_at", "finished_at", "seconds", "run_dir")]
        body += table_html(info) + "<h3>Library versions</h3>" + table_html(
            [{"library": k, "version": v} for k, v in (m.get("libraries") or {}).items()])
        self.add("config", "Config, seed, versions, timings", body)

    # ------------------------------------------------------------------ page
    def render(self) -> str:
        require("plotly", extra="report")
        import plotly.offline
        rejects = self.run.rejects()
        head = self.header()
        for build in (lambda: self.funnel(rejects), self.labels, self.lengths, self.languages_pii,
                      lambda: self.duplicates(rejects), self.verification, lambda: self.samples(rejects),
                      self.config):
            build()
        nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in self.sections)
        body = "".join(f'<h2 id="{a}">{esc(t)}</h2><section>{b}</section>' for a, t, b in self.sections)
        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>curate report: {esc(self.m['pipeline'])}</title><style>{CSS}</style>"
                f"<script>{CHECK_JS}</script>"
                f"<script type=\"text/javascript\">{plotly.offline.get_plotlyjs()}</script></head>"
                f"<body><main>{head}<nav>{nav}</nav>{body}</main></body></html>")


def write_report(target: str | Path, output: str | Path | None = None) -> Path:
    """Write the HTML report of the run at ``target`` (pipeline file, out folder or manifest);
    default path: ``report.html`` beside the manifest. Returns the path written."""
    from curate.cache import write_text
    t0 = time.time()
    run = RunData.load(target)
    page = Report(run).render()
    path = Path(output) if output else run.manifest_path.with_name("report.html")
    write_text(page, path)
    write_report.last_seconds = time.time() - t0      # type: ignore[attr-defined]
    return path
