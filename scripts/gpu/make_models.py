# Random-weight model folders for GPU throughput runs (no model weights can reach the device):
# small = SmolLM2-135M-Instruct's exact config; qwen3b = Qwen2.5-3B-Instruct's dimensions with
# SmolLM2's tokenizer (vocab 49152 instead of 151936). Also prints transformers' greedy ids of
# the small model (32 new tokens, end of turn ignored) in float32 and in bfloat16 on the GPU,
# as `TRANSFORMERS_GREEDY_<KIND>=[...]` lines that run.sh compares with `harness generate --ids`.
import json, os, shutil, sys, time
import torch, transformers, tokenizers
out = sys.argv[1]; tok = os.path.join(os.path.dirname(__file__), "tok")
PROMPT = "Query: effects of vitamin D on bone density in older adults. Rewrite:"

def folder(name, cfg_dict, dtype):
    d = os.path.join(out, name); os.makedirs(d, exist_ok=True)
    cfg_path = os.path.join(d, "config.json")
    json.dump(cfg_dict, open(cfg_path, "w"), indent=1)
    cfg = transformers.AutoConfig.from_pretrained(d)
    torch.manual_seed(0)
    t = time.time()
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.save_pretrained(d, safe_serialization=True)
    json.dump(cfg_dict, open(cfg_path, "w"), indent=1)  # our own plain config, not v5's rewrite
    for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]:
        shutil.copy(os.path.join(tok, f), d)
    n = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n/1e9:.3f}B parameters, {dtype}, written in {time.time()-t:.1f}s:", sorted(os.listdir(d)), flush=True)
    return model

small_cfg = json.load(open(os.path.join(tok, "config.json")))
small = folder("small", small_cfg, torch.float32)
prompt_ids = tokenizers.Tokenizer.from_file(os.path.join(tok, "tokenizer.json")).encode(PROMPT).ids
print("PROMPT_IDS=" + json.dumps(prompt_ids))
for kind, dtype in (("F32", torch.float32), ("BF16", torch.bfloat16)):
    m = small.to(dtype).eval()
    seq = list(prompt_ids)
    with torch.no_grad():
        for _ in range(32):  # argmax of a full forward pass per step: no cache, no stopping
            seq.append(int(m(torch.tensor([seq], device="cuda")).logits[0, -1].float().argmax()))
    print(f"TRANSFORMERS_GREEDY_{kind}=" + json.dumps(seq[len(prompt_ids):]), flush=True)
del small, m; torch.cuda.empty_cache()

qwen = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 2048, "intermediate_size": 11008,
        "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2, "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True, "vocab_size": 49152,
        "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "torch_dtype": "bfloat16", "use_sliding_window": False}
folder("qwen3b", qwen, torch.bfloat16)
print("PROMPT=" + PROMPT)
