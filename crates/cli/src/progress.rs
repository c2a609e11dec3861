//! Progress bars for long work, hidden when output is not for a person.

use indicatif::{ProgressBar, ProgressStyle};

use crate::output::Ctx;

/// A bar counting bytes, with rate and ETA; hidden under `-q` or `--output json`.
pub fn bytes_bar(ctx: &Ctx, total: u64, message: impl Into<String>) -> ProgressBar {
    if !ctx.show_progress() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(message.into());
    bar
}

/// Draws a library workflow's [`kantup::ops::progress::Progress`] as byte bars, one task at a
/// time; hidden when [`Ctx::show_progress`] says so.
pub struct BarProgress {
    ctx: Ctx,
    bar: std::sync::Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    /// Bars for `ctx`.
    pub fn new(ctx: &Ctx) -> Self {
        Self {
            ctx: ctx.clone(),
            bar: std::sync::Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only means a bar was being drawn when a thread panicked.
        let mut guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }
}

impl kantup::ops::progress::Progress for BarProgress {
    fn start(&self, label: &str, total: u64) {
        let bar = bytes_bar(&self.ctx, total, label);
        self.with_bar(|slot| *slot = Some(bar));
    }

    fn advance(&self, n: u64) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(n);
            }
        });
    }

    fn finish(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }
}
