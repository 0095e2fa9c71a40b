"""Annotation: automatic labels (an LLM backend or a classifier, with a confidence per row),
weak supervision (labelling functions combined by majority vote or a Dawid-Skene label model)
and the human review round-trip (Label Studio JSON / CSV out, reviewed labels back in)."""
