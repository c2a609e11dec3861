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

/// A bar counting items (images, files, CRDs).
pub fn count_bar(ctx: &Ctx, total: u64, message: impl Into<String>) -> ProgressBar {
    if !ctx.show_progress() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:30!} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.into());
    bar
}
