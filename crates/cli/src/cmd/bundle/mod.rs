//! `kantup bundle inspect | verify | unpack | create | export-images`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use kantup_bundle::archive::{Compression, Image, ImageArchive, oci_layout};
use kantup_bundle::create::{CreateOptions, create};
use kantup_bundle::{Bundle, UnpackOptions, VerifyOptions};
use serde::Serialize;

use crate::output::{Ctx, OutputFormat, human_bytes};
use crate::progress;

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Show a bundle's chart, image hints and images (references, digests, layers).
    Inspect(InspectArgs),
    /// Check every blob, member checksum and layer diff ID of a bundle.
    Verify(VerifyArgs),
    /// Unpack a bundle safely into a new directory.
    Unpack(UnpackArgs),
    /// Create a bundle from a chart, a hints file and an image archive.
    Create(CreateArgs),
    /// Write a bundle's images into an OCI image layout directory (no registry needed).
    ExportImages(ExportArgs),
    /// What changes from OLD to NEW: images (and the bytes a registry holding OLD still
    /// needs), chart version, CRDs, default values.
    Diff(DiffArgs),
    /// Sign a bundle: a detached ECDSA P-256 / SHA-256 signature, as `cosign sign-blob --key`
    /// writes it (base64 of the DER signature), into `<bundle>.sig` by default.
    Sign(SignArgs),
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The bundle installed now.
    pub old: PathBuf,
    /// The bundle to install.
    pub new: PathBuf,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle.
    pub bundle: PathBuf,
    /// The private key (PEM: `EC PRIVATE KEY` as `openssl ecparam -genkey` writes, or PKCS#8).
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// Where to write the signature (default: `<bundle>.sig`; cosign's flag name).
    #[arg(long, value_name = "FILE")]
    pub output_signature: Option<PathBuf>,
}

/// `--verify-key` and `--signature`, shared by every command that takes a bundle.
#[derive(Debug, Clone, Args)]
pub struct SignatureArgs {
    /// Refuse the bundle unless its detached signature verifies with this public key (PEM, as
    /// `cosign generate-key-pair` or `openssl ec -pubout` write it); checked before anything
    /// else is done.
    #[arg(long, value_name = "PUB.pem")]
    pub verify_key: Option<PathBuf>,
    /// The signature file (base64 as cosign writes it, or DER as openssl writes it); default
    /// `<bundle>.sig`.
    #[arg(long, value_name = "FILE", requires = "verify_key")]
    pub signature: Option<PathBuf>,
}

impl SignatureArgs {
    /// Checks the signature of `bundle` when a key was given.
    pub fn check(&self, bundle: &std::path::Path) -> anyhow::Result<()> {
        if let Some(key) = &self.verify_key {
            kantup_bundle::signature::verify_bundle_file(bundle, key, self.signature.as_deref())?;
            tracing::info!(bundle = %bundle.display(), key = %key.display(), "signature verified");
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle (plain tar, .tar.gz or .tar.zst; detected from content), or a wrapped chart
    /// (`helm dt wrap`'s `*.wrap.tgz`).
    pub bundle: PathBuf,
    /// A helm binary to render the chart with its default values when neither hints,
    /// `Images.lock` nor `Chart.yaml` annotations list its images (every `image:` of the
    /// manifests then counts).
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle.
    pub bundle: PathBuf,
    /// Also decompress every layer and check it against the config's diff IDs.
    #[arg(long)]
    pub deep: bool,
    /// Also check the bundle's detached signature with this public key (PEM).
    #[arg(long, value_name = "PUB.pem")]
    pub key: Option<PathBuf>,
    /// The signature file (default: `<bundle>.sig`).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub signature: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The bundle.
    pub bundle: PathBuf,
    /// Target directory; must not exist or be empty.
    pub target: PathBuf,
    /// Refuse members larger than this many bytes.
    #[arg(long)]
    pub max_member_size: Option<u64>,
    /// Refuse bundles whose members total more than this many bytes.
    #[arg(long)]
    pub max_total_size: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    /// Choose from the output name: `.zst` -> zstd, `.gz`/`.tgz` -> gzip, else plain tar.
    Auto,
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// relok8s's intermediate bundle.
    Relok8s,
    /// Bitnami's wrapped chart (`*.wrap.tgz`).
    Wrap,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle file to write.
    #[arg(value_name = "BUNDLE")]
    pub file: PathBuf,
    /// The chart: a directory or a .tgz.
    #[arg(long)]
    pub chart: PathBuf,
    /// The relok8s hints file (YAML list of image templates). Without it the bundle carries an
    /// empty list, and its images are found through the chart's `Images.lock` or `Chart.yaml`
    /// annotations (`images`, `artifacthub.io/images`). Not used by `--format wrap`.
    #[arg(long)]
    pub hints: Option<PathBuf>,
    /// `relok8s` (hints.yaml, original-chart/, images.tar) or `wrap` (a Bitnami wrapped chart,
    /// as `helm dt wrap` writes it: chart/ with Images.lock, one OCI layout per image; gzip).
    #[arg(long, value_enum, default_value_t = FormatArg::Relok8s)]
    pub format: FormatArg,
    /// Image archive: docker-archive or OCI layout (tar or directory). Omit for charts only.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Outer compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::Auto)]
    pub compression: CompressionArg,
    /// Make a differential bundle: leave out the layers that this older bundle holds. It can
    /// only be synced to a registry that already has the base's images.
    #[arg(long, value_name = "OLD_BUNDLE")]
    pub base: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle.
    pub bundle: PathBuf,
    /// The OCI image layout directory to write (created, or added to).
    #[arg(long)]
    pub oci_layout: PathBuf,
    /// Only images with this reference (repeatable); default all.
    #[arg(long = "image")]
    pub images: Vec<String>,
    /// Rewrite Docker schema 2 manifests as OCI manifests (as `skopeo copy --format oci`):
    /// blobs stay, manifest digests change. skopeo and podman address only OCI-typed
    /// manifests by name in a layout. By default manifests are kept byte for byte.
    #[arg(long)]
    pub oci_manifests: bool,
}

pub async fn run(ctx: &Ctx, command: BundleCommand) -> anyhow::Result<ExitCode> {
    match command {
        BundleCommand::Inspect(a) => inspect(ctx, a),
        BundleCommand::Verify(a) => verify(ctx, a),
        BundleCommand::Unpack(a) => unpack(ctx, a),
        BundleCommand::Create(a) => create_cmd(ctx, a),
        BundleCommand::ExportImages(a) => export(ctx, a),
        BundleCommand::Sign(a) => sign(ctx, a),
        BundleCommand::Diff(a) => diff(ctx, a),
    }
}

#[derive(Serialize)]
struct InspectOutput {
    bundle: PathBuf,
    compression: Compression,
    layout: kantup_bundle::Layout,
    members: usize,
    chart: ChartOutput,
    hints: Vec<kantup_bundle::hints::ImagePattern>,
    /// The images the chart needs and where that list came from.
    chart_images: kantup_bundle::discovery::Discovery,
    images: Vec<Image>,
    /// For a differential bundle: its base and the layers it leaves out.
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<kantup_bundle::differential::BaseRecord>,
}

#[derive(Serialize)]
struct ChartOutput {
    name: String,
    version: String,
    app_version: Option<String>,
    api_version: String,
    subcharts: Vec<String>,
    crds: Vec<String>,
}

fn inspect(ctx: &Ctx, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let bundle = Bundle::open(&args.bundle)?;
    let chart = bundle.chart()?;
    let hints = bundle.hints()?;
    let archive = bundle.image_archive()?;
    let chart_images = kantup::ops::images::discover(&bundle, args.helm.as_deref())?;
    let info = InspectOutput {
        bundle: args.bundle.clone(),
        compression: bundle.compression(),
        layout: bundle.layout().clone(),
        chart_images,
        members: bundle.members().len(),
        chart: ChartOutput {
            name: chart.name().to_string(),
            version: chart.metadata.version.to_string(),
            app_version: chart.metadata.app_version.clone(),
            api_version: chart.metadata.api_version.clone(),
            subcharts: chart
                .subcharts
                .iter()
                .map(|c| format!("{} {}", c.name(), c.metadata.version))
                .collect(),
            crds: chart
                .crds()
                .into_iter()
                .map(|(p, _)| p.to_string())
                .collect(),
        },
        hints,
        images: archive.map(|a| a.images().to_vec()).unwrap_or_default(),
        base: bundle.base()?,
    };
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&info)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Built in memory, written once: a closed pipe (`| head`) is not an error.
    let mut text = String::new();
    let outer = match info.compression {
        Compression::None => "plain tar",
        Compression::Gzip => "tar + gzip",
        Compression::Zstd => "tar + zstd",
    };
    let kind = match &info.layout {
        kantup_bundle::Layout::Relok8s => "bundle".to_string(),
        kantup_bundle::Layout::Wrap { root } => format!("wrapped chart {root}"),
    };
    let _ = writeln!(
        text,
        "Bundle:      {} ({kind}, {outer}, {} members)",
        info.bundle.display(),
        info.members
    );
    let _ = writeln!(
        text,
        "Chart:       {} {} (apiVersion {}{})",
        info.chart.name,
        info.chart.version,
        info.chart.api_version,
        info.chart
            .app_version
            .as_ref()
            .map(|v| format!(", appVersion {v}"))
            .unwrap_or_default()
    );
    if let Some(base) = &info.base {
        let _ = writeln!(
            text,
            "Base:        {}: differential, {} layers ({}) left out",
            base.base,
            base.omitted.len(),
            crate::output::human_bytes(base.omitted_bytes())
        );
    }
    for s in &info.chart.subcharts {
        let _ = writeln!(text, "  subchart   {s}");
    }
    for c in &info.chart.crds {
        let _ = writeln!(text, "  crd        {c}");
    }
    let _ = writeln!(text, "\nHints ({}):", info.hints.len());
    let _ = writeln!(
        text,
        "  {:<60} {:<28} {:<34} TAG / DIGEST",
        "TEMPLATE", "REGISTRY", "REPOSITORY"
    );
    for h in &info.hints {
        let tail = [
            h.tag.as_ref().map(|t| t.to_string()),
            h.digest.as_ref().map(|d| format!("@{d}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let _ = writeln!(
            text,
            "  {:<60} {:<28} {:<34} {}",
            h.template,
            h.registry
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            h.repository.to_string(),
            if tail.is_empty() { "-".into() } else { tail }
        );
    }
    let _ = writeln!(
        text,
        "\nChart images ({}), listed by {}:",
        info.chart_images.images.len(),
        info.chart_images.source
    );
    if info.chart_images.source == kantup_bundle::discovery::ImageSource::None {
        let _ = writeln!(
            text,
            "  none: no hints, Images.lock or images annotation; --helm PATH renders the chart to find them"
        );
    }
    for image in &info.chart_images.images {
        let digests: Vec<String> = image
            .digests
            .iter()
            .map(|d| format!("{} {}", d.arch, d.digest))
            .collect();
        let _ = writeln!(
            text,
            "  {:<60} {}{}",
            image.reference.to_string(),
            image.chart,
            if digests.is_empty() {
                String::new()
            } else {
                format!(" ({})", digests.join(", "))
            }
        );
    }
    let _ = writeln!(text, "\nImages ({}):", info.images.len());
    for image in &info.images {
        let names: Vec<String> = image.references.iter().map(|r| r.to_string()).collect();
        let _ = writeln!(
            text,
            "  {}",
            if names.is_empty() {
                "<unnamed>".to_string()
            } else {
                names.join(", ")
            }
        );
        let _ = writeln!(
            text,
            "    manifest  {} {} ({})",
            image.manifest_digest,
            image.manifest_media_type,
            human_bytes(image.manifest.len() as u64)
        );
        if let Some(p) = &image.platform {
            let _ = writeln!(text, "    platform  {p}");
        }
        let _ = writeln!(
            text,
            "    config    {} ({})",
            image.config.digest,
            human_bytes(image.config.size)
        );
        if image.layers.is_empty() {
            let _ = writeln!(text, "    layers    none");
        }
        let omitted: std::collections::HashSet<_> = info
            .base
            .iter()
            .flat_map(|b| b.omitted.iter().map(|o| o.digest))
            .collect();
        for l in &image.layers {
            let _ = writeln!(
                text,
                "    layer     {} ({}, {:?}){}",
                l.digest,
                human_bytes(l.size),
                l.compression,
                if omitted.contains(&l.digest) {
                    ", in the base"
                } else {
                    ""
                }
            );
        }
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn verify(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let signed = SignatureArgs {
        verify_key: args.key.clone(),
        signature: args.signature.clone(),
    };
    signed.check(&args.bundle)?;
    let bundle = Bundle::open(&args.bundle)?;
    let bar = progress::bytes_bar(ctx, bundle.tar_size(), "verifying");
    let result = bundle.verify(VerifyOptions { deep: args.deep }, &mut |n| bar.inc(n));
    bar.finish_and_clear();
    let report =
        result.with_context(|| format!("verification of {} failed", args.bundle.display()))?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&serde_json::json!({
            "bundle": args.bundle,
            "ok": true,
            "signature_verified": args.key.is_some(),
            "report": report
        }))?;
    } else if !ctx.quiet {
        println!(
            "OK {}: chart {}, {} hints, {} images, {} blobs ({}) verified, {} member checksums{}",
            args.bundle.display(),
            report.chart.as_deref().unwrap_or("-"),
            report.hints,
            report.images,
            report.blobs,
            crate::output::human_bytes(report.bytes),
            report.checksummed_members,
            if args.deep {
                format!(", {} layer diff IDs", report.diff_ids_checked)
            } else {
                String::new()
            }
        );
        if let Some(base) = &report.base {
            println!(
                "Differential: needs {} layers ({}) from base {} already in the target registry",
                base.omitted.len(),
                crate::output::human_bytes(base.omitted_bytes()),
                base.base
            );
        }
        if let Some(key) = &args.key {
            println!("OK signature verified with {}", key.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn diff(ctx: &Ctx, args: DiffArgs) -> anyhow::Result<ExitCode> {
    let diff = kantup::ops::bundle_diff::diff_bundles(&args.old, &args.new)?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&diff)?;
        return Ok(ExitCode::SUCCESS);
    }
    let c = &diff.chart;
    println!(
        "chart: {} {} -> {} {}",
        c.old_name, c.old_version, c.new_name, c.new_version
    );
    let i = &diff.images;
    println!(
        "images: {} added, {} removed, {} changed, {} unchanged",
        i.added.len(),
        i.removed.len(),
        i.changed.len(),
        i.unchanged
    );
    for image in &i.added {
        println!(
            "  + {}:{} {} ({})",
            image.repository,
            image.tags.join(","),
            image.digest,
            human_bytes(image.size)
        );
    }
    for image in &i.removed {
        println!(
            "  - {}:{} {}",
            image.repository,
            image.tags.join(","),
            image.digest
        );
    }
    for image in &i.changed {
        println!(
            "  ~ {} {} -> {} ({} -> {}; {} blob(s), {} not in OLD)",
            image.repository,
            image.old_tags.join(","),
            image.new_tags.join(","),
            image.old_digest,
            image.new_digest,
            image.blobs_needed,
            human_bytes(image.bytes_needed)
        );
    }
    let t = &diff.transfer;
    println!(
        "to a registry holding OLD: {} of {} blobs, {} of {}",
        t.blobs_needed,
        t.blobs_total,
        human_bytes(t.bytes_needed),
        human_bytes(t.bytes_total)
    );
    println!("CRDs:");
    if diff.crds.is_empty() {
        println!("  (no change)");
    }
    for crd in &diff.crds {
        let sign = match crd.change {
            "added" => '+',
            "removed" => '-',
            _ => '~',
        };
        let ch = &crd.changes;
        let mut details = Vec::new();
        if !ch.versions_added.is_empty() {
            details.push(format!("+versions {}", ch.versions_added.join(",")));
        }
        if !ch.versions_removed.is_empty() {
            details.push(format!("-versions {}", ch.versions_removed.join(",")));
        }
        if !ch.spec_fields_changed.is_empty() {
            details.push(format!("spec {}", ch.spec_fields_changed.join(",")));
        }
        println!("  {sign} {} {}", crd.name, details.join("; "));
        for version in &ch.versions_changed {
            for change in &version.schema {
                let sign = match change.kind {
                    kantup_k8s_apply::crd::SchemaChangeKind::Added => '+',
                    kantup_k8s_apply::crd::SchemaChangeKind::Removed => '-',
                    kantup_k8s_apply::crd::SchemaChangeKind::Changed => '~',
                };
                println!("      {}: {sign} {}", version.name, change.path);
            }
        }
    }
    println!("default values:");
    if diff.values.is_empty() {
        println!("  (no change)");
    }
    for change in &diff.values {
        let show =
            |v: &Option<serde_json::Value>| v.as_ref().map_or("-".to_string(), |v| v.to_string());
        println!(
            "  {:<8} {}: {} -> {}",
            change.change,
            change.path,
            show(&change.old),
            show(&change.new)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(ctx: &Ctx, args: SignArgs) -> anyhow::Result<ExitCode> {
    use kantup_bundle::signature::{SigningKey, default_signature_path};
    let key = SigningKey::read(&args.key)?;
    let signature = key.sign_file(&args.bundle)?;
    let output = args
        .output_signature
        .clone()
        .unwrap_or_else(|| default_signature_path(&args.bundle));
    // A signature is public: written atomically, with normal permissions.
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut temp, signature.to_base64().as_bytes())
        .with_context(|| format!("writing {}", output.display()))?;
    temp.persist(&output)
        .with_context(|| format!("writing {}", output.display()))?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&serde_json::json!({
            "bundle": args.bundle,
            "signature": output,
        }))?,
        OutputFormat::Table => {
            if !ctx.quiet {
                println!("signed {} -> {}", args.bundle.display(), output.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn unpack(ctx: &Ctx, args: UnpackArgs) -> anyhow::Result<ExitCode> {
    let bundle = Bundle::open(&args.bundle)?;
    let mut options = UnpackOptions::default();
    if let Some(n) = args.max_member_size {
        options.max_member_size = n;
    }
    if let Some(n) = args.max_total_size {
        options.max_total_size = n;
    }
    let bar = progress::bytes_bar(ctx, bundle.tar_size(), "unpacking");
    let result = bundle.unpack(&args.target, options, &mut |n| bar.inc(n));
    bar.finish_and_clear();
    let report = result?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&serde_json::json!({ "target": args.target, "report": report }))?;
    } else if !ctx.quiet {
        println!(
            "Unpacked {} into {}: {} files, {}",
            args.bundle.display(),
            args.target.display(),
            report.files,
            human_bytes(report.bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn create_cmd(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let name = args.file.to_string_lossy().to_string();
    let compression = match args.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::Auto if name.ends_with(".zst") || name.ends_with(".zstd") => {
            Compression::Zstd
        }
        CompressionArg::Auto if name.ends_with(".gz") || name.ends_with(".tgz") => {
            Compression::Gzip
        }
        CompressionArg::Auto => Compression::None,
    };
    let total = match &args.images {
        Some(p) => {
            ImageArchive::open(p)?
                .images()
                .iter()
                .map(|i| i.total_size())
                .sum::<u64>()
                * 2
        }
        None => 0,
    };
    let bar = progress::bytes_bar(ctx, total, "creating bundle");
    // Without hints, an empty list: the images are then found as a chart without hints's are.
    let empty_hints;
    if args.format == FormatArg::Wrap && args.base.is_some() {
        anyhow::bail!(
            "--base makes a differential relok8s bundle; a wrap (--format wrap) is always complete"
        );
    }
    let result = match args.format {
        FormatArg::Wrap => kantup_bundle::wrap::create_wrap(
            &kantup_bundle::wrap::WrapOptions {
                chart: args.chart,
                images: args.images,
                output: args.file,
            },
            &mut |n| bar.inc(n),
        ),
        FormatArg::Relok8s => {
            let hints = match args.hints {
                Some(h) => h,
                None => {
                    empty_hints =
                        tempfile::NamedTempFile::new().context("creating an empty hints file")?;
                    std::fs::write(empty_hints.path(), "[]\n")
                        .context("writing an empty hints file")?;
                    empty_hints.path().to_path_buf()
                }
            };
            create(
                &CreateOptions {
                    chart: args.chart,
                    hints,
                    images: args.images,
                    output: args.file,
                    compression,
                    base: args.base,
                },
                &mut |n| bar.inc(n),
            )
        }
    };
    bar.finish_and_clear();
    let report = result?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&report)?;
    } else if !ctx.quiet {
        println!(
            "Created {} ({}, {}): chart {}, {} hints, {} images",
            report.output.display(),
            crate::output::human_bytes(report.size),
            report.digest,
            report.chart,
            report.hints,
            report.images
        );
        if let Some(base) = &report.base {
            println!(
                "Differential against {}: {} layers ({}) left out",
                base.base,
                base.omitted.len(),
                crate::output::human_bytes(base.omitted_bytes())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export(ctx: &Ctx, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let bundle = Bundle::open(&args.bundle)?;
    let archive = bundle
        .image_archive()?
        .with_context(|| format!("{} holds no images", args.bundle.display()))?;
    let mut chosen: Vec<&Image> = Vec::new();
    if args.images.is_empty() {
        chosen.extend(archive.images());
    } else {
        for wanted in &args.images {
            let normalized = wanted
                .parse::<kantup_bundle::reference::Reference>()
                .ok()
                .map(|r| r.to_string());
            let found = archive.images().iter().find(|i| {
                i.references.iter().any(|r| {
                    let s = r.to_string();
                    s == *wanted || Some(&s) == normalized.as_ref()
                })
            });
            chosen.push(found.with_context(|| {
                format!("image {wanted:?} is not in {}", args.bundle.display())
            })?);
        }
    }
    let converted: Vec<Image>;
    if args.oci_manifests {
        converted = chosen.iter().map(|i| i.to_oci()).collect();
        chosen = converted.iter().collect();
    }
    let total = chosen.iter().map(|i| i.total_size()).sum();
    let bar = progress::bytes_bar(ctx, total, "exporting images");
    let result = oci_layout::write_images(&args.oci_layout, &archive, &chosen, |n| bar.inc(n));
    bar.finish_and_clear();
    let report = result?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&serde_json::json!({ "oci_layout": args.oci_layout, "report": report }))?;
    } else if !ctx.quiet {
        println!(
            "Wrote {} images to OCI layout {} ({} blobs written, {} already present, {})",
            chosen.len(),
            args.oci_layout.display(),
            report.blobs_written,
            report.blobs_present,
            human_bytes(report.bytes_written)
        );
        for r in &report.refs {
            println!("  {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
