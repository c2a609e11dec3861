//! Upgrade pre-flight against the real kube-apiserver (see `common`): releases made by the
//! real helm 3.17 and 4.1 with both storage drivers, a failed `helm upgrade` the server
//! refused, unfinished operations, missing namespaces and releases, and users minted with
//! exact RBAC rules, so every SelfSubjectAccessReview answer comes from the real RBAC.

#[macro_use]
mod common;

use common::*;
use kantup_k8s_apply::preflight::{
    CheckOutcome, PreflightCheck, PreflightOptions, PreflightReport, preflight,
};
use kantup_k8s_apply::release::{ReleaseStatus, StorageDriver};

fn options(
    release: &str,
    namespace: &str,
    driver: StorageDriver,
    chart_version: Option<&str>,
) -> PreflightOptions {
    PreflightOptions {
        release: release.into(),
        namespace: namespace.into(),
        chart_version: chart_version.map(String::from),
        driver,
        ..Default::default()
    }
}

fn check<'a>(report: &'a PreflightReport, name: &str) -> &'a PreflightCheck {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#?}", report.checks))
}

/// `(name, outcome)` of every check, in order.
fn outcomes(report: &PreflightReport) -> Vec<(String, CheckOutcome)> {
    report
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.outcome))
        .collect()
}

/// The permission checks for `namespace` and `driver`, all with `outcome` unless listed in
/// `exceptions`.
fn permission_checks(
    namespace: &str,
    driver: StorageDriver,
    outcome: CheckOutcome,
    exceptions: &[(&str, CheckOutcome)],
) -> Vec<(String, CheckOutcome)> {
    let resource = driver.resource();
    let mut names: Vec<String> = ["get", "list", "create", "update"]
        .iter()
        .map(|verb| format!("can {verb} {resource} in namespace {namespace}"))
        .collect();
    names.extend(["get", "create", "patch"].iter().map(|verb| {
        format!("can {verb} customresourcedefinitions.apiextensions.k8s.io cluster-wide")
    }));
    names
        .into_iter()
        .map(|name| {
            let outcome = exceptions
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(outcome, |(_, o)| *o);
            (name, outcome)
        })
        .collect()
}

/// Installs chart `demo` 0.1.0 as release `demo`, then upgrades it to 0.1.0 again with a
/// value: revision 1 superseded, revision 2 deployed.
fn installed_and_upgraded(run: &HelmRun, dir: &std::path::Path) -> std::path::PathBuf {
    let chart = write_chart(dir, "0.1.0", &[]);
    let chart_path = chart.to_str().unwrap();
    run.run(&["install", "demo", chart_path]);
    run.run(&["upgrade", "demo", chart_path, "--set", "replicaCount=2"]);
    chart
}

/// A deployed release passes with a higher chart version and fails a lower one unless the
/// downgrade is allowed.
async fn deployed_release(test: &str, helm: Helm, driver: StorageDriver) {
    let Some(cluster) = cluster_or_skip(test) else {
        return;
    };
    let ns = cluster.namespace("pre-ok");
    let run = HelmRun::new(cluster, helm, driver, &ns);
    let dir = tempfile::tempdir().unwrap();
    installed_and_upgraded(&run, dir.path());
    let client = admin_client(cluster).await;

    let report = preflight(&client, &options("demo", &ns, driver, Some("0.2.0")))
        .await
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.revision, Some(2));
    assert_eq!(report.status.as_deref(), Some("deployed"));
    assert_eq!(report.deployed_chart_version.as_deref(), Some("0.1.0"));
    let mut expected = vec![("namespace".to_string(), CheckOutcome::Pass)];
    expected.extend(permission_checks(&ns, driver, CheckOutcome::Pass, &[]));
    expected.extend([
        ("release".to_string(), CheckOutcome::Pass),
        ("release-status".to_string(), CheckOutcome::Pass),
        ("chart-version".to_string(), CheckOutcome::Pass),
    ]);
    assert_eq!(outcomes(&report), expected);
    assert_eq!(
        check(&report, "release").detail,
        "release demo revision 2 found"
    );
    assert_eq!(
        check(&report, "release-status").detail,
        "revision 2 is deployed"
    );
    assert_eq!(
        check(&report, "chart-version").detail,
        "upgrade 0.1.0 -> 0.2.0"
    );

    let downgrade = preflight(&client, &options("demo", &ns, driver, Some("0.0.9")))
        .await
        .unwrap();
    assert!(!downgrade.passed());
    let version = check(&downgrade, "chart-version");
    assert_eq!(version.outcome, CheckOutcome::Fail);
    assert_eq!(version.detail, "0.0.9 is lower than the deployed 0.1.0");

    let allowed = PreflightOptions {
        allow_downgrade: true,
        ..options("demo", &ns, driver, Some("0.0.9"))
    };
    let report = preflight(&client, &allowed).await.unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(check(&report, "chart-version").outcome, CheckOutcome::Warn);

    // The other driver's storage holds no such release.
    let other = match driver {
        StorageDriver::Secret => StorageDriver::ConfigMap,
        StorageDriver::ConfigMap => StorageDriver::Secret,
    };
    let report = preflight(&client, &options("demo", &ns, other, None))
        .await
        .unwrap();
    assert_eq!(check(&report, "release").outcome, CheckOutcome::Fail);
}

for_each_helm_and_driver!(
    a_deployed_release_passes_and_a_downgrade_fails,
    deployed_release
);

/// `helm upgrade` with a value the chart turns into an object name the API server refuses:
/// helm records revision 2 as failed, and the fix names the last deployed revision.
async fn failed_upgrade(test: &str, helm: Helm, driver: StorageDriver) {
    let Some(cluster) = cluster_or_skip(test) else {
        return;
    };
    let ns = cluster.namespace("pre-failed");
    let run = HelmRun::new(cluster, helm, driver, &ns);
    let dir = tempfile::tempdir().unwrap();
    let chart = write_chart(dir.path(), "0.1.0", &[]);
    run.run(&["install", "demo", chart.to_str().unwrap()]);
    let upgrade = run.output(&[
        "upgrade",
        "demo",
        chart.to_str().unwrap(),
        "--set",
        "extraName=Not_A_Valid_Name",
    ]);
    assert!(!upgrade.status.success());
    let stderr = String::from_utf8_lossy(&upgrade.stderr);
    assert!(
        stderr.contains("ConfigMap \"Not_A_Valid_Name\" is invalid"),
        "{stderr}"
    );

    let client = admin_client(cluster).await;
    let report = preflight(&client, &options("demo", &ns, driver, Some("0.2.0")))
        .await
        .unwrap();
    assert!(!report.passed());
    assert_eq!(report.revision, Some(2));
    assert_eq!(report.status.as_deref(), Some("failed"));
    let status = check(&report, "release-status");
    assert_eq!(status.outcome, CheckOutcome::Fail);
    assert_eq!(
        status.detail,
        "revision 2 is failed: the last install or upgrade failed"
    );
    assert_eq!(
        status.fix.as_deref(),
        Some(format!("helm rollback demo 1 -n {ns}").as_str())
    );

    // The fix is right: after it, the release passes.
    run.run(&["rollback", "demo", "1"]);
    let report = preflight(&client, &options("demo", &ns, driver, Some("0.2.0")))
        .await
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.revision, Some(3));
}

for_each_helm_and_driver!(a_failed_upgrade_fails_naming_the_rollback, failed_upgrade);

/// Unfinished operations: a real helm-made record with its status changed (see
/// `set_record_status`), on the real server and storage.
async fn unfinished_operations(test: &str, helm: Helm, driver: StorageDriver) {
    let Some(cluster) = cluster_or_skip(test) else {
        return;
    };
    let ns = cluster.namespace("pre-pending");
    let run = HelmRun::new(cluster, helm, driver, &ns);
    let dir = tempfile::tempdir().unwrap();
    installed_and_upgraded(&run, dir.path());
    let client = admin_client(cluster).await;
    let cases = [
        (
            ReleaseStatus::PendingUpgrade,
            "revision 2 is pending-upgrade: an operation did not finish (another helm may still be running)".to_string(),
            format!("helm rollback demo 1 -n {ns}"),
        ),
        (
            ReleaseStatus::PendingRollback,
            "revision 2 is pending-rollback: an operation did not finish (another helm may still be running)".to_string(),
            format!("helm rollback demo 1 -n {ns}"),
        ),
        (
            ReleaseStatus::Uninstalling,
            "revision 2 is uninstalling: the release is uninstalled".to_string(),
            format!("helm install demo <chart> -n {ns}"),
        ),
        (
            ReleaseStatus::PendingInstall,
            "revision 2 is pending-install: an install did not finish (another helm may still be running)".to_string(),
            format!("helm uninstall demo -n {ns} (after checking helm history demo -n {ns})"),
        ),
    ];
    for (status, detail, fix) in cases {
        set_record_status(&run, "demo", 2, status.clone());
        // helm itself reads the record as changed.
        let history: serde_json::Value =
            serde_json::from_str(&run.run(&["history", "demo", "-o", "json"])).unwrap();
        assert_eq!(history[1]["status"], status.as_str(), "{history}");

        let report = preflight(&client, &options("demo", &ns, driver, None))
            .await
            .unwrap();
        assert!(!report.passed(), "{status}");
        assert_eq!(report.status.as_deref(), Some(status.as_str()));
        let check = check(&report, "release-status");
        assert_eq!(check.outcome, CheckOutcome::Fail, "{status}");
        assert_eq!(check.detail, detail);
        assert_eq!(check.fix.as_deref(), Some(fix.as_str()));
    }
}

#[tokio::test]
async fn unfinished_operations_fail_with_the_fix_helm3_secret() {
    unfinished_operations(
        "unfinished_operations_fail_with_the_fix_helm3_secret",
        Helm::V3,
        StorageDriver::Secret,
    )
    .await;
}

#[tokio::test]
async fn unfinished_operations_fail_with_the_fix_helm4_configmap() {
    unfinished_operations(
        "unfinished_operations_fail_with_the_fix_helm4_configmap",
        Helm::V4,
        StorageDriver::ConfigMap,
    )
    .await;
}

#[tokio::test]
async fn an_uninstalled_release_kept_in_history_fails() {
    let Some(cluster) = cluster_or_skip("an_uninstalled_release_kept_in_history_fails") else {
        return;
    };
    let ns = cluster.namespace("pre-uninstalled");
    let run = HelmRun::new(cluster, Helm::V4, StorageDriver::Secret, &ns);
    let dir = tempfile::tempdir().unwrap();
    installed_and_upgraded(&run, dir.path());
    run.run(&["uninstall", "demo", "--keep-history"]);
    let report = preflight(
        &admin_client(cluster).await,
        &options("demo", &ns, StorageDriver::Secret, None),
    )
    .await
    .unwrap();
    let status = check(&report, "release-status");
    assert_eq!(status.outcome, CheckOutcome::Fail);
    assert_eq!(
        status.detail,
        "revision 2 is uninstalled: the release is uninstalled"
    );
    assert_eq!(
        status.fix.as_deref(),
        Some(format!("helm install demo <chart> -n {ns}").as_str())
    );
}

#[tokio::test]
async fn a_missing_namespace_fails_unless_it_will_be_created() {
    let Some(cluster) = cluster_or_skip("a_missing_namespace_fails_unless_it_will_be_created")
    else {
        return;
    };
    // Never created.
    let ns = unique_name("pre-nons");
    let client = admin_client(cluster).await;
    let report = preflight(
        &client,
        &options("demo", &ns, StorageDriver::Secret, Some("1.0.0")),
    )
    .await
    .unwrap();
    let mut expected = vec![("namespace".to_string(), CheckOutcome::Fail)];
    expected.extend(permission_checks(
        &ns,
        StorageDriver::Secret,
        CheckOutcome::Pass,
        &[],
    ));
    expected.extend([
        ("release".to_string(), CheckOutcome::Fail),
        ("release-status".to_string(), CheckOutcome::Skipped),
        ("chart-version".to_string(), CheckOutcome::Skipped),
    ]);
    assert_eq!(outcomes(&report), expected);
    let namespace = check(&report, "namespace");
    assert_eq!(namespace.detail, format!("namespace {ns} does not exist"));
    assert_eq!(
        namespace.fix.as_deref(),
        Some(format!("kubectl create namespace {ns}").as_str())
    );

    // An install suggests --create-namespace.
    let install = PreflightOptions {
        install: true,
        ..options("demo", &ns, StorageDriver::Secret, None)
    };
    let report = preflight(&client, &install).await.unwrap();
    assert!(!report.passed());
    assert_eq!(
        check(&report, "namespace").fix.as_deref(),
        Some(format!("pass --create-namespace, or: kubectl create namespace {ns}").as_str())
    );

    // With --create-namespace, creating namespaces is one of the permissions checked.
    let create = PreflightOptions {
        install: true,
        create_namespace: true,
        ..options("demo", &ns, StorageDriver::Secret, None)
    };
    let report = preflight(&client, &create).await.unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(
        check(&report, "namespace").detail,
        format!("namespace {ns} does not exist; it will be created")
    );
    assert_eq!(
        check(&report, "can create namespaces cluster-wide").outcome,
        CheckOutcome::Pass
    );
    assert_eq!(
        check(&report, "release").detail,
        format!("release demo not found in namespace {ns}: it will be installed")
    );
    assert!(
        !exists(cluster, "namespace", &ns, None),
        "preflight created it"
    );
}

#[tokio::test]
async fn a_missing_release_fails_unless_it_will_be_installed() {
    let Some(cluster) = cluster_or_skip("a_missing_release_fails_unless_it_will_be_installed")
    else {
        return;
    };
    let ns = cluster.namespace("pre-norel");
    // Another release in the namespace is not this one.
    let run = HelmRun::new(cluster, Helm::V3, StorageDriver::Secret, &ns);
    let dir = tempfile::tempdir().unwrap();
    let chart = write_chart(dir.path(), "0.1.0", &[]);
    run.run(&["install", "demo-other", chart.to_str().unwrap()]);
    let client = admin_client(cluster).await;

    let report = preflight(
        &client,
        &options("demo", &ns, StorageDriver::Secret, Some("1.0.0")),
    )
    .await
    .unwrap();
    assert!(!report.passed());
    let release = check(&report, "release");
    assert_eq!(release.outcome, CheckOutcome::Fail);
    assert_eq!(
        release.detail,
        format!("release demo not found in namespace {ns} (Secret storage)")
    );
    assert_eq!(
        release.fix.as_deref(),
        Some(
            format!("helm install demo <chart> -n {ns} (this is a first install, not an upgrade)")
                .as_str()
        )
    );
    assert_eq!(
        check(&report, "release-status").outcome,
        CheckOutcome::Skipped
    );
    assert_eq!(
        check(&report, "chart-version").outcome,
        CheckOutcome::Skipped
    );

    let install = PreflightOptions {
        install: true,
        ..options("demo", &ns, StorageDriver::Secret, Some("1.0.0"))
    };
    let report = preflight(&client, &install).await.unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(
        check(&report, "release").detail,
        format!("release demo not found in namespace {ns}: it will be installed")
    );
    assert_eq!(report.revision, None);
}

#[tokio::test]
async fn a_user_without_crd_rights_fails_those_checks() {
    let Some(cluster) = cluster_or_skip("a_user_without_crd_rights_fails_those_checks") else {
        return;
    };
    let ns = cluster.namespace("pre-rbac");
    let run = HelmRun::new(cluster, Helm::V4, StorageDriver::ConfigMap, &ns);
    let dir = tempfile::tempdir().unwrap();
    installed_and_upgraded(&run, dir.path());
    // Reads namespaces; in the release namespace: configmaps get/list/create but not update;
    // no CRD rights at all.
    let kubeconfig = cluster.user(
        &unique_name("pre-user"),
        &[Rule::new(&[""], &["namespaces"], &["get"])],
        Some((
            &ns,
            &[Rule::new(
                &[""],
                &["configmaps"],
                &["get", "list", "create"],
            )],
        )),
    );
    let client = client_for(&kubeconfig).await;
    let report = preflight(
        &client,
        &options("demo", &ns, StorageDriver::ConfigMap, Some("0.2.0")),
    )
    .await
    .unwrap();
    assert!(!report.passed());
    let crd_denied = CheckOutcome::Fail;
    let mut expected = vec![("namespace".to_string(), CheckOutcome::Pass)];
    expected.extend(permission_checks(
        &ns,
        StorageDriver::ConfigMap,
        crd_denied,
        &[
            (
                &format!("can get configmaps in namespace {ns}"),
                CheckOutcome::Pass,
            ),
            (
                &format!("can list configmaps in namespace {ns}"),
                CheckOutcome::Pass,
            ),
            (
                &format!("can create configmaps in namespace {ns}"),
                CheckOutcome::Pass,
            ),
        ],
    ));
    expected.extend([
        ("release".to_string(), CheckOutcome::Pass),
        ("release-status".to_string(), CheckOutcome::Pass),
        ("chart-version".to_string(), CheckOutcome::Pass),
    ]);
    assert_eq!(outcomes(&report), expected);
    let patch = check(
        &report,
        "can patch customresourcedefinitions.apiextensions.k8s.io cluster-wide",
    );
    assert!(patch.detail.starts_with("denied"), "{patch:?}");
    assert_eq!(
        patch.fix.as_deref(),
        Some(
            "grant patch on customresourcedefinitions.apiextensions.k8s.io cluster-wide to this \
             user (Role/ClusterRole + binding)"
        )
    );
    let update = check(&report, &format!("can update configmaps in namespace {ns}"));
    assert_eq!(update.outcome, CheckOutcome::Fail);

    // The same user with the Secret driver: no rights on secrets, and the release records
    // cannot even be listed: an error naming the request, in one line.
    let err = preflight(&client, &options("demo", &ns, StorageDriver::Secret, None))
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(403));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "list Secrets labelled owner=helm,name=demo in namespace {ns}: 403 Forbidden: \
             secrets is forbidden: User \"system:serviceaccount:kantup-test-users:"
        )) && text.contains("cannot list resource \"secrets\" in API group \"\" in the namespace"),
        "{text}"
    );
    assert_one_line(&text);
}

#[tokio::test]
async fn a_user_who_may_not_read_namespaces_gets_a_warning() {
    let Some(cluster) = cluster_or_skip("a_user_who_may_not_read_namespaces_gets_a_warning") else {
        return;
    };
    let ns = cluster.namespace("pre-nsread");
    let run = HelmRun::new(cluster, Helm::V3, StorageDriver::Secret, &ns);
    let dir = tempfile::tempdir().unwrap();
    installed_and_upgraded(&run, dir.path());
    // Rights in the release namespace only: reading the Namespace object is forbidden.
    let kubeconfig = cluster.user(
        &unique_name("pre-nsread"),
        &[],
        Some((&ns, &[Rule::new(&[""], &["secrets"], &["get", "list"])])),
    );
    let report = preflight(
        &client_for(&kubeconfig).await,
        &options("demo", &ns, StorageDriver::Secret, None),
    )
    .await
    .unwrap();
    let namespace = check(&report, "namespace");
    assert_eq!(namespace.outcome, CheckOutcome::Warn);
    assert_eq!(
        namespace.detail,
        format!("may not read Namespace {ns} (forbidden); assuming it exists")
    );
    assert_eq!(check(&report, "release").outcome, CheckOutcome::Pass);
    assert_eq!(check(&report, "release-status").outcome, CheckOutcome::Pass);
}

#[tokio::test]
async fn a_user_with_every_right_passes_and_one_without_namespaces_create_does_not() {
    let Some(cluster) = cluster_or_skip(
        "a_user_with_every_right_passes_and_one_without_namespaces_create_does_not",
    ) else {
        return;
    };
    let ns = cluster.namespace("pre-deployer");
    let run = HelmRun::new(cluster, Helm::V3, StorageDriver::Secret, &ns);
    let dir = tempfile::tempdir().unwrap();
    installed_and_upgraded(&run, dir.path());
    // Exactly what an upgrade needs, from a ClusterRole and a Role.
    let kubeconfig = cluster.user(
        &unique_name("pre-deployer"),
        &[
            Rule::new(&[""], &["namespaces"], &["get"]),
            Rule::new(
                &["apiextensions.k8s.io"],
                &["customresourcedefinitions"],
                &["get", "create", "patch"],
            ),
        ],
        Some((
            &ns,
            &[Rule::new(
                &[""],
                &["secrets"],
                &["get", "list", "create", "update"],
            )],
        )),
    );
    let client = client_for(&kubeconfig).await;
    let report = preflight(
        &client,
        &options("demo", &ns, StorageDriver::Secret, Some("0.2.0")),
    )
    .await
    .unwrap();
    assert!(report.passed(), "{report:#?}");

    let elsewhere = unique_name("pre-deployer-new");
    let create = PreflightOptions {
        install: true,
        create_namespace: true,
        ..options("demo", &elsewhere, StorageDriver::Secret, None)
    };
    let report = preflight(&client, &create).await.unwrap();
    assert!(!report.passed());
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.outcome == CheckOutcome::Fail)
        .map(|c| c.name.as_str())
        .collect();
    // Its Role is in the other namespace.
    let mut expected: Vec<String> = ["get", "list", "create", "update"]
        .iter()
        .map(|verb| format!("can {verb} secrets in namespace {elsewhere}"))
        .collect();
    expected.push("can create namespaces cluster-wide".to_string());
    assert_eq!(failed, expected);
}
