//! Progress reporting without printing: long work (searching, executing, training) reports
//! through this trait; the CLI implements it with indicatif, tests and quiet runs with
//! [`Silent`].

/// Something that shows progress to a user.
pub trait Progress: Sync {
    /// A bar for `total` units of `what`.
    fn bar(&self, what: &str, total: u64) -> Box<dyn Bar>;
    /// A line for the user (a warning or notice) that does not break a running bar.
    fn note(&self, text: &str);
}

/// One running bar.
pub trait Bar: Send + Sync {
    fn inc(&self, n: u64);
    fn set_position(&self, n: u64);
    fn set_message(&self, text: String);
    /// Done: the bar may stay (training) or go; either way no more updates come.
    fn finish(&self);
}

/// Shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn bar(&self, _what: &str, _total: u64) -> Box<dyn Bar> {
        Box::new(Silent)
    }
    fn note(&self, _text: &str) {}
}

impl Bar for Silent {
    fn inc(&self, _n: u64) {}
    fn set_position(&self, _n: u64) {}
    fn set_message(&self, _text: String) {}
    fn finish(&self) {}
}
