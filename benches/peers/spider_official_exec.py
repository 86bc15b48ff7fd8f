#!/usr/bin/env python3
"""Peer for the SQL side-by-side: the official Spider evaluator's execution match over a gold and a
prediction file in its own layout, timed end to end.

It imports `eval_exec_match` from a checkout of taoyds/test-suite-sql-eval (its exec_eval.py and
parse.py; needs `pip install sqlparse tqdm`) and calls it per pair exactly as that repository's
evaluation.py does with `--etype exec` (defaults: no value plugging, DISTINCT removed). It leaves out
evaluation.py's SQL parsing for hardness levels, which only adds time to the peer, and skips pairs
whose database file is missing (the official script would stop on them).

Usage: spider_official_exec.py TSUITE_DIR GOLD PRED DB_DIR
Prints: pairs=<n> correct=<k> seconds=<s>
"""
import os
import sys
import time


def main():
    tsuite, gold, pred, db_dir = sys.argv[1:5]
    sys.path.insert(0, tsuite)
    from exec_eval import eval_exec_match

    golds = [l.strip().split("\t") for l in open(gold) if l.strip()]
    preds = [l.strip().split("\t")[0] for l in open(pred) if l.strip()]
    assert len(golds) == len(preds), (len(golds), len(preds))
    start = time.perf_counter()
    pairs = correct = 0
    for (g, db_id), p in zip(golds, preds):
        db = os.path.join(db_dir, db_id, db_id + ".sqlite")
        if not os.path.exists(db):
            continue
        pairs += 1
        correct += eval_exec_match(db=db, p_str=p, g_str=g, plug_value=False, keep_distinct=False,
                                   progress_bar_for_each_datapoint=False)
    seconds = time.perf_counter() - start
    print(f"pairs={pairs} correct={correct} seconds={seconds:.3f}")


if __name__ == "__main__":
    main()
