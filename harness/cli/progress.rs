//! Progress bars on standard error (indicatif) for harness-bench's `Progress`.
use harness_bench::{Bar, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Bars on standard error, or none at all when quiet.
pub struct Bars {
    multi: MultiProgress,
    quiet: bool,
}

impl Bars {
    pub fn new(quiet: bool) -> Bars {
        let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        Bars { multi: MultiProgress::with_draw_target(target), quiet }
    }
}

impl Progress for Bars {
    fn bar(&self, what: &str, total: u64) -> Box<dyn Bar> {
        let bar = if self.quiet { ProgressBar::hidden() } else { self.multi.add(ProgressBar::new(total)) };
        bar.set_style(ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} [{elapsed_precise}, eta {eta}] {msg}").expect("valid template"));
        bar.set_prefix(what.to_string());
        Box::new(Shown(bar))
    }

    fn note(&self, text: &str) {
        // Warnings are shown even when quiet, and never break a running bar.
        self.multi.suspend(|| eprintln!("{text}"));
    }
}

struct Shown(ProgressBar);

impl Bar for Shown {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn set_position(&self, n: u64) {
        self.0.set_position(n);
    }
    fn set_message(&self, text: String) {
        self.0.set_message(text);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
