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
            if grads.is_empty() {
                return 0.0;
            }
            // The global norm and the clipping factor stay on the device: one read of the norm
            // per step, not one per parameter tensor (hundreds of host syncs on a GPU).
            // Each tensor's sum in its own precision, at least float32 (a float64 sum of a
            // float32 gradient would first copy it to float64); the sums added in float64.
            let squares: Vec<Tensor> = grads
                .iter()
                .map(|(_, _, g)| g.square().sum(if g.kind() == Kind::Double { Kind::Double } else { Kind::Float }).to_kind(Kind::Double))
                .collect();
            let total = Tensor::stack(&squares, 0).sum(Kind::Double).sqrt();
            let scale = if max_norm > 0.0 {
                let clipped = (total.ones_like() * max_norm) / (&total + 1e-6);
                clipped.where_self(&total.gt(max_norm), &total.ones_like())
            } else {
                total.ones_like()
            };
            let (b1, b2) = self.betas;
            let c1 = 1.0 - b1.powi(self.step as i32);
            let c2 = 1.0 - b2.powi(self.step as i32);
            for (name, p, g) in grads {
                let g = &g * scale.to_kind(g.kind());
                let (m, v) = self.moments.entry(name.clone()).or_insert_with(|| (p.zeros_like(), p.zeros_like()));
                *m = &*m * b1 + &g * (1.0 - b1);
                *v = &*v * b2 + g.square() * (1.0 - b2);
                let update = (&*m / c1) / ((&*v / c2).sqrt() + self.eps) + p * self.weight_decay;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(update * self.lr));
            }
            total.double_value(&[])
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


#[cfg(test)]
mod tests {
    use super::*;

    /// Two steps against a hand computation of torch.optim.AdamW's update (p <- p(1 - lr wd) -
    /// lr m_hat / (sqrt(v_hat) + eps), bias-corrected moments), in float64 arithmetic.
    #[test]
    fn two_steps_equal_the_hand_computed_adamw() {
        let p = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let params = vec![("p".to_string(), p.shallow_clone())];
        let mut opt = AdamW::new(0.1, 0.01);
        let mut step = |coeffs: [f64; 2]| {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
            (&p * Tensor::from_slice(&coeffs)).sum(Kind::Double).backward();
            opt.step(&params, 0.0)
        };
        let norm = step([0.5, -1.0]);
        assert!((norm - (0.25f64 + 1.0).sqrt()).abs() < 1e-12, "{norm}");
        let got: Vec<f64> = Vec::try_from(&p.detach()).unwrap();
        assert!((got[0] - 0.899000002).abs() < 1e-12 && (got[1] + 1.898000001).abs() < 1e-12, "{got:?}");
        step([-0.2, 0.4]);
        let got: Vec<f64> = Vec::try_from(&p.detach()).unwrap();
        assert!((got[0] - 0.8635404181145109).abs() < 1e-12 && (got[1] + 1.861541416661626).abs() < 1e-12, "{got:?}");
        // The moments a checkpoint keeps: m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2.
        let state: BTreeMap<String, Tensor> = opt.state().into_iter().collect();
        let m: Vec<f64> = Vec::try_from(&state["m.p"]).unwrap();
        let v: Vec<f64> = Vec::try_from(&state["v.p"]).unwrap();
        assert!((m[0] - 0.025).abs() < 1e-12 && (m[1] + 0.05).abs() < 1e-12, "{m:?}");
        assert!((v[0] - 0.00028975).abs() < 1e-12 && (v[1] - 0.001159).abs() < 1e-12, "{v:?}");
    }

    #[test]
    fn clipping_scales_the_gradient_to_the_norm() {
        let p = Tensor::from_slice(&[0.0f64, 0.0]).set_requires_grad(true);
        let params = vec![("p".to_string(), p.shallow_clone())];
        let mut opt = AdamW::new(0.1, 0.0);
        (&p * Tensor::from_slice(&[3.0f64, 4.0])).sum(Kind::Double).backward();
        assert!((opt.step(&params, 1.0) - 5.0).abs() < 1e-12);
        // Adam's first step moves each coordinate by lr * sign(g) whatever the scale; the clipped
        // gradient shows in the moments: m = 0.1 * g * (1 / (5 + 1e-6)).
        let m: Vec<f64> = Vec::try_from(&opt.state()[0].1).unwrap();
        assert!((m[0] - 0.1 * 3.0 / (5.0 + 1e-6)).abs() < 1e-12 && (m[1] - 0.1 * 4.0 / (5.0 + 1e-6)).abs() < 1e-12, "{m:?}");
    }
}
