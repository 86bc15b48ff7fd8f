#!/usr/bin/env python3
"""Side-by-side peer for benches/bm25.rs: BM25S (pip install bm25s PyStemmer numpy scipy) on
the same vendored SciFact corpus and the same 300 test queries, top 1000, one thread, with
Lucene's BM25 variant at k1=0.9, b=0.4. Prints queries/s and indexing time, so the ratio to
`cargo bench --bench bm25` can be read on the same machine. Not part of the test suite.

Usage: python bm25s_scifact.py [REPO_ROOT]
"""
import gzip
import json
import os
import sys
import time

import bm25s
import Stemmer

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
data = os.path.join(root, "datasets", "data", "scifact")
with gzip.open(os.path.join(data, "corpus.jsonl.gz"), "rt") as f:
    docs = [json.loads(line) for line in f]
texts = [(d.get("title", "") + " " + d.get("text", "")).strip() for d in docs]
queries = {}
with open(os.path.join(data, "queries.jsonl")) as f:
    for line in f:
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
test_ids = []
with open(os.path.join(data, "qrels", "test.tsv")) as f:
    for line in f:
        qid = line.split("\t")[0]
        if qid != "query-id" and qid not in test_ids:
            test_ids.append(qid)

stemmer = Stemmer.Stemmer("english")
start = time.perf_counter()
corpus_tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
retriever = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
retriever.index(corpus_tokens, show_progress=False)
index_s = time.perf_counter() - start

query_texts = [queries[q] for q in test_ids]
best = None
for _ in range(5):
    start = time.perf_counter()
    q_tokens = bm25s.tokenize(query_texts, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever.retrieve(q_tokens, k=1000, n_threads=1, show_progress=False)
    elapsed = time.perf_counter() - start
    best = elapsed if best is None else min(best, elapsed)
print(f"bm25s {bm25s.__version__}: index {index_s:.3f}s; search {len(query_texts) / best:.0f} queries/s "
      f"(300 SciFact test queries, top 1000, 1 thread, best of 5, tokenisation included)")
