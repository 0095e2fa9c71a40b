"""File connectors: sources csv, tsv, json, jsonl, parquet, hf_dataset and outputs jsonl, parquet,
csv, hf_dataset. Parsing lives in :mod:`curate.connectors._textio` so other connectors reuse it."""
