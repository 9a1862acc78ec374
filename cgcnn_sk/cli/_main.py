"""The ``cgcnn-sk`` subcommands and their parser."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._inputs import DATA_HELP, CLIError, Data, _one_line, _subsample, load_data, parse_set_params

__all__ = ["build_parser", "main"]


# --------------------------------------------------------------------------- commands
def _add_data_args(p: argparse.ArgumentParser, default: str | None = "jdft2d") -> None:
    p.add_argument("--data", default=default, metavar="SPEC", help=f"{DATA_HELP}. "
                   f"Default: {default}.")
    p.add_argument("--data-home", default=None, metavar="DIR",
                   help="folder holding matbench_<name>.json.gz (for matbench:<name>)")
    p.add_argument("--target", default=None, help="target column of a csv: file")
    p.add_argument("--structure-column", default=None, help="structure column of a csv: file")
    p.add_argument("--max-samples", type=int, default=None, metavar="N",
                   help="use a random subset of N structures (quick trials)")


def _baseline_cgcnn(choice: str | None, task: str | None) -> tuple[Any, str | None]:
    """``--baseline-cgcnn`` as ``run_study`` takes it, and how a tuned setting was chosen.

    By default the best CGCNN known for the data meets the forest: the task's tuned settings
    where :data:`cgcnn_sk.recipes.TUNED` has them, the recipe otherwise.
    """
    from ..recipes import TUNED

    if choice is None:
        choice = "tuned" if task in TUNED else "default"
    if choice != "tuned":
        return choice, None
    if task not in TUNED:
        raise CLIError(f"--baseline-cgcnn tuned: no tuned settings for {task or 'this data'}; "
                       f"there are for {', '.join(sorted(TUNED))}")
    return dict(TUNED[task]), (f"the setting chosen for {task} by a 3-fold validation inside "
                               "the training rows of its official fold 0 "
                               "(cgcnn_sk.recipes.TUNED)")


def _cmd_study(args, params) -> int:
    from ..workflows.studies import STUDIES, run_study

    names = [s.strip() for s in args.studies.split(",") if s.strip()]
    for s in names:
        if s != "all" and s not in STUDIES:
            raise CLIError(f"unknown study {s!r}; choose from all, {', '.join(STUDIES)}")
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    for f in formats:
        if f not in ("md", "html"):
            raise CLIError(f"unknown report format {f!r}; choose from md, html")
    data = _subsample(_load(args), args.max_samples, args.random_state)
    cv: Any = args.cv
    folds_note = None
    if data.matbench and (cv or 5) == 5:
        from ..datasets import matbench_folds

        cv = matbench_folds(len(data.structures))
        folds_note = "official Matbench v0.1 folds (KFold(5, shuffle=True, random_state=18012019))"
    n_jobs = args.n_jobs
    if n_jobs is None:  # one process per core: small networks scale better so than with torch
        import joblib  # threads, which oversubscribe a busy machine badly

        n_jobs = joblib.cpu_count()
    baseline_cgcnn, note = _baseline_cgcnn(args.baseline_cgcnn, data.task)
    meta = {"data": data.name, "target": data.target, "unit": data.unit,
            "command": _command(args), **({"baseline_note": note} if note else {})}
    out = Path(args.out)
    t0 = time.perf_counter()
    _say(args, f"study {','.join(names)} on {data.name} ({len(data.structures)} structures), "
               f"preset {args.preset}")
    from ..workflows._interrupt import RunInterrupted

    try:
        result = run_study(
            data.structures, data.y, names, cv=cv, preset=args.preset,
            random_state=args.random_state, n_jobs=n_jobs, params=params, ids=data.ids,
            baseline_cgcnn=baseline_cgcnn, verbose=not args.quiet,
            memory=None if args.no_cache else out / "cache", meta=meta,
        )
    except RunInterrupted as err:
        text = str(err)
        if err.result is not None:
            if folds_note:
                err.result.meta["folds"] = folds_note
            paths = err.result.write_report(out, formats)
            text += f"; partial report: {paths.get('html', paths.get('md'))}"
        if not args.no_cache:
            text += f". Resume with the same command: {_command(args)}"
        print(f"cgcnn-sk study: {text}", file=sys.stderr)
        return 130
    if folds_note:
        result.meta["folds"] = folds_note
    result.meta["wall_time"] = round(time.perf_counter() - t0, 1)
    paths = result.write_report(out, formats)
    if result.failed():  # a run in which no CGCNN fit worked answers nothing
        first = result.table.loc[result.table["status"].eq("failed"), "error"].iloc[0] \
            if not result.table.empty else "no fit ran"
        print(f"cgcnn-sk study: error: every CGCNN fit failed: {_one_line(first)} "
              f"(report of the failures: {paths.get('html', paths.get('md'))})",
              file=sys.stderr)
        return 1
    for study, sentence in result.conclusions().items():
        _say(args, f"[{study}] {sentence}")
    report = paths.get("html", paths.get("md"))
    print(f"report: {report}")
    print(f"table:  {paths['csv']}  ({len(result.table)} rows); figures in {out}/; "
          f"wall time {result.meta['wall_time']:.0f} s")
    return 0


def _cmd_featurize(args, params) -> int:
    from ..graph._featurizer import CrystalGraphFeaturizer

    feat_params = {}
    for k, v in params.items():
        step, _, name = k.partition("__")
        if step != "graph":
            raise CLIError(f"featurize takes only --graph__<param> flags, got --{k}")
        feat_params[name] = v
    data = _subsample(_load(args), args.max_samples, args.random_state)
    featurizer = CrystalGraphFeaturizer(verbose=not args.quiet)
    try:
        featurizer.set_params(**feat_params)
    except ValueError as err:
        raise CLIError(_one_line(err)) from err
    t0 = time.perf_counter()
    graphs = featurizer.fit_transform(data.structures)
    dt = time.perf_counter() - t0
    out = Path(args.out)
    _dump(
        {"graphs": graphs, "y": data.y, "ids": data.ids, "data": data.name,
         "target": data.target, "unit": data.unit,
         "featurizer_params": featurizer.get_params()},
        out,
    )
    print(f"{graphs!r}")
    print(f"featurized {len(graphs)} structures in {dt:.2f} s; saved to {out}")
    return 0


def _dump(obj, out: Path) -> None:
    """``joblib.dump`` into ``out``, whole or not at all."""
    import joblib

    from .._utils import write_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda f: joblib.dump(obj, f))


def _cmd_train(args, params) -> int:
    from ..workflows._interrupt import watch_sigint
    from ..workflows.studies import make_cgcnn_pipeline

    data = _subsample(_load(args), args.max_samples, args.random_state)
    try:
        pipe = make_cgcnn_pipeline(args.recipe, args.random_state)
        pipe.set_params(cgcnn__verbose=0 if args.quiet else 1, graph__verbose=not args.quiet)
        pipe.set_params(**params)
    except ValueError as err:
        raise CLIError(_one_line(err)) from err
    X, y = data.structures, data.y
    X_tr, y_tr, te = X, y, None
    if args.test_size:
        if not 0 < args.test_size < 1:
            raise CLIError(f"--test-size must be in (0, 1), got {args.test_size}")
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(X))
        tr, te = train_test_split(idx, test_size=args.test_size, random_state=args.random_state)
        X_tr, y_tr = [X[i] for i in tr], y[tr]
    out = Path(args.out)
    with watch_sigint() as watch:
        t0 = time.perf_counter()
        try:
            pipe.fit(X_tr, y_tr)
        except KeyboardInterrupt:  # skorch stops only its epoch loop; anything else ends here
            print("cgcnn-sk train: interrupted outside the training epochs (featurizing, or "
                  "setting up or finishing the fit); nothing was saved", file=sys.stderr)
            return 130
        fit_time = time.perf_counter() - t0
        pipe.set_params(cgcnn__verbose=0, graph__verbose=False)
        if watch.interrupted:  # skorch caught the Ctrl-C and returned what it had trained
            _dump(pipe, out)
            print(f"cgcnn-sk train: {_interrupted_at(pipe[-1])}; saved the model trained so "
                  f"far to {out}. Use it with: cgcnn-sk predict {out} FILE..., or "
                  f"cgcnn_sk.load({str(out)!r})", file=sys.stderr)
            return 130
    test_note = ""
    if te is not None:
        mae = float(np.mean(np.abs(pipe.predict([X[i] for i in te]) - y[te])))
        test_note = f"; test MAE on {len(te)} held-out structures: {mae:.4g} {data.unit or ''}"
    _dump(pipe, out)
    print(f"trained on {len(y_tr)} structures of {data.name} "
          f"in {fit_time:.1f} s ({len(pipe[-1].history)} epochs){test_note}")
    print(f"saved pipeline to {out}")
    return 0


def _interrupted_at(net) -> str:
    """``interrupted at epoch 3 of 50 (2 complete; ...)``: where a Ctrl-C stopped ``net``."""
    history = net.history
    done = sum("dur" in row for row in history)  # skorch's EpochTimer ends every epoch
    text = f"interrupted (Ctrl-C) at epoch {len(history)} of {net.max_epochs} ({done} complete"
    stopper = dict(getattr(net, "callbacks_", [])).get("early_stopping")
    best = getattr(stopper, "best_epoch_", None)
    if best and getattr(stopper, "load_best", False):  # on_train_end restored that epoch
        text += f"; weights of epoch {best}, the lowest {stopper.monitor} so far"
    return text + ")"


def _command(args) -> str:
    import shlex

    return "cgcnn-sk " + shlex.join(args.argv)


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _cmd_matbench(args, params) -> int:
    from ..workflows.matbench import MATBENCH_PRESETS, run_matbench

    if params:
        raise CLIError(f"matbench takes no pipeline parameters, got {sorted(params)}: "
                       "a preset fixes the recipe")
    if args.preset not in MATBENCH_PRESETS:
        raise CLIError(f"--preset {args.preset!r} is not one of {sorted(MATBENCH_PRESETS)}")
    folds = None
    if args.folds:
        try:
            folds = [int(v) for v in args.folds.split(",") if v.strip()]
        except ValueError as err:
            raise CLIError(f"--folds {args.folds!r}: give fold numbers like 0,2") from err
    from ..workflows._interrupt import RunInterrupted

    if args.summarize:
        from ..workflows.matbench import summarize_matbench

        try:
            table = summarize_matbench(args.task, preset=args.preset, out=args.out)
        except FileNotFoundError as err:
            raise CLIError(str(err)) from err
    else:
        try:
            table = run_matbench(args.task, preset=args.preset, folds=folds, out=args.out,
                                 data_home=args.data_home, progress=not args.quiet,
                                 n_members=args.members)
        except RunInterrupted as err:
            print(f"cgcnn-sk matbench: {err}. Resume with the same command: "
                  f"{_command(args)}", file=sys.stderr)
            return 130
    root = Path(args.out) / args.task / args.preset
    if len(table):
        print(table[["fold", "n_members", "mae", "rmse", "max_error", "wall_s"]]
              .to_string(index=False))
        print(f"mean MAE over {len(table)} fold(s): {table['mae'].mean():.4g}")
    print(f"results in {root} (summary.md, predictions.csv, coverage.csv, intervals.csv, "
          "folds/)")
    return 0


def _structure_paths(items: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(p.glob("*.cif"))
            if not found:
                raise CLIError(f"no .cif file in folder {p}")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            raise CLIError(f"cannot read {item}: no such file or folder")
    return paths


def _cmd_predict(args, params) -> int:
    import pandas as pd

    if params:
        raise CLIError(f"predict takes no pipeline parameters, got --{next(iter(params))}")
    items = list(args.files)
    model = args.model
    if model is None:
        if len(items) < 2:
            raise CLIError("give a model (--model NAME_OR_FILE, or as the first argument) and "
                           "at least one structure file")
        model, items = items[0], items[1:]
    paths = _structure_paths(items)
    model_path = Path(model).expanduser()
    if model_path.is_file() and model_path.suffix in (".joblib", ".pkl", ".pickle"):
        from ..estimators._persistence import ModelFileError, load

        try:
            pipe = load(model_path)
        except ModelFileError as err:
            raise CLIError(f"cannot load model: {_one_line(err)}") from err
        if not hasattr(pipe, "predict"):
            raise CLIError(f"{model_path} holds a {type(pipe).__name__}, which cannot predict")
        pred = np.asarray(pipe.predict([str(p) for p in paths]))
        frame = pd.DataFrame({"id": [p.stem for p in paths], "file": [str(p) for p in paths]})
        if pred.ndim == 1:
            frame["prediction"] = pred
        else:
            for j in range(pred.shape[1]):
                frame[f"prediction_{j}"] = pred[:, j]
    else:  # a pretrained name or a reference checkpoint file
        from .. import pretrained

        frame = pretrained.predict_files(model, [str(p) for p in paths])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)
        print(f"wrote {len(frame)} predictions to {args.out}")
    else:
        print(frame.to_string(index=False))
    return 0


def _load(args) -> Data:
    return load_data(args.data, data_home=args.data_home, target=args.target,
                     structure_column=args.structure_column)


def _say(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def _preset_help() -> str:
    from ..workflows.studies import FACTORS, PRESETS

    factors = ", ".join(f"{f} {lo} vs {hi}" for f, (_, lo, hi) in FACTORS.items())
    lines = [f"  factors (2 levels each, + is the recipe's): {factors}"]
    for name, spec in PRESETS.items():
        lines.append(
            f"  preset {name}: recipe {spec['recipe']!r}, {spec['cv']} folds, {spec['fraction']} "
            f"factorial, CGCNN vs RF on {spec['repeats']} repeats, RF {spec['rf']}, ROPE "
            f"{spec['rope']:.1%} of the MAE")
    return "\n".join(lines)


_PARAMS_EPILOG = (
    "Pipeline parameters: any --<step>__<param>=VALUE goes to Pipeline.set_params, steps "
    "'graph' (CrystalGraphFeaturizer: radius, max_num_nbr, dmin, step, atom_features) and "
    "'cgcnn' (CGCNNRegressor: lr, max_epochs, batch_size, module__atom_fea_len, module__n_conv,"
    " module__h_fea_len, module__activation, module__batchnorm, module__pooling, "
    "module__dropout, ...). Example: --cgcnn__module__pooling=max --graph__max_num_nbr=8."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cgcnn-sk``: study, matbench, featurize, train, predict."""
    from ..recipes import RECIPES

    parser = argparse.ArgumentParser(
        prog="cgcnn-sk",
        description="Crystal graph convolutional neural networks (CGCNN) as scikit-learn "
        "estimators: studies with reports, featurization, training and prediction.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "study", formatter_class=fmt,
        help="cross-validated studies of CGCNN settings vs the RF baseline, with a report",
        description="Answer the questions neighbours (M), activation_batchnorm, pooling "
        "(a two-level factorial design of those factors, every setting on the same folds) and "
        "baseline (the CGCNN against a matminer RF over repeated folds: on jdft2d the recipe "
        "with the M tuned for it, elsewhere the recipe), each with a "
        "verdict: better, equivalent or undecided. Writes a report (Markdown and HTML), the "
        "tidy CSV of every fit, loss curves and figures.\n\n"
        + _preset_help(),
        epilog=_PARAMS_EPILOG,
    )
    _add_data_args(p)
    p.add_argument("--studies", default="all",
                   help="comma-separated: all, neighbours, activation_batchnorm, pooling, "
                   "baseline (default: all)")
    p.add_argument("--preset", choices=["quick", "full"], default="quick",
                   help="quick (60-epoch fits, half fraction: within 15 min on 2 cores on "
                   "jdft2d) or full (the recipe's 300-epoch fits); default quick")
    p.add_argument("--baseline-cgcnn", choices=["default", "nested", "tuned"], default=None,
                   help="CGCNN of the baseline study: the preset's fixed recipe, a setting "
                   "chosen by nested CV inside each training fold, or the recipe with the "
                   "settings tuned for the Matbench task (cgcnn_sk.recipes.TUNED; jdft2d: "
                   "M = 48, phonons: max pooling). Default: tuned where the data has tuned "
                   "settings, else default")
    p.add_argument("--cv", type=int, default=None,
                   help="number of folds (default: the preset's; 5 on Matbench data uses the "
                   "official Matbench folds)")
    p.add_argument("--out", default="cgcnn_sk_study", help="output folder (default: %(default)s)")
    p.add_argument("--format", default="md,html", help="report formats: md, html or md,html")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="fits run in parallel processes (default: the number of cores)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not cache finished fits in OUT/cache (by default a rerun, e.g. "
                   "after Ctrl-C, reads them from there instead of fitting them again)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser(
        "featurize", help="structures -> crystal graphs saved with joblib",
        description="Featurize structures into CGCNN crystal graphs and save them (joblib) "
        "with the targets and ids: {'graphs', 'y', 'ids', 'featurizer_params', ...}.",
        epilog="Featurizer parameters: --graph__radius=8.0 --graph__max_num_nbr=12 "
        "--graph__step=0.2 --graph__atom_features=cgcnn ...",
    )
    _add_data_args(p)
    p.add_argument("--out", default="graphs.joblib", help="output file (default: %(default)s)")
    p.add_argument("--random-state", type=int, default=0, help="seed of --max-samples")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_featurize)

    p = sub.add_parser(
        "train", help="fit a CGCNN pipeline and save it with joblib",
        description="Fit Pipeline([('graph', CrystalGraphFeaturizer()), ('cgcnn', "
        "CGCNNRegressor())]) with a preset's parameters and your overrides, and save it.",
        epilog=_PARAMS_EPILOG,
    )
    _add_data_args(p)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="default",
                   help="named recipe of network and schedule (cgcnn_sk.recipes; default: "
                   "%(default)s, what CGCNNRegressor() does)")
    p.add_argument("--out", default="cgcnn_pipeline.joblib",
                   help="output file (default: %(default)s)")
    p.add_argument("--test-size", type=float, default=0.0,
                   help="hold out this fraction and print its MAE (default 0: fit on all)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no epoch table")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "predict", help="predict structure files with a saved pipeline or a pretrained model",
        description="Predict the target of structure files (CIF, or folders of *.cif) with a "
        "pipeline saved by 'cgcnn-sk train' (.joblib), a pretrained model name or a reference "
        "CGCNN checkpoint (.pth.tar); prints a table or writes CSV to --out.",
        epilog="Examples: cgcnn-sk predict --model formation-energy-per-atom NaCl.cif; "
        "cgcnn-sk predict cgcnn_pipeline.joblib cifs/ --out predictions.csv. Pretrained "
        "names: python -c 'from cgcnn_sk.pretrained import list_models; print(list_models())'",
    )
    p.add_argument("--model", default=None,
                   help="saved pipeline (.joblib), pretrained model name or checkpoint file; "
                   "may instead be given as the first positional argument")
    p.add_argument("files", nargs="+", metavar="FILE", help="structure files or folders")
    p.add_argument("--out", default=None, help="CSV file for the predictions (default: print)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "matbench", formatter_class=fmt,
        help="the Matbench v0.1 protocol on jdft2d, phonons or dielectric (resumable)",
        description="Fit a recipe on each official Matbench fold's training rows, predict "
        "its test rows, and write per-structure predictions, per-fold metrics and a summary "
        "beside the published scores to OUT/TASK/PRESET/. A rerun resumes: finished members "
        "and folds are kept.",
    )
    p.add_argument("--task", required=True, choices=["jdft2d", "phonons", "dielectric"])
    p.add_argument("--preset", default="recipe",
                   help="tiny (CI smoke test), defaults (CGCNNRegressor()), recipe (default), "
                   "long, tuned (each task's validated settings), pretrained; candidates: "
                   "magpie, ema, swa, m48 (cgcnn_sk.recipes)")
    p.add_argument("--folds", default=None, help="comma-separated folds, e.g. 0,2 (default all)")
    p.add_argument("--members", type=_positive_int, default=None,
                   help="fit only the first N seeded members per fold (default: the preset's); "
                   "a later run with more adds the others")
    p.add_argument("--out", default="matbench_results", help="output folder (default: %(default)s)")
    p.add_argument("--data-home", default=None,
                   help="folder holding matbench_<task>/ (e.g. ../shared/data); jdft2d is "
                   "embedded")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--summarize", action="store_true",
                   help="fit nothing: rewrite the summary, the interval coverage and the "
                   "figure from the finished folds' files in OUT/TASK/PRESET")
    p.set_defaults(func=_cmd_matbench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cgcnn-sk`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.argv = argv
    debug = args.debug or bool(os.environ.get("CGCNN_SK_DEBUG"))
    try:
        params = parse_set_params(extra)
        return int(args.func(args, params) or 0)
    except KeyboardInterrupt:  # the commands that keep partial work say so themselves
        print(f"cgcnn-sk {args.command}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except CLIError as err:
        if debug:
            raise
        print(f"cgcnn-sk {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2 if "unrecognized argument" in str(err) or "needs a value" in str(err) else 1
    except Exception as err:  # data problems surface as ValueError, OSError, ... from the library
        if debug:
            raise
        print(f"cgcnn-sk {args.command}: error: {type(err).__name__}: {_one_line(err)}",
              file=sys.stderr)
        return 1

