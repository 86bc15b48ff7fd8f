//! Batched sampling with left padding and a key/value cache.
use tch::{Device, Kind, Tensor};

use crate::model::{CausalLm, KvCache};

/// How tokens are chosen.
#[derive(Debug, Clone)]
pub struct SamplingParams {
    pub max_new_tokens: usize,
    /// 0 = greedy (argmax).
    pub temperature: f64,
    /// Nucleus mass kept (1.0 = all).
    pub top_p: f64,
    /// Most likely tokens kept (0 = all).
    pub top_k: i64,
    /// Generation stops once the decoded text contains one of these (the text is cut before it).
    pub stop_strings: Vec<String>,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams { max_new_tokens: 256, temperature: 0.0, top_p: 1.0, top_k: 0, stop_strings: Vec::new(), seed: 0 }
    }
}

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Eos,
    Stop,
    Length,
}

/// One generated continuation.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated token ids, including the EOS token when it ended one.
    pub token_ids: Vec<i64>,
    /// Log-probability of each generated token under the sampling distribution (logits divided
    /// by the temperature, before top-k/top-p truncation; raw logits when greedy).
    pub logprobs: Vec<f32>,
    pub finish: Finish,
}

/// Token filtering of one step's logits `[B, V]` (float32) into sampling logits.
fn truncate(logits: &Tensor, top_k: i64, top_p: f64) -> Tensor {
    let mut logits = logits.shallow_clone();
    let vocab = logits.size()[1];
    if top_k > 0 && top_k < vocab {
        let (kth, _) = logits.topk(top_k, -1, true, true);
        let threshold = kth.narrow(1, top_k - 1, 1);
        logits = logits.masked_fill(&logits.lt_tensor(&threshold), f64::NEG_INFINITY);
    }
    if top_p < 1.0 {
        let (sorted, order) = logits.sort(-1, true);
        let probs = sorted.softmax(-1, Kind::Float);
        let cumulative = probs.cumsum(-1, Kind::Float);
        // Drop a token when the mass before it already reaches top_p (the first always stays).
        let drop_sorted = (cumulative - &probs).gt(top_p);
        let drop = drop_sorted.scatter(1, &order, &drop_sorted);
        logits = logits.masked_fill(&drop, f64::NEG_INFINITY);
    }
    logits
}

/// Generates continuations of `prompts` (token ids, unpadded). `eos_ids` end a sequence;
/// `decode` turns generated ids into text for stop strings. Deterministic for a given seed.
pub fn generate(
    model: &CausalLm,
    prompts: &[Vec<i64>],
    eos_ids: &[i64],
    pad_id: i64,
    params: &SamplingParams,
    decode: &dyn Fn(&[i64]) -> String,
) -> Vec<Generation> {
    tch::manual_seed(params.seed as i64);
    let device: Device = model.device;
    let n = prompts.len();
    let mut outputs: Vec<Generation> =
        (0..n).map(|_| Generation { token_ids: Vec::new(), logprobs: Vec::new(), finish: Finish::Length }).collect();
    if n == 0 || params.max_new_tokens == 0 {
        return outputs;
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(n * longest);
    let mut mask = Vec::with_capacity(n * longest);
    let mut positions = Vec::with_capacity(n * longest);
    for p in prompts {
        let pad = longest - p.len();
        ids.extend(std::iter::repeat_n(pad_id, pad).chain(p.iter().copied()));
        mask.extend(std::iter::repeat_n(false, pad).chain(std::iter::repeat_n(true, p.len())));
        positions.extend(std::iter::repeat_n(0i64, pad).chain(0..p.len() as i64));
    }
    let shape = [n as i64, longest as i64];
    let input = Tensor::from_slice(&ids).view(shape).to_device(device);
    let mut key_mask = Tensor::from_slice(&mask).view(shape).to_device(device);
    let pos = Tensor::from_slice(&positions).view(shape).to_device(device);
    // Next position of each row = its prompt length.
    let mut next_pos: Vec<i64> = prompts.iter().map(|p| p.len() as i64).collect();
    // Rows still running, as indices into `outputs`; the cache holds only these rows.
    let mut active: Vec<usize> = (0..n).collect();
    let mut cache = KvCache::default();

    tch::no_grad(|| {
        let hidden = model.hidden(&input, &pos, &key_mask, &mut cache);
        let mut last = model.logits(&hidden.select(1, -1));
        for _step in 0..params.max_new_tokens {
            let scaled = if params.temperature > 0.0 { &last / params.temperature } else { last.shallow_clone() };
            let logprobs_all = scaled.log_softmax(-1, Kind::Float);
            let chosen = if params.temperature > 0.0 {
                truncate(&scaled, params.top_k, params.top_p).softmax(-1, Kind::Float).multinomial(1, false).squeeze_dim(1)
            } else {
                scaled.argmax(-1, false)
            };
            let chosen_lp = logprobs_all.gather(1, &chosen.unsqueeze(1), false).squeeze_dim(1);
            let chosen_v: Vec<i64> = Vec::<i64>::try_from(&chosen.to_device(Device::Cpu)).expect("token ids");
            let lp_v: Vec<f32> = Vec::<f32>::try_from(&chosen_lp.to_device(Device::Cpu)).expect("log-probs");
            let mut keep = Vec::with_capacity(active.len());
            for (row, &out_index) in active.iter().enumerate() {
                let out = &mut outputs[out_index];
                out.token_ids.push(chosen_v[row]);
                out.logprobs.push(lp_v[row]);
                if eos_ids.contains(&chosen_v[row]) {
                    out.finish = Finish::Eos;
                } else if !params.stop_strings.is_empty() && {
                    let text = decode(&out.token_ids);
                    params.stop_strings.iter().any(|s| text.contains(s.as_str()))
                } {
                    out.finish = Finish::Stop;
                } else {
                    keep.push(row);
                }
            }
            if keep.is_empty() || outputs[active[keep[0]]].token_ids.len() >= params.max_new_tokens {
                break;
            }
            if keep.len() < active.len() {
                let rows = Tensor::from_slice(&keep.iter().map(|&r| r as i64).collect::<Vec<_>>()).to_device(device);
                cache.select_rows(&rows);
                key_mask = key_mask.index_select(0, &rows);
                active = keep.iter().map(|&r| active[r]).collect();
                next_pos = keep.iter().map(|&r| next_pos[r]).collect();
            }
            let step_ids: Vec<i64> = active.iter().map(|&i| *outputs[i].token_ids.last().expect("one token")).collect();
            let b = active.len() as i64;
            let step_input = Tensor::from_slice(&step_ids).view([b, 1]).to_device(device);
            let step_pos = Tensor::from_slice(&next_pos).view([b, 1]).to_device(device);
            key_mask = Tensor::cat(&[&key_mask, &Tensor::ones([b, 1], (Kind::Bool, device))], 1);
            let hidden = model.hidden(&step_input, &step_pos, &key_mask, &mut cache);
            last = model.logits(&hidden.select(1, -1));
            for p in next_pos.iter_mut() {
                *p += 1;
            }
        }
    });
    outputs
}
