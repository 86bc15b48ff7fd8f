#!/usr/bin/env python3
"""Regenerates tests/golden/trec_eval/: inputs and what the real trec_eval prints for them.

trec_eval is built from its source at the pinned release (v9.0.8, commit d95ca64e; its binary
prints "version 9.0.7": the release did not bump its Makefile) and run on every case; its
standard output is the golden, byte for byte, after a first line `# flags: ...` that the test
reads. pytrec_eval stays the per-query cross-check in benches/peers, not the source of truth.

Source, in order: --source DIR (a trec_eval checkout or unpacked archive), else a shallow git
clone of https://github.com/usnistgov/trec_eval at tag v9.0.8. Either way the tree must hash to
TREE_SHA256 below (sha256 over sorted "path NUL sha256(content) LF" of its files, .git left out).

Cases: a synthetic run built to hit the edge cases (graded and negative judgements, ties,
scores equal only as 32-bit floats, queries missing on either side, a query with no relevant
document, rankings longer than 1000) and the real SciFact BM25 run (top 100) with its qrels.
Without SCIFACT_RUN and SCIFACT_QRELS the committed scifact-bm25 inputs are reused, so running
the script with no arguments must leave the folder unchanged (`git status` clean).

Usage: make_trec_eval_goldens.py [--source DIR] [SCIFACT_RUN.trec SCIFACT_QRELS.tsv]
"""
import argparse
import gzip
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "trec_eval")
REPO = "https://github.com/usnistgov/trec_eval"
TAG = "v9.0.8"
TREE_SHA256 = "427c280ffa1f79ed9c16fc4acdd6992940c136d9b8f159fd57b8420e000b9776"
CUTS = "5,10,15,20,30,100,200,500,1000"
# The measures harness score prints by default, in trec_eval's own print order.
MEASURES = ["num_q", "num_ret", "num_rel", "num_rel_ret", "map", "Rprec", "recip_rank", f"P.{CUTS}",
            f"recall.{CUTS}", "ndcg", f"ndcg_cut.{CUTS}", f"map_cut.{CUTS}", "success.1,5,10"]
FLAG_SETS = ["", "-q", "-c", "-q -c", "-l 2", "-q -c -l 2"]
# The real run's per-query listing is large: one per-query case for it.
SCIFACT_FLAG_SETS = ["", "-c", "-l 2", "-q -c"]


def tree_sha256(root):
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                entries.append((os.path.relpath(path, root), hashlib.sha256(f.read()).hexdigest()))
    h = hashlib.sha256()
    for rel, digest in sorted(entries):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def build_trec_eval(source, work):
    src = os.path.join(work, "trec_eval")
    if source:
        shutil.copytree(source, src, ignore=shutil.ignore_patterns(".git"))
    else:
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", TAG, REPO, src], check=True)
    got = tree_sha256(src)
    if got != TREE_SHA256:
        raise SystemExit(f"trec_eval source tree hashes to {got}, expected {TREE_SHA256} ({TAG}): not the pinned release")
    subprocess.run(["make", "-s", "-C", src], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(src, "trec_eval")


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


def write_inputs(qrels, run, name):
    with open(os.path.join(OUT, f"{name}.qrels"), "w") as f:
        for q in sorted(qrels):
            for d, g in qrels[q].items():
                f.write(f"{q} 0 {d} {g}\n")
    # mtime 0 and no file name in the header: the same inputs give the same bytes.
    with open(os.path.join(OUT, f"{name}.run.gz"), "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            for q in sorted(run):
                for rank, (d, s) in enumerate(sorted(run[q].items(), key=lambda x: -x[1]), 1):
                    gz.write(f"{q} Q0 {d} {rank} {s!r} golden\n".encode())


def read_scifact(run_path, qrels_path, depth):
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


def run_trec_eval(binary, flags, name, work):
    run_file = os.path.join(work, f"{name}.run")
    if not os.path.exists(run_file):
        with gzip.open(os.path.join(OUT, f"{name}.run.gz"), "rb") as src, open(run_file, "wb") as dst:
            shutil.copyfileobj(src, dst)
    args = [binary] + flags.split() + [a for m in MEASURES for a in ("-m", m)]
    args += [os.path.join(OUT, f"{name}.qrels"), run_file]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="a trec_eval v9.0.8 source folder (default: git clone)")
    parser.add_argument("scifact", nargs="*", help="SCIFACT_RUN.trec SCIFACT_QRELS.tsv")
    args = parser.parse_args()
    if len(args.scifact) not in (0, 2):
        parser.error("give both SCIFACT_RUN and SCIFACT_QRELS, or neither")
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        binary = build_trec_eval(args.source, work)
        q, r = synthetic()
        write_inputs(q, r, "synthetic")
        if args.scifact:
            q, r = read_scifact(args.scifact[0], args.scifact[1], 100)
            write_inputs(q, r, "scifact-bm25")
        for name, flag_sets in (("synthetic", FLAG_SETS), ("scifact-bm25", SCIFACT_FLAG_SETS)):
            for flags in flag_sets:
                tag = flags.replace("-", "").replace(" ", "") or "default"
                text = f"# flags: {flags}\n" + run_trec_eval(binary, flags, name, work)
                with open(os.path.join(OUT, f"{name}.{tag}.expected"), "w") as f:
                    f.write(text)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    sys.exit(main())
