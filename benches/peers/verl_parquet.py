"""Reads parquet files written by `harness export verl` with pyarrow, the way verl's
RLHFDataset and reward manager use them, and checks each row.

verl reads `data.train_files` into a table and, per row, takes `prompt` as a list of chat
messages (role, content) for `tokenizer.apply_chat_template`, `data_source` to route the
reward, `reward_model["ground_truth"]` and `extra_info` to pass to the reward function.
Usage: PYTHONPATH=<pyarrow> python3 verl_parquet.py FILE.parquet [FILE.parquet ...]
Prints one line per file: rows, data_source, ability, and the checks passed.
"""
import sys

import pyarrow.parquet as pq

EXPECTED_COLUMNS = ["data_source", "prompt", "ability", "reward_model", "extra_info"]


def check(path):
    table = pq.read_table(path)
    assert table.column_names == EXPECTED_COLUMNS, table.column_names
    rows = table.to_pylist()
    assert rows, "no rows"
    sources = {r["data_source"] for r in rows}
    abilities = {r["ability"] for r in rows}
    assert len(sources) == 1 and len(abilities) == 1, (sources, abilities)
    for i, row in enumerate(rows):
        messages = row["prompt"]
        assert [m["role"] for m in messages] == ["system", "user"], messages
        assert all(isinstance(m["content"], str) and m["content"] for m in messages)
        reward = row["reward_model"]
        assert reward["style"] == "rule"
        truth = reward["ground_truth"]
        assert isinstance(truth["target"], list) and truth["target"], truth
        assert all(isinstance(t, str) for t in truth["target"])
        assert isinstance(truth["score"], list)
        extra = row["extra_info"]
        assert extra["index"] == i, (extra["index"], i)
        assert isinstance(extra["split"], str) and isinstance(extra["reasoning"], bool)
        assert isinstance(extra["question"], str) and extra["question"], extra
        if abilities == {"sql_generation"}:
            assert extra["question"] in messages[1]["content"], extra["question"]
            assert extra["db_id"] and truth["score"] == [], extra
        else:
            assert len(truth["score"]) == len(truth["target"]), truth
    print(f"{path}: {len(rows)} rows, data_source {sources.pop()}, ability {abilities.pop()}: every row as verl reads it")


for p in sys.argv[1:]:
    check(p)
