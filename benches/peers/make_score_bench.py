#!/usr/bin/env python3
"""Writes a run and qrels of the MS MARCO passage dev shape for the scoring benchmark:
6,980 queries x 1,000 retrieved passages (about 7 M lines), qrels with 1.07 relevant passages
per query on average, some of them retrieved at random ranks. Seeded: the same files every time.

Usage: make_score_bench.py OUT_DIR [QUERIES=6980] [DEPTH=1000]
"""
import os
import random
import sys

out = sys.argv[1]
queries = int(sys.argv[2]) if len(sys.argv) > 2 else 6980
depth = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
rng = random.Random(16)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "qrels.txt"), "w") as qrels, open(os.path.join(out, "run.trec"), "w") as run:
    for q in range(queries):
        qid = str(1_000_000 + q * 37)
        relevant = [str(rng.randrange(8_841_823)) for _ in range(1 if rng.random() < 0.94 else rng.choice([2, 3, 4]))]
        for d in relevant:
            qrels.write(f"{qid} 0 {d} 1\n")
        docs = set()
        while len(docs) < depth:
            docs.add(str(rng.randrange(8_841_823)))
        docs = list(docs)
        for d in relevant:
            if rng.random() < 0.6:
                docs[rng.randrange(depth)] = d
        docs = list(dict.fromkeys(docs))
        score = 40.0
        lines = []
        for rank, d in enumerate(docs, 1):
            score -= rng.random() * 0.03
            lines.append(f"{qid} Q0 {d} {rank} {score:.4f} bm25\n")
        run.write("".join(lines))
