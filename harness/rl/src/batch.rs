//! Batching: which prompts a step takes (a seeded per-epoch permutation) and how prompt +
//! response sequences are laid out for one forward pass.
use harness_policy::CausalLm;
use tch::{Device, Tensor};

/// A seeded permutation of `0..n` (SplitMix64 + Fisher-Yates), the same on every platform.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// A batch of prompt + response sequences laid out for one forward pass: prompts left-padded
/// to `prompt_len`, responses right-padded to `response_len`.
pub struct Packed {
    pub ids: Tensor,
    pub positions: Tensor,
    pub key_mask: Tensor,
    /// Response tokens `[B, response_len]` and their 0/1 mask.
    pub response: Tensor,
    pub response_mask: Tensor,
    pub prompt_len: i64,
    pub response_len: i64,
}

impl Packed {
    /// Rows `start..start + len` (views, no copy).
    pub fn rows(&self, (start, len): (i64, i64)) -> Packed {
        let take = |t: &Tensor| t.narrow(0, start, len);
        Packed {
            ids: take(&self.ids),
            positions: take(&self.positions),
            key_mask: take(&self.key_mask),
            response: take(&self.response),
            response_mask: take(&self.response_mask),
            prompt_len: self.prompt_len,
            response_len: self.response_len,
        }
    }

    /// Of hidden states over the packed sequences `[B, T, H]`, those at the positions that
    /// predict each response token: `[B, response_len, H]`.
    pub fn response_part(&self, hidden: &Tensor) -> Tensor {
        hidden.narrow(1, self.prompt_len - 1, self.response_len)
    }
}

pub fn pack(prompts: &[Vec<i64>], responses: &[Vec<i64>], pad_id: i64, device: Device) -> Packed {
    let pl = prompts.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let rl = responses.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let (mut ids, mut pos, mut mask, mut resp, mut rmask) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (p, r) in prompts.iter().zip(responses) {
        let mut n = 0i64;
        for j in 0..pl + rl {
            let token = if j < pl - p.len() {
                None
            } else if j < pl {
                Some(p[j - (pl - p.len())])
            } else {
                r.get(j - pl).copied()
            };
            ids.push(token.unwrap_or(pad_id));
            mask.push(token.is_some());
            pos.push(if token.is_some() { n } else { 0 });
            if token.is_some() {
                n += 1;
            }
        }
        for j in 0..rl {
            resp.push(r.get(j).copied().unwrap_or(pad_id));
            rmask.push(if j < r.len() { 1.0f32 } else { 0.0 });
        }
    }
    let b = prompts.len() as i64;
    let shape = [b, (pl + rl) as i64];
    Packed {
        ids: Tensor::from_slice(&ids).view(shape).to_device(device),
        positions: Tensor::from_slice(&pos).view(shape).to_device(device),
        key_mask: Tensor::from_slice(&mask).view(shape).to_device(device),
        response: Tensor::from_slice(&resp).view([b, rl as i64]).to_device(device),
        response_mask: Tensor::from_slice(&rmask).view([b, rl as i64]).to_device(device),
        prompt_len: pl as i64,
        response_len: rl as i64,
    }
}

/// Hidden states at the positions that predict each response token: `[B, response_len, H]`.
pub fn response_hidden(model: &CausalLm, packed: &Packed) -> Tensor {
    packed.response_part(&model.hidden_full(&packed.ids, &packed.positions, Some(&packed.key_mask)))
}
