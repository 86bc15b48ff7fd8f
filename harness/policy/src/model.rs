//! Llama / Qwen2 decoder in tch, with a key/value cache and left-padded batches.
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use crate::mkl::PackedLinear;
use crate::PolicyError;

/// A LoRA adapter: `x A^T B^T * alpha / r` added to a projection.
#[derive(Debug)]
pub struct LoraAdapter {
    /// `[r, in]`, random at start.
    pub a: Tensor,
    /// `[out, r]`, zero at start (so a new adapter changes nothing).
    pub b: Tensor,
    pub scale: f64,
}

/// No adapter active.
const NO_ADAPTER: usize = usize::MAX;

/// A linear projection (weight `[out, in]`, optional bias), laid out as Hugging Face names it,
/// with optional LoRA adapters of which at most one (the model-wide `active` index) applies.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub adapters: Vec<LoraAdapter>,
    active: Arc<AtomicUsize>,
}

impl Linear {
    fn new(path: nn::Path<'_>, input: i64, output: i64, bias: bool, active: &Arc<AtomicUsize>) -> Linear {
        let weight = path.var("weight", &[output, input], nn::Init::Const(0.0));
        let bias = bias.then(|| path.var("bias", &[output], nn::Init::Const(0.0)));
        Linear { weight, bias, adapters: Vec::new(), active: Arc::clone(active) }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let base = x.linear(&self.weight, self.bias.as_ref());
        match self.adapters.get(self.active.load(Ordering::Relaxed)) {
            // Adapters stay float32 (master weights) under a bf16 base: compute in x's kind.
            Some(lora) => {
                let kind = x.kind();
                base + x.matmul(&lora.a.tr().to_kind(kind)).matmul(&lora.b.tr().to_kind(kind)) * lora.scale
            }
            None => base,
        }
    }

    fn add_adapter(&mut self, path: nn::Path<'_>, rank: i64, alpha: f64) {
        let (out, input) = self.weight.size2().expect("2-D weight");
        // Kaiming-uniform-like A (bound 1/sqrt(in)) and zero B, as peft initialises.
        let bound = 1.0 / (input as f64).sqrt();
        let a = path.var("lora_a", &[rank, input], nn::Init::Uniform { lo: -bound, up: bound });
        let b = path.var("lora_b", &[out, rank], nn::Init::Const(0.0));
        self.adapters.push(LoraAdapter { a, b, scale: alpha / rank as f64 });
    }

    /// The weight with adapter `i` merged in.
    pub fn merged_weight(&self, i: usize) -> Tensor {
        match self.adapters.get(i) {
            Some(l) => &self.weight + l.b.matmul(&l.a).to_kind(self.weight.kind()) * l.scale,
            None => self.weight.shallow_clone(),
        }
    }
}

#[derive(Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(path: nn::Path<'_>, size: i64, eps: f64) -> RmsNorm {
        RmsNorm { weight: path.var("weight", &[size], nn::Init::Const(1.0)), eps }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        // Normalise in float32 whatever the weights' dtype, as Hugging Face does. The kind is
        // checked here rather than by two no-op conversions: a decoding step runs 61 norms,
        // and each libtorch call costs microseconds of dispatch there.
        let kind = x.kind();
        let upcast;
        let x32 = if kind == Kind::Float {
            x
        } else {
            upcast = x.to_kind(Kind::Float);
            &upcast
        };
        let variance = x32.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        let normed = x32 * (variance + self.eps).rsqrt();
        let normed = if kind == Kind::Float { normed } else { normed.to_kind(kind) };
        normed * &self.weight
    }
}

#[derive(Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
}

#[derive(Debug)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

#[derive(Debug)]
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

/// Keys and values of every layer for the positions seen so far: `[batch, kv_heads, len, dim]`.
///
/// A cache made with [`KvCache::with_capacity`] writes each step's keys and values in place
/// into buffers allocated once (grown by doubling if a step overruns them), so decoding costs no
/// copy of the whole cache per token; [`KvCache::default`] keeps exactly what it was given
/// (the training path, where autograd needs plain tensors).
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: i64,
    capacity: i64,
}

impl KvCache {
    /// A cache that holds `positions` positions without reallocating.
    pub fn with_capacity(positions: i64) -> KvCache {
        KvCache { layers: Vec::new(), len: 0, capacity: positions.max(1) }
    }

    /// Positions cached.
    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the given batch rows (finished sequences dropped).
    pub fn select_rows(&mut self, rows: &Tensor) {
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.index_select(0, rows);
            *v = v.index_select(0, rows);
        }
    }

    /// Appends `k`, `v` (`[B, kv_heads, T, dim]`) at position `past` of layer `layer`; returns
    /// the keys and values of positions `0..past + T`.
    fn append(&mut self, layer: usize, past: i64, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let t = k.size()[2];
        if self.capacity == 0 {
            let (k, v) = match self.layers[layer].take() {
                Some((pk, pv)) => (Tensor::cat(&[pk, k], 2), Tensor::cat(&[pv, v], 2)),
                None => (k, v),
            };
            self.layers[layer] = Some((k.shallow_clone(), v.shallow_clone()));
            return (k, v);
        }
        let needed = past + t;
        let grow = |old: Option<&Tensor>, new: &Tensor, capacity: i64| -> Tensor {
            let mut size = new.size();
            size[2] = capacity;
            let buffer = Tensor::empty(size.as_slice(), (new.kind(), new.device()));
            if let Some(old) = old {
                buffer.narrow(2, 0, past).copy_(&old.narrow(2, 0, past));
            }
            buffer
        };
        let (kb, vb) = match self.layers[layer].take() {
            Some((kb, vb)) if kb.size()[2] >= needed => (kb, vb),
            old => {
                self.capacity = self.capacity.max(needed).max(2 * old.as_ref().map_or(0, |(kb, _)| kb.size()[2]));
                let (ok, ov) = old.map_or((None, None), |(a, b)| (Some(a), Some(b)));
                (grow(ok.as_ref(), &k, self.capacity), grow(ov.as_ref(), &v, self.capacity))
            }
        };
        kb.narrow(2, past, t).copy_(&k);
        vb.narrow(2, past, t).copy_(&v);
        let out = (kb.narrow(2, 0, needed), vb.narrow(2, 0, needed));
        self.layers[layer] = Some((kb, vb));
        out
    }
}

/// One layer's projections for decoding on the CPU, fused (q|k|v and gate|up) and packed by
/// MKL for the decoding batch.
#[derive(Debug)]
struct PackedLayer {
    qkv: PackedLinear,
    o: PackedLinear,
    gate_up: PackedLinear,
    down: PackedLinear,
}

/// Decoding weights derived from a model's current weights (with its active adapter merged) by
/// [`CausalLm::pack_for_decoding`]. A snapshot: build it again after the weights change.
#[derive(Debug)]
pub struct PackedWeights {
    layers: Vec<PackedLayer>,
    lm_head: PackedLinear,
    batch: i64,
}

/// The decoder.
#[derive(Debug)]
pub struct CausalLm {
    pub config: ModelConfig,
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
    inv_freq: Tensor,
    pub device: Device,
    /// Index of the active LoRA adapter (NO_ADAPTER: base weights only).
    active: Arc<AtomicUsize>,
    adapters: usize,
}

/// What every layer of one pass shares: RoPE tables `[B, T, 1, head_dim]` and how attention
/// is masked (an explicit mask, the kernel's causal flag, or neither).
///
/// RoPE is `x cos + rotate_half(x) sin`, with `rotate_half(x) = [-x2, x1]`. Here it is
/// `x cos + roll(x, half) sin_signed`, `roll(x, half) = [x2, x1]` and `sin_signed` the sine with
/// its first half negated: the same products to the bit (negating a factor negates an IEEE
/// product exactly) in 4 libtorch calls instead of 7.
struct PassContext {
    cos: Tensor,
    sin_signed: Tensor,
    mask: Option<Tensor>,
    is_causal: bool,
    past: i64,
}

/// RoPE on `x` `[B, T, heads, head_dim]` (see [`PassContext`]).
fn rotate(x: &Tensor, pass: &PassContext, head_dim: i64) -> Tensor {
    x * &pass.cos + x.roll([head_dim / 2], [-1]) * &pass.sin_signed
}

impl CausalLm {
    /// Declares every weight under `path` (named as in Hugging Face checkpoints).
    pub fn new(path: &nn::Path<'_>, config: ModelConfig) -> CausalLm {
        let c = &config;
        let model = path / "model";
        let (h, hd, heads, kv) = (c.hidden_size, c.head_dim(), c.num_attention_heads, c.kv_heads());
        let active = Arc::new(AtomicUsize::new(NO_ADAPTER));
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = &model / "layers" / i;
                let a = &l / "self_attn";
                let m = &l / "mlp";
                Layer {
                    input_layernorm: RmsNorm::new(&l / "input_layernorm", h, c.rms_norm_eps),
                    self_attn: Attention {
                        q_proj: Linear::new(&a / "q_proj", h, heads * hd, c.qkv_bias(), &active),
                        k_proj: Linear::new(&a / "k_proj", h, kv * hd, c.qkv_bias(), &active),
                        v_proj: Linear::new(&a / "v_proj", h, kv * hd, c.qkv_bias(), &active),
                        o_proj: Linear::new(&a / "o_proj", heads * hd, h, false, &active),
                        heads,
                        kv_heads: kv,
                        head_dim: hd,
                    },
                    post_attention_layernorm: RmsNorm::new(&l / "post_attention_layernorm", h, c.rms_norm_eps),
                    mlp: Mlp {
                        gate_proj: Linear::new(&m / "gate_proj", h, c.intermediate_size, false, &active),
                        up_proj: Linear::new(&m / "up_proj", h, c.intermediate_size, false, &active),
                        down_proj: Linear::new(&m / "down_proj", c.intermediate_size, h, false, &active),
                    },
                }
            })
            .collect();
        let embed_tokens = (&model / "embed_tokens").var("weight", &[c.vocab_size, h], nn::Init::Const(0.0));
        let norm = RmsNorm::new(&model / "norm", h, c.rms_norm_eps);
        let lm_head = (!c.tie_word_embeddings).then(|| Linear::new(path / "lm_head", h, c.vocab_size, false, &active));
        let inv_freq = Tensor::from_slice(&c.inv_freq()).to_kind(Kind::Float).to_device(path.device());
        CausalLm { config, embed_tokens, layers, norm, lm_head, inv_freq, device: path.device(), active, adapters: 0 }
    }

    /// Adds a LoRA adapter (rank `rank`, scale `alpha / rank`) to every attention and MLP
    /// projection, its variables under `path` (`<path>.layers.<i>.<proj>.lora_a`); returns its
    /// index for [`CausalLm::set_adapter`].
    pub fn add_lora(&mut self, path: &nn::Path<'_>, rank: i64, alpha: f64) -> usize {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let l = path / "layers" / i;
            let a = &mut layer.self_attn;
            for (name, proj) in [("q_proj", &mut a.q_proj), ("k_proj", &mut a.k_proj), ("v_proj", &mut a.v_proj), ("o_proj", &mut a.o_proj)] {
                proj.add_adapter(&l / name, rank, alpha);
            }
            let m = &mut layer.mlp;
            for (name, proj) in [("gate_proj", &mut m.gate_proj), ("up_proj", &mut m.up_proj), ("down_proj", &mut m.down_proj)] {
                proj.add_adapter(&l / name, rank, alpha);
            }
        }
        self.adapters += 1;
        self.adapters - 1
    }

    /// Every attention and MLP projection with its layer and peft module name.
    pub(crate) fn projections(&self) -> Vec<(usize, &'static str, &Linear)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let (a, m) = (&layer.self_attn, &layer.mlp);
            out.extend([("q_proj", &a.q_proj), ("k_proj", &a.k_proj), ("v_proj", &a.v_proj), ("o_proj", &a.o_proj), ("gate_proj", &m.gate_proj), ("up_proj", &m.up_proj), ("down_proj", &m.down_proj)].map(|(n, p)| (i, n, p)));
        }
        out
    }

    /// Number of decoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Selects the adapter used by every forward pass (`None`: the base model).
    pub fn set_adapter(&self, adapter: Option<usize>) {
        self.active.store(adapter.filter(|&i| i < self.adapters).unwrap_or(NO_ADAPTER), Ordering::Relaxed);
    }

    /// Base weights with adapter `adapter` merged, under Hugging Face names (for export).
    pub fn merged_weights(&self, adapter: usize) -> Vec<(String, Tensor)> {
        let mut out = vec![
            ("model.embed_tokens.weight".to_string(), self.embed_tokens.shallow_clone()),
            ("model.norm.weight".to_string(), self.norm.weight.shallow_clone()),
        ];
        if let Some(head) = &self.lm_head {
            out.push(("lm_head.weight".to_string(), head.weight.shallow_clone()));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            out.push((format!("{p}.input_layernorm.weight"), layer.input_layernorm.weight.shallow_clone()));
            out.push((format!("{p}.post_attention_layernorm.weight"), layer.post_attention_layernorm.weight.shallow_clone()));
            let a = &layer.self_attn;
            let m = &layer.mlp;
            for (name, proj) in [
                ("self_attn.q_proj", &a.q_proj),
                ("self_attn.k_proj", &a.k_proj),
                ("self_attn.v_proj", &a.v_proj),
                ("self_attn.o_proj", &a.o_proj),
                ("mlp.gate_proj", &m.gate_proj),
                ("mlp.up_proj", &m.up_proj),
                ("mlp.down_proj", &m.down_proj),
            ] {
                out.push((format!("{p}.{name}.weight"), proj.merged_weight(adapter)));
                if let Some(b) = &proj.bias {
                    out.push((format!("{p}.{name}.bias"), b.shallow_clone()));
                }
            }
        }
        out
    }

    /// The weights as [`PackedWeights`] for decoding `batch` rows a step on the CPU (float32),
    /// the active adapter merged in. Fails when this libtorch has no MKL packed GEMM.
    pub fn pack_for_decoding(&self, batch: i64) -> Result<PackedWeights, String> {
        let active = self.active.load(Ordering::Relaxed);
        let fuse = |parts: &[&Linear]| -> Result<PackedLinear, String> {
            let weights: Vec<Tensor> = parts.iter().map(|p| p.merged_weight(active)).collect();
            let biases: Option<Vec<&Tensor>> = parts.iter().map(|p| p.bias.as_ref()).collect();
            PackedLinear::new(Tensor::cat(&weights, 0), biases.map(|b| Tensor::cat(&b, 0)), batch)
        };
        tch::no_grad(|| {
            let layers = self
                .layers
                .iter()
                .map(|l| {
                    let (a, m) = (&l.self_attn, &l.mlp);
                    Ok(PackedLayer {
                        qkv: fuse(&[&a.q_proj, &a.k_proj, &a.v_proj])?,
                        o: fuse(&[&a.o_proj])?,
                        gate_up: fuse(&[&m.gate_proj, &m.up_proj])?,
                        down: fuse(&[&m.down_proj])?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let lm_head = match &self.lm_head {
                Some(head) => fuse(&[head])?,
                None => PackedLinear::new(self.embed_tokens.shallow_clone(), None, batch)?,
            };
            Ok(PackedWeights { layers, lm_head, batch })
        })
    }

    /// Hidden states after the final norm: `input_ids`, `positions` `[B, T]`; `key_mask`
    /// `[B, cached + T]` (true = a real token); updates `cache`.
    pub fn hidden(&self, input_ids: &Tensor, positions: &Tensor, key_mask: &Tensor, cache: &mut KvCache) -> Tensor {
        self.hidden_with(input_ids, positions, Some(key_mask), cache, None)
    }

    /// [`CausalLm::hidden`], computing the projections from `packed` when given. `key_mask`
    /// `None` says that every cached and new position is a real token (no padding): attention
    /// then runs without a materialised mask (causal by the kernel's own flag on a prompt pass,
    /// unmasked for one new token), which lets fused kernels take it.
    pub fn hidden_with(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        key_mask: Option<&Tensor>,
        cache: &mut KvCache,
        packed: Option<&PackedWeights>,
    ) -> Tensor {
        self.run_layers(input_ids, positions, key_mask, Some(cache), packed)
    }

    /// Hidden states after the final norm of whole sequences, keeping no cache (training and
    /// scoring passes): `key_mask` `[B, T]`, or `None` without padding.
    pub fn hidden_full(&self, input_ids: &Tensor, positions: &Tensor, key_mask: Option<&Tensor>) -> Tensor {
        self.run_layers(input_ids, positions, key_mask, None, None)
    }

    /// Embedding, every layer and the final norm; with a cache, after its positions and
    /// appending to it.
    fn run_layers(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        key_mask: Option<&Tensor>,
        mut cache: Option<&mut KvCache>,
        packed: Option<&PackedWeights>,
    ) -> Tensor {
        let (b, t) = input_ids.size2().expect("input_ids is [batch, time]");
        // Packed weights serve only the row count they were packed for (the decoding steps);
        // the prompt pass and shrunken batches take the model's own projections.
        let packed = packed.filter(|p| p.batch == b * t);
        if let Some(cache) = cache.as_deref_mut().filter(|c| c.layers.is_empty()) {
            cache.layers = (0..self.layers.len()).map(|_| None).collect();
        }
        let past = cache.as_deref().map_or(0, KvCache::len);
        let mut x = Tensor::embedding(&self.embed_tokens, input_ids, -1, false, false);
        let pass = self.pass_context(positions, key_mask, x.kind(), b, t, past);
        for i in 0..self.layers.len() {
            x = self.layer_forward(i, &x, &pass, cache.as_deref_mut(), packed.map(|p| &p.layers[i]));
        }
        if let Some(cache) = cache {
            cache.len = past + t;
        }
        self.norm.forward(&x)
    }

    /// RoPE tables and the attention mask of one pass, shared by its layers.
    fn pass_context(&self, positions: &Tensor, key_mask: Option<&Tensor>, kind: Kind, b: i64, t: i64, past: i64) -> PassContext {
        // RoPE tables for these positions: [B, T, 1, head_dim], the sine's first half negated.
        let freqs = (positions.to_kind(Kind::Float).unsqueeze(-1) * self.inv_freq.view([1, 1, -1])).unsqueeze(2);
        let cos = Tensor::cat(&[&freqs, &freqs], -1).cos().to_kind(kind);
        let sin = freqs.sin();
        let sin_signed = Tensor::cat(&[sin.neg(), sin], -1).to_kind(kind);
        let total = past + t;
        let causal_mask = || {
            let key_slot = Tensor::arange(total, (Kind::Int64, self.device)).view([1, 1, 1, total]);
            let query_slot = (Tensor::arange(t, (Kind::Int64, self.device)) + past).view([1, 1, t, 1]);
            (key_slot.le_tensor(&query_slot), key_slot.eq_tensor(&query_slot))
        };
        let (mask, is_causal) = match key_mask {
            // Mask [B, 1, T, past + T]: a query sees real keys at or before its own slot, and
            // always itself (so padded rows never become all-masked, which would give NaN).
            Some(real) => {
                let (causal, own) = causal_mask();
                (Some(causal.logical_and(&real.view([b, 1, 1, total])).logical_or(&own)), false)
            }
            // One new token sees every cached key.
            None if t == 1 => (None, false),
            // The kernel's causal flag aligns queries with the first keys: right only with no past.
            None if past == 0 => (None, true),
            None => (Some(causal_mask().0), false),
        };
        PassContext { cos, sin_signed, mask, is_causal, past }
    }

    /// Decoder layer `i` on `x` `[B, T, hidden]`. With a cache, the layer's keys and values are
    /// appended to it and attention covers the cached positions too; without one (training
    /// passes), only this pass's positions.
    fn layer_forward(&self, i: usize, x: &Tensor, pass: &PassContext, cache: Option<&mut KvCache>, packed: Option<&PackedLayer>) -> Tensor {
        let (b, t, _) = x.size3().expect("hidden states are [batch, time, hidden]");
        let layer = &self.layers[i];
        let h = layer.input_layernorm.forward(x);
        let a = &layer.self_attn;
        let q_width = a.heads * a.head_dim;
        // Heads as [B, T, heads, head_dim], rotated there, then [B, heads, T, head_dim].
        let (q, k, v) = match packed {
            // q and k rotated in one pass over the fused projection's q|k part.
            Some(p) => {
                let qkv = p.qkv.forward(&h).reshape([b, t, a.heads + 2 * a.kv_heads, a.head_dim]);
                let qk = rotate(&qkv.narrow(2, 0, a.heads + a.kv_heads), pass, a.head_dim);
                (qk.narrow(2, 0, a.heads), qk.narrow(2, a.heads, a.kv_heads), qkv.narrow(2, a.heads + a.kv_heads, a.kv_heads))
            }
            None => {
                let heads = |x: Tensor, n: i64| x.reshape([b, t, n, a.head_dim]);
                (
                    rotate(&heads(a.q_proj.forward(&h), a.heads), pass, a.head_dim),
                    rotate(&heads(a.k_proj.forward(&h), a.kv_heads), pass, a.head_dim),
                    heads(a.v_proj.forward(&h), a.kv_heads),
                )
            }
        };
        let (q, k, v) = (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));
        let (k, v) = match cache {
            Some(cache) => cache.append(i, pass.past, k, v),
            None => (k, v),
        };
        let out = Tensor::scaled_dot_product_attention(&q, &k, &v, pass.mask.as_ref(), 0.0, pass.is_causal, None, a.kv_heads != a.heads);
        let out = out.transpose(1, 2).reshape([b, t, q_width]);
        let m = &layer.mlp;
        match packed {
            Some(p) => {
                let x = x + p.o.forward(&out);
                let gate_up = p.gate_up.forward(&layer.post_attention_layernorm.forward(&x));
                let width = self.config.intermediate_size;
                &x + p.down.forward(&(gate_up.narrow(2, 0, width).silu() * gate_up.narrow(2, width, width)))
            }
            None => {
                let x = x + a.o_proj.forward(&out);
                let h = layer.post_attention_layernorm.forward(&x);
                &x + m.down_proj.forward(&(m.gate_proj.forward(&h).silu() * m.up_proj.forward(&h)))
            }
        }
    }

    /// Activation checkpointing for a training pass over whole sequences (no cache): runs the
    /// layers without keeping their activations, only each layer's input `[B, T, hidden]`; hands
    /// the final normed hidden states to `head`, which returns a scalar loss; then back-propagates
    /// that loss layer by layer from the top, recomputing one layer's activations at a time.
    /// Gradients accumulate into the variables' `.grad` as `head(self.hidden_full(..)).backward()`
    /// would leave them. Peak memory: the layer inputs plus one layer's activations, instead of
    /// every layer's; cost: one more forward pass.
    pub fn backward_checkpointed(&self, input_ids: &Tensor, positions: &Tensor, key_mask: &Tensor, head: &mut dyn FnMut(&Tensor) -> Tensor) {
        let (b, t) = input_ids.size2().expect("input_ids is [batch, time]");
        let embed = || Tensor::embedding(&self.embed_tokens, input_ids, -1, false, false);
        let (inputs, top, pass) = tch::no_grad(|| {
            let mut x = embed();
            let pass = self.pass_context(positions, Some(key_mask), x.kind(), b, t, 0);
            let mut inputs = Vec::with_capacity(self.layers.len());
            for i in 0..self.layers.len() {
                let next = self.layer_forward(i, &x, &pass, None, None);
                inputs.push(x);
                x = next;
            }
            (inputs, x, pass)
        });
        let top = top.detach().set_requires_grad(true);
        head(&self.norm.forward(&top)).backward();
        let mut upstream = top.grad();
        for (i, input) in inputs.into_iter().enumerate().rev() {
            if !upstream.defined() {
                return; // the loss does not reach below this point
            }
            let input = input.detach().set_requires_grad(true);
            // d/dy of sum(y * g) is g: back-propagates `upstream` through this layer alone.
            (self.layer_forward(i, &input, &pass, None, None) * &upstream).sum(Kind::Float).backward();
            upstream = input.grad();
        }
        if upstream.defined() && self.embed_tokens.requires_grad() {
            (embed() * &upstream).sum(Kind::Float).backward();
        }
    }

    /// [`CausalLm::logits`] through the packed (transposed) head.
    pub fn logits_with(&self, hidden: &Tensor, packed: Option<&PackedWeights>) -> Tensor {
        match packed.filter(|p| hidden.numel() as i64 == p.batch * self.config.hidden_size) {
            Some(p) => p.lm_head.forward(hidden).to_kind(Kind::Float),
            None => self.logits(hidden),
        }
    }

    /// The dtype of the weights.
    pub fn kind(&self) -> Kind {
        self.embed_tokens.kind()
    }

    /// Vocabulary logits of hidden states `[.., hidden]`, in float32.
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        let out = match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => hidden.matmul(&self.embed_tokens.tr()),
        };
        out.to_kind(Kind::Float)
    }

    /// Logits at every position of unpadded sequences `[B, T]` (no cache kept).
    pub fn forward_full(&self, input_ids: &Tensor) -> Tensor {
        let (b, t) = input_ids.size2().expect("input_ids is [batch, time]");
        let positions = Tensor::arange(t, (Kind::Int64, self.device)).unsqueeze(0).expand([b, t], false);
        // No padding: attention by the kernel's causal flag, no mask.
        self.logits(&self.hidden_full(input_ids, &positions, None))
    }
}

impl Module for CausalLm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.forward_full(xs)
    }
}

/// Seeds libtorch's generator with `seed` and fills every weight of `vs` (in name order) with
/// normal noise times `scale`, every norm weight with 1: a random model of a config's shape,
/// for tests that need no trained weights.
pub fn randomize_weights(vs: &nn::VarStore, seed: i64, scale: f64) {
    tch::manual_seed(seed);
    tch::no_grad(|| {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut v) in vars {
            if name.ends_with("norm.weight") {
                let _ = v.fill_(1.0);
            } else {
                v.copy_(&(Tensor::randn(v.size(), (v.kind(), v.device())) * scale));
            }
        }
    });
}

/// Copies weights from safetensors files into the variables of `vs` (one file, or the shards of
/// `model.safetensors.index.json`). Every variable must be found, with its shape.
pub fn load_weights(vs: &mut nn::VarStore, dir: &Path) -> Result<(), PolicyError> {
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<std::path::PathBuf> = if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| PolicyError::io(&index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| PolicyError::Format { path: index.clone(), cause: e.to_string() })?;
        let map = json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| PolicyError::Format {
            path: index.clone(),
            cause: "no weight_map".into(),
        })?;
        let mut shards: Vec<String> = map.values().filter_map(|v| v.as_str().map(String::from)).collect();
        shards.sort();
        shards.dedup();
        shards.into_iter().map(|s| dir.join(s)).collect()
    } else {
        vec![dir.join("model.safetensors")]
    };
    let mut found: HashMap<String, Tensor> = HashMap::new();
    for file in &files {
        if !file.is_file() {
            return Err(PolicyError::Format { path: file.clone(), cause: "weights file is missing".into() });
        }
        let tensors = Tensor::read_safetensors(file).map_err(|e| PolicyError::Format { path: file.clone(), cause: e.to_string() })?;
        found.extend(tensors);
    }
    let variables = vs.variables();
    let mut missing = Vec::new();
    tch::no_grad(|| -> Result<(), PolicyError> {
        for (name, mut var) in variables {
            match found.get(&name) {
                Some(src) if src.size() == var.size() => var.copy_(src),
                Some(src) => {
                    return Err(PolicyError::Format {
                        path: dir.to_path_buf(),
                        cause: format!("{name}: shape {:?} in the checkpoint, {:?} expected", src.size(), var.size()),
                    })
                }
                None => missing.push(name),
            }
        }
        Ok(())
    })?;
    if !missing.is_empty() {
        missing.sort();
        return Err(PolicyError::Format {
            path: dir.to_path_buf(),
            cause: format!("{} weights missing from the checkpoint, e.g. {}", missing.len(), missing[0]),
        });
    }
    Ok(())
}
