#!/usr/bin/env python3
"""Peer for the decoding side-by-side: greedy generation with transformers on the same model
folder, prompts, thread count and token budget as `harness generate-bench`.

Usage: transformers_decode.py MODEL_DIR PROMPTS_FILE BATCH NEW_TOKENS THREADS [IDS_OUT]
Prints: tokens=<generated tokens> seconds=<s> tokens_per_s=<r>; with IDS_OUT, writes each row's
generated ids there as `harness generate --ids` prints them ("generated_ids: [..]").
"""
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    model_dir, prompts_file, batch, new_tokens, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    prompts = [l.rstrip("\n") for l in open(prompts_file) if l.strip()][:batch]
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    # End-of-turn ignored as `harness generate --ignore-eos` ignores it: the model may still
    # choose the token, and decoding goes on (min_new_tokens would instead forbid it).
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        # Warm-up, as the Rust side also runs once before timing.
        model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
        start = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id, use_cache=True)
        seconds = time.perf_counter() - start
    generated = (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
    if len(sys.argv) > 6:
        with open(sys.argv[6], "w") as f:
            for row in out[:, enc["input_ids"].shape[1]:].tolist():
                f.write(f"generated_ids: {row}\n")
    print(f"tokens={generated} seconds={seconds:.3f} tokens_per_s={generated / seconds:.2f}")


if __name__ == "__main__":
    main()
