//! Differential tests: `kantup_registry::chart_index` against the real `helm repo index`
//! (helm 3.17 and helm 4.1) on charts packaged by helm itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use kantup_registry::chart_index::{IndexFile, parse_version};

/// Runs helm with its config, cache and data dirs inside `home`, so the machine is untouched.
fn helm(helm: &Path, home: &Path, args: &[&str]) -> String {
    let output = Command::new(helm)
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    assert!(
        output.status.success(),
        "helm {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Packages `name` at each version (with distinct appVersions) into `dest`.
fn package(helm_bin: &Path, home: &Path, name: &str, versions: &[&str], dest: &Path) {
    let src = home.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let chart_dir = src.join(name);
    if !chart_dir.exists() {
        helm(helm_bin, home, &["create", chart_dir.to_str().unwrap()]);
    }
    std::fs::create_dir_all(dest).unwrap();
    for version in versions {
        helm(
            helm_bin,
            home,
            &[
                "package",
                chart_dir.to_str().unwrap(),
                "--version",
                version,
                "--app-version",
                &format!("app-{version}"),
                "-d",
                dest.to_str().unwrap(),
            ],
        );
    }
}

/// What must agree between helm's index and ours: per chart, in order, version, urls, digest
/// and the copied metadata. (`created`/`generated` are timestamps and differ by nature.)
fn comparable(index: &IndexFile) -> Vec<(String, Vec<String>)> {
    index
        .entries
        .iter()
        .map(|(name, versions)| {
            (
                name.clone(),
                versions
                    .iter()
                    .map(|v| {
                        format!(
                            "{} urls={:?} digest={:?} api={} app={:?} type={:?} desc={:?} removed={}",
                            v.metadata.version,
                            v.urls,
                            v.digest,
                            v.metadata.api_version,
                            v.metadata.app_version,
                            v.metadata.chart_type,
                            v.metadata.description,
                            v.removed
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

struct Repo {
    _temp: tempfile::TempDir,
    home: PathBuf,
    dir: PathBuf,
}

/// A directory of charts: `web` (releases, a pre-release, `v`-less two-part versions are not
/// allowed by helm package, so plain semver) at the top, `db` one level down.
fn chart_dir(helm_bin: &Path) -> Repo {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    let dir = temp.path().join("repo");
    package(
        helm_bin,
        &home,
        "web",
        &["0.1.0", "0.10.0", "0.2.0", "1.0.0-rc.1"],
        &dir,
    );
    package(helm_bin, &home, "db", &["2.0.0", "1.5.3"], &dir.join("sub"));
    // Not a chart: helm skips it, so must we.
    std::fs::write(dir.join("junk.tgz"), b"not a gzip").unwrap();
    Repo {
        _temp: temp,
        home,
        dir,
    }
}

fn index_matches_helm(helm_bin: PathBuf) {
    let repo = chart_dir(&helm_bin);
    for base_url in [None, Some("https://charts.example/repo")] {
        let mut args = vec!["repo", "index", repo.dir.to_str().unwrap()];
        if let Some(url) = base_url {
            args.extend(["--url", url]);
        }
        helm(&helm_bin, &repo.home, &args);
        let theirs = IndexFile::load(&repo.dir.join("index.yaml")).unwrap();
        std::fs::remove_file(repo.dir.join("index.yaml")).unwrap();
        let ours = IndexFile::index_directory(&repo.dir, base_url).unwrap();
        assert_eq!(
            comparable(&ours),
            comparable(&theirs),
            "base url {base_url:?}"
        );
        assert_eq!(theirs.versions("web").len(), 4);
        assert_eq!(theirs.versions("db").len(), 2);
        // Both pick the same latest (pre-release skipped unless asked).
        for pre in [false, true] {
            assert_eq!(
                ours.latest("web", pre).map(|v| &v.metadata.version),
                theirs.latest("web", pre).map(|v| &v.metadata.version)
            );
        }
        assert!(ours.generated.is_some());
        assert!(ours.versions("web").iter().all(|v| v.created.is_some()));
    }
}

fn merge_matches_helm(helm_bin: PathBuf) {
    let repo = chart_dir(&helm_bin);
    // An existing index: one version also in the directory (with a stale digest and url), one
    // only here, and a chart only here.
    let existing = r#"apiVersion: v1
entries:
  web:
  - apiVersion: v2
    name: web
    version: 0.2.0
    digest: cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd
    urls: [https://old.example/web-0.2.0.tgz]
    created: "2020-01-01T00:00:00Z"
  - apiVersion: v2
    name: web
    version: 0.0.9
    digest: abababababababababababababababababababababababababababababababab
    urls: [https://old.example/web-0.0.9.tgz]
    created: "2020-01-01T00:00:00Z"
  legacy:
  - apiVersion: v1
    name: legacy
    version: 3.0.0
    appVersion: "9"
    urls: [legacy-3.0.0.tgz]
    created: "2020-01-01T00:00:00Z"
generated: "2020-01-01T00:00:00Z"
"#;
    let old = repo.home.join("old-index.yaml");
    std::fs::write(&old, existing).unwrap();
    helm(
        &helm_bin,
        &repo.home,
        &[
            "repo",
            "index",
            repo.dir.to_str().unwrap(),
            "--merge",
            old.to_str().unwrap(),
        ],
    );
    let theirs = IndexFile::load(&repo.dir.join("index.yaml")).unwrap();
    std::fs::remove_file(repo.dir.join("index.yaml")).unwrap();

    let mut ours = IndexFile::index_directory(&repo.dir, None).unwrap();
    ours.merge(&IndexFile::load(&old).unwrap());
    assert_eq!(comparable(&ours), comparable(&theirs));
    // The freshly indexed archive wins over the stale entry; the old-only ones are kept.
    assert_ne!(
        ours.get("web", "0.2.0").unwrap().digest.as_deref(),
        Some("cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd")
    );
    assert!(ours.has("web", "0.0.9") && ours.has("legacy", "3.0.0"));
    let old_created = ours.get("legacy", "3.0.0").unwrap().created.as_deref();
    assert_eq!(old_created, Some("2020-01-01T00:00:00Z"));
}

/// helm reads the index we write: merging our file into an empty directory's index gives back
/// exactly our entries.
fn helm_reads_our_index(helm_bin: PathBuf) {
    let repo = chart_dir(&helm_bin);
    let ours = IndexFile::index_directory(&repo.dir, Some("https://charts.example/r")).unwrap();
    let ours_path = repo.home.join("ours.yaml");
    ours.write(&ours_path).unwrap();
    let empty = repo.home.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    helm(
        &helm_bin,
        &repo.home,
        &[
            "repo",
            "index",
            empty.to_str().unwrap(),
            "--merge",
            ours_path.to_str().unwrap(),
        ],
    );
    let theirs = IndexFile::load(&empty.join("index.yaml")).unwrap();
    assert_eq!(comparable(&theirs), comparable(&ours));
    // The created timestamps we wrote survive helm's parse and re-write as the same instants.
    let ours_created = ours.versions("db")[0].created.clone().unwrap();
    let theirs_created = theirs.versions("db")[0].created.clone().unwrap();
    assert_eq!(
        ours_created.parse::<jiff_like::Instant>().unwrap(),
        theirs_created.parse::<jiff_like::Instant>().unwrap()
    );
    assert!(parse_version(&theirs.versions("db")[0].metadata.version).is_some());
}

/// Minimal RFC 3339 comparison without pulling a time crate into the test: the instant up to
/// the seconds plus the fraction, with trailing zeros dropped (helm writes Go's RFC3339Nano,
/// which trims them).
mod jiff_like {
    #[derive(Debug, PartialEq, Eq)]
    pub struct Instant(String, String);
    impl std::str::FromStr for Instant {
        type Err = String;
        fn from_str(text: &str) -> Result<Self, String> {
            let text = text.strip_suffix('Z').ok_or(format!("not UTC: {text}"))?;
            let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
            Ok(Instant(
                seconds.to_owned(),
                fraction.trim_end_matches('0').to_owned(),
            ))
        }
    }
}

#[test]
fn index_directory_matches_helm3() {
    index_matches_helm(kantup_test_support::helm3());
}

#[test]
fn index_directory_matches_helm4() {
    index_matches_helm(kantup_test_support::helm4());
}

#[test]
fn merge_matches_helm3() {
    merge_matches_helm(kantup_test_support::helm3());
}

#[test]
fn merge_matches_helm4() {
    merge_matches_helm(kantup_test_support::helm4());
}

#[test]
fn helm3_reads_our_index() {
    helm_reads_our_index(kantup_test_support::helm3());
}

#[test]
fn helm4_reads_our_index() {
    helm_reads_our_index(kantup_test_support::helm4());
}
