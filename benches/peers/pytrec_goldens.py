#!/usr/bin/env python3
"""Per-query cross-check of the trec_eval goldens with pytrec_eval (trec_eval's C measures
compiled into Python): every per-query line of every `-q` golden is recomputed and compared at
the printed 4 decimals. Prints the agreement count; exits 1 on any difference.

Usage: PYTHONPATH=.deps/peer-pytrec python3 benches/peers/pytrec_goldens.py
(pytrec_eval-terrier 0.5.11 from PyPI, installed there by score_side_by_side.sh)
Measured 2026-11-29: 16,974 per-query lines agree, 0 differ.
"""
import gzip
import os
import sys

import pytrec_eval

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "trec_eval")
FAMILIES = {"num_ret", "num_rel", "num_rel_ret", "map", "Rprec", "recip_rank", "P", "recall", "ndcg", "ndcg_cut",
            "map_cut", "success"}
COUNTS = {"num_ret", "num_rel", "num_rel_ret"}


def load(stem):
    qrels, run = {}, {}
    with open(os.path.join(GOLDEN, f"{stem}.qrels")) as f:
        for line in f:
            q, _, d, g = line.split()
            qrels.setdefault(q, {})[d] = int(g)
    with gzip.open(os.path.join(GOLDEN, f"{stem}.run.gz"), "rt") as f:
        for line in f:
            q, _, d, _, s, _ = line.split()
            run.setdefault(q, {})[d] = float(s)
    return qrels, run


def main():
    agree = differ = 0
    for name in sorted(os.listdir(GOLDEN)):
        if not name.endswith(".expected"):
            continue
        with open(os.path.join(GOLDEN, name)) as f:
            flags = f.readline().removeprefix("# flags:").split()
            lines = [l.rstrip("\n").split("\t") for l in f]
        if "-q" not in flags:
            continue
        level = int(flags[flags.index("-l") + 1]) if "-l" in flags else 1
        qrels, run = load(name.split(".")[0])
        per = pytrec_eval.RelevanceEvaluator(qrels, FAMILIES, relevance_level=level).evaluate(
            {q: r for q, r in run.items() if q in qrels})
        for measure, qid, value in lines:
            if qid == "all":
                continue
            v = per[qid][measure.strip()]
            mine = str(int(round(v))) if measure.strip() in COUNTS else f"{v:.4f}"
            if mine == value:
                agree += 1
            else:
                differ += 1
                print(f"{name}: {measure.strip()} {qid}: trec_eval {value}, pytrec_eval {mine}")
    print(f"per-query lines: {agree} agree, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
