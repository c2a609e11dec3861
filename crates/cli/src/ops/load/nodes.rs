//! Loading a bundle's images onto nodes without a registry, over ssh, sending only what each
//! node's runtime lacks: containerd here, Docker Engine in [`super::docker_node`].
//!
//! For each containerd node: `ctr content ls` and `ctr images ls` say what it has; an OCI archive holding
//! only the missing blobs (containerd's importer takes an archive that leaves out blobs its
//! content store already holds) and an `index.json` naming each image under a temporary name
//! is streamed into `ctr images import -`; `ctr images check` must find the image complete
//! before it gets its real names (`ctr images tag`), so an interrupted import never leaves an
//! image named as if complete; then `ctr images ls` must show every name at the bundle's
//! manifest digest and the manifest on the node must name the bundle's config (the image ID).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use kantup_bundle::archive::{Image, ImageArchive};
use kantup_registry::RelocationRule;
use serde::{Deserialize, Serialize};

use super::docker_node::DockerNodeRun;
use super::ssh::{Node, RemoteError, SshClient, quote};
use super::{LoadError, Runtime};

/// What to load onto which nodes.
#[derive(Debug, Clone)]
pub struct NodeLoadOptions {
    /// A bundle or an image archive.
    pub input: PathBuf,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The runtime on the nodes (containerd or docker).
    pub runtime: Runtime,
    /// Also tag every image with the name this rule gives it.
    pub retag: Option<RelocationRule>,
    /// The containerd namespace (`ctr -n`).
    pub namespace: String,
    /// Global arguments for `ctr` or `docker` on the node, before its subcommand.
    pub runtime_args: Vec<String>,
    /// The runtime CLI on the node (default `ctr` or `docker`).
    pub runtime_bin: Option<String>,
    /// How to run ssh.
    pub ssh: SshClient,
    /// Nodes worked on at once.
    pub max_parallel: usize,
    /// How the bundle is opened (the expansion limit of a compressed bundle).
    pub open: kantup_bundle::OpenOptions,
    /// Accept a bundle that lacks images its chart needs; without it such a bundle is refused
    /// before any node is touched, as the local `load` refuses it.
    pub allow_missing_images: bool,
    /// Every image must be signed by one of these public keys (`--image-key`), checked
    /// before any node is touched.
    pub image_keys: Vec<PathBuf>,
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Every image is on the node under every name, at the bundle's digests.
    Done,
    /// Something failed; see `error`. No image was named that is not complete.
    Failed,
}

/// One image on one node, as the node reported it after loading.
#[derive(Debug, Clone, Serialize)]
pub struct NodeImage {
    /// The name.
    pub name: String,
    /// The bundle's manifest digest; the node reports the same for `name` (containerd; docker
    /// keeps no manifest of a loaded image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The image ID (config digest) the node's manifest names; equal to the bundle's.
    pub image_id: String,
    /// Whether this run imported or re-tagged it (false: it was already there).
    pub changed: bool,
}

/// What happened on one node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// `ssh://...`.
    pub node: String,
    /// Done or failed.
    pub status: NodeStatus,
    /// Blobs (layers, configs, manifests) sent.
    pub blobs_sent: usize,
    /// Bytes of layers, configs and manifests sent.
    pub blob_bytes_sent: u64,
    /// Bytes streamed into the connection (the archive, tar headers included).
    pub bytes_sent: u64,
    /// Blobs the node already had and was not sent.
    pub blobs_skipped: usize,
    /// Every name, checked on the node (empty when it failed).
    pub images: Vec<NodeImage>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When work on the node began (RFC 3339, UTC, milliseconds).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
}

/// What [`load_nodes`] did, node by node in the order given.
#[derive(Debug, Clone, Serialize)]
pub struct NodesReport {
    /// The input.
    pub input: PathBuf,
    /// The runtime on the nodes.
    pub runtime: Runtime,
    /// The containerd namespace (containerd only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One report per node.
    pub nodes: Vec<NodeReport>,
}

impl NodesReport {
    /// Whether every node is done.
    pub fn all_done(&self) -> bool {
        self.nodes.iter().all(|n| n.status == NodeStatus::Done)
    }
}

/// One entry of a nodes file: `ssh://...` or `{host, user, port}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NodeEntry {
    Address(String),
    Fields(Node),
}

/// Reads a nodes file: a YAML list whose items are `ssh://[USER@]HOST[:PORT]` or
/// `{host: HOST, user: USER, port: PORT}`.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let file = dir.path().join("nodes.yaml");
/// std::fs::write(&file, "- ssh://root@edge-1\n- {host: edge-2, port: 2222}\n").unwrap();
/// let nodes = kantup::ops::load::read_nodes_file(&file).unwrap();
/// assert_eq!(nodes[1].to_string(), "ssh://edge-2:2222");
/// ```
pub fn read_nodes_file(path: &Path) -> Result<Vec<Node>, LoadError> {
    let bad = |reason: String| LoadError::NodesFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let entries: Vec<NodeEntry> = serde_yaml::from_str(&text)
        .map_err(|e| bad(format!("{e} (expected a list of ssh://[USER@]HOST[:PORT])")))?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| match entry {
            NodeEntry::Address(text) => Node::parse(&text).map_err(|e| bad(format!("[{i}]: {e}"))),
            NodeEntry::Fields(node) => Node::parse(&node.to_string())
                .map(|_| node)
                .map_err(|e| bad(format!("[{i}]: {e}"))),
        })
        .collect()
}

/// Loads the input's images onto every node (at most `max_parallel` at once) and reports per
/// node. A node that fails does not stop the others. Blocking.
pub fn load_nodes(options: &NodeLoadOptions) -> Result<NodesReport, LoadError> {
    if options.runtime == Runtime::Podman {
        return Err(LoadError::NodeRuntime(options.runtime));
    }
    let archive = open_archive(
        &options.input,
        &options.open,
        &options.image_keys,
        options.allow_missing_images,
    )?;
    let images: Vec<Image> = archive.images().to_vec();
    if images.is_empty() {
        return Err(LoadError::NoImages(options.input.clone()));
    }
    let plan = names_of(&images, options.retag.as_ref());
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..options.max_parallel.clamp(1, options.nodes.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(node) = options.nodes.get(i) else {
                        break;
                    };
                    let run = NodeRun {
                        node,
                        options,
                        archive: &archive,
                        images: &images,
                        names: &plan,
                    };
                    let report = report_on(node, |report| match options.runtime {
                        Runtime::Docker => DockerNodeRun(&run).load(report),
                        _ => run.load(report),
                    });
                    reports.lock().expect("not poisoned").insert(i, report);
                }
            });
        }
    });
    Ok(NodesReport {
        input: options.input.clone(),
        runtime: options.runtime,
        namespace: (options.runtime == Runtime::Containerd).then(|| options.namespace.clone()),
        nodes: reports
            .into_inner()
            .expect("not poisoned")
            .into_values()
            .collect(),
    })
}

fn open_archive(
    input: &Path,
    open: &kantup_bundle::OpenOptions,
    image_keys: &[std::path::PathBuf],
    allow_missing_images: bool,
) -> Result<ImageArchive, LoadError> {
    let open_error = |source| LoadError::Open {
        path: input.to_path_buf(),
        source,
    };
    let bundle = kantup_bundle::Bundle::open_with(input, open).map_err(open_error)?;
    // Signed by one of the keys (when given) before anything else is asked of the bundle.
    crate::ops::image_keys::require_signed(&bundle, image_keys)?;
    super::input::require_bundle_images(&bundle, input, allow_missing_images)?;
    if let Some(record) = bundle.base().map_err(open_error)? {
        return Err(LoadError::Differential {
            path: input.to_path_buf(),
            base: record.base.to_string(),
            omitted: record.omitted.len(),
        });
    }
    if let Some(archive) = bundle.image_archive().map_err(open_error)? {
        if let Some(index) = archive.indexes().first() {
            return Err(LoadError::MultiPlatform {
                path: input.to_path_buf(),
                image: index.digest.to_string(),
            });
        }
        return Ok(archive);
    }
    if bundle.has_member("manifest.json") || bundle.has_member("index.json") {
        return ImageArchive::open(input).map_err(open_error);
    }
    Err(LoadError::NotAnArchive(input.to_path_buf()))
}

/// Every name each image (by index) gets: its references, and their re-tagged names.
fn names_of(images: &[Image], retag: Option<&RelocationRule>) -> Vec<Vec<String>> {
    images
        .iter()
        .map(|image| {
            let mut names = BTreeSet::new();
            for name in &image.references {
                names.insert(name.to_string());
                if let (Some(rule), Some(reference)) = (retag, name.reference())
                    && reference.tag.is_some()
                {
                    names.insert(rule.target_name(
                        &reference.repository,
                        reference.tag.as_deref(),
                        "",
                    ));
                }
            }
            names.into_iter().collect()
        })
        .collect()
}

/// The name an image is imported under until it is checked complete.
fn temporary_name(image: &Image) -> String {
    format!(
        "kantup-import.invalid/incomplete:{}",
        image.manifest_digest.hex()
    )
}

/// One node's load: the node, the options, the bundle's images and their names; its methods
/// load into containerd, [`DockerNodeRun`]'s into docker.
pub(super) struct NodeRun<'a> {
    pub(super) node: &'a Node,
    pub(super) options: &'a NodeLoadOptions,
    pub(super) archive: &'a ImageArchive,
    pub(super) images: &'a [Image],
    /// Every name of each image (by index).
    pub(super) names: &'a [Vec<String>],
}

/// What the node's containerd holds.
struct NodeState {
    blobs: HashSet<String>,
    /// Name -> manifest digest.
    images: BTreeMap<String, String>,
}

/// The report of one node's `load`, timed.
fn report_on(
    node: &Node,
    load: impl FnOnce(&mut NodeReport) -> Result<Vec<NodeImage>, RemoteError>,
) -> NodeReport {
    let now = || humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let mut report = NodeReport {
        started_at: now(),
        finished_at: String::new(),
        node: node.to_string(),
        status: NodeStatus::Failed,
        blobs_sent: 0,
        blob_bytes_sent: 0,
        bytes_sent: 0,
        blobs_skipped: 0,
        images: Vec::new(),
        error: None,
    };
    match load(&mut report) {
        Ok(images) => {
            report.images = images;
            report.status = NodeStatus::Done;
        }
        Err(error) => report.error = Some(error.to_string()),
    }
    report.finished_at = now();
    report
}

impl NodeRun<'_> {
    /// `ctr [GLOBAL..] -n NS ARGS..` as one remote command line.
    fn ctr(&self, args: &[&str]) -> String {
        let program = self.options.runtime_bin.as_deref().unwrap_or("ctr");
        std::iter::once(program)
            .chain(self.options.runtime_args.iter().map(String::as_str))
            .chain(["-n", &self.options.namespace])
            .chain(args.iter().copied())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// What the node holds, and the output of `extra` commands, in one ssh connection.
    fn state(&self, extra: &[String]) -> Result<(NodeState, Vec<String>), RemoteError> {
        let mut commands = vec![
            self.ctr(&["content", "ls", "-q"]),
            self.ctr(&["images", "ls"]),
        ];
        commands.extend(extra.iter().cloned());
        let mut outputs = self.options.ssh.run_each(self.node, &commands)?.into_iter();
        let blobs = outputs
            .next()
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        // REF TYPE DIGEST SIZE PLATFORMS LABELS
        let images = outputs
            .next()
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut cols = line.split_whitespace();
                let name = cols.next()?;
                let digest = cols.nth(1)?;
                Some((name.to_string(), digest.to_string()))
            })
            .collect();
        Ok((NodeState { blobs, images }, outputs.collect()))
    }

    fn load(&self, report: &mut NodeReport) -> Result<Vec<NodeImage>, RemoteError> {
        let (before, _) = self.state(&[])?;
        // Images to import: a name missing or elsewhere, or a blob missing.
        let mut to_import = Vec::new();
        let mut send = Vec::new();
        let mut sent_digests = HashSet::new();
        for (image, names) in self.images.iter().zip(self.names) {
            let manifest = image.manifest_digest.to_string();
            let blobs: Vec<_> = std::iter::once(&image.config)
                .chain(&image.layers)
                .map(|b| (b.digest, b.size))
                .collect();
            let missing: Vec<_> = blobs
                .iter()
                .filter(|(d, _)| !before.blobs.contains(&d.to_string()))
                .collect();
            let misnamed = names
                .iter()
                .any(|n| before.images.get(n) != Some(&manifest));
            if missing.is_empty() && !misnamed && before.blobs.contains(&manifest) {
                report.blobs_skipped += blobs.len() + 1;
                continue;
            }
            to_import.push(image);
            for (digest, size) in blobs {
                if before.blobs.contains(&digest.to_string()) {
                    report.blobs_skipped += 1;
                } else if sent_digests.insert(digest) {
                    send.push((digest, size));
                }
            }
        }
        if !to_import.is_empty() {
            self.import(&to_import, &send, &before, report)?;
        }
        self.verify(&before)
    }

    /// Streams the missing blobs and the manifests under temporary names into `ctr images
    /// import`, checks each image complete, then names it and drops the temporary name.
    fn import(
        &self,
        images: &[&Image],
        blobs: &[(kantup_bundle::Digest, u64)],
        before: &NodeState,
        report: &mut NodeReport,
    ) -> Result<(), RemoteError> {
        let temporaries: Vec<String> = images.iter().map(|i| temporary_name(i)).collect();
        let mut blob_count = 0;
        let mut blob_bytes = 0;
        let mut write = |out: &mut dyn Write| -> std::io::Result<()> {
            let mut tar = tar::Builder::new(out);
            let add = |tar: &mut tar::Builder<&mut dyn Write>,
                       name: &str,
                       size: u64,
                       data: &mut dyn std::io::Read|
             -> std::io::Result<()> {
                let mut header = tar::Header::new_ustar();
                header.set_size(size);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, name, data)
            };
            let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
            add(
                &mut tar,
                "oci-layout",
                layout.len() as u64,
                &mut &layout[..],
            )?;
            for (digest, size) in blobs {
                let mut blob = self
                    .archive
                    .open_blob(digest)
                    .map_err(std::io::Error::other)?;
                add(
                    &mut tar,
                    &format!("blobs/sha256/{}", digest.hex()),
                    *size,
                    &mut blob,
                )?;
                blob_count += 1;
                blob_bytes += size;
            }
            let mut entries = Vec::new();
            for (image, temporary) in images.iter().zip(&temporaries) {
                if !before.blobs.contains(&image.manifest_digest.to_string()) {
                    add(
                        &mut tar,
                        &format!("blobs/sha256/{}", image.manifest_digest.hex()),
                        image.manifest.len() as u64,
                        &mut image.manifest.as_slice(),
                    )?;
                    blob_count += 1;
                    blob_bytes += image.manifest.len() as u64;
                }
                entries.push(serde_json::json!({
                    "mediaType": image.manifest_media_type,
                    "digest": image.manifest_digest.to_string(),
                    "size": image.manifest.len(),
                    "annotations": {"io.containerd.image.name": temporary},
                }));
            }
            let index = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "manifests": entries,
            }))
            .expect("json");
            add(
                &mut tar,
                "index.json",
                index.len() as u64,
                &mut index.as_slice(),
            )?;
            tar.into_inner()?.flush()
        };
        let ssh = &self.options.ssh;
        let imported = ssh.run_with_input(
            self.node,
            &self.ctr(&["images", "import", "-"]),
            Some(&mut write),
        );
        report.blobs_sent = blob_count;
        report.blob_bytes_sent = blob_bytes;
        let result = imported.and_then(|(_, bytes)| {
            report.bytes_sent = bytes;
            self.check_and_name(images, &temporaries)
        });
        if result.is_err() {
            // Best effort: the temporary names must not outlive a failed import.
            let mut args = vec!["images", "rm"];
            args.extend(temporaries.iter().map(String::as_str));
            let _ = ssh.run(self.node, &self.ctr(&args));
        }
        result
    }

    fn check_and_name(&self, images: &[&Image], temporaries: &[String]) -> Result<(), RemoteError> {
        let ssh = &self.options.ssh;
        for (image, temporary) in images.iter().zip(temporaries) {
            let filter = format!("name=={temporary}");
            let check = ssh.run(self.node, &self.ctr(&["images", "check", &filter]))?;
            // REF TYPE DIGEST STATUS ...: STATUS is "complete (n/n)" or "incomplete (k/n)".
            let complete = check.lines().skip(1).any(|line| {
                let cols: Vec<_> = line.split_whitespace().collect();
                cols.first() == Some(&temporary.as_str()) && cols.get(3) == Some(&"complete")
            });
            if !complete {
                return Err(RemoteError {
                    command: format!("{}: {}", self.node, self.ctr(&["images", "check", &filter])),
                    message: format!(
                        "{} is not complete on the node after the import: {}",
                        image.display_name(),
                        check.trim()
                    ),
                });
            }
            let index = self
                .images
                .iter()
                .position(|i| i.manifest_digest == image.manifest_digest)
                .expect("one of ours");
            let mut steps: Vec<String> = self.names[index]
                .iter()
                .map(|name| self.ctr(&["images", "tag", "--force", temporary, name]))
                .collect();
            steps.push(self.ctr(&["images", "rm", temporary]));
            ssh.run(self.node, &steps.join(" && "))?;
        }
        Ok(())
    }

    /// Checks every name against the bundle: the node's manifest digest for it, and the
    /// config (image ID) that manifest names on the node.
    fn verify(&self, before: &NodeState) -> Result<Vec<NodeImage>, RemoteError> {
        let manifests: Vec<String> = self
            .images
            .iter()
            .map(|image| self.ctr(&["content", "get", &image.manifest_digest.to_string()]))
            .collect();
        let (after, node_manifests) = self.state(&manifests)?;
        let mut checked = Vec::new();
        for ((image, names), text) in self.images.iter().zip(self.names).zip(node_manifests) {
            let manifest = image.manifest_digest.to_string();
            let wrong = |message: String| RemoteError {
                command: format!("{}: {}", self.node, self.ctr(&["images", "ls"])),
                message,
            };
            for name in names {
                match after.images.get(name) {
                    Some(digest) if *digest == manifest => {}
                    Some(digest) => {
                        return Err(wrong(format!(
                            "{name} is {digest} on the node, the bundle has {manifest}"
                        )));
                    }
                    None => return Err(wrong(format!("{name} is not on the node"))),
                }
            }
            let image_id = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["config"]["digest"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if image_id != image.config.digest.to_string() {
                return Err(wrong(format!(
                    "{}: the node's manifest names config {image_id:?}, the bundle's is {}",
                    image.display_name(),
                    image.config.digest
                )));
            }
            for name in names {
                checked.push(NodeImage {
                    name: name.clone(),
                    manifest_digest: Some(manifest.clone()),
                    image_id: image_id.clone(),
                    changed: before.images.get(name) != Some(&manifest),
                });
            }
        }
        Ok(checked)
    }
}
