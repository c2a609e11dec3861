//! Plans an install or upgrade through the `kantup` library, the way a downstream tool embeds
//! the workflow: verify the source, run the pre-flight, ask the API server what the CRD apply
//! would do (server-side dry-run), compute the values helm would get. Changes nothing; with
//! `--execute` it carries the plan out (backup first, CRDs, helm, revision check).
//!
//! ```sh
//! cargo run -p kantup-examples --example upgrade_plan -- kant.bundle.tar kant kant-system \
//!     --image-registry 10.16.10.111:5000 --helm .tools/helm-3/helm
//! ```

use kantup::ops::progress::Silent;
use kantup::ops::upgrade::{self, UpgradeOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut registry = None;
    let mut helm = None;
    let mut execute = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--image-registry" => registry = args.next(),
            "--helm" => helm = args.next(),
            "--execute" => execute = true,
            _ => positional.push(arg),
        }
    }
    let [source, release, namespace] = positional.as_slice() else {
        anyhow::bail!(
            "usage: upgrade_plan SOURCE RELEASE NAMESPACE [--image-registry REG] [--helm PATH] [--execute]"
        );
    };
    let mut options = UpgradeOptions::new(source, release, namespace);
    options.image_registry = registry;
    if let Some(helm) = helm {
        options.helm = helm.into();
    }
    let prepared = upgrade::plan(&options, &Silent).await?;
    let plan = prepared.plan();
    println!(
        "{} {}: chart {} {} (deployed: {})",
        if plan.install { "install" } else { "upgrade" },
        plan.release,
        plan.chart,
        plan.chart_version,
        plan.deployed_chart_version.as_deref().unwrap_or("-")
    );
    for check in &plan.preflight.checks {
        println!("  check {:<60} {:?}", check.name, check.outcome);
    }
    for crd in &plan.crds {
        let managers = crd.conflicting_managers();
        println!(
            "  crd   {:<60} {:?}{}",
            crd.name,
            crd.action,
            if managers.is_empty() {
                String::new()
            } else {
                format!(" (takes over fields from {})", managers.join(", "))
            }
        );
    }
    for change in &plan.values_changes {
        println!("  value {:<60} {}", change.path, change.change);
    }
    println!("  helm: {}", plan.helm_command);
    let blockers = prepared.blockers();
    for blocker in &blockers {
        println!("  would refuse: {blocker}");
    }
    if plan.up_to_date {
        println!("up to date: nothing to do");
    } else if execute && blockers.is_empty() {
        let summary = upgrade::execute(prepared).await?;
        println!(
            "revision {} {} (backup {})",
            summary.revision,
            summary.status,
            summary.files.backup_file.display()
        );
    }
    Ok(())
}
