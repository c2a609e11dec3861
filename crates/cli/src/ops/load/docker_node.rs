//! Loading onto a node whose runtime is Docker Engine, over ssh, sending only what it lacks.
//!
//! `docker load` reads a docker-archive: `manifest.json` names each image's config and layer
//! files. moby's loader (image/tarexport) opens a layer's file only when the daemon lacks the
//! layer *chain* that ends there (its chain ID: the layer's diff ID on top of every layer
//! below it), so the archive may leave out the files of the layers the node already has at
//! that position; a layer the node holds only under another chain must still be sent. So:
//! `docker image inspect` of every image on the node gives its ID and its layers' diff IDs,
//! hence the chains it holds; an image whose ID (its config digest) is there is not sent at
//! all, only tagged; the others go in one archive holding their configs and the layers whose
//! chain the node lacks, streamed into `docker load`. docker names an image only once it is
//! stored whole, so no half-loaded image is ever named. Then every name must resolve on the
//! node to the bundle's config digest.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use kantup_bundle::Digest;
use kantup_bundle::archive::Image;

use super::nodes::{NodeImage, NodeReport, NodeRun};
use super::ssh::{RemoteError, quote};

/// One node's load into its Docker Engine.
pub(super) struct DockerNodeRun<'a>(pub(super) &'a NodeRun<'a>);

/// What the node's docker holds.
struct DockerState {
    /// Image IDs.
    ids: HashSet<String>,
    /// Chain IDs of every layer of every image.
    chains: HashSet<String>,
    /// Name -> image ID, for the names asked about.
    names: BTreeMap<String, String>,
}

/// The chain ID of every layer of an image whose layers have `diff_ids`, base first: the
/// base's diff ID, then `sha256("<chain below> <diff ID>")` upwards (the image spec's rule).
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let chain = match chains.last() {
            None => diff_id.clone(),
            Some(below) => Digest::of(format!("{below} {diff_id}").as_bytes()).to_string(),
        };
        chains.push(chain);
    }
    chains
}

/// Whether docker can give an image `name` as a tag (a tagged name without a digest).
fn taggable(name: &str) -> bool {
    name.parse::<kantup_bundle::reference::Reference>()
        .is_ok_and(|r| r.tag.is_some() && r.digest.is_none() && !name.contains('@'))
}

impl DockerNodeRun<'_> {
    /// `docker [GLOBAL..] ARGS..` as one remote command line.
    fn docker(&self, args: &[&str]) -> String {
        let program = self.0.options.runtime_bin.as_deref().unwrap_or("docker");
        std::iter::once(program)
            .chain(self.0.options.runtime_args.iter().map(String::as_str))
            .chain(args.iter().copied())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The names docker can carry, per image.
    fn tags(&self, index: usize) -> impl Iterator<Item = &String> {
        self.0.names[index].iter().filter(|name| taggable(name))
    }

    /// What the node holds: its images' IDs and chains, and what each of our names is, in one
    /// ssh connection.
    fn state(&self) -> Result<DockerState, RemoteError> {
        let list = self.docker(&["image", "ls", "-aq", "--no-trunc"]);
        let inspect = self.docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{json .RootFS.Layers}}",
        ]);
        let mut commands = vec![format!(
            "ids=$({list} | sort -u) && if [ -n \"$ids\" ]; then {inspect} $ids; fi"
        )];
        let names: Vec<&String> = (0..self.0.images.len())
            .flat_map(|i| self.tags(i))
            .collect();
        // A name the node lacks answers "-" (docker image inspect fails for it).
        commands.extend(names.iter().map(|name| {
            format!(
                "{{ {} 2>/dev/null || echo -; }}",
                self.docker(&["image", "inspect", "--format", "{{.Id}}", name])
            )
        }));
        let mut outputs = self
            .0
            .options
            .ssh
            .run_each(self.0.node, &commands)?
            .into_iter();
        let mut state = DockerState {
            ids: HashSet::new(),
            chains: HashSet::new(),
            names: BTreeMap::new(),
        };
        for line in outputs.next().unwrap_or_default().lines() {
            let Some((id, layers)) = line.trim().split_once(' ') else {
                continue;
            };
            state.ids.insert(id.to_string());
            let diff_ids: Vec<String> = serde_json::from_str(layers).unwrap_or_default();
            state.chains.extend(chain_ids(&diff_ids));
        }
        for (name, output) in names.into_iter().zip(outputs) {
            let id = output.trim();
            if id.starts_with("sha256:") {
                state.names.insert(name.clone(), id.to_string());
            }
        }
        Ok(state)
    }

    /// The diff IDs of `image`'s layers, as the archive read them from its config
    /// (`rootfs.diff_ids`, checked against the layers there); every layer needs one.
    fn diff_ids(&self, image: &Image) -> Result<Vec<String>, RemoteError> {
        image
            .layers
            .iter()
            .map(|layer| {
                layer
                    .diff_id
                    .map(|d| d.to_string())
                    .ok_or_else(|| RemoteError {
                        command: format!("reading the config of {}", image.display_name()),
                        message: format!(
                            "it lists {} diff IDs for {} layers",
                            image.layers.iter().filter(|l| l.diff_id.is_some()).count(),
                            image.layers.len()
                        ),
                    })
            })
            .collect()
    }

    pub(super) fn load(&self, report: &mut NodeReport) -> Result<Vec<NodeImage>, RemoteError> {
        let before = self.state()?;
        // Images to load: those whose ID the node lacks; with the layer files whose chain it
        // lacks (a file once, however many images need it).
        let mut to_load = Vec::new();
        let mut files: Vec<(Digest, u64)> = Vec::new();
        let mut in_archive = HashSet::new();
        for (index, image) in self.0.images.iter().enumerate() {
            if before.ids.contains(&image.config.digest.to_string()) {
                report.blobs_skipped += 1 + image.layers.len();
                continue;
            }
            to_load.push(index);
            let chains = chain_ids(&self.diff_ids(image)?);
            for (layer, chain) in image.layers.iter().zip(chains) {
                if before.chains.contains(&chain) {
                    report.blobs_skipped += 1;
                } else if in_archive.insert(layer.digest) {
                    files.push((layer.digest, layer.size));
                }
            }
        }
        if !to_load.is_empty() {
            self.send(&to_load, &files, report)?;
        }
        // Names of images that were there already (or that docker load did not give).
        let id_of = |index: usize| self.0.images[index].config.digest.to_string();
        let steps: Vec<String> = (0..self.0.images.len())
            .flat_map(|index| {
                let id = id_of(index);
                self.tags(index)
                    .filter(|name| {
                        !to_load.contains(&index) && before.names.get(*name) != Some(&id)
                    })
                    .map(|name| self.docker(&["tag", &id, name]))
                    .collect::<Vec<_>>()
            })
            .collect();
        if !steps.is_empty() {
            self.0.options.ssh.run(self.0.node, &steps.join(" && "))?;
        }
        self.verify(&before)
    }

    /// Streams a docker-archive of the images `to_load` (by index), holding their configs and
    /// the layer `files`, into `docker load`.
    fn send(
        &self,
        to_load: &[usize],
        files: &[(Digest, u64)],
        report: &mut NodeReport,
    ) -> Result<(), RemoteError> {
        let path = |digest: &Digest| format!("blobs/sha256/{}", digest.hex());
        let (mut blob_count, mut blob_bytes) = (0, 0);
        let mut write = |out: &mut dyn Write| -> std::io::Result<()> {
            let mut tar = tar::Builder::new(out);
            let mut add = |name: &str, size: u64, data: &mut dyn std::io::Read| {
                let mut header = tar::Header::new_ustar();
                header.set_size(size);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, name, data)
            };
            let mut manifest = Vec::new();
            for &index in to_load {
                let image = &self.0.images[index];
                let mut config = self
                    .0
                    .archive
                    .open_blob(&image.config.digest)
                    .map_err(std::io::Error::other)?;
                add(&path(&image.config.digest), image.config.size, &mut config)?;
                blob_count += 1;
                blob_bytes += image.config.size;
                manifest.push(serde_json::json!({
                    "Config": path(&image.config.digest),
                    "RepoTags": self.tags(index).collect::<Vec<_>>(),
                    "Layers": image.layers.iter().map(|l| path(&l.digest)).collect::<Vec<_>>(),
                }));
            }
            for (digest, size) in files {
                let mut blob = self
                    .0
                    .archive
                    .open_blob(digest)
                    .map_err(std::io::Error::other)?;
                add(&path(digest), *size, &mut blob)?;
                blob_count += 1;
                blob_bytes += size;
            }
            let manifest = serde_json::to_vec(&manifest).expect("json");
            add(
                "manifest.json",
                manifest.len() as u64,
                &mut manifest.as_slice(),
            )?;
            tar.into_inner()?.flush()
        };
        let loaded = self.0.options.ssh.run_with_input(
            self.0.node,
            &self.docker(&["load", "-q"]),
            Some(&mut write),
        );
        report.blobs_sent = blob_count;
        report.blob_bytes_sent = blob_bytes;
        let (_, bytes) = loaded?;
        report.bytes_sent = bytes;
        Ok(())
    }

    /// Checks every name against the bundle: docker must give it the bundle's config digest
    /// as its image ID.
    fn verify(&self, before: &DockerState) -> Result<Vec<NodeImage>, RemoteError> {
        let after = self.state()?;
        let mut checked = Vec::new();
        for (index, image) in self.0.images.iter().enumerate() {
            let id = image.config.digest.to_string();
            for name in self.tags(index) {
                match after.names.get(name) {
                    Some(found) if *found == id => {}
                    found => {
                        return Err(RemoteError {
                            command: format!(
                                "{}: {}",
                                self.0.node,
                                self.docker(&["image", "inspect", name])
                            ),
                            message: match found {
                                Some(found) => format!(
                                    "{name} is image {found} on the node, the bundle's is {id}"
                                ),
                                None => format!("{name} is not on the node"),
                            },
                        });
                    }
                }
                checked.push(NodeImage {
                    name: name.clone(),
                    manifest_digest: None,
                    image_id: id.clone(),
                    changed: before.names.get(name) != Some(&id),
                });
            }
            for name in self.0.names[index].iter().filter(|n| !taggable(n)) {
                tracing::warn!("{name}: docker names images by tag only; not given this name");
            }
        }
        Ok(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain IDs dockerd 20.10 gave the layers of an image it loaded (the names of its
    /// `image/vfs/layerdb/sha256/` directories).
    #[test]
    fn chain_ids_are_the_ones_docker_gives() {
        let base = "sha256:5668b1bf45c15744ac86bc3ebaa3cfbf9b9b165267dd5bc50570c969faad8980";
        let top = "sha256:5b1a8e1d706c20c0dc3dcc950cbd80bd92c008631721e7b18f3e21e23144aa16";
        assert_eq!(
            chain_ids(&[base.to_string(), top.to_string()]),
            [
                base,
                "sha256:dbfb2db4955c16df2666b8d1c79ea5d9e906b056b50fe944258af81bf1ff9a97"
            ]
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn docker_tags_only_tagged_names() {
        assert!(taggable("docker.io/kant/app:1.0"));
        assert!(taggable("reg.local:5000/kant/app:1.0"));
        assert!(!taggable(&format!("kant/app@sha256:{}", "a".repeat(64))));
    }
}
