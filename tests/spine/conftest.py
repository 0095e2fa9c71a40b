from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# Register the test-only plug-ins (t_rows, t_minlen, ...) once per session.
_spec = importlib.util.spec_from_file_location("curate_spine_plugins", Path(__file__).with_name("plugins.py"))
plugins = importlib.util.module_from_spec(_spec)
sys.modules["curate_spine_plugins"] = plugins
_spec.loader.exec_module(plugins)
