//! Progress for long work, hidden when output is not for a person: byte bars, and live lines
//! (one per object or cluster) redrawn in place on a terminal.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

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

/// One line per key (an object, a cluster) that changes as work goes on, on stderr (stdout stays
/// for the result): on a terminal each line is redrawn in place, with a spinner until it is
/// finished; otherwise one plain line per change, for logs, CI and tests. Nothing when
/// [`Ctx::show_progress`] says no. Lines may be set from several threads at once.
pub struct LiveLines {
    show: bool,
    terminal: bool,
    bars: MultiProgress,
    lines: Mutex<HashMap<String, ProgressBar>>,
}

impl LiveLines {
    /// Live lines for `ctx`, drawn in place when stderr is a terminal.
    pub fn new(ctx: &Ctx) -> Self {
        Self {
            show: ctx.show_progress(),
            terminal: std::io::stderr().is_terminal(),
            bars: MultiProgress::new(),
            lines: Mutex::new(HashMap::new()),
        }
    }

    /// Sets `key`'s line to `text`; `finished`: it will not change again (its spinner stops).
    /// A key seen for the first time gets a line below the others.
    pub fn set(&self, key: &str, text: String, finished: bool) {
        if !self.show {
            return;
        }
        if !self.terminal {
            let _ = writeln!(std::io::stderr(), "{text}");
            return;
        }
        // A poisoned lock only means a line was being drawn when a thread panicked.
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let bar = lines.entry(key.to_string()).or_insert_with(|| {
            let bar = self.bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        if finished {
            bar.finish_with_message(text);
        } else {
            bar.set_message(text);
        }
    }
}
