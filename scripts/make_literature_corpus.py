#!/usr/bin/env python3
"""Builds datasets/data/literature/ (the offline literature-search corpus) from the real records in
../shared/data: CLEF TAR 2017 (20 topics with titles/abstracts) and Cohen 2006 (14 drug-class
reviews). Writes records.jsonl.gz (one PubMed record per PMID, pooled over all reviews),
reviews.jsonl (one task per review: topic text, where the text came from, included PMIDs) and
SHA256SUMS. Deterministic: same inputs, same bytes."""
import csv, gzip, hashlib, io, json, os, re, sys

SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
OUT = os.path.join(os.path.dirname(__file__), "..", "datasets", "data", "literature")
os.makedirs(OUT, exist_ok=True)
clef = os.path.join(SHARED, "clef-tar-2017-doctexts")
cohen = os.path.join(SHARED, "cohen-2006", "csv")

records = {}  # pmid -> (title, abstract); first occurrence wins
def add(pmid, title, abstract):
    pmid = pmid.strip()
    if pmid and pmid not in records:
        records[pmid] = (title.strip(), abstract.strip())

def opened(path):
    return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")

reviews = []
for name in sorted(os.listdir(os.path.join(clef, "doctexts"))):
    topic_id = name.replace(".gz", "")
    with opened(os.path.join(clef, "doctexts", name)) as f:
        n = 0
        for line in f:
            d = json.loads(line)
            title, content = d["title"] or "", d["content"] or ""
            abstract = content[len(title):] if content.startswith(title) else content
            add(str(d["id"]), title, abstract); n += 1
    qrels = [p for p in os.listdir(os.path.join(clef, "qrels")) if p.replace(".gz", "") == topic_id][0]
    with opened(os.path.join(clef, "qrels", qrels)) as f:
        included = sorted({parts[2] for parts in (l.split() for l in f) if len(parts) >= 4 and parts[3] == "1"})
    topic = json.load(opened(os.path.join(clef, "topics", topic_id)))
    reviews.append({"id": topic_id, "collection": "clef-tar-2017", "topic": topic["title"].strip(),
                    "topic_source": "CLEF TAR 2017 topic title (the Cochrane review's title)",
                    "included": included, "candidates": n})

def spelled(name):
    fixes = {"ACEInhibitors": "ACE inhibitors", "ADHD": "ADHD", "NSAIDS": "NSAIDs", "Opiods": "opioids"}
    return fixes.get(name, re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower())

for name in sorted(os.listdir(cohen)):
    review = name.replace(".csv.gz", "")
    included, n = [], 0
    with opened(os.path.join(cohen, name)) as f:
        for row in csv.DictReader(f):
            add(row["pubmedID"], row["title"] or "", row["abstract"] or ""); n += 1
            if row["label_included"].strip() == "1":
                included.append(row["pubmedID"].strip())
    reviews.append({"id": "cohen-" + review, "collection": "cohen-2006", "topic": spelled(review),
                    "topic_source": "ours: the drug-class name of the Cohen 2006 file, spelled out (no PICO text ships)",
                    "included": sorted(set(included)), "candidates": n})

buf = io.BytesIO()
with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as g:
    for pmid in sorted(records, key=lambda p: (len(p), p)):
        t, a = records[pmid]
        g.write((json.dumps({"id": pmid, "title": t, "abstract": a}, ensure_ascii=False) + "\n").encode())
open(os.path.join(OUT, "records.jsonl.gz"), "wb").write(buf.getvalue())
with open(os.path.join(OUT, "reviews.jsonl"), "w", encoding="utf-8") as f:
    for r in reviews:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
sums = []
for fn in ["records.jsonl.gz", "reviews.jsonl"]:
    sums.append(f"{hashlib.sha256(open(os.path.join(OUT, fn), 'rb').read()).hexdigest()}  {fn}")
open(os.path.join(OUT, "SHA256SUMS"), "w").write("\n".join(sums) + "\n")
missing = sum(1 for r in reviews for p in r["included"] if p not in records)
print(f"{len(records)} records, {len(reviews)} reviews, {sum(len(r['included']) for r in reviews)} included ids ({missing} without a record)")
