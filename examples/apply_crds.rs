//! Loads the CRDs of a `crds/` directory and prints what applying them would change in the
//! cluster of the current kubeconfig (kubectl's resolution: $KUBECONFIG, ~/.kube/config,
//! in-cluster). With `--offline`, only prints the parsed CRDs.
//!
//! ```sh
//! cargo run -p kantup-examples --example apply_crds -- crates/k8s-apply/tests/fixtures/crds --offline
//! cargo run -p kantup-examples --example apply_crds -- path/to/chart/crds
//! ```

use kantup_k8s_apply::ClusterAccess;
use kantup_k8s_apply::crd::{ApplyOptions, CrdApplier, load_crd_dir};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut offline = false;
    for arg in args.by_ref() {
        match arg.as_str() {
            "--offline" => offline = true,
            other if dir.is_none() => dir = Some(other.to_string()),
            other => anyhow::bail!("unexpected argument {other:?}"),
        }
    }
    let dir = dir.ok_or_else(|| anyhow::anyhow!("usage: apply_crds DIR [--offline]"))?;
    let crds = load_crd_dir(dir.as_ref())?;

    if offline {
        for crd in &crds {
            let versions: Vec<String> = crd
                .crd
                .spec
                .versions
                .iter()
                .map(|v| format!("{}{}", v.name, if v.storage { "*" } else { "" }))
                .collect();
            println!(
                "{:<40} {:<10} versions {:<20} from {}",
                crd.name,
                crd.crd.spec.scope,
                versions.join(","),
                crd.origin()
            );
        }
        return Ok(());
    }

    let client = ClusterAccess::default().client().await?;
    let plans = CrdApplier::new(client, ApplyOptions::default())
        .plan(&crds)
        .await?;
    for plan in plans {
        println!("{:<40} {:?}", plan.name, plan.action);
        let changes = &plan.changes;
        for v in &changes.versions_added {
            println!("    + version {v}");
        }
        for v in &changes.versions_removed {
            let blocked = if plan.blocked_versions.contains(v) {
                " (still stored: apply would be refused)"
            } else {
                ""
            };
            println!("    - version {v}{blocked}");
        }
        for field in &changes.spec_fields_changed {
            println!("    ~ spec.{field}");
        }
        for version in &changes.versions_changed {
            for field in &version.fields_changed {
                println!("    ~ {}.{field}", version.name);
            }
            for change in &version.schema {
                println!(
                    "    ~ {} schema {:?} {}",
                    version.name, change.kind, change.path
                );
            }
        }
    }
    Ok(())
}
