//! Flag defaults as clap shows them, taken from the library's own defaults (each workflow's
//! `Options::new`), so a default is written in one place only.

use std::sync::LazyLock;
use std::time::Duration;

use kantup::ops::crds::CrdsApplyOptions;
use kantup::ops::rollback::RollbackOptions;
use kantup::ops::upgrade::UpgradeOptions;

/// A duration as the flags take it (`5m`, `1m`).
fn shown(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// `kantup upgrade --timeout`.
pub static UPGRADE_TIMEOUT: LazyLock<String> =
    LazyLock::new(|| shown(UpgradeOptions::new("", "", "").timeout));
/// `kantup rollback --timeout`.
pub static ROLLBACK_TIMEOUT: LazyLock<String> =
    LazyLock::new(|| shown(RollbackOptions::new("", "").timeout));
/// `kantup crds apply --timeout`.
pub static CRDS_TIMEOUT: LazyLock<String> =
    LazyLock::new(|| shown(CrdsApplyOptions::new("").timeout));
