#!/usr/bin/env python3
"""Builds tests/golden/has_answers/cases.jsonl: passages, answer lists and Pyserini's verdict
(pyserini.eval.evaluate_dpr_retrieval.has_answers with SimpleTokenizer, regex=False).

Dev tool (not run by tests): needs `pip install --no-deps pyserini==1.6.0` and `pip install regex`.
The cases are ours: punctuation, accents (composed and decomposed), case, multi-token answers,
numbers, hyphens, apostrophes, non-Latin scripts, emoji, empty answers.
"""
import json
import os

from pyserini.eval.evaluate_dpr_retrieval import SimpleTokenizer, has_answers

PASSAGES = [
    "The Eiffel Tower is located in Paris, France.",
    "Pelé scored 1,279 goals in 1,363 games.",
    "Pele\u0301 scored over a thousand goals.",
    "The U.S. declared independence on July 4, 1776.",
    "Jean-Paul Sartre wrote 'Being and Nothingness' in 1943.",
    "It's the 3.14159 value of pi, often rounded to 3.14.",
    "São Paulo is Brazil's largest city; Zürich is in Switzerland.",
    "東京は日本の首都です。Tokyo is the capital of Japan.",
    "The answer is forty-two (42), said Deep Thought 🤖.",
    "MIXED case TEXT with AcRoNyMs like NASA and nasa.",
    "Line one\nLine two\tTabbed value: 100%",
    "Mr. O'Neil's dog — a beagle — barked.",
    "",
]

ANSWERS = [
    ["Paris"], ["paris, france"], ["France."], ["London"], ["Pelé"], ["Pele"], ["pelé"], ["1,279"], ["1279"],
    ["U.S."], ["US"], ["July 4, 1776"], ["1776"], ["Jean-Paul Sartre"], ["Jean Paul Sartre"], ["Being and Nothingness"],
    ["3.14"], ["3.14159"], ["pi"], ["São Paulo"], ["Sao Paulo"], ["Zurich"], ["Zürich"], ["東京"], ["日本の首都"],
    ["forty-two"], ["42"], ["(42)"], ["🤖"], ["NASA"], ["AcRoNyMs"], ["100%"], ["Line two"], ["O'Neil"], ["O'Neil's"],
    ["beagle"], ["—"], [""], ["   "], ["tokyo", "london"], ["Deep Thought"], ["thought 🤖"],
]


def main():
    tok = SimpleTokenizer()
    out = []
    for p in PASSAGES:
        for a in ANSWERS:
            out.append({"passage": p, "answers": a, "has_answer": has_answers(p, a, tok, regex=False)})
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(here), "tests", "golden", "has_answers", "cases.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(out)} cases, {sum(r['has_answer'] for r in out)} true")


if __name__ == "__main__":
    main()
