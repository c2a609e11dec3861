//! Generated test content: images sharing base layers, written as an OCI layout directory,
//! plus a chart whose values and relok8s hints name each image, ready for
//! `kantup_bundle::create::create`. Content is pseudo-random from a seed and streamed to disk,
//! so large sets (a 1 GiB benchmark bundle) never sit in memory.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// Number of images.
    pub images: usize,
    /// Layers every image shares (base first).
    pub base_layers: usize,
    /// Size of each shared layer's file content.
    pub base_layer_size: usize,
    /// Size of each image's own top layer content.
    pub own_layer_size: usize,
    pub seed: u64,
    /// Source registry and namespace of the generated references.
    pub source_prefix: String,
}

impl Default for GenSpec {
    fn default() -> Self {
        Self {
            images: 12,
            base_layers: 2,
            base_layer_size: 256 * 1024,
            own_layer_size: 64 * 1024,
            seed: 7,
            source_prefix: "example.com/kantup".into(),
        }
    }
}

/// One descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenBlob {
    pub digest: String,
    pub size: u64,
}

/// One generated image.
#[derive(Debug, Clone)]
pub struct GenImage {
    /// `example.com/kantup/gen-app-00:1.0.0`.
    pub reference: String,
    /// `kantup/gen-app-00`.
    pub repository: String,
    pub tag: String,
    pub manifest_digest: String,
    pub config: GenBlob,
    pub layers: Vec<GenBlob>,
}

/// Paths of what [`generate_bundle_inputs`] wrote.
#[derive(Debug, Clone)]
pub struct GenBundleInputs {
    pub chart_dir: PathBuf,
    pub hints: PathBuf,
    pub layout: PathBuf,
    pub images: Vec<GenImage>,
}

impl GenBundleInputs {
    /// `kantup bundle create BUNDLE --chart .. --hints .. --images ..` for these inputs, run by
    /// the `kantup` binary at `kantup`; callers add flags (`--base`) before running it.
    pub fn bundle_create_command(&self, kantup: &Path, bundle: &Path) -> std::process::Command {
        let mut command = std::process::Command::new(kantup);
        command
            .args(["bundle", "create"])
            .arg(bundle)
            .arg("--chart")
            .arg(&self.chart_dir)
            .arg("--hints")
            .arg(&self.hints)
            .arg("--images")
            .arg(&self.layout);
        command
    }

    /// Runs [`Self::bundle_create_command`]; panics with kantup's stderr if it fails.
    pub fn create_bundle(&self, kantup: &Path, bundle: &Path) {
        let out = self
            .bundle_create_command(kantup, bundle)
            .output()
            .expect("run kantup bundle create");
        assert!(
            out.status.success(),
            "kantup bundle create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

struct HashingFile {
    file: std::fs::File,
    hasher: Sha256,
    size: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn blobs_dir(layout: &Path) -> PathBuf {
    layout.join("blobs/sha256")
}

/// Writes `data` as a blob.
fn put_bytes(layout: &Path, data: &[u8]) -> io::Result<GenBlob> {
    let hex = hex::encode(Sha256::digest(data));
    std::fs::write(blobs_dir(layout).join(&hex), data)?;
    Ok(GenBlob {
        digest: format!("sha256:{hex}"),
        size: data.len() as u64,
    })
}

/// Writes an uncompressed layer tar holding one file of `size` pseudo-random bytes.
fn put_layer(layout: &Path, name: &str, size: usize, rng: &mut Rng) -> io::Result<GenBlob> {
    let tmp = blobs_dir(layout).join(format!(".partial-{name}"));
    let file = std::fs::File::create(&tmp)?;
    let mut out = HashingFile {
        file,
        hasher: Sha256::new(),
        size: 0,
    };
    {
        let mut builder = tar::Builder::new(&mut out);
        let mut header = tar::Header::new_gnu();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        struct RandReader<'a> {
            rng: &'a mut Rng,
            left: usize,
        }
        impl io::Read for RandReader<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.left).min(1 << 20);
                self.rng.fill(&mut buf[..n]);
                self.left -= n;
                Ok(n)
            }
        }
        builder.append_data(
            &mut header,
            format!("data/{name}.bin"),
            RandReader { rng, left: size },
        )?;
        builder.finish()?;
    }
    out.flush()?;
    let hex = hex::encode(out.hasher.finalize());
    std::fs::rename(&tmp, blobs_dir(layout).join(&hex))?;
    Ok(GenBlob {
        digest: format!("sha256:{hex}"),
        size: out.size,
    })
}

/// Writes `spec.images` images into the OCI layout directory `layout`.
pub fn generate_layout(layout: &Path, spec: &GenSpec) -> io::Result<Vec<GenImage>> {
    std::fs::create_dir_all(blobs_dir(layout))?;
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let mut rng = Rng(spec.seed.max(1));
    let mut base = Vec::new();
    for i in 0..spec.base_layers {
        base.push(put_layer(
            layout,
            &format!("base-{i}"),
            spec.base_layer_size,
            &mut rng,
        )?);
    }
    let mut images = Vec::new();
    let mut index_entries = Vec::new();
    for n in 0..spec.images {
        let own = put_layer(
            layout,
            &format!("app-{n:02}"),
            spec.own_layer_size,
            &mut rng,
        )?;
        let mut layers = base.clone();
        layers.push(own);
        // Uncompressed layers: diff_id = digest.
        let diff_ids: Vec<String> = layers.iter().map(|l| format!("\"{}\"", l.digest)).collect();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["GEN_INDEX={n}"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids.join(",")
        );
        let config = put_bytes(layout, config.as_bytes())?;
        let layer_json: Vec<String> = layers
            .iter()
            .map(|l| {
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}"#,
                    l.digest, l.size
                )
            })
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
            config.digest,
            config.size,
            layer_json.join(",")
        );
        let manifest_blob = put_bytes(layout, manifest.as_bytes())?;
        let repository_tail = format!("gen-app-{n:02}");
        let (registry, ns) = spec
            .source_prefix
            .split_once('/')
            .unwrap_or((spec.source_prefix.as_str(), ""));
        let repository = if ns.is_empty() {
            repository_tail.clone()
        } else {
            format!("{ns}/{repository_tail}")
        };
        let tag = "1.0.0".to_string();
        let reference = format!("{registry}/{repository}:{tag}");
        index_entries.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{reference}"}}}}"#,
            manifest_blob.digest, manifest_blob.size
        ));
        images.push(GenImage {
            reference,
            repository,
            tag,
            manifest_digest: manifest_blob.digest,
            config,
            layers,
        });
    }
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            index_entries.join(",")
        ),
    )?;
    Ok(images)
}

/// Writes a layout (`dir/images`), a chart (`dir/chart`) whose values name every image, and
/// the matching hints file (`dir/hints.yaml`).
pub fn generate_bundle_inputs(dir: &Path, spec: &GenSpec) -> io::Result<GenBundleInputs> {
    let layout = dir.join("images");
    let images = generate_layout(&layout, spec)?;
    let chart_dir = dir.join("chart");
    std::fs::create_dir_all(chart_dir.join("templates"))?;
    std::fs::write(
        chart_dir.join("Chart.yaml"),
        "apiVersion: v2\nname: genchart\nversion: 0.1.0\ndescription: generated by kantup tests\n",
    )?;
    let mut values = String::from("images:\n");
    let mut hints = String::new();
    let mut template = String::new();
    for (n, image) in images.iter().enumerate() {
        let (registry, _) = image.reference.split_once('/').expect("registry/repo");
        values.push_str(&format!(
            "  app{n:02}:\n    registry: {registry}\n    repository: {}\n    tag: \"{}\"\n",
            image.repository, image.tag
        ));
        hints.push_str(&format!(
            "- \"{{{{ .images.app{n:02}.registry }}}}/{{{{ .images.app{n:02}.repository }}}}:{{{{ .images.app{n:02}.tag }}}}\"\n"
        ));
        template.push_str(&format!(
            "# app{n:02}: {{{{ .Values.images.app{n:02}.registry }}}}/{{{{ .Values.images.app{n:02}.repository }}}}:{{{{ .Values.images.app{n:02}.tag }}}}\n"
        ));
    }
    std::fs::write(chart_dir.join("values.yaml"), values)?;
    std::fs::write(
        chart_dir.join("templates/images.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: images\ndata:\n  list: |\n{}",
            template
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        ),
    )?;
    let hints_path = dir.join("hints.yaml");
    std::fs::write(&hints_path, hints)?;
    Ok(GenBundleInputs {
        chart_dir,
        hints: hints_path,
        layout,
        images,
    })
}
