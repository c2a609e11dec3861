//! The seed's "upgrade via Helm repo" in one command, against the real API server: the chart
//! comes from an OCI registry (a real docker-registry, the chart pushed by the real
//! `helm push`) or from a chart repository directory (`helm package` + `helm repo index`),
//! pulled and digest-checked as `kantup repo pull` does; the newest stable version when
//! `--version` is omitted; a chart that does not match its digest stops everything (exit 3).

mod common;

use std::path::Path;

use common::{KantChart, REGISTRY, kantup, ok, text};
use kantup_test_support::kube_cluster::{KubeCluster, cluster_or_skip, unique_name};
use kantup_test_support::registry_server::RegistryServer;
use serde_json::Value;

fn helm_package(cluster: &KubeCluster, chart: &Path, destination: &Path) -> std::path::PathBuf {
    cluster.helm(
        &kantup_test_support::helm3(),
        &[
            "package",
            chart.to_str().unwrap(),
            "-d",
            destination.to_str().unwrap(),
        ],
    );
    std::fs::read_dir(destination)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(chart.file_name().unwrap().to_string_lossy().as_ref())
        })
        .unwrap()
}

fn release_chart_version(cluster: &KubeCluster, ns: &str) -> (u64, String) {
    let status: Value = serde_json::from_str(&cluster.helm(
        &kantup_test_support::helm3(),
        &["history", "kant", "-n", ns, "-o", "json"],
    ))
    .unwrap();
    let last = status.as_array().unwrap().last().unwrap().clone();
    (
        last["revision"].as_u64().unwrap(),
        last["chart"].as_str().unwrap().to_string(),
    )
}

#[test]
fn upgrade_from_an_oci_registry_pushed_by_helm() {
    let Some(cluster) = cluster_or_skip("upgrade_from_an_oci_registry_pushed_by_helm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ns = cluster.namespace("ocirepo");
    let group = format!("{}.kant.test", unique_name("oci"));
    let helm = kantup_test_support::helm3();
    cluster.helm(
        &helm,
        &[
            "install",
            "kant",
            KantChart::v040(&group).write(dir.path()).to_str().unwrap(),
            "-n",
            &ns,
        ],
    );
    let registry = RegistryServer::start();
    let packages = dir.path().join("packages");
    std::fs::create_dir(&packages).unwrap();
    for chart in [
        KantChart::v050(&group),
        KantChart {
            version: "0.6.0-rc.1".into(),
            ..KantChart::v050(&group)
        },
    ] {
        let written = chart.write(&dir.path().join(format!("src-{}", chart.version)));
        let archive = helm_package(cluster, &written, &packages);
        cluster.helm(
            &helm,
            &[
                "push",
                archive.to_str().unwrap(),
                &format!("oci://{}/charts", registry.host()),
                "--plain-http",
            ],
        );
    }
    // No --version: the newest stable version (0.5.0, not the release candidate).
    let out = kantup(
        cluster.kubeconfig(),
        dir.path(),
        &[
            "upgrade",
            &format!("oci://{}/charts/kant", registry.host()),
            "--plain-http",
            "--release",
            "kant",
            "-n",
            &ns,
            "--image-registry",
            REGISTRY,
            "--yes",
            "--helm",
            helm.to_str().unwrap(),
            "--backup-dir",
            dir.path().join("backups").to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    let summary: Value = serde_json::from_str(&ok(out, "upgrade from oci://")).unwrap();
    assert_eq!(summary["chart_version"], "0.5.0", "{summary}");
    assert_eq!(
        release_chart_version(cluster, &ns),
        (2, "kant-0.5.0".into())
    );

    // --plan shows where the chart came from, with its digest.
    let plan = kantup(
        cluster.kubeconfig(),
        dir.path(),
        &[
            "upgrade",
            &format!("oci://{}/charts", registry.host()),
            "--chart",
            "kant",
            "--version",
            "0.6.0-rc.1",
            "--plain-http",
            "--release",
            "kant",
            "-n",
            &ns,
            "--plan",
            "--helm",
            helm.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    let plan: Value = serde_json::from_str(&ok(plan, "plan from oci://")).unwrap();
    assert_eq!(plan["chart_version"], "0.6.0-rc.1", "{plan}");
    assert_eq!(plan["source_kind"], "chart repository", "{plan}");
    assert!(
        plan["source"].as_str().unwrap().contains("sha256:"),
        "{plan}"
    );
}

#[test]
fn upgrade_from_a_chart_repository_directory_and_refuse_a_tampered_chart() {
    let Some(cluster) =
        cluster_or_skip("upgrade_from_a_chart_repository_directory_and_refuse_a_tampered_chart")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ns = cluster.namespace("dirrepo");
    let group = format!("{}.kant.test", unique_name("dir"));
    let helm = kantup_test_support::helm4();
    cluster.helm(
        &helm,
        &[
            "install",
            "kant",
            KantChart::v040(&group).write(dir.path()).to_str().unwrap(),
            "-n",
            &ns,
        ],
    );
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let archive = helm_package(
        cluster,
        &KantChart::v050(&group).write(&dir.path().join("src")),
        &repo,
    );
    cluster.helm(&helm, &["repo", "index", repo.to_str().unwrap()]);

    // Backups go to the test's own directory, never to the working directory (the crate's).
    let backups = dir.path().join("backups");
    let upgrade = |extra: &[&str]| {
        let mut args = vec![
            "upgrade",
            repo.to_str().unwrap(),
            "--chart",
            "kant",
            "--release",
            "kant",
            "-n",
            &ns,
            "--yes",
            "--helm",
            helm.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        kantup(cluster.kubeconfig(), dir.path(), &args)
    };

    // The archive changed after the index was written: refused, nothing changed.
    let original = std::fs::read(&archive).unwrap();
    let mut tampered = original.clone();
    let n = tampered.len();
    tampered[n - 10] ^= 0xff;
    std::fs::write(&archive, &tampered).unwrap();
    let refused = upgrade(&["--version", "0.5.0"]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert_eq!(
        release_chart_version(cluster, &ns),
        (1, "kant-0.4.0".into())
    );

    // A version the repository does not have: exit 4.
    std::fs::write(&archive, &original).unwrap();
    let missing = upgrade(&["--version", "9.9.9"]);
    assert_eq!(missing.status.code(), Some(4), "{}", text(&missing));

    let done = ok(
        upgrade(&["--version", "0.5.0"]),
        "upgrade from a repository directory",
    );
    assert!(done.contains("revision 1 -> 2"), "{done}");
    assert_eq!(
        release_chart_version(cluster, &ns),
        (2, "kant-0.5.0".into())
    );
    let written: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        written.iter().any(|name| name.ends_with(".values.yaml")),
        "{written:?}"
    );
}
