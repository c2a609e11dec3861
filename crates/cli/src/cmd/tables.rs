//! Tables more than one command prints: CRD plans, pre-flight checks, value changes.

use kantup::ops::upgrade::ValueChange;
use kantup_k8s_apply::crd::{CrdChanges, CrdPlan, PlanAction, SchemaChangeKind, VersionChange};
use kantup_k8s_apply::preflight::{CheckOutcome, PreflightCheck};

/// A column wide enough for every name (and the header).
pub fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0).max(3)
}

pub fn action_word(action: &PlanAction) -> &'static str {
    match action {
        PlanAction::New => "new",
        PlanAction::Changed => "changed",
        PlanAction::Unchanged => "unchanged",
    }
}

/// The CRD plan as a table, each line starting with `indent`.
pub fn print_plans(plans: &[CrdPlan], indent: &str) {
    if plans.is_empty() {
        return;
    }
    let width = name_width(plans.iter().map(|p| p.name.as_str()));
    println!("{indent}{:<width$} {:<10} DETAILS", "CRD", "ACTION");
    for plan in plans {
        let c = &plan.changes;
        let mut details = crd_details(c);
        if !c.metadata_fields_changed.is_empty() {
            details.push(format!("metadata {}", c.metadata_fields_changed.join(",")));
        }
        if !plan.blocked_versions.is_empty() {
            details.push(format!(
                "BLOCKED: stored versions {} would be removed",
                plan.blocked_versions.join(",")
            ));
        }
        println!(
            "{indent}{:<width$} {:<10} {}",
            plan.name,
            action_word(&plan.action),
            details.join("; ")
        );
        for version in &c.versions_changed {
            if !version.fields_changed.is_empty() {
                println!(
                    "{indent}    {}: {}",
                    version.name,
                    version.fields_changed.join(", ")
                );
            }
            schema_changes(version, indent);
        }
        if !plan.conflicts.is_empty() {
            println!(
                "{indent}    takes over fields from {}",
                kantup_k8s_apply::describe_conflicts(&plan.conflicts)
            );
        }
        if let Some(reason) = &plan.rejected {
            println!("{indent}    REFUSED by the server: {reason}");
        }
    }
}

/// Pre-flight checks as a table (the name column sized to the longest name), each line
/// starting with `indent`.
pub fn print_checks(checks: &[PreflightCheck], indent: &str) {
    let width = name_width(checks.iter().map(|c| c.name.as_str())).max("CHECK".len());
    println!("{indent}{:<width$}  {:<8} DETAIL", "CHECK", "RESULT");
    for check in checks {
        let outcome = match check.outcome {
            CheckOutcome::Pass => "ok",
            CheckOutcome::Warn => "warn",
            CheckOutcome::Fail => "FAIL",
            CheckOutcome::Skipped => "skipped",
        };
        println!(
            "{indent}{:<width$}  {outcome:<8} {}",
            check.name, check.detail
        );
        if let Some(fix) = &check.fix {
            println!("{indent}{:<width$}  {:<8} fix: {fix}", "", "");
        }
    }
}

/// What changes in a CRD's versions and spec, one phrase each: `+versions v2`,
/// `-versions v1alpha1`, `spec scope,names`.
pub fn crd_details(changes: &CrdChanges) -> Vec<String> {
    let mut details = Vec::new();
    if !changes.versions_added.is_empty() {
        details.push(format!("+versions {}", changes.versions_added.join(",")));
    }
    if !changes.versions_removed.is_empty() {
        details.push(format!("-versions {}", changes.versions_removed.join(",")));
    }
    if !changes.spec_fields_changed.is_empty() {
        details.push(format!("spec {}", changes.spec_fields_changed.join(",")));
    }
    details
}

/// The schema fields a CRD version adds (`+`), removes (`-`) or changes (`~`), one a line.
pub fn schema_changes(version: &VersionChange, indent: &str) {
    for change in &version.schema {
        println!(
            "{indent}    {}: {} {}",
            version.name,
            schema_sign(&change.kind),
            change.path
        );
    }
}

fn schema_sign(kind: &SchemaChangeKind) -> char {
    match kind {
        SchemaChangeKind::Added => '+',
        SchemaChangeKind::Removed => '-',
        SchemaChangeKind::Changed => '~',
    }
}

/// Value changes, one a line: `  changed  a.b: 1 -> 2` (`-` for a side that has none).
pub fn value_changes(changes: &[ValueChange]) {
    let show =
        |v: &Option<serde_json::Value>| v.as_ref().map_or("-".to_string(), |v| v.to_string());
    for change in changes {
        println!(
            "  {:<8} {}: {} -> {}",
            change.change,
            change.path,
            show(&change.old),
            show(&change.new)
        );
    }
}
