"""Do the quick study's verdicts hold across random states?

Reads finished study folders (each written by ``cgcnn-sk study --random-state S --out DIR``)
and writes one table: per effect and per run, the estimated effect, the posterior probability of
each side (``p_first_lower``: the + level, or the CGCNN, has the lower MAE by more than the
region of practical equivalence) and the verdict, plus whether every run gave the same verdict.

    python benchmarks/study_agreement.py benchmarks/results/study_quick_rs0 \
        benchmarks/results/study_quick_rs1 benchmarks/results/study_quick_rs2 \
        --out benchmarks/results/study_agreement
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from cgcnn_sk.workflows.studies import StudyResult


def rows(folder: Path) -> list[dict]:
    result = StudyResult.load(folder)
    seed = result.meta.get("random_state")
    out = []
    for e in result.effects().itertuples():
        out.append({"random_state": seed, "term": e.term, "effect": e.effect,
                    "p_first_lower": e.p_a, "p_rope": e.p_rope, "p_first_higher": e.p_b,
                    "resolvable": e.resolvable, "verdict": e.verdict})
    b = result.baseline()
    if b is not None:
        verdict = {"a": "CGCNN better", "b": "RF better"}.get(b["verdict"], b["verdict"])
        out.append({"random_state": seed, "term": "CGCNN - RF", "effect": b["mean"],
                    "p_first_lower": b["p_a"], "p_rope": b["p_rope"], "p_first_higher": b["p_b"],
                    "resolvable": b["resolvable"], "verdict": verdict,
                    "wins": f"{b['wins_a']}/{b['n_folds']}"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    table = pd.DataFrame([r for f in args.folders for r in rows(f)])
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "effects.csv", index=False, float_format="%.4g")
    wide = table.pivot(index="term", columns="random_state", values="verdict")
    wide["agree"] = wide.nunique(axis=1).eq(1)
    effect = table.pivot(index="term", columns="random_state", values="effect").round(2)
    with open(args.out / "agreement.md", "w") as fh:
        fh.write("Verdicts per random state (effect: + side minus - side, target units; "
                 "'+' = the + level is better, i.e. lower MAE)\n\n")
        fh.write(wide.to_markdown() + "\n\nEffects\n\n" + effect.to_markdown() + "\n")
    print(wide.to_string())
    print(effect.to_string())


if __name__ == "__main__":
    main()
