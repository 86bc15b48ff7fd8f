#!/usr/bin/env python3
"""Builds tests/golden/spider_exec/: deliberately varied predictions for Spider dev and the verdicts
of the two reference implementations of execution accuracy on them.

  * test-suite: the official evaluator's `eval_exec_match` (taoyds/test-suite-sql-eval, exec_eval.py)
    with its defaults (no value plugging, DISTINCT removed), imported from --tsuite-dir.
  * dr: DeepRetrieval's rule, `set(pred_rows) == set(gold_rows)` with Python's default sqlite3
    text factory; any exception is wrong.

Dev tool (not run by tests): needs `pip install sqlparse tqdm` and a checkout of
test-suite-sql-eval. Usage:
  python3 scripts/make_spider_exec_goldens.py --tsuite-dir /path/to/test-suite-sql-eval
"""
import argparse
import os
import re
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPIDER = os.path.join(ROOT, "datasets", "data", "spider")
OUT = os.path.join(ROOT, "tests", "golden", "spider_exec")


def variants(gold):
    """(kind, sql) pairs derived from one gold query; only those that apply."""
    out = [("identity", gold)]
    m = re.match(r"(?is)^\s*select\s+(distinct\s+)?(.*?)\s+from\s", gold)
    if m and "(" not in m.group(2) and "," in m.group(2):
        cols = [c.strip() for c in m.group(2).split(",")]
        permuted = ", ".join(cols[1:] + cols[:1])
        out.append(("permute-columns", gold[: m.start(2)] + permuted + gold[m.end(2):]))
    if len(re.findall(r"(?i)\border\s+by\b", gold)) == 1 and not re.search(r"(?is)order\s+by.*\bselect\b", gold):
        out.append(("drop-order-by", re.sub(r"(?is)\s+order\s+by\s+.*?(?=\s+limit\b|$)", "", gold)))
        if re.search(r"(?i)\bdesc\b", gold):
            out.append(("flip-order", re.sub(r"(?i)\bdesc\b", "ASC", gold)))
        elif re.search(r"(?i)\basc\b", gold):
            out.append(("flip-order", re.sub(r"(?i)\basc\b", "DESC", gold)))
        else:
            out.append(("flip-order", re.sub(r"(?is)(order\s+by\s+[^\s,]+)", r"\1 DESC", gold, count=1)))
    if re.search(r"(?i)\bdistinct\b", gold):
        out.append(("drop-distinct", re.sub(r"(?i)\bdistinct\s+", "", gold, count=1)))
    else:
        out.append(("add-distinct", re.sub(r"(?i)^\s*select\s+", "SELECT DISTINCT ", gold, count=1)))
    lim = re.search(r"(?i)\blimit\s+(\d+)", gold)
    if lim:
        out.append(("change-limit", gold[: lim.start(1)] + str(int(lim.group(1)) + 2) + gold[lim.end(1):]))
    else:
        out.append(("add-limit", gold.rstrip().rstrip(";") + " LIMIT 1"))
    s = re.search(r"'([^']*)'|\"([^\"]*)\"", gold)
    if s:
        out.append(("wrong-literal", gold[: s.start()] + "'zz" + (s.group(1) or s.group(2) or "") + "'" + gold[s.end():]))
    else:
        n = re.search(r"(?<![\w.])(\d+)(?![\w.])", gold[gold.lower().find(" from "):] if " from " in gold.lower() else "")
        if n:
            base = gold.lower().find(" from ")
            out.append(("wrong-literal", gold[: base + n.start(1)] + str(int(n.group(1)) + 1) + gold[base + n.end(1):]))
    out.append(("syntax-error", re.sub(r"(?i)^\s*select", "SELEC", gold, count=1)))
    inner = gold.rstrip().rstrip(";")
    out.append(("duplicate-rows", f"SELECT * FROM ({inner}) UNION ALL SELECT * FROM ({inner})"))
    if re.search(r"(?i)count\(\*\)", gold) and not re.search(r"(?i)\bselect\b.*\bselect\b", gold):
        out.append(("count-as-real", re.sub(r"(?i)count\(\*\)", "count(*) * 1.0", gold, count=1)))
    return out


def dr_verdict(db, gold, pred):
    def run(sql):
        conn = sqlite3.connect(db)
        try:
            return conn.cursor().execute(sql).fetchall()
        finally:
            conn.close()
    try:
        g = run(gold)
        p = run(pred)
    except Exception:
        return 0
    return int(set(p) == set(g))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tsuite-dir", required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.tsuite_dir)
    from exec_eval import eval_exec_match  # the official implementation

    golds = [l.rstrip("\n").split("\t") for l in open(os.path.join(SPIDER, "dev_gold.sql")) if l.strip()]
    gold_lines, pred_lines, expected = [], [], []
    for i, (g, db_id) in enumerate(golds, start=1):
        db = os.path.join(SPIDER, "database", db_id, db_id + ".sqlite")
        if not os.path.exists(db):
            continue
        for kind, p in variants(g):
            if "\n" in p or "\t" in p:
                continue
            ts = eval_exec_match(db=db, p_str=p, g_str=g, plug_value=False, keep_distinct=False,
                                 progress_bar_for_each_datapoint=False)
            dr = dr_verdict(db, g, p)
            gold_lines.append(f"{g}\t{db_id}")
            pred_lines.append(p)
            expected.append(f"{len(expected) + 1}\t{i}\t{kind}\t{ts}\t{dr}")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "gold.sql"), "w") as f:
        f.write("\n".join(gold_lines) + "\n")
    with open(os.path.join(OUT, "pred.sql"), "w") as f:
        f.write("\n".join(pred_lines) + "\n")
    with open(os.path.join(OUT, "expected.tsv"), "w") as f:
        f.write("# case\tdev_question\tvariant\ttest_suite\tdr\n")
        f.write("\n".join(expected) + "\n")
    print(f"{len(expected)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
