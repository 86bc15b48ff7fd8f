#!/usr/bin/env python3
"""Regenerates tests/golden/trec_eval/: inputs and the values trec_eval computes for them.

The per-query values come from trec_eval's own C code through pytrec_eval-terrier
(`pip install pytrec_eval-terrier`, which compiles trec_eval 9.0.8's measures); the summary
line follows trec_eval's rules (counts summed, other measures averaged over the queries in
both files, or over every qrels query with -c, a missing query scoring 0), and the output is
printed in trec_eval's format. This script is a developer tool; tests only read its output.

Cases: a synthetic run built to hit the edge cases (graded and negative judgements, ties,
scores equal only as 32-bit floats, queries missing on either side, a query with no relevant
document, rankings longer than 1000) and the real SciFact BM25 run (top 100) with its qrels.

Usage: make_trec_eval_goldens.py SCIFACT_RUN.trec SCIFACT_QRELS.tsv
"""
import gzip
import os
import random
import sys

import pytrec_eval

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "trec_eval")
MEASURES = ["num_ret", "num_rel", "num_rel_ret", "map", "Rprec", "recip_rank", "P", "recall", "ndcg", "ndcg_cut",
            "map_cut", "success"]
CUTS = [5, 10, 15, 20, 30, 100, 200, 500, 1000]
ORDER = (["num_q", "num_ret", "num_rel", "num_rel_ret", "map", "Rprec", "recip_rank"]
         + [f"P_{k}" for k in CUTS] + [f"recall_{k}" for k in CUTS] + ["ndcg"]
         + [f"ndcg_cut_{k}" for k in CUTS] + [f"map_cut_{k}" for k in CUTS] + [f"success_{k}" for k in (1, 5, 10)])
COUNTS = {"num_q", "num_ret", "num_rel", "num_rel_ret"}


def synthetic():
    rng = random.Random(20261125)
    qrels, run = {}, {}
    for q in range(1, 26):
        qid = f"{300 + q}"
        docs = [f"D{rng.randrange(10**6):06d}-{i}" for i in range(rng.choice([5, 40, 400, 1500]))]
        judged = rng.sample(docs, min(len(docs), rng.randrange(1, 60)))
        if q != 7:  # query 307 is judged in the qrels only
            ranked = docs[:]
            rng.shuffle(ranked)
            scores = {}
            for i, d in enumerate(ranked):
                s = round(rng.uniform(0, 20), rng.choice([1, 2, 6]))  # coarse scores make ties
                if i % 97 == 3 and i > 0:
                    s = scores[ranked[i - 1]] + 1e-9  # equal to its neighbour as a float32
                scores[d] = s
            run[qid] = scores
        if q != 11:  # query 311 is in the run only
            grades = {}
            for d in judged:
                grades[d] = rng.choice([-1, 0, 0, 1, 1, 2, 3]) if q != 13 else rng.choice([0, -1])
            grades[f"UNRETRIEVED-{q}"] = rng.choice([1, 2])  # judged but never retrieved
            qrels[qid] = grades
    return qrels, run


def write_trec(qrels, run, name):
    with open(os.path.join(OUT, f"{name}.qrels"), "w") as f:
        for q in sorted(qrels):
            for d, g in qrels[q].items():
                f.write(f"{q} 0 {d} {g}\n")
    with gzip.open(os.path.join(OUT, f"{name}.run.gz"), "wt") as f:
        for q in sorted(run):
            for rank, (d, s) in enumerate(sorted(run[q].items(), key=lambda x: -x[1]), 1):
                f.write(f"{q} Q0 {d} {rank} {s!r} golden\n")


def read_trec(run_path, qrels_path, depth):
    run, qrels = {}, {}
    with open(run_path) as f:
        for line in f:
            q, _, d, rank, s, _ = line.split()
            if int(rank) <= depth:
                run.setdefault(q, {})[d] = float(s)
    with open(qrels_path) as f:
        for line in f:
            parts = line.rstrip("\r\n").split("\t")
            if parts[0] == "query-id":
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels, run


def fmt(name, qid, v):
    return f"{name:<22}\t{qid}\t{int(round(v))}" if name in COUNTS else f"{name:<22}\t{qid}\t{v:.4f}"


def expected(qrels, run, level, complete, per_query):
    ev = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES), relevance_level=level)
    per = ev.evaluate({q: r for q, r in run.items() if q in qrels})
    lines = []
    if per_query:
        for q in sorted(per):
            lines += [fmt(m, q, per[q][m]) for m in ORDER if m != "num_q"]
    qids = sorted(qrels) if complete else sorted(per)
    for m in ORDER:
        if m == "num_q":
            lines.append(fmt(m, "all", len(qids)))
            continue
        vals = []
        for q in qids:
            if q in per:
                vals.append(per[q][m])
            elif m == "num_rel":  # -c: a missing query still has its relevant documents
                vals.append(sum(1 for g in qrels[q].values() if g >= level))
            else:
                vals.append(0.0)
        total = 0.0
        for v in vals:
            total += v
        lines.append(fmt(m, "all", total if m in COUNTS else (total / len(qids) if qids else 0.0)))
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    os.makedirs(OUT, exist_ok=True)
    cases = []
    q, r = synthetic()
    write_trec(q, r, "synthetic")
    cases.append(("synthetic", q, r))
    q, r = read_trec(sys.argv[1], sys.argv[2], 100)
    write_trec(q, r, "scifact-bm25")
    cases.append(("scifact-bm25", q, r))
    every = [("", 1, False, False), ("-q", 1, False, True), ("-c", 1, True, False), ("-q -c", 1, True, True),
             ("-l 2", 2, False, False), ("-q -c -l 2", 2, True, True)]
    for name, qrels, run in cases:
        # The real run's per-query listing is large: keep one per-query case for it.
        flag_sets = every if name == "synthetic" else [f for f in every if f[0] in ("", "-c", "-l 2", "-q -c")]
        for flags, level, complete, per_query in flag_sets:
            tag = flags.replace("-", "").replace(" ", "") or "default"
            with open(os.path.join(OUT, f"{name}.{tag}.expected"), "w") as f:
                f.write(f"# flags: {flags}\n" + expected(qrels, run, level, complete, per_query))
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
