//! Bad input through the real binary: kubeconfigs naming files that are not there, charts-syncer
//! configs with typos or wrong types, hostile values files and damaged bundles. Each must fail
//! with exit code 1 and an error naming the file (and key), and write or change nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_test_support::workspace_root;

fn kantup(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kantup"))
        .args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .env("HOME", dir)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn example_bundle() -> PathBuf {
    workspace_root().join("examples/bundles/testchart.bundle.tar")
}

/// Every file and directory under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs `args` in a scratch directory holding `files`; the command must fail with exit code 1,
/// its stderr must contain every `want`, and the directory must be left exactly as it was.
fn refused(files: &[(&str, &[u8])], args: &[&str], wants: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let p = tmp.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let before = listing(tmp.path());
    let out = kantup(tmp.path(), args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    for want in wants {
        let want = want.replace("$DIR", &tmp.path().display().to_string());
        assert!(
            err.contains(&want),
            "{args:?}: stderr lacks {want:?}:\n{err}"
        );
    }
    assert_eq!(listing(tmp.path()), before, "{args:?} wrote files");
    for (name, bytes) in files {
        assert!(
            std::fs::read(tmp.path().join(name)).unwrap() == *bytes,
            "{name} changed"
        );
    }
    err
}

fn kubeconfig(cluster: &str, user: &str) -> Vec<u8> {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:1\n{cluster}contexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user:\n{user}"
    )
    .into_bytes()
}

#[test]
fn kubeconfig_naming_missing_files_is_refused_by_name() {
    let crds = workspace_root().join("crates/k8s-apply/tests/fixtures/crds");
    let bundle = crds.to_str().unwrap();
    // The kubeconfig itself is missing.
    refused(
        &[],
        &["crds", "apply", bundle, "--kubeconfig", "missing.yaml"],
        &["missing.yaml"],
    );
    // Its client certificate, client key or CA file is missing.
    for (name, cluster, user, missing) in [
        (
            "client certificate",
            "",
            "    client-certificate: /nonexistent/client.crt\n    client-key: /nonexistent/client.key\n",
            "/nonexistent/client.crt",
        ),
        (
            "certificate authority",
            "    certificate-authority: /nonexistent/ca.crt\n",
            "    token: abc\n",
            "/nonexistent/ca.crt",
        ),
        (
            "token file",
            "",
            "    tokenFile: /nonexistent/token\n",
            "/nonexistent/token",
        ),
    ] {
        let config = kubeconfig(cluster, user);
        let err = refused(
            &[("kubeconfig.yaml", &config)],
            &["crds", "apply", bundle, "--kubeconfig", "kubeconfig.yaml"],
            &[missing],
        );
        assert!(!err.contains("abc"), "{name}: the token leaked: {err}");
    }
}

const LAUGHS: &str = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";

#[test]
fn hostile_values_files_are_refused_by_name() {
    refused(
        &[("laughs.yaml", LAUGHS.as_bytes())],
        &["values", "merge", "-f", "laughs.yaml"],
        &["failed to parse laughs.yaml: yaml: document contains excessive aliasing"],
    );
    let deep = format!("a:\n{}x\n", "  - ".repeat(5_000));
    refused(
        &[("deep.yaml", deep.as_bytes())],
        &["values", "merge", "-f", "deep.yaml"],
        &["failed to parse deep.yaml: yaml: line 2: nested deeper than 256 maps and lists"],
    );
}

/// A typo'd or mistyped key in charts-syncer's config stops `sync` before anything moves,
/// naming the file and the key (charts-syncer refuses unknown keys too).
#[test]
fn sync_config_typos_and_wrong_types_are_refused_by_name() {
    let bundle = std::fs::read(example_bundle()).unwrap();
    for (config, wants) in [
        (
            "source:\n  intermediateBundlesPath: bundles\ntarget:\n  containerRegistry: oci-layout:images\n  containerRepositry: kant\n",
            &[
                "load-image.yaml: not a charts-syncer config",
                "target: unknown field `containerRepositry`",
            ][..],
        ),
        (
            "source:\n  intermediateBundlesPath: bundles\ntarget:\n  containerRegistry: oci-layout:images\n  repo: {kind: LOCAL, pth: charts}\n",
            &["load-image.yaml", "target.repo: unknown field `pth`"],
        ),
        (
            "source:\n  intermediateBundlesPath: [bundles]\ntarget:\n  containerRegistry: oci-layout:images\n",
            &[
                "load-image.yaml",
                "source.intermediateBundlesPath: invalid type: sequence",
            ],
        ),
        (
            "source:\n  intermediateBundlesPath: bundles\nsource:\n  intermediateBundlesPath: other\n",
            &["load-image.yaml", "duplicate"],
        ),
    ] {
        refused(
            &[
                ("load-image.yaml", config.as_bytes()),
                ("bundles/kant.bundle.tar", &bundle),
            ],
            &["sync", "--config", "load-image.yaml"],
            wants,
        );
    }
}

/// charts-syncer reads both protobuf spellings of a key; so does kantup, and keys it knows
/// but does not use are named in a warning.
#[test]
fn sync_config_in_protobuf_field_names_works() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("bundles")).unwrap();
    std::fs::copy(example_bundle(), tmp.path().join("bundles/kant.bundle.tar")).unwrap();
    std::fs::write(
        tmp.path().join("load-image.yaml"),
        "source:\n  intermediate_bundles_path: bundles\ntarget:\n  container_registry: oci-layout:images\n  container_repository: kant\n  repo_name: myrepo\n  repo:\n    kind: LOCAL\n    path: charts\n",
    )
    .unwrap();
    let out = kantup(tmp.path(), &["sync", "--config", "load-image.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("load-image.yaml: target.repoName is a charts-syncer setting kantup does not use; ignored"),
        "{}",
        stderr(&out)
    );
    assert!(tmp.path().join("images/index.json").is_file());
    assert!(tmp.path().join("charts/index.yaml").is_file());
}

/// Damaged bundles through the commands that write: nothing appears at the destination.
#[test]
fn damaged_bundles_write_nothing() {
    let good = std::fs::read(example_bundle()).unwrap();
    let truncated = &good[..good.len() / 2];
    let corrupt_gzip = {
        let mut z = {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&good).unwrap();
            e.finish().unwrap()
        };
        let mid = z.len() / 2;
        for b in &mut z[mid..mid + 32] {
            *b ^= 0x5a;
        }
        z
    };
    for (name, bytes, wants) in [
        (
            "truncated.tar",
            truncated.to_vec(),
            "malformed tar: truncated",
        ),
        ("corrupt.tar.gz", corrupt_gzip, "corrupt gzip stream"),
    ] {
        let files: &[(&str, &[u8])] = &[(name, &bytes)];
        refused(files, &["bundle", "unpack", name, "out"], &[name, wants]);
        refused(
            files,
            &["bundle", "export-images", name, "--oci-layout", "layout"],
            &[name, wants],
        );
        refused(files, &["bundle", "verify", name], &[name, wants]);
    }
}

/// A tar of one `size`-byte member of zeros, gzip- or zstd-compressed (streamed: a few KiB).
fn zero_bomb(zstd: bool, size: u64) -> Vec<u8> {
    use std::io::Read;
    fn tar_of_zeros<W: std::io::Write>(out: W, size: u64) -> W {
        let mut builder = tar::Builder::new(out);
        let mut header = tar::Header::new_gnu();
        header.set_path("images.tar").unwrap();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append(&header, std::io::repeat(0).take(size))
            .unwrap();
        builder.into_inner().unwrap()
    }
    if zstd {
        let encoder = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
        tar_of_zeros(encoder, size).finish().unwrap()
    } else {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        tar_of_zeros(encoder, size).finish().unwrap()
    }
}

/// Decompression bombs through the real binary, with its temporary directory pointed at a
/// directory of the test: refused as they expand past `--max-expanded-size` (or
/// `KANTUP_MAX_EXPANDED_SIZE`, which also reaches the `kantup::ops` workflows), naming the
/// bundle and the limit, leaving nothing in the temporary directory; a higher limit lets the
/// same file through; a size that is not one is a usage error.
#[test]
fn decompression_bombs_are_refused_before_the_disk_fills() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("tmp");
    std::fs::create_dir(&spool).unwrap();
    let run = |args: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kantup"));
        cmd.args(args)
            .current_dir(tmp.path())
            .env("TMPDIR", &spool)
            .env_remove("KANTUP_MAX_EXPANDED_SIZE");
        if let Some(size) = env {
            cmd.env("KANTUP_MAX_EXPANDED_SIZE", size);
        }
        let out = cmd.output().unwrap();
        assert!(
            listing(&spool).is_empty(),
            "{args:?} left {:?}",
            listing(&spool)
        );
        out
    };
    for (name, zstd) in [("bomb.tar.gz", false), ("bomb.tar.zst", true)] {
        let bytes = zero_bomb(zstd, 64 << 20);
        assert!(bytes.len() < 80 << 10, "{name}: {} bytes", bytes.len());
        std::fs::write(tmp.path().join(name), &bytes).unwrap();
        let format = if zstd { "zstd" } else { "gzip" };
        let want =
            format!("{name}: the {format} stream expands past 8.0 MiB, the limit set for it");
        for (args, env) in [
            (
                vec!["bundle", "inspect", name, "--max-expanded-size", "8MiB"],
                None,
            ),
            (vec!["bundle", "verify", name], Some("8MiB")),
            (
                vec!["bundle", "unpack", name, "out", "--max-expanded-size=8 MiB"],
                None,
            ),
            // Through kantup::ops, which opens bundles with Bundle::open: the variable.
            (vec!["bundle", "diff", name, name], Some("8388608")),
        ] {
            let out = run(&args, env);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(&want), "{args:?}: {err}");
            assert!(err.contains("--max-expanded-size"), "{args:?}: {err}");
            assert!(!tmp.path().join("out").exists(), "{args:?} wrote out/");
        }
        // Under a limit above its 64 MiB it opens (and fails later: it is no bundle).
        let out = run(
            &["bundle", "inspect", name, "--max-expanded-size", "1GiB"],
            None,
        );
        assert!(!stderr(&out).contains("expands past"), "{}", stderr(&out));
    }
    let out = run(
        &[
            "bundle",
            "inspect",
            "bomb.tar.gz",
            "--max-expanded-size",
            "lots",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&["bundle", "inspect", "bomb.tar.gz"], Some("lots"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("KANTUP_MAX_EXPANDED_SIZE"),
        "{}",
        stderr(&out)
    );
}

/// `--version` picks a version in a chart repository: an `oci://host/path/CHART` SOURCE takes it
/// without `--chart` (the chart is the last segment), a path refuses it as a usage error.
#[test]
fn upgrade_version_goes_with_a_repository_source() {
    let dir = tempfile::tempdir().unwrap();
    let common = ["--release", "kant", "-n", "kant-system"];
    let out = kantup(
        dir.path(),
        &[
            &["upgrade", "./kant-0.5.0", "--version", "0.5.0"],
            &common[..],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "--version picks a chart version in a repository, but ./kant-0.5.0 is a path"
        ),
        "{}",
        stderr(&out)
    );
    // Refused for what the version is, not for a missing --chart, before any request.
    let out = kantup(
        dir.path(),
        &[
            &[
                "upgrade",
                "oci://127.0.0.1:1/charts/kant",
                "--version",
                "latest",
            ],
            &common[..],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("\"latest\" is not a semantic version"),
        "{}",
        stderr(&out)
    );
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

/// A fleet file with an entry that names no cluster is refused before anything is asked of any
/// cluster, naming the file and the entry; `--context` twice is a usage error outside `upgrade`,
/// and `--canary` needs a fleet.
#[test]
fn fleet_input_is_checked_before_any_cluster_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.yaml");
    std::fs::write(
        &fleet,
        "clusters:\n  - {name: edge-a, context: a}\n  - {name: edge-b, labels: {site: x}}\n",
    )
    .unwrap();
    let chart = example_bundle();
    let upgrade = |extra: &[&str]| {
        let mut args = vec![
            "upgrade",
            chart.to_str().unwrap(),
            "--release",
            "kant",
            "-n",
            "kant",
            "--yes",
        ];
        args.extend_from_slice(extra);
        kantup(dir.path(), &args)
    };
    let out = upgrade(&["--fleet", fleet.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the fleet file {}: clusters[1] (edge-b): give a kubeconfig, a context, or both",
            fleet.display()
        )),
        "{}",
        stderr(&out)
    );
    let out = upgrade(&["--canary", "edge-a"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--canary names a cluster of a fleet"),
        "{}",
        stderr(&out)
    );
    let out = kantup(
        dir.path(),
        &[
            "status",
            "--release",
            "kant",
            "-n",
            "kant",
            "--context",
            "a",
            "--context",
            "b",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--context is given 2 times"),
        "{}",
        stderr(&out)
    );
}
