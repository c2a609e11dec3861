//! `kantup upgrade`'s image check before any change: binds `--skip-image-check` and the TLS
//! flags to [`kantup::ops::image_check`] and prints what each registry answered.

use kantup::ops::image_check::{self, ImageCheckOptions};
use kantup::ops::upgrade::PreparedUpgrade;
use kantup_registry::HttpOptions;

use crate::output::{Ctx, OutputFormat};

/// Checks the images the upgrade would run (unless `skip`, or the plan changes nothing or
/// already fails its pre-flight); prints each answer in table output; returns one line per
/// image that is not there as it should be (missing, access denied, not answerable).
pub async fn check(
    ctx: &Ctx,
    skip: bool,
    http: HttpOptions,
    prepared: &PreparedUpgrade,
) -> anyhow::Result<Vec<String>> {
    let plan = prepared.plan();
    if skip || plan.up_to_date || !plan.preflight.passed() {
        return Ok(Vec::new());
    }
    let options = ImageCheckOptions {
        http,
        ..ImageCheckOptions::default()
    };
    let checks = image_check::check_upgrade(prepared, &options).await?;
    if ctx.output == OutputFormat::Table && !ctx.quiet {
        eprintln!("images ({} in the rendered chart):", checks.len());
        for check in &checks {
            eprintln!("  {check}");
        }
    }
    Ok(checks
        .iter()
        .filter(|c| !c.passed())
        .map(ToString::to_string)
        .collect())
}
