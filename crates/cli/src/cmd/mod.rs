//! One module per command group; each turns parsed arguments into library calls.

use std::io::IsTerminal;

use anyhow::bail;

pub mod bundle;
pub mod cluster;
pub mod completions;
pub mod defaults;
pub mod image_check;
pub mod image_key_args;
pub mod load;
pub mod net_args;
pub mod repo;
pub mod rollback;
pub mod status;
pub mod sync;
pub mod tables;
pub mod upgrade;
pub mod upgrade_fleet;
pub mod upgrade_wait;
pub mod values;
pub mod values_args;

/// A person's go-ahead for a change (`verb`: "upgrade", "roll back"): refused when stdin is
/// not a terminal (`--yes` is then required); else `show` prints what would be done and
/// `question` is asked on stderr. Anything but `y`/`yes` cancels (`noun` names what).
pub fn confirm(
    verb: &str,
    noun: &str,
    show: impl FnOnce() -> anyhow::Result<()>,
    question: &str,
) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to {verb} without --yes when stdin is not a terminal (see --plan first)");
    }
    show()?;
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("{noun} cancelled; nothing was changed");
    }
    Ok(())
}
