"""Inner validation of the accuracy levers: descriptors as global inputs, weight averaging,
a warm-up, gradient clipping, a wider Gaussian basis, more neighbours, the pooling, a log target.

Each lever is the ``"study"`` recipe (the default net, a 60-epoch cosine) plus the lever,
scored against the plain ``"study"`` recipe on the same inner folds with the same seed (a
paired comparison): a 3-fold cross-validation over the *training* rows of official Matbench
fold 0 (its test rows are never read). Every finished (candidate, seed, inner fold) is appended
to ``benchmarks/results/accuracy/inner_<task>.jsonl`` at once; a rerun skips what is there.
At the end the paired differences to ``study`` are printed.

    nice -n 15 python benchmarks/accuracy_inner.py --task jdft2d --candidates study magpie
    python benchmarks/accuracy_inner.py --task jdft2d --max-epochs 1 --max-rows 60 \\
        --out /tmp/inner_smoke.jsonl          # seconds: a smoke test of the script
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from skorch.callbacks import GradientNormClipping, LRScheduler

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.datasets import load_jdft2d, load_matbench, matbench_folds
from cgcnn_sk.descriptors import MatminerDescriptors
from cgcnn_sk.estimators import WeightAveraging
from cgcnn_sk.recipes import get_recipe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "accuracy"


class _WarmupRegressor(CGCNNRegressor):
    """The regressor with a linear warm-up over the first 10 % of epochs, then the cosine."""

    def get_default_callbacks(self):
        epochs, warm = max(self.max_epochs, 1), max(self.max_epochs // 10, 1)

        def factor(epoch: int) -> float:  # multiplies lr; LambdaLR steps once per epoch
            if epoch < warm:
                return (epoch + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (epoch - warm) / max(epochs - warm, 1)))

        scheduler = LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR, lr_lambda=factor)
        return [(name, scheduler if name == "lr_scheduler" else cb)
                for name, cb in super().get_default_callbacks()]


#: name -> (descriptors parameters or None, extra pipeline parameters)
CANDIDATES = {
    "study": (None, {}),
    "magpie": ({"kind": "magpie"}, {"graph__global_features": "all"}),
    "magpie_pc16": ({"kind": "magpie", "n_components": 16}, {"graph__global_features": "all"}),
    "ema": (None, {"cgcnn__callbacks": [("averaging", WeightAveraging(decay=0.999))]}),
    "ema_0.99": (None, {"cgcnn__callbacks": [("averaging", WeightAveraging(decay=0.99))]}),
    "swa": (None, {"cgcnn__callbacks": [("averaging", WeightAveraging("swa", start=0.75))]}),
    "warmup": (None, {}),  # _WarmupRegressor: see make_model
    "clip": (None, {"cgcnn__callbacks": [("clip", GradientNormClipping(1.0))]}),
    "step_0.4": (None, {"graph__step": 0.4}),  # Gaussians twice as wide (and half as many)
    **{f"m_{m}": (None, {"graph__max_num_nbr": m}) for m in (6, 8, 16, 20, 24, 32, 48, 64)},
    **{f"m_{m}_r10": (None, {"graph__max_num_nbr": m, "graph__radius": 10.0}) for m in (32, 48)},
    "magpie_m_20": ({"kind": "magpie"}, {"graph__global_features": "all",
                                         "graph__max_num_nbr": 20}),
    # Levers the recipe search measured on jdft2d only, for the other tasks.
    "conv5": (None, {"cgcnn__module__n_conv": 5}),
    "wide": (None, {"cgcnn__module__atom_fea_len": 128, "cgcnn__module__h_fea_len": 256}),
    "bs32": (None, {"cgcnn__batch_size": 32}),
    "step_0.1": (None, {"graph__step": 0.1}),  # Gaussians half as wide (and twice as many)
    **{f"e{e}": (None, {"cgcnn__max_epochs": e}) for e in (300, 600, 1200)},
    # Levers on top of M = 48 (paired against m_48): the schedule, depth, batch, width.
    **{f"m_48_e{e}": (None, {"graph__max_num_nbr": 48, "cgcnn__max_epochs": e})
       for e in (300, 600)},
    "m_48_conv5": (None, {"graph__max_num_nbr": 48, "cgcnn__module__n_conv": 5}),
    "m_48_bs32": (None, {"graph__max_num_nbr": 48, "cgcnn__batch_size": 32}),
    "m_48_wide": (None, {"graph__max_num_nbr": 48, "cgcnn__module__atom_fea_len": 128,
                         "cgcnn__module__h_fea_len": 256}),
}
# The pooling and a log target, alone and on top of the other tasks' best settings: phonons'
# target is the highest phonon peak (a maximum over local modes, sqrt(stiffness / mass): a
# product, additive on a log scale); jdft2d's exfoliation energies are heavy-tailed.
for _base, _params in {"": {}, "m_48_": {"graph__max_num_nbr": 48},
                       "e300_": {"cgcnn__max_epochs": 300},
                       "e600_": {"cgcnn__max_epochs": 600}}.items():
    CANDIDATES[f"{_base}pool_max"] = (None, {**_params, "cgcnn__module__pooling": "max"})
    CANDIDATES[f"{_base}log"] = (None, dict(_params))
    CANDIDATES[f"{_base}pool_max_log"] = (None, {**_params, "cgcnn__module__pooling": "max"})
    CANDIDATES[f"{_base}magpie_log"] = ({"kind": "magpie"},
                                        {**_params, "graph__global_features": "all"})
# The head on every atom, then the maximum of the atoms' outputs (readout="atom"): phonons'
# highest peak as the highest of the atoms' own frequencies.
for _base, _params in {"": {}, "e600_": {"cgcnn__max_epochs": 600}}.items():
    CANDIDATES[f"{_base}pool_max_atom"] = (None, {**_params, "cgcnn__module__pooling": "max",
                                                  "cgcnn__module__readout": "atom"})
CANDIDATES["m_48_magpie"] = ({"kind": "magpie"}, {"graph__max_num_nbr": 48,
                                                  "graph__global_features": "all"})
CANDIDATES["e300_magpie"] = ({"kind": "magpie"}, {"cgcnn__max_epochs": 300,
                                                  "graph__global_features": "all"})
# Weight averaging, a warm-up and clipping on top of each task's validated setting (phonons'
# max pooling, jdft2d's M = 48); they had been measured at the plain ``study`` setting only.
for _base, _params in {"pool_max_": {"cgcnn__module__pooling": "max"},
                       "m_48_": {"graph__max_num_nbr": 48}}.items():
    for _lever in ("ema_0.99", "swa", "warmup", "clip"):
        CANDIDATES[f"{_base}{_lever}"] = (CANDIDATES[_lever][0],
                                          {**_params, **CANDIDATES[_lever][1]})


def make_model(name: str, seed: int, max_epochs: int | None) -> Pipeline:
    """The ``study`` recipe's pipeline with candidate ``name``'s lever."""
    descriptors, extra = CANDIDATES[name]
    steps = [("graph", CrystalGraphFeaturizer()),
             ("cgcnn", (_WarmupRegressor if name.endswith("warmup") else CGCNNRegressor)(
                 random_state=seed, verbose=0))]
    if descriptors is not None:
        steps.insert(0, ("descriptors", MatminerDescriptors(**descriptors)))
    params = {**get_recipe("study").pipeline_params(), **extra}
    if max_epochs is not None:
        params["cgcnn__max_epochs"] = max_epochs
    return Pipeline(steps).set_params(**params)


def paired_summary(records: list[dict]) -> list[str]:
    """Per candidate: mean inner MAE, and its paired difference to ``study`` (same fold, seed)."""
    by = {(r["candidate"], r["seed"], r["inner_fold"]): r["mae"] for r in records}
    lines = []
    for name in dict.fromkeys(r["candidate"] for r in records):
        keys = [k[1:] for k in by if k[0] == name]
        mae = np.mean([by[(name, *k)] for k in keys])
        line = f"{name:12s} inner MAE {mae:.4g} over {len(keys)} fits"
        paired = [by[(name, *k)] - by[("study", *k)] for k in keys if ("study", *k) in by]
        if name != "study" and paired:
            line += (f"; minus study, paired: {np.mean(paired):+.4g} (per fit: "
                     + ", ".join(f"{d:+.3g}" for d in paired) + ")")
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="jdft2d")
    parser.add_argument("--candidates", nargs="*", default=["study", "magpie", "ema"],
                        choices=list(CANDIDATES))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit")
    parser.add_argument("--log-target", action="store_true",
                        help="fit log(y), predict exp (the recipe's dielectric target)")
    parser.add_argument("--max-epochs", type=int, default=None, help="smoke tests only")
    parser.add_argument("--max-rows", type=int, default=None, help="smoke tests only")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--save-predictions", type=Path, default=None, metavar="DIR",
                        help="also write each fit's validation predictions to "
                        "DIR/<candidate>_seed<s>_fold<k>.csv (row, target, prediction)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    structures, y = (load_jdft2d() if args.task == "jdft2d"
                     else load_matbench(args.task, data_home=DATA))
    train = matbench_folds(len(y))[0][0][: args.max_rows]  # fold 0's training rows only
    structures = [structures[i] for i in train]
    y = np.asarray(y, dtype=float)[train]
    out = args.out or OUT / f"inner_{args.task}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    records = [r for r in records if r.get("log_target", False) == args.log_target]
    done = {(r["candidate"], r["seed"], r["inner_fold"]) for r in records}
    inner = list(KFold(args.inner, shuffle=True, random_state=0).split(y))
    for seed in args.seeds:
        for k, (tr, va) in enumerate(inner):
            for name in args.candidates:
                if (name, seed, k) in done:
                    continue
                model = make_model(name, seed, args.max_epochs)
                log = args.log_target or name == "log" or name.endswith("_log")
                if log:
                    model = TransformedTargetRegressor(model, func=np.log, inverse_func=np.exp)
                t0 = time.perf_counter()
                model.fit([structures[i] for i in tr], y[tr])
                pred = model.predict([structures[i] for i in va])
                net = (model.regressor_ if log else model)[-1]
                rec = {
                    "task": args.task, "candidate": name, "seed": seed, "inner_fold": k,
                    "mae": float(np.mean(np.abs(pred - y[va]))),
                    "epochs": len(net.history), "n_global": int(net.n_global_),
                    "log_target": args.log_target, "candidate_log": log,
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "n_train": len(tr), "n_valid": len(va),
                    "torch_threads": torch.get_num_threads(),
                }
                if args.save_predictions is not None:
                    args.save_predictions.mkdir(parents=True, exist_ok=True)
                    np.savetxt(args.save_predictions / f"{name}_seed{seed}_fold{k}.csv",
                               np.column_stack([va, y[va], pred]), delimiter=",",
                               header="row,target,prediction", comments="", fmt="%.10g")
                with out.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)
                records.append(rec)
    print("\n".join(paired_summary(records)))


if __name__ == "__main__":
    main()
