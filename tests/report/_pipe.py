"""A small pipeline file with known counts, shared by the report tests."""
from __future__ import annotations

import textwrap
from pathlib import Path

HAM = ["see you at the station at six", "can you call me when you get home",
       "thanks for dinner last night it was lovely", "i will be late for the meeting today",
       "did you remember to buy the milk", "lets watch the film again on sunday",
       "my train is running about ten minutes late", "happy birthday hope you have a great day"]
SPAM = ["win a free prize now call this number", "claim your cash reward today text yes",
        "urgent your account has won a holiday", "free entry into our weekly draw text win"]


def pipeline_text(tmp: Path, outputs: str = "", steps: str | None = None, name: str = "rep") -> str:
    """A pipeline over data.tsv: 27 ham + 24 spam messages, 6 of them exact duplicates, 4 too short."""
    rows = [f"{HAM[i % len(HAM)]} number {i}\tham" for i in range(27)]
    rows += [f"{SPAM[i % len(SPAM)]} code {i}\tspam" for i in range(24)]
    rows += [rows[0], rows[1], rows[2], rows[27], rows[28], rows[29]]          # 6 exact duplicates
    rows += ["hi\tham", "ok\tham", "yes\tspam", "no\tspam"]                      # 4 too short
    (tmp / "data.tsv").write_text("message\tcategory\n" + "\n".join(rows) + "\n")
    steps = steps if steps is not None else textwrap.dedent("""\
          - clean: {min_words: 3}
          - dedup: {columns: [text]}
          - balance: {method: undersample, label: label}
        """)
    return textwrap.dedent(f"""\
        name: {name}
        seed: 3
        workdir: {tmp}/.curate
        out_dir: {tmp}/out/{name}
        sources:
          - tsv: {{path: {tmp}/data.tsv, text: message, label: category, name: sms}}
        steps:
        """) + textwrap.indent(steps, "  ") + "outputs:\n" + (outputs or f"  - jsonl: {{path: {tmp}/out/{name}/data.jsonl}}\n")


