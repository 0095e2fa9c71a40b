"""The `curate` command line: build, validate, schema, report, explain, inspect, setup. Heavy imports happen inside commands
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
    """Print an error without wrapping, so `file:line key: message` stays on one line. Credentials
    (URL userinfo, password=..., secret environment values) are masked as a last line of defence."""
    from curate.io import mask_secrets
    from rich.markup import escape                 # "[ml]" in "pip install 'curate-toolkit[ml]'" is not markup
    console.print(f"[bold red]error[/] {escape(mask_secrets(str(e)))}", highlight=False, soft_wrap=True)


def _load(path: Path):
    from curate.errors import CurateError
    from curate.pipeline import load_yaml
    try:
        return load_yaml(path)
    except CurateError as e:
        _error(e)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        from curate import __version__
        out.print(f"curate {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """curate: turn raw, messy sources into verified fine-tuning datasets for LLMs."""


def _table(result) -> None:
    from rich.markup import escape

    from curate.report.table import closing_table, closing_warnings
    out.print(closing_table(result))
    for w in closing_warnings(result):
        out.print(f"[yellow]warning[/] {escape(w)}")


def _write_report(result, pipeline=None) -> None:
    """Write the HTML report beside the run's manifest and print its path (never fails a build)."""
    if result.manifest_path is None:
        return
    try:
        from curate.report.report import write_report
        path = write_report(result.manifest_path)
        if pipeline is not None and getattr(pipeline, "out_url", None):     # a URL out_dir: upload it too
            from curate import storage
            storage.put_file(Path(path), storage.path(pipeline.out_url) / "report.html")
            path = f"{pipeline.out_url.rstrip('/')}/report.html (local copy {path})"
    except Exception as e:              # a report problem must not turn a good build into a failure
        from rich.markup import escape
        console.print(f"[yellow]report not written[/]: {escape(str(e))}", highlight=False, soft_wrap=True)
        return
    out.print(f"report:   {path}")


@app.command()
def build(pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
          force: bool = typer.Option(False, "--force", help="Ignore every cache and recompute."),
          only: Optional[str] = typer.Option(None, "--only", metavar="STEP",
                                             help="Recompute STEP (a name, NAME#K for the K-th step of that name, or a position 1..N) "
                                                  "from cached upstream results and stop after it; no outputs. Writes out/<name>/runs/<time>/ only."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show what would run, without running."),
          no_train: bool = typer.Option(False, "--no-train", help="Skip the pipeline's `train:` section."),
          no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report."),
          wait: bool = typer.Option(False, "--wait", help="If another build of this pipeline is running, wait for it instead of failing."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
          executor: Optional[str] = typer.Option(None, "--executor", metavar="local|ray",
                                                 help="Override the file's `executor:` (ray needs the [ray] extra)."),
          address: Optional[str] = typer.Option(None, "--address", metavar="ADDR",
                                                help="Ray cluster to join (implies --executor ray); default: the file's "
                                                     "`ray.address`, else a local Ray for this build.")) -> None:
    """Run a pipeline: sources → steps → outputs (→ train), with caching, accounting, a manifest and an HTML report."""
    from curate.errors import CurateError
    p = _load(pipeline)
    if executor is not None or address is not None:
        if executor not in (None, "local", "ray"):
            _error(CurateError(f"--executor must be local or ray (got {executor!r})"))
            raise typer.Exit(2)
        p.executor = executor or "ray"
        if address is not None:
            p.ray = p.ray.model_copy(update={"address": address})
    try:
        result = p.run(force=force, only=only, dry_run=dry_run, progress=not quiet, console=console,
                       train=not no_train, wait=wait)
    except CurateError as e:
        partial = getattr(e, "result", None)
        if partial is not None:
            _table(partial)
            out.print(f"manifest: {partial.manifest_path} (status {partial.manifest['status']})")
            if not no_report:
                _write_report(partial, p)
        _error(e)
        if getattr(e, "hint", None):
            console.print(f"[bold]what to do[/] {e.hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    _table(result)
    if dry_run:
        return
    if result.manifest.get("only"):
        out.print(f"--only ran {result.manifest['only']['description']}; outputs and "
                  f"{p.out_dir / 'manifest.json'} untouched", highlight=False)
    elif result.nothing_written:
        out.print("every step cached: nothing recomputed")
    elif result.all_cached:
        rewritten = [r.name for r in result.reports if r.kind == "output" and not r.cached]
        out.print(f"every step cached; rewrote {len(rewritten)} output(s): {', '.join(rewritten)}")
    out.print(f"manifest: {result.manifest_path}")
    if result.rejects_path:
        out.print(f"rejects:  {result.rejects_path}")
    for f in result.outputs:
        out.print(f"output:   {f}")
    if "train" in result.manifest:
        t = result.manifest["train"]
        out.print(f"trained:  {t['output_dir']}" + (" (cached)" if t.get("cached") else ""))
    if not no_report:
        _write_report(result, p)


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
def validate(pipeline: Path = typer.Argument(..., help="Pipeline YAML file, or a standalone train YAML.")) -> None:
    """Check a pipeline or train file without running it; errors name the file, line and key.
    `${env:NAME}` variables are listed as required; they need not be set."""
    from curate.errors import CurateError
    from curate.validate import check_file
    try:
        res = check_file(pipeline)
    except CurateError as e:
        _error(e)
        raise typer.Exit(2) from None
    out.print(f"[green]ok[/] {pipeline}: {res.summary}", highlight=False)
    if res.env:
        out.print("requires environment variables: " + ", ".join(
            f"{n} ({'set' if ok else 'not set'})" for n, ok in res.env.items()), highlight=False)


@app.command()
def report(target: Path = typer.Argument(..., help="Pipeline file, output folder (out/<name>) or manifest.json."),
           output: Optional[Path] = typer.Option(None, "--output", "-o", help="HTML file to write (default: report.html beside the manifest).")) -> None:
    """Write the HTML report of the last run: step funnel, distributions, duplicates, samples, config (works offline)."""
    from curate.errors import CurateError
    from curate.report.report import write_report
    try:
        path = write_report(target, output)
    except CurateError as e:
        _error(e)
        raise typer.Exit(1) from None
    out.print(f"report:   {path}")


@app.command()
def explain(row_id: str = typer.Argument(..., help="A row id (the `id` column of outputs and rejects)."),
            run: Path = typer.Option(Path("."), "--run", "-r", help="Pipeline file, output folder or manifest.json "
                                     "(default: every out/*/ under the current folder)."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """One row's lineage: source, what every step decided, parents and weights, checks, where it ended."""
    from curate.errors import CurateError
    from curate.report.lineage import explain as explain_row, render
    targets = [run] if run != Path(".") else sorted(p.parent for p in Path("out").glob("*/manifest.json"))
    if not targets:
        _error(CurateError("no runs under out/; give --run PIPELINE (or an out/<name> folder)"))
        raise typer.Exit(2)
    last: Exception | None = None
    for t in targets:
        try:
            info = explain_row(t, row_id)
        except CurateError as e:
            last = e
            continue
        if as_json:
            sys.stdout.write(json.dumps(info, indent=2, ensure_ascii=False, default=str) + "\n")
        else:
            out.print("\n".join(render(info)), highlight=False, soft_wrap=True)
        return
    _error(last)
    raise typer.Exit(1)


@app.command()
def inspect(file: Path = typer.Argument(..., help="A dataset file: csv, tsv, jsonl, json (NI task), parquet, DPO/chat jsonl."),
            rows: int = typer.Option(3, "--rows", "-n", help="Rows to show."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Schema, row count, label and length stats and a few rows of a dataset file."""
    from curate.errors import CurateError
    from curate.report.inspect import inspect_file, rich_view
    try:
        info = inspect_file(file, rows)
    except (CurateError, ValueError, OSError) as e:
        _error(e)
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        out.print(rich_view(info))


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
    from curate import registry
    for module, err in registry.import_errors.items():
        console.print(f"[yellow]plug-in {escape(module)} failed to import[/]: {escape(err)}", highlight=False)


@app.command()
def show(name: str = typer.Argument(..., help="A source, step or output name (see `curate list`)."),
         plugin: list[str] = _PLUGIN_OPT) -> None:
    """Show a component's options: type, default and description (nested options as a.b)."""
    import difflib

    from rich.markup import escape
    from rich.table import Table

    from curate import registry
    from curate.describe import KINDS, find, first_line, memory_model, options
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
        if memory_model(cls):
            out.print(f"memory: {escape(memory_model(cls))}", highlight=False)
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


@setup_app.command("embeddings")
def setup_embeddings(model: Optional[str] = typer.Option(None, help="sentence-transformers name or path "
                                                           "(default: the offline all-MiniLM-L6-v2)."),
                     onnx: bool = typer.Option(True, help="Export the ONNX fp32 model (the CPU default backend)."),
                     int8: bool = typer.Option(False, help="Also quantise it to int8 (backend onnx-int8)."),
                     static: bool = typer.Option(False, help="Also distil the model2vec static model "
                                                             "(backend static; minutes on a CPU)."),
                     ) -> None:
    """Export embedding models into curate's cache ahead of time ($CURATE_CACHE_DIR/embed)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from curate.errors import CurateError
    from curate.setup_embeddings import setup_embeddings as run_setup, stages
    try:
        todo = stages(onnx, int8, static)
    except CurateError as e:
        _error(e)
        raise typer.Exit(2) from None
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("embeddings", total=len(todo))

        def on_stage(backend, built) -> None:
            if built is None:
                bar.update(task, description=f"building {backend}")
            else:
                bar.advance(task)
                bar.console.print(f"{backend}: {built.path} ({built.seconds:.1f} s)", highlight=False)
        try:
            built = run_setup(model, onnx, int8, static, on_stage=on_stage)
        except CurateError as e:
            _error(e)
            raise typer.Exit(1) from None
        bar.update(task, description="done")
    for b in built:
        drift = (b.meta or {}).get("drift_vs_fp32")
        out.print(f"{b.backend} ready at {b.path}" + (f" (drift vs fp32 on probe texts: {drift})" if drift else ""),
                  highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
