//! Upgrade pre-flight against a scripted API server.

mod common;

use common::{access_review, fixture, helm_secret, list_page, reply, revision, scripted};
use kantup_k8s_apply::preflight::{CheckOutcome, PreflightOptions, PreflightReport, preflight};
use kantup_k8s_apply::release::StorageDriver;
use serde_json::Value;

const NS: &str = "kant-system";
const PERMISSION_COUNT: usize = 7;

fn options(chart_version: Option<&str>, allow_downgrade: bool) -> PreflightOptions {
    PreflightOptions {
        release: "kant".into(),
        namespace: NS.into(),
        chart_version: chart_version.map(String::from),
        allow_downgrade,
        driver: StorageDriver::Secret,
        ..Default::default()
    }
}

/// Namespace GET, the access reviews (all allowed unless `denied` names one by index), then
/// the release list with revisions `statuses` (1-based, in order).
fn script(statuses: &[&str], denied: Option<usize>) -> Vec<(u16, Value)> {
    let mut script = vec![reply(fixture("namespace-kant-system.json"))];
    for i in 0..PERMISSION_COUNT {
        script.push(reply(if Some(i) == denied {
            access_review(false, "no RBAC policy matched")
        } else {
            access_review(true, "RBAC: allowed by ClusterRoleBinding \"deployers\"")
        }));
    }
    let secrets = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            helm_secret(
                &revision("release-helm3.json", "kant", NS, i as u64 + 1, status),
                status,
            )
        })
        .collect();
    script.push(reply(list_page("SecretList", secrets, None)));
    script
}

fn outcome<'a>(
    report: &'a PreflightReport,
    name: &str,
) -> &'a kantup_k8s_apply::preflight::PreflightCheck {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:#?}", report.checks))
}

#[tokio::test]
async fn a_deployed_release_with_an_upgrade_passes_and_the_requests_are_right() {
    let (client, seen) = scripted(script(&["superseded", "deployed"], None));
    let report = preflight(&client, &options(Some("0.2.0"), false))
        .await
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.revision, Some(2));
    assert_eq!(report.status.as_deref(), Some("deployed"));
    assert_eq!(report.deployed_chart_version.as_deref(), Some("0.1.0"));
    assert_eq!(
        outcome(&report, "chart-version").detail,
        "upgrade 0.1.0 -> 0.2.0"
    );

    let seen = seen.await.unwrap();
    assert_eq!(seen.len(), 1 + PERMISSION_COUNT + 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/api/v1/namespaces/kant-system")
    );
    let reviews: Vec<Value> = seen[1..=PERMISSION_COUNT]
        .iter()
        .map(|s| {
            assert_eq!(s.method, "POST");
            assert_eq!(
                s.path,
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
            );
            let body = s.json();
            assert_eq!(body["kind"], "SelfSubjectAccessReview");
            body["spec"]["resourceAttributes"].clone()
        })
        .collect();
    let summary: Vec<String> = reviews
        .iter()
        .map(|r| {
            format!(
                "{} {}/{} {}",
                r["verb"].as_str().unwrap(),
                r["group"].as_str().unwrap(),
                r["resource"].as_str().unwrap(),
                r["namespace"].as_str().unwrap_or("*")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "get /secrets kant-system",
            "list /secrets kant-system",
            "create /secrets kant-system",
            "update /secrets kant-system",
            "get apiextensions.k8s.io/customresourcedefinitions *",
            "create apiextensions.k8s.io/customresourcedefinitions *",
            "patch apiextensions.k8s.io/customresourcedefinitions *",
        ]
    );
    assert_eq!(seen[8].path, "/api/v1/namespaces/kant-system/secrets");
    assert_eq!(
        seen[8].query_value("labelSelector"),
        Some("owner=helm,name=kant")
    );
}

#[tokio::test]
async fn unfinished_or_failed_releases_fail_with_the_fixing_command() {
    let cases = [
        (
            vec!["superseded", "pending-upgrade"],
            "revision 2 is pending-upgrade",
            "helm rollback kant 1 -n kant-system",
        ),
        (
            vec!["deployed", "superseded", "pending-rollback"],
            "revision 3 is pending-rollback",
            "helm rollback kant 2 -n kant-system",
        ),
        (
            vec!["superseded", "failed"],
            "revision 2 is failed",
            "helm rollback kant 1 -n kant-system",
        ),
        (
            vec!["failed"],
            "revision 1 is failed",
            "helm history kant -n kant-system",
        ),
        (
            vec!["pending-install"],
            "revision 1 is pending-install",
            "helm uninstall kant -n kant-system",
        ),
    ];
    for (statuses, detail, fix) in cases {
        let (client, _) = scripted(script(&statuses, None));
        let report = preflight(&client, &options(None, false)).await.unwrap();
        assert!(!report.passed(), "{statuses:?}");
        let check = outcome(&report, "release-status");
        assert_eq!(check.outcome, CheckOutcome::Fail, "{statuses:?}");
        assert!(
            check.detail.starts_with(detail),
            "{statuses:?}: {}",
            check.detail
        );
        assert!(
            check.fix.as_deref().unwrap().starts_with(fix),
            "{statuses:?}: {:?}",
            check.fix
        );
    }
}

#[tokio::test]
async fn downgrades_fail_unless_allowed() {
    for (allow, expected) in [(false, CheckOutcome::Fail), (true, CheckOutcome::Warn)] {
        let (client, _) = scripted(script(&["deployed"], None));
        let report = preflight(&client, &options(Some("0.0.9"), allow))
            .await
            .unwrap();
        let check = outcome(&report, "chart-version");
        assert_eq!(check.outcome, expected, "{check:?}");
        assert_eq!(report.passed(), allow);
    }
}

#[tokio::test]
async fn a_denied_permission_fails_its_check() {
    let (client, _) = scripted(script(&["deployed"], Some(6)));
    let report = preflight(&client, &options(None, false)).await.unwrap();
    assert!(!report.passed());
    let check = outcome(
        &report,
        "can patch customresourcedefinitions.apiextensions.k8s.io cluster-wide",
    );
    assert_eq!(check.outcome, CheckOutcome::Fail);
    assert_eq!(check.detail, "denied: no RBAC policy matched");
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.outcome == CheckOutcome::Fail)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
}

#[tokio::test]
async fn a_missing_namespace_and_release_fail_without_listing() {
    let mut script = vec![reply(fixture("status-404-namespace.json"))];
    script.extend((0..PERMISSION_COUNT).map(|_| reply(access_review(true, ""))));
    let (client, seen) = scripted(script);
    let report = preflight(&client, &options(Some("1.0.0"), false))
        .await
        .unwrap();
    assert_eq!(outcome(&report, "namespace").outcome, CheckOutcome::Fail);
    assert_eq!(
        outcome(&report, "namespace").fix.as_deref(),
        Some("kubectl create namespace kant-system")
    );
    assert_eq!(outcome(&report, "release").outcome, CheckOutcome::Fail);
    assert_eq!(
        outcome(&report, "release-status").outcome,
        CheckOutcome::Skipped
    );
    assert_eq!(
        outcome(&report, "chart-version").outcome,
        CheckOutcome::Skipped
    );
    assert_eq!(
        seen.await.unwrap().len(),
        1 + PERMISSION_COUNT,
        "no list in a missing namespace"
    );
}
