"""A LoRA adapter written by `harness export-adapter`, read by peft: greedy continuations of
SmolLM2 + adapter by transformers/peft (adapter applied unmerged, as peft runs it) against
`harness generate --model ADAPTER` (adapter merged into the base at load), token for token.

Usage (the peer-transformers venv, peft from PyPI):
    .deps/peer-transformers/bin/pip install peft==0.21.2
    .deps/peer-transformers/bin/python benches/peers/peft_adapter.py ADAPTER_DIR [--harness target/release/harness]
Prints one line per prompt and the agreement count; exits 1 on any difference.
"""
import argparse
import ast
import json
import os
import subprocess
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

PROMPTS = [
    "Write a PubMed query for a systematic review of beta blockers.",
    "Rapid tests for the diagnosis of visceral leishmaniasis in patients with suspected disease",
    "Find studies on proton pump inhibitors.",
    "Capsule endoscopy for the diagnosis of oesophageal varices",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("adapter")
    ap.add_argument("--harness", default="target/release/harness")
    ap.add_argument("--tokens", type=int, default=40)
    args = ap.parse_args()
    meta = json.load(open(os.path.join(args.adapter, "harness_adapter.json")))
    models = os.environ.get("HARNESS_MODELS_DIR", ".deps/models")
    base_dir = os.path.join(models, meta["base_model"])
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, args.adapter).eval()
    torch.set_num_threads(2)
    agree = moved = 0
    for prompt in PROMPTS:
        out = subprocess.run(
            [args.harness, "generate", "--model", args.adapter, "--prompt", prompt, "--chat", "--ids",
             "--max-new-tokens", str(args.tokens), "--device", "cpu"],
            check=True, capture_output=True, text=True).stdout
        lines = out.splitlines()
        prompt_ids = ast.literal_eval(lines[0].split(":", 1)[1].strip())
        ours = ast.literal_eval(lines[1].split(":", 1)[1].strip())
        with torch.no_grad():
            gen = model.generate(torch.tensor([prompt_ids]), max_new_tokens=args.tokens, do_sample=False,
                                 eos_token_id=base.generation_config.eos_token_id, pad_token_id=0)
        theirs = gen[0, len(prompt_ids):].tolist()
        with torch.no_grad(), model.disable_adapter():
            plain = model.generate(torch.tensor([prompt_ids]), max_new_tokens=args.tokens, do_sample=False,
                                   eos_token_id=base.generation_config.eos_token_id, pad_token_id=0)[0, len(prompt_ids):].tolist()
        # harness leaves the end-of-turn token out of the generated ids; transformers keeps it.
        eos = base.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        for seq in (theirs, plain):
            while seq and seq[-1] in eos:
                seq.pop()
        moved += plain != theirs
        same = ours == theirs
        agree += same
        print(f"{'same' if same else 'DIFFERENT'}: {len(ours)} vs {len(theirs)} tokens: {prompt[:50]!r}")
        if not same:
            print("  harness:", ours)
            print("  peft:   ", theirs)
    # The check means something only if the adapter changes what the base model writes.
    print(f"the adapter changes the base model's greedy continuation on {moved} of {len(PROMPTS)} prompts")
    print(f"{agree} of {len(PROMPTS)} greedy continuations identical (peft {__import__('peft').__version__}, transformers {__import__('transformers').__version__})")
    sys.exit(0 if agree == len(PROMPTS) else 1)


if __name__ == "__main__":
    main()
