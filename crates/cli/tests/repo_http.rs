//! `kantup repo versions` / `kantup repo pull` against a real HTTP chart repository: charts
//! packaged by the real helm, the index written by `helm repo index`, served on 127.0.0.1 by a
//! small static file server (with optional basic auth) that lives as long as the test.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

const PASSWORD: &str = "s3cret-Pa55word";
/// base64("admin:s3cret-Pa55word"), what the client must send.
const ADMIN_TOKEN: &str = "YWRtaW46czNjcmV0LVBhNTV3b3Jk";

/// A static file server for `root` on 127.0.0.1 (OS-assigned port), GET only, one request per
/// connection. Stops when dropped.
struct FileServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// `basic_auth`: the base64 of `user:password` the server requires, if any.
    fn start(root: &Path, basic_auth: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_owned();
        let expected = basic_auth.map(|token| format!("Basic {token}"));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve(stream, &root, expected.as_deref());
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, root: &Path, expected_auth: Option<&str>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let mut stream = stream;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    if let Some(expected) = expected_auth
        && authorization.as_deref() != Some(expected)
    {
        return stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"charts\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let file = root.join(path.trim_start_matches('/'));
    match (path.contains(".."), std::fs::read(&file)) {
        (false, Ok(body)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        _ => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}

fn helm(home: &Path, args: &[&str]) {
    let output = Command::new(kantup_test_support::helm3())
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Harbor-shaped repository: `<root>/chartrepo/library/index.yaml` with charts under
/// `charts/` (so the index has relative `charts/<file>` URLs, as Harbor serves them).
struct Repo {
    temp: tempfile::TempDir,
    project: PathBuf,
}

fn harbor_like_repo() -> Repo {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    let project = temp.path().join("www/chartrepo/library");
    let charts = project.join("charts");
    let src = home.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (name, versions) in [
        ("web", &["0.1.0", "0.2.0", "0.3.0-rc.1"][..]),
        ("db", &["1.0.0"][..]),
    ] {
        let dir = src.join(name);
        helm(&home, &["create", dir.to_str().unwrap()]);
        for version in versions {
            helm(
                &home,
                &[
                    "package",
                    dir.to_str().unwrap(),
                    "--version",
                    version,
                    "--app-version",
                    &format!("{version}-app"),
                    "-d",
                    charts.to_str().unwrap(),
                ],
            );
        }
    }
    helm(&home, &["repo", "index", project.to_str().unwrap()]);
    Repo { temp, project }
}

fn kantup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .env_remove("KANTUP_REPO_USERNAME")
        .env_remove("KANTUP_REPO_PASSWORD")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "kantup failed: {}", stderr(output));
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn versions_of(rows: &serde_json::Value, chart: &str) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|row| row["name"] == chart)
        .map(|row| row["version"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn versions_lists_charts_like_helm_search() {
    let repo = harbor_like_repo();
    let server = FileServer::start(&repo.temp.path().join("www"), None);
    let url = server.url("chartrepo/library");

    let rows = json(&kantup(&["repo", "versions", &url, "-o", "json"]));
    assert_eq!(versions_of(&rows, "web"), ["0.2.0", "0.1.0"]);
    assert_eq!(versions_of(&rows, "db"), ["1.0.0"]);
    let web = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web")
        .unwrap();
    assert_eq!(web["app_version"], "0.2.0-app");
    assert_eq!(web["description"], "A Helm chart for Kubernetes");
    assert_eq!(web["urls"][0], "charts/web-0.2.0.tgz");

    let rows = json(&kantup(&[
        "repo", "versions", &url, "--devel", "-o", "json",
    ]));
    assert_eq!(versions_of(&rows, "web"), ["0.3.0-rc.1", "0.2.0", "0.1.0"]);

    let rows = json(&kantup(&[
        "repo", "versions", &url, "--chart", "web", "--latest", "-o", "json",
    ]));
    assert_eq!(versions_of(&rows, "web"), ["0.2.0"]);
    assert!(versions_of(&rows, "db").is_empty());

    let table = kantup(&["repo", "versions", &url, "--chart", "web"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for column in ["NAME", "CHART VERSION", "APP VERSION", "DESCRIPTION"] {
        assert!(header.contains(column), "{header}");
    }
    let first: Vec<&str> = lines.next().unwrap().split('\t').map(str::trim).collect();
    assert_eq!(
        first,
        ["web", "0.2.0", "0.2.0-app", "A Helm chart for Kubernetes"]
    );

    // A chart that is not there: exit code 4 ("nothing to do / not found").
    let missing = kantup(&["repo", "versions", &url, "--chart", "nope"]);
    assert_eq!(missing.status.code(), Some(4), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("nope"));

    // The same repository read from its directory gives the same rows.
    let dir_rows = json(&kantup(&[
        "repo",
        "versions",
        repo.project.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(
        versions_of(&dir_rows, "web"),
        versions_of(&rows_all(&url), "web")
    );
}

fn rows_all(url: &str) -> serde_json::Value {
    json(&kantup(&["repo", "versions", url, "-o", "json"]))
}

#[test]
fn pull_verifies_digest_and_refuses_corrupt_archives() {
    let repo = harbor_like_repo();
    let server = FileServer::start(&repo.temp.path().join("www"), None);
    let url = server.url("chartrepo/library");
    let out = repo.temp.path().join("out");

    let report = json(&kantup(&[
        "repo",
        "pull",
        &url,
        "web",
        "--version",
        "0.1.0",
        "-d",
        out.to_str().unwrap(),
        "-o",
        "json",
    ]));
    let pulled = out.join("web-0.1.0.tgz");
    assert_eq!(report["path"], pulled.to_str().unwrap());
    assert_eq!(report["verified"], true);
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(repo.project.join("charts/web-0.1.0.tgz")).unwrap()
    );
    let index = std::fs::read_to_string(repo.project.join("index.yaml")).unwrap();
    assert!(
        index.contains(report["sha256"].as_str().unwrap()),
        "digest from helm's index"
    );

    // Without --version: the newest stable version.
    let report = json(&kantup(&[
        "repo",
        "pull",
        &url,
        "web",
        "-d",
        out.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(report["version"], "0.2.0");

    // Corrupt a served archive after indexing: refused with exit code 3, nothing written.
    let served = repo.project.join("charts/db-1.0.0.tgz");
    let mut bytes = std::fs::read(&served).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&served, bytes).unwrap();
    let refused = kantup(&[
        "repo",
        "pull",
        &url,
        "db",
        "--version",
        "1.0.0",
        "-d",
        out.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("sha256 mismatch"),
        "{}",
        stderr(&refused)
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left.iter().any(|n| n.contains("db")),
        "nothing of db written: {left:?}"
    );

    // Unknown version: exit code 4, naming the versions that exist.
    let missing = kantup(&[
        "repo",
        "pull",
        &url,
        "web",
        "--version",
        "9.9.9",
        "-d",
        out.to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(4), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("0.2.0"), "{}", stderr(&missing));
}

#[test]
fn basic_auth_is_sent_and_the_password_never_printed() {
    let repo = harbor_like_repo();
    let server = FileServer::start(&repo.temp.path().join("www"), Some(ADMIN_TOKEN));
    let url = server.url("chartrepo/library");
    let out = repo.temp.path().join("out");

    let denied = kantup(&["repo", "versions", &url]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(stderr(&denied).contains("401"), "{}", stderr(&denied));

    let wrong = kantup(&[
        "repo",
        "versions",
        &url,
        "--username",
        "admin",
        "--password",
        "wrong-one",
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(!stderr(&wrong).contains("wrong-one"), "{}", stderr(&wrong));

    let ok = Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args([
            "repo",
            "pull",
            &url,
            "web",
            "--version",
            "0.2.0",
            "-d",
            out.to_str().unwrap(),
            "-v",
        ])
        .env("KANTUP_REPO_USERNAME", "admin")
        .env("KANTUP_REPO_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(out.join("web-0.2.0.tgz").is_file());
    assert!(!stderr(&ok).contains(PASSWORD) && !stdout(&ok).contains(PASSWORD));

    // --username without --password is a usage error.
    let half = kantup(&["repo", "versions", &url, "--username", "admin"]);
    assert_eq!(half.status.code(), Some(2), "{}", stderr(&half));
}

#[test]
fn not_a_repository_is_a_clear_error() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("index.yaml"), "<html>login page</html>").unwrap();
    let server = FileServer::start(temp.path(), None);
    let bad = kantup(&["repo", "versions", &server.url("")]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("index.yaml"), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("not a chart repository index"),
        "{}",
        stderr(&bad)
    );

    let missing = kantup(&["repo", "versions", &server.url("nothing-here")]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("404"), "{}", stderr(&missing));
}

/// helm itself as the reference: `helm repo add` accepts the index kantup's library writes,
/// and `helm search repo --versions` lists exactly what `kantup repo versions` lists.
#[test]
fn helm_accepts_our_index_and_search_matches_versions() {
    let repo = harbor_like_repo();
    let ours = kantup_registry::chart_index::IndexFile::index_directory(&repo.project, None)
        .expect("index the repository");
    ours.write(&repo.project.join("index.yaml")).unwrap();
    let server = FileServer::start(&repo.temp.path().join("www"), None);
    let url = server.url("chartrepo/library");
    let home = repo.temp.path().join("helm-home");
    let config = home.join("repositories.yaml");
    let cache = home.join("cache");
    let helm_json = |args: &[&str]| -> serde_json::Value {
        let output = Command::new(kantup_test_support::helm3())
            .args(args)
            .arg("--repository-config")
            .arg(&config)
            .arg("--repository-cache")
            .arg(&cache)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", &cache)
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
    };
    helm_json(&["repo", "add", "lib", &url]);
    for devel in [false, true] {
        let mut args = vec!["search", "repo", "lib/", "--versions", "-o", "json"];
        let mut ours_args = vec!["repo", "versions", url.as_str(), "-o", "json"];
        if devel {
            args.push("--devel");
            ours_args.push("--devel");
        }
        let theirs: Vec<(String, String, String, String)> = helm_json(&args)
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["name"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("lib/")
                        .to_owned(),
                    row["version"].as_str().unwrap().to_owned(),
                    row["app_version"].as_str().unwrap().to_owned(),
                    row["description"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let ours: Vec<(String, String, String, String)> = json(&kantup(&ours_args))
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["name"].as_str().unwrap().to_owned(),
                    row["version"].as_str().unwrap().to_owned(),
                    row["app_version"].as_str().unwrap().to_owned(),
                    row["description"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(ours, theirs, "devel {devel}");
        assert_eq!(theirs.len(), if devel { 4 } else { 3 });
    }
}

/// An index with absolute URLs (`helm repo index --url`), and the same charts pulled from the
/// repository directory.
#[test]
fn pull_follows_absolute_urls_and_reads_directories() {
    let repo = harbor_like_repo();
    let server = FileServer::start(&repo.temp.path().join("www"), None);
    let base = server.url("chartrepo/library");
    helm(
        &repo.temp.path().join("home"),
        &[
            "repo",
            "index",
            repo.project.to_str().unwrap(),
            "--url",
            &base,
        ],
    );
    let index = std::fs::read_to_string(repo.project.join("index.yaml")).unwrap();
    assert!(
        index.contains(&format!("{base}/charts/db-1.0.0.tgz")),
        "{index}"
    );

    // Served from a different path than the charts: only absolute URLs can work.
    let elsewhere = repo.temp.path().join("www/elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(
        repo.project.join("index.yaml"),
        elsewhere.join("index.yaml"),
    )
    .unwrap();
    let out = repo.temp.path().join("out");
    let report = json(&kantup(&[
        "repo",
        "pull",
        &server.url("elsewhere"),
        "db",
        "--version",
        "1.0.0",
        "-d",
        out.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(report["source"], format!("{base}/charts/db-1.0.0.tgz"));
    assert_eq!(report["verified"], true);

    // A directory with a helm-written index of relative URLs.
    helm(
        &repo.temp.path().join("home"),
        &["repo", "index", repo.project.to_str().unwrap()],
    );
    let from_dir = repo.temp.path().join("from-dir");
    let report = json(&kantup(&[
        "repo",
        "pull",
        repo.project.to_str().unwrap(),
        "web",
        "--devel",
        "-d",
        from_dir.to_str().unwrap(),
        "-o",
        "json",
    ]));
    assert_eq!(report["version"], "0.3.0-rc.1");
    assert_eq!(report["verified"], true);
    assert_eq!(
        std::fs::read(from_dir.join("web-0.3.0-rc.1.tgz")).unwrap(),
        std::fs::read(repo.project.join("charts/web-0.3.0-rc.1.tgz")).unwrap()
    );
}
