#!/usr/bin/env python3
"""Python peer of `harness embed`: same model, tokenizer, batch size and threads (python
onnxruntime 1.31.1 + tokenizers, mean pooling, L2 norm), texts encoded in file order in batches
as they come. Reads texts (one per line) from FILE, prints texts/s, and writes the vectors as
JSON lines to OUT when given.
Usage: onnxruntime_encode.py MODEL_DIR TOKENIZER_JSON FILE BATCH THREADS [OUT]"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

model_dir, tokenizer_json, path, batch, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
out_path = sys.argv[6] if len(sys.argv) > 6 else None
texts = [line.rstrip("\n") for line in open(path)]
tok = Tokenizer.from_file(tokenizer_json)
tok.enable_padding()
tok.enable_truncation(256)
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(model_dir + "/model.onnx", options, providers=["CPUExecutionProvider"])
start = time.perf_counter()
vectors = []
for i in range(0, len(texts), batch):
    enc = tok.encode_batch(texts[i:i + batch])
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    out = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    vec = (out * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    vectors.extend(vec)
seconds = time.perf_counter() - start
print(f"{len(texts) / seconds:.2f}")
if out_path:
    with open(out_path, "w") as f:
        for v in vectors:
            f.write(json.dumps([float(x) for x in v]) + "\n")
