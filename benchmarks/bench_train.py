"""Training and inference speed of CGCNN: cgcnn_sk against a reference-style implementation.

One command::

    python benchmarks/bench_train.py [--datasets phonons jdft2d] [--limit N] [--epochs 3]

For each Matbench dataset (read from ``<repo>/../shared/data``) the structures are featurized
once (radius 8, M 12, CGCNN atom table; not timed here, see ``bench_featurize.py``), then
three variants train the default-size model (atom_fea_len 64, 3 convs, h_fea_len 128, AdamW,
batch 64, shuffled) with torch on 2 threads, each in its own child process so that its peak
RSS is its own:

* ``reference-style``: written here after the reference CGCNN (txie-93/cgcnn): per-crystal
  tensors prepared once as its cached dataset does (atom features ``(n, 92)``, Gaussian-
  expanded ``(n, M, 41)`` bond features, ``(n, M)`` neighbour indices, missing neighbours
  padded with index 0 at distance radius + 1), batched by concatenation with a Python loop
  over crystals, the gated convolution on the ``(N, M, 2F + G)`` concatenation, mean pooling
  with a Python loop over crystals;
* ``cgcnn_sk loop``: the same training loop with ``collate_graphs`` + ``CGCNN``;
* ``CGCNNRegressor``: the skorch estimator's ``fit`` (no validation split, no early stopping)
  and ``predict``: what a user gets, skorch overhead included.

Reported: training structures/s (median over epochs, after featurization), inference
structures/s (eval mode, batch 64), both per wall-clock second and per CPU second of the
process (the latter is less sensitive to other jobs on a shared machine), and the peak RSS of
the child process, absolute and above the RSS after its imports. The three variants run in
``--repeats`` interleaved rounds; medians are reported. Results go to
``benchmarks/results/bench_train.json`` (merged per dataset, so a run with another
``--datasets`` keeps earlier entries).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = {"phonons": "matbench_phonons", "jdft2d": "matbench_jdft2d"}
VARIANTS = ["reference-style", "cgcnn_sk loop", "CGCNNRegressor"]
#: ``--bound``: the cgcnn_sk loop with every batchnorm removed (a different model), to measure
#: how much of the remaining time the batchnorms take
BOUND_VARIANT = "loop, no batchnorm"
BATCH = 64
THREADS = 2


# ---- data ------------------------------------------------------------------------------------


def load_structures(name: str, limit: int | None):
    from pymatgen.core import Structure

    task = DATASETS[name]
    with gzip.open(DATA / task / f"{task}.json.gz", "rt") as fh:
        doc = json.load(fh)
    rows = doc["data"][:limit] if limit else doc["data"]
    structures = [Structure.from_dict(s) for s, _ in rows]
    y = np.array([v for _, v in rows], dtype=np.float64)
    return structures, y


def featurize(structures):
    from cgcnn_sk.graph._featurizer import CrystalGraphFeaturizer

    return CrystalGraphFeaturizer(radius=8.0, max_num_nbr=12).fit_transform(structures)


# ---- reference-style implementation (for comparison only) -------------------------------------


def reference_style_classes():
    import torch
    from torch import nn

    class RefConvLayer(nn.Module):
        def __init__(self, atom_fea_len, nbr_fea_len):
            super().__init__()
            self.atom_fea_len = atom_fea_len
            self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
            self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
            self.bn2 = nn.BatchNorm1d(atom_fea_len)
            self.softplus = nn.Softplus()

        def forward(self, atom_in, nbr_fea, nbr_idx):
            n, m = nbr_idx.shape
            f = self.atom_fea_len
            total = torch.cat(
                [atom_in.unsqueeze(1).expand(n, m, f), atom_in[nbr_idx, :], nbr_fea], dim=2
            )
            gated = self.fc_full(total)
            gated = self.bn1(gated.view(-1, 2 * f)).view(n, m, 2 * f)
            nbr_filter, nbr_core = gated.chunk(2, dim=2)
            summed = torch.sum(torch.sigmoid(nbr_filter) * self.softplus(nbr_core), dim=1)
            return self.softplus(atom_in + self.bn2(summed))

    class RefNet(nn.Module):
        def __init__(self, orig_atom_fea_len, nbr_fea_len, atom_fea_len=64, n_conv=3,
                     h_fea_len=128):
            super().__init__()
            self.embedding = nn.Linear(orig_atom_fea_len, atom_fea_len)
            self.convs = nn.ModuleList(
                [RefConvLayer(atom_fea_len, nbr_fea_len) for _ in range(n_conv)]
            )
            self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)
            self.softplus = nn.Softplus()
            self.fc_out = nn.Linear(h_fea_len, 1)

        def forward(self, atom_fea, nbr_fea, nbr_idx, crystal_atom_idx):
            atom_fea = self.embedding(atom_fea)
            for conv in self.convs:
                atom_fea = conv(atom_fea, nbr_fea, nbr_idx)
            # per-crystal Python loop, as the reference's pooling
            crys = torch.cat(
                [torch.mean(atom_fea[idx], dim=0, keepdim=True) for idx in crystal_atom_idx]
            )
            crys = self.softplus(self.conv_to_fc(self.softplus(crys)))
            return self.fc_out(crys)

    def prepare(graphs):
        """Per-crystal tensors as the reference dataset returns (and caches) them."""
        from cgcnn_sk.graph._collate import gaussian_expand

        items = []
        for g in graphs:
            radius = g.gaussian[2]
            idx = np.where(g.nbr_index >= 0, g.nbr_index, 0)
            dist = np.where(g.nbr_index >= 0, g.nbr_dist, radius + 1.0)
            fea = gaussian_expand(dist.ravel(), g.gaussian).reshape(*dist.shape, -1)
            items.append(
                (
                    torch.from_numpy(g.atom_fea.copy()),
                    torch.from_numpy(fea),
                    torch.from_numpy(idx.astype(np.int64)),
                )
            )
        return items

    def collate_pool(items):
        """The reference's collate: loop over crystals, offset indices, list of index tensors."""
        atoms, nbrs, idxs, crystal_atom_idx = [], [], [], []
        base = 0
        for atom_fea, nbr_fea, nbr_idx in items:
            n = atom_fea.shape[0]
            atoms.append(atom_fea)
            nbrs.append(nbr_fea)
            idxs.append(nbr_idx + base)
            crystal_atom_idx.append(torch.arange(n) + base)
            base += n
        return torch.cat(atoms), torch.cat(nbrs), torch.cat(idxs), crystal_atom_idx

    return RefNet, prepare, collate_pool


# ---- child process: one variant -------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_variant(variant: str, graph_file: str, epochs: int, threads: int, seed: int = 0) -> dict:
    # Every variant imports what the reference CGCNN imports (torch, scikit-learn metrics,
    # pymatgen); the estimator also needs skorch. RSS is recorded after the imports too.
    import pymatgen.core  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch

    if variant == "CGCNNRegressor":
        import skorch  # noqa: F401
    rss_imports = peak_rss_mb()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    with open(graph_file, "rb") as fh:
        graphs, y = pickle.load(fh)
    graphs = list(graphs)
    n = len(graphs)
    y_std = ((y - y.mean()) / y.std()).astype(np.float32)
    rng = np.random.default_rng(seed)
    epoch_times: list[float] = []
    rss_after_setup = None

    if variant == "CGCNNRegressor":
        from skorch.callbacks import Callback

        from cgcnn_sk import CGCNNRegressor

        class CpuTimer(Callback):
            def on_epoch_begin(self, net, **kwargs):
                self.t0_ = time.process_time()

            def on_epoch_end(self, net, **kwargs):
                net.history.record("cpu_dur", time.process_time() - self.t0_)

        net = CGCNNRegressor(
            max_epochs=epochs, train_split=None, patience=None, random_state=seed,
            callbacks=[("cpu_timer", CpuTimer())],
        )
        rss_after_setup = peak_rss_mb()
        t0 = time.perf_counter()
        net.fit(graphs, y)
        total = time.perf_counter() - t0
        epoch_times = [float(d) for d in net.history[:, "dur"]]
        epoch_cpu = [float(d) for d in net.history[:, "cpu_dur"]]
        t0, c0 = time.perf_counter(), time.process_time()
        net.predict(graphs)
        infer, infer_cpu = time.perf_counter() - t0, time.process_time() - c0
        return dict(
            train_per_s=n / statistics.median(epoch_times),
            train_per_cpu_s=n / statistics.median(epoch_cpu),
            train_per_s_incl_setup=n * epochs / total,
            infer_per_s=n / infer,
            infer_per_cpu_s=n / infer_cpu,
            epoch_s=epoch_times,
            epoch_cpu_s=epoch_cpu,
            peak_rss_mb=peak_rss_mb(),
            rss_imports_mb=rss_imports,
            rss_after_setup_mb=rss_after_setup,
        )

    if variant == "reference-style":
        RefNet, prepare, collate_pool = reference_style_classes()
        items = prepare(graphs)  # the reference caches these per crystal (lru_cache)
        model = RefNet(graphs[0].n_atom_features, graphs[0].n_bond_features)

        def batches(order):
            for s in range(0, n, BATCH):
                idx = order[s : s + BATCH]
                atom, nbr, nbr_idx, cidx = collate_pool([items[i] for i in idx])
                yield (atom, nbr, nbr_idx, cidx), torch.from_numpy(y_std[idx, None])

        def forward(inputs):
            return model(*inputs)
    else:
        from cgcnn_sk.graph._collate import collate_graphs
        from cgcnn_sk.nn._model import CGCNN

        model = CGCNN(graphs[0].n_atom_features, graphs[0].n_bond_features,
                      batchnorm=variant != BOUND_VARIANT)

        def batches(order):
            for s in range(0, n, BATCH):
                idx = order[s : s + BATCH]
                yield collate_graphs([graphs[i] for i in idx]), torch.from_numpy(y_std[idx, None])

        def forward(inputs):
            return model(**inputs)

    rss_after_setup = peak_rss_mb()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    epoch_cpu: list[float] = []
    for _ in range(epochs):
        model.train()
        t0, c0 = time.perf_counter(), time.process_time()
        for inputs, target in batches(rng.permutation(n)):
            opt.zero_grad()
            loss = loss_fn(forward(inputs), target)
            loss.backward()
            opt.step()
        epoch_times.append(time.perf_counter() - t0)
        epoch_cpu.append(time.process_time() - c0)
    model.eval()
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for inputs, _ in batches(np.arange(n)):
            forward(inputs)
    infer, infer_cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(
        train_per_s=n / statistics.median(epoch_times),
        train_per_cpu_s=n / statistics.median(epoch_cpu),
        infer_per_s=n / infer,
        infer_per_cpu_s=n / infer_cpu,
        epoch_s=epoch_times,
        epoch_cpu_s=epoch_cpu,
        peak_rss_mb=peak_rss_mb(),
        rss_imports_mb=rss_imports,
        rss_after_setup_mb=rss_after_setup,
    )


# ---- parent ----------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--limit", type=int, default=None, help="first N structures only")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=THREADS, help="torch threads (2)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of the three children, interleaved; medians reported")
    parser.add_argument("--out", default=str(RESULTS / "bench_train.json"))
    parser.add_argument("--table", action="store_true",
                        help="only print the table of the saved --out JSON")
    parser.add_argument("--bound", action="store_true",
                        help=f"also run {BOUND_VARIANT!r} (the model without batchnorm)")
    parser.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child:
        variant, graph_file, epochs, threads = args._child
        print(json.dumps(run_variant(variant, graph_file, int(epochs), int(threads))))
        return

    out_path = Path(args.out)
    if args.table:
        results = json.loads(out_path.read_text())
        for entry in results.values():
            summarize(entry)
        print_table(results)
        return
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    for name in args.datasets:
        structures, y = load_structures(name, args.limit)
        t0 = time.perf_counter()
        graphs = featurize(structures)
        feat_s = time.perf_counter() - t0
        n_atoms = graphs.n_atoms
        print(f"\n{name}: {len(graphs)} structures, {n_atoms} atoms, featurized in {feat_s:.1f} s")
        with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as fh:
            pickle.dump((graphs, y), fh)
            graph_file = fh.name
        entry = {
            "n_structures": len(graphs),
            "n_atoms": int(n_atoms),
            "limit": args.limit,
            "epochs": args.epochs,
            "featurize_s": feat_s,
            "variants": {},
        }
        variants = VARIANTS + ([BOUND_VARIANT] if args.bound else [])
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        try:
            for rnd in range(args.repeats):  # interleaved, so that load changes hit all alike
                for variant in variants:
                    cmd = [sys.executable, __file__, "--_child", variant, graph_file,
                           str(args.epochs), str(args.threads)]
                    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
                    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                          check=False)
                    if proc.returncode != 0:
                        print(proc.stderr[-2000:])
                        raise RuntimeError(f"variant {variant!r} failed")
                    res = json.loads(proc.stdout.strip().splitlines()[-1])
                    runs[variant].append(res)
                    print(
                        f"  round {rnd + 1} {variant:<16} train {res['train_per_s']:8.1f} /s   "
                        f"infer {res['infer_per_s']:8.1f} /s   "
                        f"peak RSS {res['peak_rss_mb']:5.0f} MB"
                        f"   load {os.getloadavg()[0]:.1f}", flush=True
                    )
        finally:
            os.unlink(graph_file)
        entry["variants"] = {variant: {"runs": rs} for variant, rs in runs.items()}
        summarize(entry)
        entry["command"] = "python benchmarks/bench_train.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        entry["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "torch_threads": args.threads,
                            "load_avg_at_end": list(os.getloadavg())}
        results[name] = entry
        out_path.write_text(json.dumps(results, indent=2))

    print_table(results)
    print(f"\nsaved {out_path}")


def summarize(entry: dict) -> None:
    """Medians and bests over the rounds of each variant, and ratios to the reference."""
    for res in entry["variants"].values():
        rs = res["runs"]
        for key in ("train_per_s", "infer_per_s", "train_per_cpu_s", "infer_per_cpu_s",
                    "rss_imports_mb"):
            res[key] = statistics.median(r[key] for r in rs)
        res["train_per_s_best"] = max(r["train_per_s"] for r in rs)
        res["infer_per_s_best"] = max(r["infer_per_s"] for r in rs)
        res["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rs)
    ref = entry["variants"]["reference-style"]
    for variant in [v for v in entry["variants"] if v != "reference-style"]:
        res = entry["variants"][variant]
        for key in ("train_per_s", "infer_per_s", "train_per_s_best", "infer_per_s_best",
                    "train_per_cpu_s", "infer_per_cpu_s", "peak_rss_mb"):
            res[key + "_x_ref"] = res[key] / ref[key]
        res["rss_above_imports_x_ref"] = (res["peak_rss_mb"] - res["rss_imports_mb"]) / (
            ref["peak_rss_mb"] - ref["rss_imports_mb"]
        )


def print_table(results: dict) -> None:
    """Per variant: wall-clock medians and bests, CPU-time medians, memory; x ref = ratio."""
    cols = [
        ("train/s", "train_per_s"), ("best", "train_per_s_best"),
        ("infer/s", "infer_per_s"), ("best", "infer_per_s_best"),
        ("train/cpu-s", "train_per_cpu_s"), ("infer/cpu-s", "infer_per_cpu_s"),
    ]
    head = f"{'dataset':<8} {'variant':<16}" + "".join(
        f" {label:>11} {'x ref':>5}" for label, _ in cols
    ) + f" {'peak MB':>7} {'x ref':>5} {'>imports':>8} {'x ref':>5}"
    print("\n" + head + "\n" + "-" * len(head))
    for name, entry in results.items():
        ref = entry["variants"]["reference-style"]
        ref_above = ref["peak_rss_mb"] - ref["rss_imports_mb"]
        for variant, res in entry["variants"].items():
            above = res["peak_rss_mb"] - res["rss_imports_mb"]
            text = "".join(
                f" {res.get(key, np.nan):11.1f} {res.get(key, np.nan) / ref.get(key, np.nan):5.2f}"
                for _, key in cols
            )
            print(
                f"{name:<8} {variant:<16}{text} {res['peak_rss_mb']:7.0f} "
                f"{res['peak_rss_mb'] / ref['peak_rss_mb']:5.2f} {above:8.0f} "
                f"{above / ref_above:5.2f}"
            )


if __name__ == "__main__":
    main()
