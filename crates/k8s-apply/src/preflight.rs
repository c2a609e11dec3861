//! Pre-flight checks before `helm upgrade`: the release is deployed, the chart version does not
//! silently go down, the namespace exists, and the caller may do what the upgrade needs.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::release::{ReleaseRecord, ReleaseStatus, ReleaseStore, StorageDriver};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct PreflightOptions {
    /// The release name.
    pub release: String,
    /// The release namespace.
    pub namespace: String,
    /// The chart version about to be installed, if known.
    pub chart_version: Option<String>,
    /// Accept a lower chart version than the deployed one.
    pub allow_downgrade: bool,
    /// Where Helm keeps the release records.
    pub driver: StorageDriver,
    /// A missing release is installed (`helm upgrade --install`), not a failure.
    pub install: bool,
    /// A missing namespace is created (`--create-namespace`), not a failure.
    pub create_namespace: bool,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    /// Fine.
    Pass,
    /// Allowed, but worth a look.
    Warn,
    /// The upgrade must not go ahead.
    Fail,
    /// Not run because an earlier check failed.
    Skipped,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightCheck {
    /// Short name (`namespace`, `release-status`, `can create secrets`...).
    pub name: String,
    /// Pass, warn, fail or skipped.
    pub outcome: CheckOutcome,
    /// What was found.
    pub detail: String,
    /// A command that fixes a failure, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// All checks for one release.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    /// The release name.
    pub release: String,
    /// The namespace.
    pub namespace: String,
    /// The latest revision, when the release exists.
    pub revision: Option<u32>,
    /// That revision's status.
    pub status: Option<String>,
    /// The deployed chart version.
    pub deployed_chart_version: Option<String>,
    /// Each check in the order run.
    pub checks: Vec<PreflightCheck>,
}

impl PreflightReport {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.outcome == CheckOutcome::Fail)
    }
}

/// One permission an upgrade needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// The verb (`get`, `list`, `create`, `update`, `patch`).
    pub verb: &'static str,
    /// The API group (`""` for core).
    pub group: &'static str,
    /// The resource (`secrets`).
    pub resource: &'static str,
    /// The namespace, `None` for cluster-wide resources.
    pub namespace: Option<String>,
}

/// The permissions a Helm upgrade with CRD apply needs: read and write the release records
/// (Helm's storage driver uses get, list, create and update), and get, create and patch
/// CustomResourceDefinitions cluster-wide (server-side apply is a patch, or a create for a new
/// CRD).
///
/// With `create_namespace`, creating namespaces cluster-wide too.
pub fn required_permissions(
    namespace: &str,
    driver: StorageDriver,
    create_namespace: bool,
) -> Vec<Permission> {
    let mut permissions: Vec<Permission> = ["get", "list", "create", "update"]
        .into_iter()
        .map(|verb| Permission {
            verb,
            group: "",
            resource: driver.resource(),
            namespace: Some(namespace.to_string()),
        })
        .collect();
    permissions.extend(
        ["get", "create", "patch"]
            .into_iter()
            .map(|verb| Permission {
                verb,
                group: "apiextensions.k8s.io",
                resource: "customresourcedefinitions",
                namespace: None,
            }),
    );
    if create_namespace {
        permissions.push(Permission {
            verb: "create",
            group: "",
            resource: "namespaces",
            namespace: None,
        });
    }
    permissions
}

/// Runs every check. API errors other than the ones a check is about (a missing namespace, a
/// missing release) are returned as errors, not as failed checks.
///
/// ```no_run
/// # async fn demo(client: kube::Client) -> kantup_k8s_apply::Result<()> {
/// use kantup_k8s_apply::preflight::{preflight, PreflightOptions};
/// use kantup_k8s_apply::release::StorageDriver;
/// let report = preflight(&client, &PreflightOptions {
///     release: "kant".into(), namespace: "kant-system".into(),
///     chart_version: Some("1.4.0".into()), allow_downgrade: false,
///     driver: StorageDriver::Secret, ..Default::default()
/// }).await?;
/// if !report.passed() { std::process::exit(1) }
/// # Ok(()) }
/// ```
pub async fn preflight(
    client: &kube::Client,
    options: &PreflightOptions,
) -> Result<PreflightReport> {
    let mut report = PreflightReport {
        release: options.release.clone(),
        namespace: options.namespace.clone(),
        revision: None,
        status: None,
        deployed_chart_version: None,
        checks: Vec::new(),
    };
    let ns = &options.namespace;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    // Users with rights in one namespace only often may not read Namespace objects: then the
    // namespace is taken to exist (the release lookup below fails clearly if it does not).
    let namespace_lookup = match namespaces.get_opt(ns).await {
        Ok(found) => Some(found.is_some()),
        Err(kube::Error::Api(status)) if status.code == 403 => None,
        Err(e) => return Err(Error::api(format!("get Namespace {ns}"), e)),
    };
    let namespace_exists = namespace_lookup.unwrap_or(true);
    report.checks.push(if namespace_lookup.is_none() {
        check(
            "namespace",
            CheckOutcome::Warn,
            format!("may not read Namespace {ns} (forbidden); assuming it exists"),
            None,
        )
    } else if namespace_exists {
        check(
            "namespace",
            CheckOutcome::Pass,
            format!("namespace {ns} exists"),
            None,
        )
    } else if options.create_namespace {
        check(
            "namespace",
            CheckOutcome::Pass,
            format!("namespace {ns} does not exist; it will be created"),
            None,
        )
    } else {
        check(
            "namespace",
            CheckOutcome::Fail,
            format!("namespace {ns} does not exist"),
            Some(if options.install {
                format!("pass --create-namespace, or: kubectl create namespace {ns}")
            } else {
                format!("kubectl create namespace {ns}")
            }),
        )
    });

    for permission in required_permissions(ns, options.driver, options.create_namespace) {
        report.checks.push(access_check(client, &permission).await?);
    }

    let history = if namespace_exists {
        ReleaseStore::new(client.clone(), ns.clone(), options.driver)
            .history(&options.release)
            .await?
    } else {
        Vec::new()
    };
    let Some(latest) = history.last() else {
        if options.install {
            report.checks.push(check(
                "release",
                CheckOutcome::Pass,
                format!(
                    "release {} not found in namespace {ns}: it will be installed",
                    options.release
                ),
                None,
            ));
            return Ok(report);
        }
        report.checks.push(check(
            "release",
            CheckOutcome::Fail,
            format!(
                "release {} not found in namespace {ns} ({} storage)",
                options.release,
                options.driver.kind()
            ),
            Some(format!(
                "helm install {} <chart> -n {ns} (this is a first install, not an upgrade)",
                options.release
            )),
        ));
        report.checks.push(check(
            "release-status",
            CheckOutcome::Skipped,
            "no release".into(),
            None,
        ));
        if options.chart_version.is_some() {
            report.checks.push(check(
                "chart-version",
                CheckOutcome::Skipped,
                "no release".into(),
                None,
            ));
        }
        return Ok(report);
    };
    report.revision = Some(latest.revision);
    report.status = Some(latest.release.status().to_string());
    let deployed_version = latest
        .release
        .chart_metadata()
        .map(|m| m.version.clone())
        .filter(|v| !v.is_empty());
    report.deployed_chart_version = deployed_version.clone();
    report.checks.push(check(
        "release",
        CheckOutcome::Pass,
        format!(
            "release {} revision {} found",
            options.release, latest.revision
        ),
        None,
    ));
    report.checks.push(status_check(options, &history, latest));

    if let Some(new_version) = &options.chart_version {
        report.checks.push(version_check(
            new_version,
            deployed_version.as_deref(),
            options.allow_downgrade,
        )?);
    }
    Ok(report)
}

fn check(name: &str, outcome: CheckOutcome, detail: String, fix: Option<String>) -> PreflightCheck {
    PreflightCheck {
        name: name.to_string(),
        outcome,
        detail,
        fix,
    }
}

async fn access_check(client: &kube::Client, permission: &Permission) -> Result<PreflightCheck> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(permission.verb.to_string()),
                group: Some(permission.group.to_string()),
                resource: Some(permission.resource.to_string()),
                namespace: permission.namespace.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let scope = match &permission.namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "cluster-wide".to_string(),
    };
    let what = if permission.group.is_empty() {
        permission.resource.to_string()
    } else {
        format!("{}.{}", permission.resource, permission.group)
    };
    let name = format!("can {} {what} {scope}", permission.verb);
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| Error::api(format!("create SelfSubjectAccessReview ({name})"), e))?;
    let status = answer.status.unwrap_or_default();
    Ok(if status.allowed {
        check(&name, CheckOutcome::Pass, "allowed".into(), None)
    } else {
        let mut detail = "denied".to_string();
        for extra in [status.reason, status.evaluation_error]
            .into_iter()
            .flatten()
        {
            if !extra.is_empty() {
                detail.push_str(&format!(": {extra}"));
            }
        }
        check(
            &name,
            CheckOutcome::Fail,
            detail,
            Some(format!(
                "grant {} on {what} {scope} to this user (Role/ClusterRole + binding)",
                permission.verb
            )),
        )
    })
}

fn status_check(
    options: &PreflightOptions,
    history: &[ReleaseRecord],
    latest: &ReleaseRecord,
) -> PreflightCheck {
    let (r, ns, rev) = (&options.release, &options.namespace, latest.revision);
    let status = latest.release.status();
    // The newest earlier revision that was live: what a rollback returns to.
    let last_good = history
        .iter()
        .rev()
        .skip(1)
        .find(|h| {
            matches!(
                h.release.status(),
                ReleaseStatus::Deployed | ReleaseStatus::Superseded
            )
        })
        .map(|h| h.revision);
    let rollback_or = |otherwise: String| match last_good {
        Some(good) => format!("helm rollback {r} {good} -n {ns}"),
        None => otherwise,
    };
    let detail = format!("revision {rev} is {status}");
    match status {
        ReleaseStatus::Deployed => check("release-status", CheckOutcome::Pass, detail, None),
        ReleaseStatus::PendingInstall => check(
            "release-status",
            CheckOutcome::Fail,
            format!("{detail}: an install did not finish (another helm may still be running)"),
            Some(format!(
                "helm uninstall {r} -n {ns} (after checking helm history {r} -n {ns})"
            )),
        ),
        ReleaseStatus::PendingUpgrade | ReleaseStatus::PendingRollback => check(
            "release-status",
            CheckOutcome::Fail,
            format!("{detail}: an operation did not finish (another helm may still be running)"),
            Some(rollback_or(format!("helm history {r} -n {ns}"))),
        ),
        ReleaseStatus::Failed => check(
            "release-status",
            CheckOutcome::Fail,
            format!("{detail}: the last install or upgrade failed"),
            Some(rollback_or(format!("helm history {r} -n {ns}"))),
        ),
        ReleaseStatus::Uninstalled | ReleaseStatus::Uninstalling => check(
            "release-status",
            CheckOutcome::Fail,
            format!("{detail}: the release is uninstalled"),
            Some(format!("helm install {r} <chart> -n {ns}")),
        ),
        ReleaseStatus::Superseded | ReleaseStatus::Unknown => check(
            "release-status",
            CheckOutcome::Fail,
            format!("{detail}: the latest revision should be deployed"),
            Some(format!("helm history {r} -n {ns}")),
        ),
    }
}

fn parse_version(text: &str) -> std::result::Result<semver::Version, semver::Error> {
    semver::Version::parse(text.strip_prefix('v').unwrap_or(text))
}

fn version_check(
    new: &str,
    deployed: Option<&str>,
    allow_downgrade: bool,
) -> Result<PreflightCheck> {
    let new_version = parse_version(new).map_err(|source| Error::BadVersion {
        version: new.to_string(),
        source,
    })?;
    let Some(deployed) = deployed else {
        return Ok(check(
            "chart-version",
            CheckOutcome::Warn,
            "the deployed revision records no chart version".into(),
            None,
        ));
    };
    let Ok(deployed_version) = parse_version(deployed) else {
        return Ok(check(
            "chart-version",
            CheckOutcome::Warn,
            format!("deployed chart version {deployed:?} is not semver; cannot compare with {new}"),
            None,
        ));
    };
    Ok(match new_version.cmp(&deployed_version) {
        std::cmp::Ordering::Greater => check(
            "chart-version",
            CheckOutcome::Pass,
            format!("upgrade {deployed} -> {new}"),
            None,
        ),
        std::cmp::Ordering::Equal => check(
            "chart-version",
            CheckOutcome::Pass,
            format!("same chart version {new} (re-apply)"),
            None,
        ),
        std::cmp::Ordering::Less if allow_downgrade => check(
            "chart-version",
            CheckOutcome::Warn,
            format!("downgrade {deployed} -> {new} (allowed by --allow-downgrade)"),
            None,
        ),
        std::cmp::Ordering::Less => check(
            "chart-version",
            CheckOutcome::Fail,
            format!("{new} is lower than the deployed {deployed}"),
            Some("pass --allow-downgrade if the downgrade is intended".into()),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_table() {
        let cases = [
            ("1.2.0", Some("1.1.9"), false, CheckOutcome::Pass),
            ("1.2.0", Some("1.2.0"), false, CheckOutcome::Pass),
            ("1.2.0", Some("1.10.0"), false, CheckOutcome::Fail),
            ("1.2.0", Some("1.10.0"), true, CheckOutcome::Warn),
            ("v2.0.0", Some("v1.0.0"), false, CheckOutcome::Pass),
            ("1.0.0", Some("1.0.0-rc.1"), false, CheckOutcome::Pass),
            ("1.0.0-rc.1", Some("1.0.0"), false, CheckOutcome::Fail),
            ("1.0.0", Some("latest"), false, CheckOutcome::Warn),
            ("1.0.0", None, false, CheckOutcome::Warn),
        ];
        for (new, deployed, allow, expect) in cases {
            let got = version_check(new, deployed, allow).unwrap();
            assert_eq!(got.outcome, expect, "{new} vs {deployed:?}: {}", got.detail);
        }
    }

    #[test]
    fn bad_new_version_is_an_error_naming_it() {
        let err = version_check("one", Some("1.0.0"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"one\""), "{err}");
    }
}
