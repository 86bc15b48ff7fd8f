#!/usr/bin/env python3
"""Writes tests/golden/fixtures/tiny-qwen2/: a small randomly initialised Qwen2 saved by
transformers (config.json, model.safetensors) and qwen2-reference.json beside it with what
transformers computes in float32: the logits of every position of three prompts and 20 greedy
tokens after each (argmax of a full forward pass per step, no cache, no stopping).

The model has the Qwen2 parts the tch decoder must get right: q/k/v biases (set non-zero here,
transformers initialises them to 0), an untied output head, grouped KV heads (4 query heads, 2
key/value heads) and non-unit RMSNorm weights. Weights are drawn with std 0.15 so that logits
are peaked enough for greedy decoding not to ride on float rounding. RoPE base 1e6 (Qwen2.5's);
transformers 5 writes it under `rope_parameters`, which the loader must read.

Usage: python3 scripts/make_qwen2_fixture.py   (torch and transformers; this project's peer
venv: .deps/peer-transformers, torch 2.13.0, transformers 5.24.0)
"""
import json
import os

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "fixtures", "tiny-qwen2")
PROMPTS = [[1, 17, 230, 5, 999, 64], [3, 3, 3, 3], [500, 12, 88, 401, 7, 7, 250, 600, 901, 2, 45]]
NEW_TOKENS = 20


def main():
    torch.manual_seed(20261129)
    config = Qwen2Config(vocab_size=1024, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, hidden_act="silu", torch_dtype="float32")
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(OUT, safe_serialization=True)
    reference = {"transformers": transformers.__version__, "torch": torch.__version__, "dtype": "float32",
                 "cases": []}
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = torch.tensor([prompt])
            logits = model(ids).logits[0]
            seq = list(prompt)
            for _ in range(NEW_TOKENS):
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
            reference["cases"].append({"prompt_ids": prompt, "logits": logits.tolist(),
                                       "greedy_ids": seq[len(prompt):]})
    with open(os.path.join(OUT, "qwen2-reference.json"), "w") as f:
        json.dump(reference, f)
    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)))


if __name__ == "__main__":
    main()
