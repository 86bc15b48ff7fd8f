"""Writes the train and dev halves of squad-paragraphs by article: the 48 articles in the
order of the official dev file (the corpus order), even positions train, odd positions dev.
Questions never cross halves, so a policy trained on `train` is evaluated on unseen articles
(`dev`). `test` stays all 10,570 questions (the number comparable with other systems).

    python3 scripts/make_squad_splits.py datasets/data/squad-paragraphs
"""
import gzip
import json
import sys
from pathlib import Path

root = Path(sys.argv[1])
articles = []
article_of = {}
with gzip.open(root / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
    for line in f:
        doc = json.loads(line)
        article = doc["metadata"]["article"]
        if article not in articles:
            articles.append(article)
        article_of[doc["_id"]] = article
half = {a: ("train" if i % 2 == 0 else "dev") for i, a in enumerate(articles)}
lines = (root / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
header, rows = lines[0], lines[1:]
out = {"train": [header], "dev": [header]}
for row in rows:
    qid, doc, grade = row.split("\t")
    out[half[article_of[doc]]].append(row)
for name, kept in out.items():
    path = root / "qrels" / f"{name}.tsv"
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(kept) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"{path}: {len(kept) - 1} questions on {sum(1 for a in articles if half[a] == name)} articles")
