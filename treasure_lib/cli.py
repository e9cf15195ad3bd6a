"""`treasure` command: one subcommand per step of the study, all driven by params YAML.

Every subcommand takes `--params FILE` (repeatable; later files override earlier ones) and
`KEY=VALUE` overrides such as `tokenizer.codebook_size=8192`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from functools import partial
from pathlib import Path

from . import config
from .errors import TreasureError

DEFAULT_PARAMS = "params/default.yaml"


def _params(args) -> config.Params:
    files = args.params or ([DEFAULT_PARAMS] if Path(DEFAULT_PARAMS).is_file() else [])
    return config.load(files, args.overrides)


def _add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", action="append", metavar="YAML", help=f"params file(s); default {DEFAULT_PARAMS}")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. data.chunk_size=5000")


def cmd_inspect(args) -> int:
    from .io.inspect import format_inspection, inspect_file
    from .object_collections import load_sets

    sets = load_sets(args.objects) if args.objects else {}
    reports = [inspect_file(path, sets) for path in args.files]
    if args.json:
        print(json.dumps(reports, indent=2, default=str))
    else:
        print("\n\n".join(format_inspection(r) for r in reports))
    return 0


def cmd_params(args) -> int:
    import yaml

    print(yaml.safe_dump(_params(args), sort_keys=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="treasure", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="show what H5 files hold and which collections they can serve")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument(
        "--objects",
        default="params/objects.yaml" if Path("params/objects.yaml").is_file() else None,
        help="objects YAML to check the files against (default params/objects.yaml)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("params", help="print the fully resolved parameters")
    _add_params(p)
    p.set_defaults(func=cmd_params)

    for register in _EXTRA_COMMANDS:
        register(sub, _add_params, _params)
    return parser


def cmd_generate(args) -> int:
    from .generate import generate

    params = _params(args)
    results = generate(params.study, params.data, params.generate, workers=args.workers, progress=not args.quiet)
    for r in results:
        print(
            f"{r['process']:<12} {r['events']:>7} events {r['jets']:>8} jets  sigma = {r['cross_section_pb']:.4g} pb  "
            + " ".join(r["files"])
        )
    return 0


def _register_generate(sub, add_params, _):
    p = sub.add_parser("generate", help="generate samples: Pythia 8 + FastJet + ATLAS-like detector emulation -> H5")
    add_params(p)
    p.add_argument(
        "--workers", type=int, default=None, help="parallel processes (default: generate.workers or all cores)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)


def cmd_train_tokenizer(args) -> int:
    from .runs import folder as run_folder
    from .runs import steps
    from .tokenizers.train import tokenizer_dir, train_tokenizers

    params = _params(args)
    if steps.through_stages(params.tokenizer.output_dir):
        open_run = partial(run_folder.Run, run_folder.default_run_dir(params.study), params)
        folder = steps.build("train-tokenizer", params.data, open_run)["path"]
        cards = {p.parent.name: p for p in sorted(folder.glob("*/card"))}
    else:
        out = tokenizer_dir(params.study, params.tokenizer)
        with steps.direct("train-tokenizer", "tokenizer.output_dir", out, run_folder.default_run_dir(params.study)):
            # {} on the other DDP ranks: the main process writes the cards
            cards = train_tokenizers(params.study, params.data, params.tokenizer)
    for name, path in cards.items():
        print(f"{name:<12} {path}")
    return 0


def cmd_export(args) -> int:
    from .runs import folder as run_folder
    from .runs import steps
    from .tokenizers.export import export, tokens_dir

    params = _params(args)
    if steps.through_stages(params.export.output_dir, params.export.cards_dir):
        open_run = partial(run_folder.Run, run_folder.default_run_dir(params.study), params)
        folder = steps.build("export", params.data, open_run)["path"]
        for path in sorted(folder.glob("*.parquet")):
            print(path)
        return 0
    out = tokens_dir(params.study, params.export)
    with steps.direct("export", "export.output_dir", out, run_folder.default_run_dir(params.study)):
        sections = (params.study, params.data, params.tokenizer, params.export, params.sequence, params.selection)
        results = export(*sections, progress=not args.quiet)
    for r in results:
        if r["skipped"]:
            print(f"{r['file']}: outputs exist, skipped (export.overwrite=true to redo)")
        else:
            print(
                f"{r['file']}: {r['rows']} rows in {r['seconds']:.1f} s ({r['rows_per_s']:.0f}/s) -> "
                + " ".join(r["outputs"])
            )
    return 0


def _register_tokenizers(sub, add_params, _):
    p = sub.add_parser(
        "train-tokenizer", help="fit scalers and train a tokenizer per collection; writes tokenizer cards"
    )
    add_params(p)
    p.set_defaults(func=cmd_train_tokenizer)
    p = sub.add_parser("export", help="encode H5 files into token Parquet (and npz for jets) with trained cards")
    add_params(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)


def _report(numbers: dict, metrics_out: str | Path | None, printed: str | None = None) -> None:
    """Record a training command's numbers (the main process only: every DDP rank runs the command) in
    `metrics_out`, merged with what it holds (a stage that launched the command under torchrun reads them there; a
    direct command keeps them beside its outputs, never in a run's metrics.json), and print them."""
    from .distributed import is_main
    from .runs import atomic

    if not is_main():
        return
    if metrics_out:
        path = Path(metrics_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.locked(path.with_name(f".{path.name}.lock")):
            atomic.write_json(path, {**(atomic.read_json(path, {}) or {}), **numbers})
    width = max(map(len, numbers), default=0)
    for key, value in numbers.items():
        print(f"{key:<{width}}  {value:.6g}" if isinstance(value, (int, float)) else f"{key:<{width}}  {value}")
    if printed or metrics_out:
        print(f"-> {printed or metrics_out}")


def _model_step(args, command: str, locations, train) -> int:
    """`treasure pretrain` / `treasure classify`: without output locations (`locations(params)`), the stage of the
    run folder runs/<kind>/<name>; with one, `train(params, tokens_dir)` writes there, its numbers beside it."""
    import json

    from .runs import folder as run_folder
    from .runs import steps
    from .tokenizers.export import tokens_dir
    from .training import run_dir

    params = _params(args)
    folder = run_folder.default_run_dir(params.study)
    if steps.through_stages(*locations(params)) and not args.metrics_out:
        built = steps.build(command, params.data, partial(run_folder.Run, folder, params))
        numbers = built["metrics"] or json.loads((built["path"] / "metrics.json").read_text())
        _report(numbers, None, printed=str(run_dir(params.study) / "metrics.json"))
        return 0
    out = Path(getattr(params, command).output_dir or run_dir(params.study) / "artifacts" / command)
    with steps.direct(command, f"{command}.output_dir", out, folder):
        _report(train(params, tokens_dir(params.study, params.export)), args.metrics_out or out / "metrics.json")
    return 0


def cmd_pretrain(args) -> int:
    from .training import pretrain

    def train(p, tokens):
        return pretrain(study=p.study, model=p.model, pretrain=p.pretrain, classify=p.classify, tokens=tokens)

    return _model_step(args, "pretrain", lambda p: (p.pretrain.output_dir, p.export.output_dir), train)


def cmd_classify(args) -> int:
    from .training import classify

    def train(p, tokens):
        return classify(study=p.study, model=p.model, classify=p.classify, tokens=tokens)

    return _model_step(
        args, "classify", lambda p: (p.classify.output_dir, p.classify.backbone, p.export.output_dir), train
    )


def _register_models(sub, add_params, _):
    p = sub.add_parser("pretrain", help="masked-token pretraining of the backbone on the run's token files")
    add_params(p)
    p.add_argument("--metrics-out", help="write the metrics as JSON here (a direct command: beside its outputs)")
    p.set_defaults(func=cmd_pretrain)
    p = sub.add_parser("classify", help="train and evaluate a classifier (classify.task, inputs, mode, label_fraction)")
    add_params(p)
    p.add_argument("--metrics-out", help="write the metrics as JSON here (a direct command: beside its outputs)")
    p.set_defaults(func=cmd_classify)


from .book.build import register as _register_book  # noqa: E402
from .runs import register as _register_run  # noqa: E402
from .scan import register as _register_scan  # noqa: E402

_EXTRA_COMMANDS: list = [
    _register_generate,
    _register_tokenizers,
    _register_models,
    _register_run,
    _register_book,
    _register_scan,
]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:  # what follows `--` goes to the tool a command wraps (treasure scan run ... -- <snakemake args>)
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    args.passthrough = passthrough
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # libraries with their own INFO loggers (Lightning) print once, through their handler
    try:
        return args.func(args)
    except TreasureError as exc:
        print(f"treasure {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
