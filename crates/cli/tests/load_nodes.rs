//! `kantup load --node ssh://...` against real nodes: each a real OpenSSH `sshd` on a loopback
//! port (keys made by the test) in front of its own real containerd or Docker Engine
//! (`kantup_test_support::ssh_node`), driven by the real `ssh` client and, on the node, the
//! real `ctr` or `docker`. Bytes sent over ssh are counted by a wrapper around `ssh` (KANTUP_SSH) that
//! pipes kantup's stream through `dd`, independently of what kantup reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kantup_test_support::image_gen::{GenImage, GenSpec, generate_bundle_inputs};
use kantup_test_support::ssh_node::{SshClientKeys, SshNode};
use serde_json::Value;

struct GenBundle {
    path: PathBuf,
    layout: PathBuf,
    images: Vec<GenImage>,
}

impl GenBundle {
    /// Two images on two shared 512 KiB base layers, each with an own layer of `own` bytes.
    fn new(dir: &Path, name: &str, own: usize) -> Self {
        let spec = GenSpec {
            images: 2,
            base_layers: 2,
            base_layer_size: 512 * 1024,
            own_layer_size: own,
            seed: 20,
            source_prefix: "example.com/kant".into(),
        };
        let inputs = generate_bundle_inputs(&dir.join(format!("{name}-inputs")), &spec).unwrap();
        let path = dir.join(format!("{name}.bundle.tar"));
        inputs.create_bundle(Path::new(env!("CARGO_BIN_EXE_kantup")), &path);
        GenBundle {
            path,
            layout: inputs.layout,
            images: inputs.images,
        }
    }

    fn manifest_size(&self, image: &GenImage) -> u64 {
        let hex = image.manifest_digest.trim_start_matches("sha256:");
        std::fs::metadata(self.layout.join("blobs/sha256").join(hex))
            .unwrap()
            .len()
    }

    /// Size of every distinct blob (layers, configs, manifests) of the images.
    fn blobs(&self) -> BTreeMap<String, u64> {
        let mut blobs = BTreeMap::new();
        for image in &self.images {
            for blob in image.layers.iter().chain([&image.config]) {
                blobs.insert(blob.digest.clone(), blob.size);
            }
            blobs.insert(image.manifest_digest.clone(), self.manifest_size(image));
        }
        blobs
    }
}

/// `ssh` behind a wrapper that appends the bytes piped into each connection to the file
/// `$KANTUP_TEST_SSH_COUNT`; with `cut_after`, the connection's input ends after that many bytes
/// (a link that drops mid-transfer).
fn counting_ssh(keys: &SshClientKeys, cut_after: Option<u64>) -> PathBuf {
    let (name, cut) = match cut_after {
        Some(n) => (format!("cutting-ssh-{n}"), format!("head -c {n} | ")),
        None => ("counting-ssh".to_string(), String::new()),
    };
    let wrapper = keys.dir().join(name);
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\nstats=$(mktemp)\n{cut}dd bs=64k 2>\"$stats\" | ssh -F /dev/null \"$@\"\nrc=${{PIPESTATUS[-1]}}\n\
             sed -n 's/^\\([0-9]*\\) bytes.*/\\1/p' \"$stats\" >> \"$KANTUP_TEST_SSH_COUNT\"\nrm -f \"$stats\"\nexit $rc\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

struct Run {
    output: Output,
    report: Value,
    /// Bytes piped into ssh, over every connection of the run.
    bytes_into_ssh: u64,
}

fn kantup_load(keys: &SshClientKeys, bundle: &Path, nodes: &[String], extra: &[&str]) -> Run {
    kantup_load_through(&counting_ssh(keys, None), keys, bundle, nodes, extra)
}

fn kantup_load_through(
    ssh: &Path,
    keys: &SshClientKeys,
    bundle: &Path,
    nodes: &[String],
    extra: &[&str],
) -> Run {
    kantup_load_into("containerd", ssh, keys, bundle, nodes, extra)
}

fn kantup_load_into(
    runtime: &str,
    ssh: &Path,
    keys: &SshClientKeys,
    bundle: &Path,
    nodes: &[String],
    extra: &[&str],
) -> Run {
    let count = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kantup"));
    command
        .arg("load")
        .arg(bundle)
        .args(["--runtime", runtime, "-o", "json"])
        .args(extra)
        .env("KANTUP_SSH", ssh)
        .env("KANTUP_TEST_SSH_COUNT", count.path())
        .env_remove("KANTUP_RUNTIME_ARGS");
    for option in keys.ssh_options() {
        command.arg("--ssh-option").arg(option);
    }
    for node in nodes {
        command.arg("--node").arg(node);
    }
    let output = command.output().unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let bytes_into_ssh = std::fs::read_to_string(count.path())
        .unwrap()
        .lines()
        .map(|l| l.trim().parse::<u64>().unwrap())
        .sum();
    Run {
        output,
        report,
        bytes_into_ssh,
    }
}

/// Name -> manifest digest, as the node's containerd lists them in `k8s.io` (asked directly,
/// not over ssh).
fn node_images(node: &SshNode) -> BTreeMap<String, String> {
    let out = node.containerd().ctr(&["-n", "k8s.io", "images", "ls"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<_> = line.split_whitespace().collect();
            (cols[0].to_string(), cols[2].to_string())
        })
        .collect()
}

/// The config digest (image ID) the node's copy of `manifest` names.
fn node_image_id(node: &SshNode, manifest: &str) -> String {
    let out = node
        .containerd()
        .ctr(&["-n", "k8s.io", "content", "get", manifest]);
    assert!(out.status.success(), "{manifest} is not on the node");
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_string()
}

/// The names a load with `--retag reg.local:5000/kant` gives `image`: its own and the re-tagged.
fn names_of(image: &GenImage) -> [String; 2] {
    let tail = image.repository.rsplit('/').next().unwrap();
    [
        image.reference.clone(),
        format!("reg.local:5000/kant/{tail}:{}", image.tag),
    ]
}

/// Every name of `bundle` (source and re-tagged) is on `node` at the bundle's manifest digest,
/// its image ID is the bundle's config digest, it is complete, and no temporary name is left.
fn assert_node_has(node: &SshNode, bundle: &GenBundle) {
    let images = node_images(node);
    for image in &bundle.images {
        for name in names_of(image) {
            assert_eq!(
                images.get(&name),
                Some(&image.manifest_digest),
                "{name} on {}: {images:?}",
                node.url()
            );
        }
        assert_eq!(
            node_image_id(node, &image.manifest_digest),
            image.config.digest
        );
    }
    assert!(
        images.keys().all(|n| !n.contains("kantup-import")),
        "a temporary name was left: {images:?}"
    );
    let check = node.containerd().ctr(&["-n", "k8s.io", "images", "check"]);
    let check = String::from_utf8_lossy(&check.stdout);
    for line in check.lines().skip(1) {
        assert_eq!(line.split_whitespace().nth(3), Some("complete"), "{line}");
    }
}

fn node_report<'a>(run: &'a Run, node: &SshNode) -> &'a Value {
    run.report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node.url().as_str())
        .unwrap_or_else(|| panic!("no report for {}: {}", node.url(), run.report))
}

fn assert_ok(run: &Run) {
    assert!(
        run.output.status.success(),
        "kantup load: {}\n{}",
        String::from_utf8_lossy(&run.output.stderr),
        run.report
    );
}

/// Tar headers, `oci-layout` and `index.json` around the blobs: a few KiB at most.
const ARCHIVE_OVERHEAD: u64 = 16 * 1024;

#[test]
fn sends_only_missing_layers_to_each_node_and_nothing_on_a_rerun() {
    let keys = SshClientKeys::new();
    let nodes = [SshNode::start(&keys), SshNode::start(&keys)];
    let urls: Vec<String> = nodes.iter().map(SshNode::url).collect();
    let dir = tempfile::tempdir().unwrap();
    let v1 = GenBundle::new(dir.path(), "v1", 128 * 1024);
    let v2 = GenBundle::new(dir.path(), "v2", 192 * 1024);
    let retag = ["--retag", "reg.local:5000/kant", "--max-parallel", "2"];

    // 1. Empty nodes: everything is sent, once per node.
    let first = kantup_load(&keys, &v1.path, &urls, &retag);
    assert_ok(&first);
    let all_v1: u64 = v1.blobs().values().sum();
    for node in &nodes {
        let report = node_report(&first, node);
        assert_eq!(report["status"], "done", "{report}");
        assert_eq!(report["blobs_sent"], v1.blobs().len(), "{report}");
        assert_eq!(report["blob_bytes_sent"], all_v1, "{report}");
        assert_eq!(report["images"].as_array().unwrap().len(), 4, "{report}");
        assert_node_has(node, &v1);
    }
    assert!(
        first.bytes_into_ssh >= 2 * all_v1
            && first.bytes_into_ssh <= 2 * (all_v1 + ARCHIVE_OVERHEAD),
        "sent {} bytes over ssh for 2 x {all_v1} bytes of blobs",
        first.bytes_into_ssh
    );

    // 2. A newer bundle: same base layers, new own layers, configs and manifests.
    let v1_blobs = v1.blobs();
    let changed: BTreeMap<String, u64> = v2
        .blobs()
        .into_iter()
        .filter(|(digest, _)| !v1_blobs.contains_key(digest))
        .collect();
    let changed_bytes: u64 = changed.values().sum();
    let changed_layers: u64 = v2
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .filter(|l| changed.contains_key(&l.digest))
        .map(|l| l.size)
        .sum();
    let unchanged_layers: u64 = v2.images[0]
        .layers
        .iter()
        .filter(|l| !changed.contains_key(&l.digest))
        .map(|l| l.size)
        .sum();
    assert_eq!(changed.len(), 6, "2 own layers, 2 configs, 2 manifests");
    assert!(unchanged_layers >= 2 * 512 * 1024);
    let second = kantup_load(&keys, &v2.path, &urls, &retag);
    assert_ok(&second);
    for node in &nodes {
        let report = node_report(&second, node);
        assert_eq!(report["status"], "done", "{report}");
        assert_eq!(report["blobs_sent"], changed.len(), "{report}");
        assert_eq!(report["blob_bytes_sent"], changed_bytes, "{report}");
        assert_node_has(node, &v2);
    }
    assert!(
        second.bytes_into_ssh >= 2 * changed_layers
            && second.bytes_into_ssh <= 2 * (changed_bytes + ARCHIVE_OVERHEAD),
        "sent {} bytes over ssh; changed layers {changed_layers}, changed blobs {changed_bytes} per node",
        second.bytes_into_ssh
    );
    eprintln!(
        "first load: {} bytes over ssh (2 nodes x {all_v1} bytes of blobs); second: {} bytes (2 x {changed_bytes}, of which layers {changed_layers}; base layers {unchanged_layers} not sent)",
        first.bytes_into_ssh, second.bytes_into_ssh
    );

    // 3. Again, one node at a time: nothing is sent, nothing changes.
    let third = kantup_load(
        &keys,
        &v2.path,
        &urls,
        &["--retag", "reg.local:5000/kant", "--max-parallel", "1"],
    );
    assert_ok(&third);
    assert_eq!(third.bytes_into_ssh, 0, "{}", third.report);
    for node in &nodes {
        let report = node_report(&third, node);
        assert_eq!(report["status"], "done", "{report}");
        assert_eq!(report["bytes_sent"], 0, "{report}");
        assert_eq!(report["blobs_sent"], 0, "{report}");
        for image in report["images"].as_array().unwrap() {
            assert_eq!(image["changed"], false, "{image}");
        }
        assert_node_has(node, &v2);
    }
    // --max-parallel 1: one node's work ends before the next one's begins (RFC 3339 UTC
    // timestamps of one fixed width compare as strings).
    let spans: Vec<(&str, &str)> = third.report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["started_at"].as_str().unwrap(),
                n["finished_at"].as_str().unwrap(),
            )
        })
        .collect();
    let mut sorted = spans.clone();
    sorted.sort();
    assert!(
        sorted.windows(2).all(|w| w[0].1 <= w[1].0),
        "nodes overlapped with --max-parallel 1: {spans:?}"
    );
}

#[test]
fn an_interrupted_transfer_leaves_no_image_named_and_a_rerun_finishes() {
    let keys = SshClientKeys::new();
    let node = SshNode::start(&keys);
    let dir = tempfile::tempdir().unwrap();
    let v1 = GenBundle::new(dir.path(), "v1", 64 * 1024);
    // The link drops after 700 KiB of the ~1.2 MiB archive.
    let cutting = counting_ssh(&keys, Some(700 * 1024));
    let retag = ["--retag", "reg.local:5000/kant"];
    let cut = kantup_load_through(&cutting, &keys, &v1.path, &[node.url()], &retag);
    assert_eq!(cut.output.status.code(), Some(1), "{}", cut.report);
    let report = node_report(&cut, &node);
    assert_eq!(report["status"], "failed", "{report}");
    eprintln!("interrupted: {}", report["error"]);
    let images = node_images(&node);
    assert!(
        images.is_empty(),
        "no image may be named after an interrupted import: {images:?}"
    );

    let rerun = kantup_load(&keys, &v1.path, &[node.url()], &retag);
    assert_ok(&rerun);
    assert_node_has(&node, &v1);
}

/// A blob the node listed as present is gone when the import runs (removed by `ctr content rm`
/// just before it, as a garbage collection could): the import cannot complete, and no name moves
/// to the incomplete image.
#[test]
fn content_lost_before_the_import_moves_no_name() {
    let keys = SshClientKeys::new();
    let node = SshNode::start(&keys);
    let dir = tempfile::tempdir().unwrap();
    let v1 = GenBundle::new(dir.path(), "v1", 64 * 1024);
    let v2 = GenBundle::new(dir.path(), "v2", 96 * 1024);
    let retag = ["--retag", "reg.local:5000/kant"];
    assert_ok(&kantup_load(&keys, &v1.path, &[node.url()], &retag));
    let before = node_images(&node);

    let base = &v2.images[0].layers[0].digest;
    assert_eq!(base, &v1.images[0].layers[0].digest, "a shared base layer");
    let losing = keys.dir().join("losing-ssh");
    std::fs::write(
        &losing,
        format!(
            "#!/bin/bash\ncase \"${{@: -1}}\" in *'images import'*)\n  \
             ssh -F /dev/null \"${{@:1:$#-1}}\" 'ctr -n k8s.io content rm {base}' </dev/null >/dev/null ;;\nesac\n\
             exec ssh -F /dev/null \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&losing, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lost = kantup_load_through(&losing, &keys, &v2.path, &[node.url()], &retag);
    assert_eq!(lost.output.status.code(), Some(1), "{}", lost.report);
    let report = node_report(&lost, &node);
    assert_eq!(report["status"], "failed", "{report}");
    eprintln!("content lost: {}", report["error"]);
    assert_eq!(
        node_images(&node),
        before,
        "every name must stay where it was, and no temporary name may be left"
    );

    // The next run finds the layer missing, sends it, and finishes.
    let rerun = kantup_load(&keys, &v2.path, &[node.url()], &retag);
    assert_ok(&rerun);
    assert_node_has(&node, &v2);
    assert!(
        rerun.bytes_into_ssh >= v2.images[0].layers[0].size,
        "{}",
        rerun.report
    );
}

#[test]
fn a_node_that_cannot_be_reached_fails_alone() {
    let keys = SshClientKeys::new();
    let node = SshNode::start(&keys);
    let down = format!(
        "ssh://root@127.0.0.1:{}",
        kantup_test_support::registry_server::free_port()
    );
    let dir = tempfile::tempdir().unwrap();
    let v1 = GenBundle::new(dir.path(), "v1", 64 * 1024);
    let nodes_file = dir.path().join("nodes.yaml");
    let port = node.url().rsplit(':').next().unwrap().to_string();
    std::fs::write(
        &nodes_file,
        format!(
            "- {down}\n- {{host: 127.0.0.1, user: {}, port: {port}}}\n",
            node.url()
                .trim_start_matches("ssh://")
                .split('@')
                .next()
                .unwrap()
        ),
    )
    .unwrap();
    let nodes_arg = nodes_file.display().to_string();
    let run = kantup_load(
        &keys,
        &v1.path,
        &[],
        &["--retag", "reg.local:5000/kant", "--nodes", &nodes_arg],
    );
    assert_eq!(run.output.status.code(), Some(1), "{}", run.report);
    let nodes = run.report["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["node"], down.as_str());
    assert_eq!(nodes[0]["status"], "failed");
    assert!(
        nodes[0]["error"].as_str().unwrap().contains("ssh failed"),
        "{}",
        nodes[0]
    );
    assert_eq!(nodes[1]["status"], "done", "{}", nodes[1]);
    assert_node_has(&node, &v1);
    assert!(
        String::from_utf8_lossy(&run.output.stderr).contains("1 of 2 node(s) failed"),
        "{}",
        String::from_utf8_lossy(&run.output.stderr)
    );
}

/// The example bundle: real images (busybox, tiny) in a docker-archive `images.tar` with
/// gzip layers, so the manifests kantup sends are the Docker schema 2 ones it derives.
#[test]
fn loads_a_docker_archive_bundle_and_a_rerun_sends_nothing() {
    const BUSYBOX: &str = "harbor-repo.vmware.com/dockerhub-proxy-cache/library/busybox:1.33.1";
    const TINY: &str = "harbor-repo.vmware.com/tanzu_isv_engineering/tiny:tiniest";
    let keys = SshClientKeys::new();
    let node = SshNode::start(&keys);
    let bundle =
        kantup_test_support::workspace_root().join("examples/bundles/testchart.bundle.tar");
    let retag = ["--retag", "reg.local:5000/kant"];
    let first = kantup_load(&keys, &bundle, &[node.url()], &retag);
    assert_ok(&first);
    let report = node_report(&first, &node);
    assert_eq!(report["status"], "done", "{report}");
    assert!(first.bytes_into_ssh > 0);
    let images = node_images(&node);
    assert_eq!(
        images.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            BUSYBOX,
            TINY,
            "reg.local:5000/kant/busybox:1.33.1",
            "reg.local:5000/kant/tiny:tiniest",
        ]
    );
    // The bundle's own digests, as its image archive gives them.
    let archive = kantup_bundle::Bundle::open(&bundle)
        .unwrap()
        .image_archive()
        .unwrap()
        .unwrap();
    for image in archive.images() {
        let source = image.references[0].to_string();
        let tail = source.rsplit('/').next().unwrap();
        for name in [source.clone(), format!("reg.local:5000/kant/{tail}")] {
            assert_eq!(images[&name], image.manifest_digest.to_string(), "{name}");
        }
        assert_eq!(
            node_image_id(&node, &images[&source]),
            image.config.digest.to_string()
        );
    }
    let check = node.containerd().ctr(&["-n", "k8s.io", "images", "check"]);
    for line in String::from_utf8_lossy(&check.stdout).lines().skip(1) {
        assert_eq!(line.split_whitespace().nth(3), Some("complete"), "{line}");
    }

    let again = kantup_load(&keys, &bundle, &[node.url()], &retag);
    assert_ok(&again);
    assert_eq!(again.bytes_into_ssh, 0, "{}", again.report);
    assert_eq!(node_images(&node), images);
}

/// Every name of `bundle` (source and re-tagged) is on the docker `node` (asked directly, not
/// over ssh) with the bundle's config digest as its image ID.
fn assert_docker_node_has(node: &SshNode, bundle: &GenBundle) {
    for image in &bundle.images {
        for name in names_of(image) {
            assert_eq!(
                node.docker().image_id(&name),
                image.config.digest,
                "{name} on {}",
                node.url()
            );
        }
    }
}

/// Layers and configs (what a docker-archive carries; docker keeps no manifests), by digest.
fn docker_blobs(bundle: &GenBundle) -> BTreeMap<String, u64> {
    let mut blobs = bundle.blobs();
    for image in &bundle.images {
        blobs.remove(&image.manifest_digest);
    }
    blobs
}

/// A node whose runtime is Docker Engine: an interrupted load names nothing, the first load
/// sends every layer once, a newer bundle sends only its new layers and configs (the base
/// layers' chains are there), the image IDs are the bundle's config digests, a re-run sends
/// nothing.
#[test]
fn a_docker_node_gets_only_the_layers_it_lacks() {
    let keys = SshClientKeys::new();
    let node = SshNode::start_docker(&keys);
    let urls = [node.url()];
    let dir = tempfile::tempdir().unwrap();
    let v1 = GenBundle::new(dir.path(), "v1", 128 * 1024);
    let v2 = GenBundle::new(dir.path(), "v2", 192 * 1024);
    let ssh = counting_ssh(&keys, None);
    let retag = ["--retag", "reg.local:5000/kant"];
    let load =
        |bundle: &GenBundle| kantup_load_into("docker", &ssh, &keys, &bundle.path, &urls, &retag);

    // 0. The link drops after 700 KiB of the ~1.3 MiB archive: docker loads nothing, so no
    // image is named.
    let cutting = counting_ssh(&keys, Some(700 * 1024));
    let cut = kantup_load_into("docker", &cutting, &keys, &v1.path, &urls, &retag);
    assert_eq!(cut.output.status.code(), Some(1), "{}", cut.report);
    let report = node_report(&cut, &node);
    assert_eq!(report["status"], "failed", "{report}");
    eprintln!("docker node, interrupted: {}", report["error"]);
    assert_eq!(
        node.docker().images(),
        Vec::<String>::new(),
        "{}",
        cut.report
    );

    // 1. An empty engine: every layer (the shared base ones once) and every config.
    let first = load(&v1);
    assert_ok(&first);
    let all_v1 = docker_blobs(&v1);
    let all_v1_bytes: u64 = all_v1.values().sum();
    let report = node_report(&first, &node);
    assert_eq!(report["status"], "done", "{report}");
    assert_eq!(report["blobs_sent"], all_v1.len(), "{report}");
    assert_eq!(report["blob_bytes_sent"], all_v1_bytes, "{report}");
    assert_eq!(report["images"].as_array().unwrap().len(), 4, "{report}");
    assert!(
        first.bytes_into_ssh >= all_v1_bytes
            && first.bytes_into_ssh <= all_v1_bytes + ARCHIVE_OVERHEAD,
        "sent {} bytes over ssh for {all_v1_bytes} bytes of layers and configs",
        first.bytes_into_ssh
    );
    assert_docker_node_has(&node, &v1);

    // 2. A newer bundle: its new layers and configs only.
    let changed: BTreeMap<String, u64> = docker_blobs(&v2)
        .into_iter()
        .filter(|(digest, _)| !all_v1.contains_key(digest))
        .collect();
    let changed_bytes: u64 = changed.values().sum();
    assert_eq!(changed.len(), 4, "2 own layers, 2 configs");
    let second = load(&v2);
    assert_ok(&second);
    let report = node_report(&second, &node);
    assert_eq!(report["status"], "done", "{report}");
    assert_eq!(report["blobs_sent"], changed.len(), "{report}");
    assert_eq!(report["blob_bytes_sent"], changed_bytes, "{report}");
    assert!(
        second.bytes_into_ssh >= changed_bytes
            && second.bytes_into_ssh <= changed_bytes + ARCHIVE_OVERHEAD,
        "sent {} bytes over ssh for {changed_bytes} bytes of new layers and configs",
        second.bytes_into_ssh
    );
    assert_docker_node_has(&node, &v2);
    eprintln!(
        "docker node: first load {} bytes over ssh ({all_v1_bytes} of layers and configs), second {} ({changed_bytes})",
        first.bytes_into_ssh, second.bytes_into_ssh
    );

    // 3. Again: nothing is sent, no name moves.
    let third = load(&v2);
    assert_ok(&third);
    assert_eq!(third.bytes_into_ssh, 0, "{}", third.report);
    let report = node_report(&third, &node);
    assert_eq!(report["blobs_sent"], 0, "{report}");
    for image in report["images"].as_array().unwrap() {
        assert_eq!(image["changed"], false, "{image}");
    }
    assert_docker_node_has(&node, &v2);
}
