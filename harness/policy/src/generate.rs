//! Batched sampling with left padding and a key/value cache.
use tch::{Device, Kind, Tensor};

use crate::model::{CausalLm, KvCache};

/// How tokens are chosen.
#[derive(Debug, Clone, PartialEq)]
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
    /// Decoding steps between reads of the generated tokens on the host (EOS, stop strings and
    /// dropping finished rows are checked there). Between reads, tokens are chosen and fed back
    /// on the device, so a GPU is not stalled by a round-trip per token; a row that finished
    /// meanwhile runs on and its extra tokens are discarded. 0 = by device: every step on the
    /// CPU (where a read costs nothing), every 16 steps on a GPU.
    pub sync_every: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams { max_new_tokens: 256, temperature: 0.0, top_p: 1.0, top_k: 0, stop_strings: Vec::new(), seed: 0, sync_every: 0 }
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
    generate_on(model, prompts, eos_ids, pad_id, params, decode, DecodePath::Fast)
}

/// How [`generate_on`] decodes. All give the same ids; log-probs agree to float rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodePath {
    /// Preallocated cache written in place; on the CPU in float32, MKL-packed fused weights.
    Fast,
    /// Preallocated cache written in place, the model's own projections (no packing): what
    /// a GPU runs under `Fast` too, and the trainer's rollouts everywhere.
    InPlace,
    /// A cache that concatenates per token and the model's own (unfused) projections: the
    /// reference the fast path is tested against.
    Reference,
}

/// Held by a sampling call for as long as it draws from libtorch's global generator.
static SAMPLING_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`generate`] on the chosen decoding path.
pub fn generate_on(
    model: &CausalLm,
    prompts: &[Vec<i64>],
    eos_ids: &[i64],
    pad_id: i64,
    params: &SamplingParams,
    decode: &dyn Fn(&[i64]) -> String,
    path: DecodePath,
) -> Vec<Generation> {
    // libtorch's sampler draws from one process-wide generator: a sampling call holds it from
    // its seed to its last draw, so that another call in the process (a test thread, a server
    // beside a trainer) cannot reseed or advance it halfway. Greedy decoding draws nothing and
    // neither seeds nor waits.
    let _rng = (params.temperature > 0.0).then(|| {
        let guard = SAMPLING_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tch::manual_seed(params.seed as i64);
        guard
    });
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
    // The key mask of every position the generation can reach, narrowed to the current length
    // at each step (generated positions are always real). Only built while some row in the
    // batch is padded (its prompt shorter than the cache's prompt width, which stays `longest`
    // after other rows are dropped): without padding, attention runs unmasked (fused kernels
    // on a GPU).
    let new_tokens = params.max_new_tokens as i64;
    let padded = |rows: &[Option<usize>]| rows.iter().flatten().any(|&i| prompts[i].len() < longest);
    // The batch's rows: the output each one feeds, or None once it finished. Finished rows are
    // dropped from the batch (and the cache) at the next read, except on packed weights, where
    // they ride along until half the batch is done, so the packed row count still fits.
    let mut rows: Vec<Option<usize>> = (0..n).map(Some).collect();
    let mut key_mask = padded(&rows).then(|| {
        Tensor::cat(
            &[Tensor::from_slice(&mask).view(shape).to_device(device), Tensor::ones([n as i64, new_tokens], (Kind::Bool, device))],
            1,
        )
    });
    let pos = Tensor::from_slice(&positions).view(shape).to_device(device);
    // Position of each row's next token (its prompt length, then one more a step), on the device.
    let prompt_lengths: Vec<i64> = prompts.iter().map(|p| p.len() as i64).collect();
    let mut step_pos = Tensor::from_slice(&prompt_lengths).view([n as i64, 1]).to_device(device);
    let in_place = path != DecodePath::Reference;
    let mut cache = if in_place { KvCache::with_capacity(longest as i64 + new_tokens) } else { KvCache::default() };
    // On the CPU (float32), decoding steps run on fused copies of the weights packed by MKL for
    // the batch's row count: a snapshot taken here, so a trainer's updates between calls are
    // always seen. Without MKL packing in this libtorch the plain path runs.
    // One row is a matrix-vector product, bound by memory: packing would only add its cost.
    let can_pack = path == DecodePath::Fast && device == Device::Cpu && model.kind() == Kind::Float && n >= 2;
    let mut packed = if can_pack { model.pack_for_decoding(n as i64).ok() } else { None };
    let sync_every = match params.sync_every {
        0 if device == Device::Cpu => 1,
        0 => 16,
        k => k,
    };

    tch::no_grad(|| {
        let prompt_mask = key_mask.as_ref().map(|m| m.narrow(1, 0, longest as i64));
        let hidden = model.hidden_with(&input, &pos, prompt_mask.as_ref(), &mut cache, packed.as_ref());
        let mut last = model.logits_with(&hidden.select(1, -1), packed.as_ref());
        // Tokens and log-probs chosen since the last read, one `[rows]` tensor a step.
        let mut window: Vec<(Tensor, Tensor)> = Vec::with_capacity(sync_every);
        for step in 1..=params.max_new_tokens {
            let scaled = if params.temperature > 0.0 { &last / params.temperature } else { last.shallow_clone() };
            let logprobs_all = scaled.log_softmax(-1, Kind::Float);
            let chosen = if params.temperature > 0.0 {
                truncate(&scaled, params.top_k, params.top_p).softmax(-1, Kind::Float).multinomial(1, false).squeeze_dim(1)
            } else {
                scaled.argmax(-1, false)
            };
            let chosen_lp = logprobs_all.gather(1, &chosen.unsqueeze(1), false).squeeze_dim(1);
            window.push((chosen.shallow_clone(), chosen_lp));
            let last_step = step >= params.max_new_tokens;
            if window.len() >= sync_every || last_step {
                // One read for the whole window: `[rows, steps]` ids and log-probs.
                let (ids_w, lps_w): (Vec<Tensor>, Vec<Tensor>) = window.drain(..).unzip();
                let steps = ids_w.len();
                let ids_w: Vec<i64> = Vec::<i64>::try_from(&Tensor::stack(&ids_w, 1).to_device(Device::Cpu).view([-1])).expect("token ids");
                let lps_w: Vec<f32> = Vec::<f32>::try_from(&Tensor::stack(&lps_w, 1).to_device(Device::Cpu).view([-1])).expect("log-probs");
                for (row, slot) in rows.iter_mut().enumerate() {
                    let Some(out_index) = *slot else { continue };
                    let out = &mut outputs[out_index];
                    for j in row * steps..(row + 1) * steps {
                        out.token_ids.push(ids_w[j]);
                        out.logprobs.push(lps_w[j]);
                        if eos_ids.contains(&ids_w[j]) {
                            out.finish = Finish::Eos;
                        } else if !params.stop_strings.is_empty() && {
                            let text = decode(&out.token_ids);
                            params.stop_strings.iter().any(|s| text.contains(s.as_str()))
                        } {
                            out.finish = Finish::Stop;
                        } else {
                            continue;
                        }
                        *slot = None;
                        break;
                    }
                }
                let running = rows.iter().flatten().count();
                if running == 0 || last_step {
                    break;
                }
                let compact = if packed.is_some() { 2 * running <= rows.len() } else { running < rows.len() };
                if compact {
                    let keep: Vec<i64> = (0..rows.len() as i64).filter(|&r| rows[r as usize].is_some()).collect();
                    let index = Tensor::from_slice(&keep).to_device(device);
                    cache.select_rows(&index);
                    rows = keep.iter().map(|&r| rows[r as usize]).collect();
                    key_mask = if padded(&rows) {
                        key_mask.map(|m| m.index_select(0, &index))
                    } else {
                        None
                    };
                    step_pos = step_pos.index_select(0, &index);
                    // Re-packing costs about as much as a few steps: worth it only with many to go.
                    let steps_left = params.max_new_tokens - step;
                    packed = if packed.is_some() && steps_left >= 16 && running >= 2 {
                        model.pack_for_decoding(running as i64).ok()
                    } else {
                        None
                    };
                    let chosen = chosen.index_select(0, &index);
                    advance(model, &chosen, &mut step_pos, key_mask.as_ref(), &mut cache, packed.as_ref(), &mut last);
                    continue;
                }
            }
            // Every row is fed its own chosen token, a finished one included: its outputs are
            // discarded, and rows do not see each other.
            advance(model, &chosen, &mut step_pos, key_mask.as_ref(), &mut cache, packed.as_ref(), &mut last);
        }
    });
    outputs
}

/// One decoding step: feeds `chosen` `[rows]` at `step_pos` `[rows, 1]` (then advanced by one)
/// and leaves the next logits in `last`.
fn advance(
    model: &CausalLm,
    chosen: &Tensor,
    step_pos: &mut Tensor,
    key_mask: Option<&Tensor>,
    cache: &mut KvCache,
    packed: Option<&crate::model::PackedWeights>,
    last: &mut Tensor,
) {
    let b = chosen.size()[0];
    let step_mask = key_mask.map(|m| m.narrow(1, 0, cache.len() + 1));
    let hidden = model.hidden_with(&chosen.view([b, 1]), step_pos, step_mask.as_ref(), cache, packed);
    *last = model.logits_with(&hidden.select(1, -1), packed);
    *step_pos += 1;
}
