"""Build tests/data/verify_eval.jsonl: generations labelled `good` (real text, or real text after a
mild augmentation) or `junk`, to measure verify's default checks (bench/gate.py).

Half come from curate's own augmenters run on the shipped SMS and hh-rlhf samples (mild settings
→ good, destructive settings → junk); half are hand-made hard cases (numbers, URLs, code, math,
informal and non-English text that must stay; random bytes, mashing, loops, homoglyphs, token
garbage that must go). Deterministic: rerun to regenerate the same file.
    .venv/bin/python tests/data/build_verify_eval.py
"""
from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("verify_eval.jsonl")

HARD_GOOD = [
    "x = (3*4) + 2 = 14", "2 + 2 = 4", "12:30pm", "£1.50/min", "Ok :)", "R u there?", "Gr8! Thx",
    "wat r u doin 2nite?", "Call me at 555-1234", "See https://example.com/docs?page=2", "hmm ok",
    "def square(x):\n    return x * x", "SELECT name FROM users WHERE id = 7;", "print('hello world')",
    "The answer is 42.", "Yes.", "No, that is not correct.", "C++ and Rust are both compiled languages.",
    "Le chat dort sur le canapé depuis ce matin.", "Der Zug nach Berlin hat zehn Minuten Verspätung.",
    "El mercado abre a las nueve de la mañana.", "東京は日本の首都です。", "Москва — столица России.",
    "The capital of Russia is Moscow (Москва).", "Your code is 4821. Do not share it.", "<PHONE> called at <TIME>",
    "Send the report to <EMAIL> by Friday.", "WINNER!! You have won a £900 prize. Call 09061701461 now!",
    "lol ok see u there xx", "Haha!!! That's hilarious!!!", "I can't wait for the weekend :D",
    "1. Preheat the oven.\n2. Mix flour and sugar.\n3. Bake for 20 minutes.", "E = mc^2",
    "The function returns None when the list is empty.", "Temperature: 21.5°C, humidity 40%",
    "ISBN 978-3-16-148410-0", "Meeting moved to 3/14 at 10am", "pH 7.4 ± 0.05", "Ok lar... Joking wif u oni...",
    "U dun say so early hor... U c already then say...", "Nah I don't think he goes to usf, he lives around here though",
    "Sorry, I'll call later", "K. I'll be there in 5", "Thanks for the help! 👍", "Café au lait, s'il vous plaît.",
    "Yo, whats up bro", "brb", "The quick brown fox jumps over the lazy dog.", "<a href='/x'>link</a> in HTML",
    "JSON: {\"a\": 1, \"b\": [2, 3]}", "Error 404: page not found", "Q3 revenue grew 12% year over year.",
    "Dear customer, your parcel is on its way.", "Rain expected after 6 p.m.; bring an umbrella.",
]


def _hard_junk(r: random.Random) -> list[str]:
    out: list[str] = []
    for _ in range(12):
        out.append(bytes(r.randrange(256) for _ in range(r.randrange(10, 80))).decode("latin-1"))
        out.append(bytes(r.randrange(256) for _ in range(r.randrange(10, 80))).decode("utf-8", "replace"))
        out.append("".join(chr(r.randrange(33, 127)) for _ in range(r.randrange(12, 60))))
        out.append("".join(chr(r.randrange(0x100, 0x3000)) for _ in range(r.randrange(12, 40))))
    rows = ["qwertyuiop", "asdfghjkl", "zxcvbnm", "jkl;", "fdsa", "hjkl"]
    for _ in range(14):
        words = ["".join(r.choice(r.choice(rows)) for _ in range(r.randrange(3, 9))) for _ in range(r.randrange(2, 7))]
        out.append(" ".join(words))
    for w in ("the", "I am", "lol", "yes", "ok thanks", "buy now", "and then"):
        out.append(" ".join([w] * r.randrange(8, 20)))
    for c in "a!z.e0":
        out.append("Well " + c * r.randrange(20, 40))
    out += ["pаypal account verification", "Неllо wоrld hоw аrе yоu", "Thе bаnk cаllеd yоu todаy",
            "<unk> <unk> <unk> <unk> <unk> <unk> <unk> <unk> <unk>", "ĠtheĠcatĠsatĠonĠtheĠmat",
            "\x00\x00\x00 hello", "ok\x1b[31m red \x1b[0m", "a\x07b\x07c\x07d\x07e", "\ufffd\ufffd\ufffd response \ufffd",
            "#$%^&*()_+{}|:<>?~!@#$%^", "!!!???...!!!???...!!!???", "zxqj wvkp fmbz qrtx",
            "lkjhgf poiuy mnbvc", "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii",
            "ssssssssssssssssssssssssssssssssss", "1 1 1 1 1 1 1 1 1 1 1 1 1 1", "xjfkdlsjfkdlsjfkdls"]
    return out


def _sources() -> tuple[list[str], list[str]]:
    sms = [ln.split("\t", 1)[1] for ln in (ROOT / "pipelines/data/sms_spam_collection.tsv")
           .read_text(encoding="utf-8").splitlines()[1:]]
    hh = []
    for ln in (ROOT / "pipelines/data/hh_rlhf_harmless_base_test_first300.jsonl").read_text(encoding="utf-8").splitlines():
        text = json.loads(ln)["chosen"]
        hh += [t.strip() for t in text.split("Assistant:")[1:] if 5 < len(t.split()) < 80]
    return sms, hh


def _spec(d: dict) -> dict:
    d = dict(d)
    return {d.pop("name"): d}


def _augmented(r: random.Random) -> list[dict]:
    from curate.augmenters._base import build_augmenter
    sms, hh = _sources()
    texts = [t for t in r.sample(sms, 120) if len(t.split()) >= 4][:60] + [t.split("\n")[0] for t in r.sample(hh, 40)]
    out = []
    mild = [{"name": "char_noise", "aug_char_p": 0.1, "aug_word_p": 0.1}, {"name": "keyboard", "aug_char_p": 0.1, "aug_word_p": 0.1},
            {"name": "word_dropout", "aug_p": 0.1}, {"name": "ocr", "aug_char_p": 0.1, "aug_word_p": 0.1}]
    harsh = [{"name": "keyboard", "aug_char_p": 1.0, "aug_word_p": 1.0, "aug_word_max": 100},
             {"name": "char_noise", "action": "substitute", "aug_char_p": 1.0, "aug_word_p": 1.0, "aug_word_max": 100}]
    for i, spec in enumerate(mild):
        part = texts[i::len(mild)]
        res = build_augmenter(_spec(spec)).augment(part, seed=i)
        out += [{"text": t, "label": "good", "kind": f"augmenter:{spec['name']}:mild"} for t in res if t]
    harsh_src = [t for t in texts if len(t.split()) >= 4][:60]
    for i, spec in enumerate(harsh):
        part = harsh_src[i::len(harsh)]
        res = build_augmenter(_spec(spec)).augment(part, seed=100 + i)
        out += [{"text": t, "label": "junk", "kind": f"augmenter:{spec['name']}:destructive"} for t in res if t]
    return out


def main() -> None:
    r = random.Random(20261203)
    rows = _augmented(r)
    rows += [{"text": t, "label": "good", "kind": "hand:hard_good"} for t in HARD_GOOD]
    rows += [{"text": t, "label": "junk", "kind": "hand:hard_junk"} for t in _hard_junk(r)]
    with OUT.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")   # ASCII: no raw U+2028 etc. for line readers
    by = {}
    for row in rows:
        by[(row["label"], row["kind"].split(":")[0])] = by.get((row["label"], row["kind"].split(":")[0]), 0) + 1
    print(f"wrote {len(rows)} rows to {OUT}: {by}")


if __name__ == "__main__":
    main()
