//! Collapse alarms over a run's step log: the signs that PPO has stopped learning or is
//! learning the wrong thing, said while the run goes on rather than found in the curves later.
use crate::trainer::StepLog;

/// Thresholds of the alarms; each looks at the last `window` steps.
#[derive(Debug, Clone, Copy)]
pub struct AlarmSettings {
    pub window: usize,
    /// Mean per-token entropy below this: the policy has become (nearly) deterministic.
    pub min_entropy: f64,
    /// Mean response length at or above this fraction of the limit: answers run into the cut.
    pub length_fraction: f64,
    /// Format error rate this much above its best window so far.
    pub format_rise: f64,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        AlarmSettings { window: 5, min_entropy: 0.05, length_fraction: 0.95, format_rise: 0.3 }
    }
}

/// The alarms that hold at the end of `history` (empty before `window` steps).
pub fn alarms(history: &[StepLog], max_response_tokens: usize, s: &AlarmSettings) -> Vec<String> {
    let w = s.window.max(1);
    if history.len() < w {
        return Vec::new();
    }
    let last = &history[history.len() - w..];
    let mean = |f: fn(&StepLog) -> f64, steps: &[StepLog]| steps.iter().map(f).sum::<f64>() / steps.len() as f64;
    let mut out = Vec::new();
    if last.iter().all(|l| l.reward_std == 0.0) {
        out.push(format!("no reward spread: every answer in each of the last {w} batches got the same reward, so there is no advantage to learn from"));
    }
    let entropy = mean(|l| l.entropy, last);
    if entropy < s.min_entropy {
        out.push(format!("entropy collapse: mean entropy {entropy:.4} over the last {w} steps (below {})", s.min_entropy));
    }
    let length = mean(|l| l.response_tokens_mean, last);
    let limit = s.length_fraction * max_response_tokens as f64;
    if max_response_tokens > 0 && last.iter().all(|l| l.response_tokens_mean >= limit) {
        out.push(format!("answers running away: mean length {length:.1} of {max_response_tokens} tokens for {w} steps (cut off before they end)"));
    }
    let best = history.windows(w).map(|win| mean(|l| l.format_error_rate, win)).fold(f64::MAX, f64::min);
    let now = mean(|l| l.format_error_rate, last);
    if now - best >= s.format_rise {
        out.push(format!("format rate falling: {:.0} % malformed answers over the last {w} steps, against {:.0} % at best", 100.0 * now, 100.0 * best));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(reward_std: f64, entropy: f64, length: f64, format_error_rate: f64) -> StepLog {
        StepLog {
            step: 0,
            reward_mean: 0.0,
            reward_std,
            metric_mean: 0.0,
            kl_mean: 0.0,
            entropy,
            response_tokens_mean: length,
            think_tokens_mean: 0.0,
            answer_tokens_mean: 0.0,
            format_error_rate,
            policy_loss: 0.0,
            value_loss: 0.0,
            clipfrac: 0.0,
            grad_norm: 0.0,
            rollout_logprob_diff_mean: 0.0,
            tokens_per_second: 0.0,
            step_seconds: 0.0,
        }
    }

    #[test]
    fn each_alarm_at_its_boundary() {
        let s = AlarmSettings::default();
        let healthy = vec![step(0.5, 0.6, 30.0, 0.1); 5];
        assert!(alarms(&healthy, 64, &s).is_empty());
        assert!(alarms(&healthy[..4], 64, &s).is_empty(), "nothing before a full window");

        let mut flat = healthy.clone();
        flat.extend(vec![step(0.0, 0.6, 30.0, 0.1); 5]);
        assert!(alarms(&flat, 64, &s)[0].starts_with("no reward spread"));
        flat[9].reward_std = 0.01;
        assert!(alarms(&flat, 64, &s).is_empty(), "one batch with spread breaks the run of flat batches");

        assert!(alarms(&vec![step(0.5, 0.049, 30.0, 0.1); 5], 64, &s)[0].starts_with("entropy collapse"));
        assert!(alarms(&vec![step(0.5, 0.05, 30.0, 0.1); 5], 64, &s).is_empty());

        assert!(alarms(&vec![step(0.5, 0.6, 60.8, 0.1); 5], 64, &s)[0].starts_with("answers running away"));
        assert!(alarms(&vec![step(0.5, 0.6, 60.7, 0.1); 5], 64, &s).is_empty());

        let mut worse = healthy.clone();
        worse.extend(vec![step(0.5, 0.6, 30.0, 0.4); 5]);
        assert!(alarms(&worse, 64, &s)[0].starts_with("format rate falling"));
        let mut slightly = healthy;
        slightly.extend(vec![step(0.5, 0.6, 30.0, 0.39); 5]);
        assert!(alarms(&slightly, 64, &s).is_empty());
    }
}
