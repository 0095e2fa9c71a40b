"""Quality and safety filters: Gopher/C4/FineWeb-style heuristics (one registered step per rule
family), flagged words, a classifier filter, domain relevance, NER-based PII redaction and a
diversity report. Modules import only polars/pydantic at import time; models load lazily."""
