#!/usr/bin/env python3
"""Independent check of `harness compare`: per-query scores from trec_eval's C code
(pytrec_eval-terrier), scipy.stats.ttest_rel, and a numpy sign-flip randomization test and
paired bootstrap written here. Every qrels query counts (trec_eval -c: a query a run lacks scores
0). The first run is the baseline.

  compare_scipy.py QRELS MEASURE RUN [RUN ...] [--harness-csv compare.csv] [--record FIXTURE.json]

With --harness-csv, prints the agreement with harness's numbers and exits 1 if the t-test
p-values differ by more than 1e-6 or a randomization p-value by more than 4 Monte Carlo standard
errors. With --record, writes the values the Rust tests compare with.
Needs: pytrec_eval-terrier, scipy, numpy (benches/peers/compare_side_by_side.sh installs them).
"""
import argparse
import csv
import json
import math
import sys

import numpy as np
import pytrec_eval
import scipy
from scipy.stats import ttest_rel


def read_trec(path, run):
    import gzip
    opener = gzip.open if path.endswith(".gz") else open
    out = {}
    with opener(path, "rt") as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if run:
                out.setdefault(parts[0], {})[parts[2]] = float(parts[4])
            else:
                out.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("qrels")
    ap.add_argument("measure")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--harness-csv")
    ap.add_argument("--record")
    ap.add_argument("--permutations", type=int, default=200_000)
    args = ap.parse_args()
    qrels = read_trec(args.qrels, run=False)
    name = args.measure.replace(".", "_")
    family = args.measure.split(".")[0]
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {args.measure if "." in args.measure else family})
    queries = sorted(qrels)
    scores = []
    for path in args.runs:
        per_query = evaluator.evaluate(read_trec(path, run=True))
        scores.append(np.array([per_query.get(q, {}).get(name, 0.0) for q in queries]))
    rng = np.random.default_rng(12345)
    results = []
    for path, s in zip(args.runs[1:], scores[1:]):
        d = s - scores[0]
        p_t = float(ttest_rel(s, scores[0]).pvalue)
        signs = rng.choice([-1.0, 1.0], size=(args.permutations, len(d)))
        flipped = np.abs((signs * d).mean(axis=1))
        observed = abs(d.mean())
        p_rand = float((np.sum(flipped >= observed - 1e-12 * max(observed, 1.0)) + 1) / (args.permutations + 1))
        boots = d[rng.integers(0, len(d), size=(20_000, len(d)))].mean(axis=1)
        results.append({
            "run": path, "queries": len(d), "mean_baseline": float(scores[0].mean()), "mean_run": float(s.mean()),
            "mean_diff": float(d.mean()), "ci_low": float(np.percentile(boots, 2.5)), "ci_high": float(np.percentile(boots, 97.5)),
            "p_ttest": p_t, "p_randomization": p_rand, "permutations": args.permutations,
        })
    for r in results:
        print(f"{r['run']}: diff {r['mean_diff']:+.6f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]  "
              f"t-test p {r['p_ttest']:.6g}  randomization p {r['p_randomization']:.6g}")
    if args.record:
        with open(args.record, "w") as f:
            json.dump({"made_by": "benches/peers/compare_scipy.py", "scipy": scipy.__version__, "numpy": np.__version__,
                       "qrels": args.qrels, "measure": args.measure, "baseline": args.runs[0],
                       "per_query_baseline": scores[0].tolist(), "comparisons": results}, f, indent=1)
    if args.harness_csv:
        rows = list(csv.DictReader(open(args.harness_csv)))
        worst_t, worst_sigma, ok = 0.0, 0.0, True
        for r, h in zip(results, rows):
            dt = abs(float(h["p_ttest"]) - r["p_ttest"])
            p = r["p_randomization"]
            se = math.sqrt(max(p * (1 - p), 1e-12) / 10_000)  # harness's default permutations dominate the error
            sigma = abs(float(h["p_randomization"]) - p) / se
            md = abs(float(h["mean_diff"]) - r["mean_diff"])
            worst_t, worst_sigma = max(worst_t, dt), max(worst_sigma, sigma)
            ok &= dt <= 1e-6 and sigma <= 4 and md <= 1e-9
            print(f"  harness {h['run']}: t-test p {float(h['p_ttest']):.6g} (|diff| {dt:.1e}), randomization p "
                  f"{float(h['p_randomization']):.6g} ({sigma:.2f} standard errors), mean diff |diff| {md:.1e}")
        print(f"agreement: {'yes' if ok else 'NO'} (largest t-test p difference {worst_t:.1e}, "
              f"largest randomization difference {worst_sigma:.2f} standard errors)")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
