//! AdamW with decoupled weight decay and global-norm gradient clipping. The moments live here,
//! by variable name, rather than in libtorch's optimiser so that a checkpoint can hold them.
use std::collections::BTreeMap;

use tch::{Kind, Tensor};

/// AdamW with its moments kept by variable name.
pub struct AdamW {
    pub lr: f64,
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub step: i64,
    moments: BTreeMap<String, (Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(lr: f64, weight_decay: f64) -> AdamW {
        AdamW { lr, weight_decay, betas: (0.9, 0.999), eps: 1e-8, step: 0, moments: BTreeMap::new() }
    }

    /// Clips the global gradient norm of `params` to `max_norm` and applies one update; returns
    /// the norm before clipping.
    pub fn step(&mut self, params: &[(String, Tensor)], max_norm: f64) -> f64 {
        self.step += 1;
        tch::no_grad(|| {
            let grads: Vec<(&String, &Tensor, Tensor)> =
                params.iter().filter_map(|(n, p)| p.grad().defined().then(|| (n, p, p.grad()))).collect();
            let total: f64 = grads.iter().map(|(_, _, g)| g.square().sum(Kind::Float).double_value(&[])).sum::<f64>().sqrt();
            let scale = if max_norm > 0.0 && total > max_norm { max_norm / (total + 1e-6) } else { 1.0 };
            let (b1, b2) = self.betas;
            let c1 = 1.0 - b1.powi(self.step as i32);
            let c2 = 1.0 - b2.powi(self.step as i32);
            for (name, p, g) in grads {
                let g = &g * scale;
                let (m, v) = self.moments.entry(name.clone()).or_insert_with(|| (p.zeros_like(), p.zeros_like()));
                *m = &*m * b1 + &g * (1.0 - b1);
                *v = &*v * b2 + g.square() * (1.0 - b2);
                let update = (&*m / c1) / ((&*v / c2).sqrt() + self.eps) + p * self.weight_decay;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(update * self.lr));
            }
            total
        })
    }

    /// Moments as named tensors (`m.<name>`, `v.<name>`) for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, (m, v)) in &self.moments {
            out.push((format!("m.{name}"), m.shallow_clone()));
            out.push((format!("v.{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores moments saved by [`AdamW::state`].
    pub fn restore(&mut self, named: Vec<(String, Tensor)>, step: i64) {
        let mut m = BTreeMap::new();
        let mut v = BTreeMap::new();
        for (name, t) in named {
            if let Some(n) = name.strip_prefix("m.") {
                m.insert(n.to_string(), t);
            } else if let Some(n) = name.strip_prefix("v.") {
                v.insert(n.to_string(), t);
            }
        }
        self.moments = m.into_iter().filter_map(|(n, mt)| v.remove(&n).map(|vt| (n, (mt, vt)))).collect();
        self.step = step;
    }
}

