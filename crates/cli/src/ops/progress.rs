//! Progress of long work, reported by the workflows and drawn (or not) by their caller.

/// Receives progress of one task at a time: `start`, any number of `advance`, `finish`.
pub trait Progress: Send + Sync {
    /// A task of `total` units (bytes, items) starts.
    fn start(&self, label: &str, total: u64) {
        let _ = (label, total);
    }
    /// `n` more units are done.
    fn advance(&self, n: u64) {
        let _ = n;
    }
    /// The task ended (done or failed).
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
