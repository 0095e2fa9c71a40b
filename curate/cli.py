"""The `curate` command line: build, validate, schema, setup. Heavy imports happen inside commands
so `curate --help` prints in well under a second."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="curate: turn raw, messy sources into verified fine-tuning datasets for LLMs.")
console = Console(stderr=True)
out = Console()


def _error(e: Exception) -> None:
    """Print an error without wrapping, so `file:line key: message` stays on one line."""
    console.print(f"[bold red]error[/] {e}", highlight=False, soft_wrap=True)


def _load(path: Path):
    from curate.errors import CurateError
    from curate.pipeline import load_yaml
    try:
        return load_yaml(path)
    except CurateError as e:
        _error(e)
        raise typer.Exit(2) from None


def _table(result) -> None:
    from rich.table import Table
    t = Table(title=f"curate build: {result.manifest['pipeline']}")
    t.add_column("kind")
    t.add_column("name", overflow="fold", min_width=20)
    for col in ("in", "out", "rejected", "created", "sec"):
        t.add_column(col, justify="right")
    t.add_column("status")
    for r in result.reports:
        status = "cached" if r.cached else ("planned" if result.planned else "ran")
        if result.planned and r.extra.get("would_run"):
            status = "would run"
        t.add_row(r.kind, r.name, f"{r.rows_in:,}" if r.kind != "source" else "",
                  f"{r.rows_out:,}" if r.kind != "output" else "", f"{r.rows_rejected:,}",
                  f"{r.rows_created:,}" if r.rows_created else "", f"{r.seconds:.2f}", status)
    out.print(t)


@app.command()
def build(pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
          force: bool = typer.Option(False, "--force", help="Ignore every cache and recompute."),
          only: Optional[str] = typer.Option(None, "--only", metavar="STEP",
                                             help="Recompute STEP (using cached upstream results) and stop after it; no outputs."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show what would run, without running."),
          no_train: bool = typer.Option(False, "--no-train", help="Skip the pipeline's `train:` section."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars.")) -> None:
    """Run a pipeline: sources → steps → outputs (→ train), with caching, accounting and a manifest."""
    from curate.errors import CurateError
    p = _load(pipeline)
    try:
        result = p.run(force=force, only=only, dry_run=dry_run, progress=not quiet, console=console,
                       train=not no_train)
    except CurateError as e:
        _error(e)
        raise typer.Exit(1) from None
    _table(result)
    if not dry_run:
        if result.all_cached:
            out.print("every step cached: nothing recomputed")
        out.print(f"manifest: {result.manifest_path}")
        if result.rejects_path:
            out.print(f"rejects:  {result.rejects_path}")
        for f in result.outputs:
            out.print(f"output:   {f}")
        if "train" in result.manifest:
            t = result.manifest["train"]
            out.print(f"trained:  {t['output_dir']}" + (" (cached)" if t.get("cached") else ""))


@app.command()
def train(config: Path = typer.Argument(..., help="Train YAML, or a pipeline file with a `train:` section."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-step log lines.")) -> None:
    """Fine-tune on curate's outputs: SFT / DPO / classification with LoRA, DoRA, QLoRA, full, ..."""
    from curate.errors import CurateError
    from curate.train import load_train_config, run_training
    try:
        cfg = load_train_config(config)
    except CurateError as e:
        _error(e)
        raise typer.Exit(2) from None
    try:
        result = run_training(cfg, console=None if quiet else console)
    except CurateError as e:
        _error(e)
        raise typer.Exit(1) from None
    m = result.metrics
    out.print(f"trained {m['global_step']} steps ({m['method']}, {100 * m['trainable_fraction']:.2f}% trainable)")
    out.print(f"model:    {result.model_dir}\nmetrics:  {result.metrics_path}\ncard:     {result.model_card_path}")


@app.command()
def validate(pipeline: Path = typer.Argument(..., help="Pipeline YAML file.")) -> None:
    """Check a pipeline file without running it; errors name the file, line and key."""
    p = _load(pipeline)
    out.print(f"[green]ok[/] {pipeline}: {len(p.sources)} sources, {len(p.steps)} steps, "
              f"{len(p.outputs)} outputs")


@app.command()
def schema(output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout.")) -> None:
    """Print the JSON Schema of pipeline files (for editor autocompletion)."""
    from curate.pipeline import json_schema
    text = json.dumps(json_schema(), indent=2)
    if output:
        output.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")


_PLUGIN_OPT = typer.Option([], "--plugin", "-p", metavar="MODULE",
                           help="Also import this plug-in (module name or .py path), as a pipeline's `plugins:` does.")


def _plugins(modules: list[str]) -> None:
    from curate import registry
    for m in modules:
        try:
            registry.load_plugin(m)
        except Exception as e:
            _error(RuntimeError(f"plug-in {m!r} failed to import: {type(e).__name__}: {e}"))
            raise typer.Exit(2) from None


@app.command("list")
def list_components(plugin: list[str] = _PLUGIN_OPT) -> None:
    """List every source, step and output (built-in and plug-in) with a one-line description."""
    from rich.markup import escape
    from rich.table import Table

    from curate.describe import listing
    _plugins(plugin)
    for kind, rows in listing().items():
        t = Table(title=f"{kind}s", title_justify="left", show_header=False, box=None)
        t.add_column("name", style="bold", no_wrap=True)
        t.add_column("what")
        for name, doc in rows:
            t.add_row(escape(name), escape(doc))
        out.print(t)
    out.print("options of one: curate show NAME")


@app.command()
def show(name: str = typer.Argument(..., help="A source, step or output name (see `curate list`)."),
         plugin: list[str] = _PLUGIN_OPT) -> None:
    """Show a component's options: type, default and description (nested options as a.b)."""
    import difflib

    from rich.markup import escape
    from rich.table import Table

    from curate import registry
    from curate.describe import KINDS, find, first_line, options
    _plugins(plugin)
    found = find(name)
    if not found:
        known = sorted({n for k in KINDS for n in registry.names(k)})
        close = difflib.get_close_matches(name, known, n=3)
        _error(RuntimeError(f"no source, step or output called {name!r}"
                            + (f"; did you mean {', '.join(close)}?" if close else "; see `curate list`")))
        raise typer.Exit(2)
    for kind, cls in found:
        out.print(f"[bold]{kind} {escape(name)}[/]: {escape(first_line(cls))}", highlight=False)
        t = Table(show_lines=False)
        for col in ("option", "type", "default", "description"):
            t.add_column(col, overflow="fold")
        for o in options(cls.Config):
            t.add_row(*(escape(v) for v in (o.path, o.type, o.default, o.description)))
        out.print(t)


setup_app = typer.Typer(help="One-time set-up of offline resources (no hidden downloads).", no_args_is_help=True)
app.add_typer(setup_app, name="setup")


@setup_app.command("wordnet")
def setup_wordnet(target: Optional[Path] = typer.Option(None, help="NLTK data folder (default: the first NLTK data root)."),
                  ) -> None:
    """Make NLTK find WordNet from Debian's `wordnet-base` package (apt-get install wordnet-base)."""
    from curate.errors import CurateError
    from curate.setup_wordnet import install_wordnet
    try:
        path = install_wordnet(target)
    except CurateError as e:
        _error(e)
        raise typer.Exit(1) from None
    out.print(f"WordNet ready for NLTK at {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
