"""See what happened to the data: the closing table, the HTML report (``curate report``), one
row's lineage (``curate explain``) and a look inside any dataset file (``curate inspect``)."""
