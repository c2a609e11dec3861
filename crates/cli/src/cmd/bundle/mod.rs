//! `kantup bundle inspect | verify | unpack | create | export-images | diff | sign`: binds
//! flags to [`kantup::ops::bundle`] and [`kantup::ops::bundle_diff`], prints the results.

mod print;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use kantup::ops::bundle::{
    self, BundleFormat, CreateBundleOptions, ExportOptions, SbomOptions, SignOptions,
    UnpackBundleOptions, VerifyBundleOptions,
};
use kantup::ops::image_keys::SbomVerification;
use kantup_bundle::archive::Compression;
use kantup_bundle::create::LostAttachments;

use crate::output::{Ctx, OutputFormat, human_bytes};
use crate::progress::BarProgress;

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
    /// List the SBOMs a bundle carries with its images (SPDX or CycloneDX, from attestations
    /// or `.sbom` attachments), or write them into a directory.
    Sbom(SbomArgs),
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

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The bundle.
    pub bundle: PathBuf,
    /// Only this image's SBOMs: its name as `bundle inspect` lists it (with or without the
    /// tag) or its manifest / index digest.
    pub image: Option<String>,
    /// Write each SBOM into this directory, named by image, platform, source and format
    /// (`-o` is the output format of every command). Without it the SBOMs are listed.
    #[arg(long, short = 'd', value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Mark each SBOM verified when the attestation holding it has a valid signature over its
    /// image by one of these public keys (PEM; repeatable), checked offline. Nothing is
    /// refused: an SBOM no key verified is listed (and written) as not verified.
    #[arg(long = "image-key", value_name = "PUB.pem")]
    pub image_keys: Vec<PathBuf>,
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
    #[command(flatten)]
    pub images: MissingImagesArgs,
    #[command(flatten)]
    pub image_keys: crate::cmd::image_key_args::ImageKeyArgs,
}

/// `--allow-missing-images`, for `bundle verify`, `sync`, `load` and `upgrade`.
#[derive(Debug, Clone, Args)]
pub struct MissingImagesArgs {
    /// Accept a bundle that lacks images its chart needs (by hints.yaml, the chart's
    /// .relok8s-images.yaml, Images.lock or Chart.yaml annotations), for a chart that pulls
    /// them from another registry on purpose; the missing images are still listed. Without it
    /// such a bundle is refused before anything changes. Invalid image names are always
    /// refused.
    #[arg(long)]
    pub allow_missing_images: bool,
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
    /// Go on when the bundle cannot keep some signatures, attestations or SBOMs (a
    /// docker-archive holds them only as rebuilt images): leave them out and list them.
    /// Without it, `bundle create` refuses, naming each.
    #[arg(long)]
    pub drop_signatures: bool,
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
        BundleCommand::Sbom(a) => sbom(ctx, a),
        BundleCommand::Diff(a) => diff(ctx, a),
    }
}

fn inspect(ctx: &Ctx, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let info = bundle::inspect(&args.bundle, &ctx.open, args.helm.as_deref())?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&info)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Built in memory, written once: a closed pipe (`| head`) is not an error.
    let text = print::inspection(&info);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn verify(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let options = VerifyBundleOptions {
        open: ctx.open.clone(),
        bundle: args.bundle.clone(),
        deep: args.deep,
        key: args.key.clone(),
        signature: args.signature.clone(),
        allow_missing_images: args.images.allow_missing_images,
        image_keys: args.image_keys.image_keys.clone(),
    };
    let verified = bundle::verify(&options, &BarProgress::new(ctx))?;
    let report = &verified.report;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&serde_json::json!({
            "bundle": args.bundle,
            "ok": true,
            "signature_verified": args.key.is_some(),
            "report": report,
            "image_signatures": verified.image_signatures,
        }))?;
    } else if !ctx.quiet {
        println!(
            "OK {}: chart {}, {} hints, {} images, {} blobs ({}) verified, {} member checksums{}",
            args.bundle.display(),
            report.chart.as_deref().unwrap_or("-"),
            report.hints,
            report.images,
            report.blobs,
            human_bytes(report.bytes),
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
                human_bytes(base.omitted_bytes()),
                base.base
            );
        }
        println!(
            "OK the chart needs {} image(s) (listed by {}): {} in the bundle",
            report.images_needed,
            report
                .image_source
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            report.images_needed - report.images_missing.len(),
        );
        if !report.images_missing.is_empty() {
            println!(
                "Allowed missing (--allow-missing-images): {}",
                report.images_missing.join(", ")
            );
        }
        if let Some(key) = &args.key {
            println!("OK signature verified with {}", key.display());
        }
        for image in &verified.image_signatures {
            println!("OK {} {}: {}", image.name, image.image, image.summary());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn diff(ctx: &Ctx, args: DiffArgs) -> anyhow::Result<ExitCode> {
    let diff = kantup::ops::bundle_diff::diff_bundles(&args.old, &args.new, &ctx.open)?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&diff)?;
    } else {
        print::diff(&diff);
    }
    Ok(ExitCode::SUCCESS)
}

fn sbom(ctx: &Ctx, args: SbomArgs) -> anyhow::Result<ExitCode> {
    let report = bundle::sboms(&SbomOptions {
        bundle: args.bundle,
        image: args.image,
        output_dir: args.output_dir,
        open: ctx.open.clone(),
        image_keys: args.image_keys,
    })?;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    if report.sboms.is_empty() {
        println!("{} carries no SBOMs", report.bundle.display());
    }
    for s in &report.sboms {
        let platform = s
            .platform
            .as_ref()
            .map(|p| format!(" {p}"))
            .unwrap_or_default();
        let place = match &s.written {
            Some(path) => format!("-> {}", path.display()),
            None => s.file_name.clone(),
        };
        let verification = match &s.verification {
            SbomVerification::NotChecked => String::new(),
            SbomVerification::Verified { key } => format!("  verified by {key}"),
            SbomVerification::NotVerified { reason } => format!("  NOT verified: {reason}"),
        };
        println!(
            "{}{platform}  {} from {} {} ({})  {place}{verification}",
            s.image,
            s.format.extension(),
            match s.source {
                kantup_bundle::archive::attachment_info::SbomSource::Attestation => "attestation",
                kantup_bundle::archive::attachment_info::SbomSource::Attachment => "attachment",
            },
            s.attachment,
            human_bytes(s.size)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(ctx: &Ctx, args: SignArgs) -> anyhow::Result<ExitCode> {
    let output = bundle::sign(&SignOptions {
        bundle: args.bundle.clone(),
        key: args.key,
        output: args.output_signature,
    })?;
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
    let options = UnpackBundleOptions {
        open: ctx.open.clone(),
        bundle: args.bundle.clone(),
        target: args.target.clone(),
        max_member_size: args.max_member_size,
        max_total_size: args.max_total_size,
    };
    let report = bundle::unpack(&options, &BarProgress::new(ctx))?;
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
    let options = CreateBundleOptions {
        open: ctx.open.clone(),
        output: args.file,
        chart: args.chart,
        hints: args.hints,
        format: match args.format {
            FormatArg::Relok8s => BundleFormat::Relok8s,
            FormatArg::Wrap => BundleFormat::Wrap,
        },
        images: args.images,
        compression: match args.compression {
            CompressionArg::Auto => None,
            CompressionArg::None => Some(Compression::None),
            CompressionArg::Gzip => Some(Compression::Gzip),
            CompressionArg::Zstd => Some(Compression::Zstd),
        },
        base: args.base,
        lost_attachments: if args.drop_signatures {
            LostAttachments::Drop
        } else {
            LostAttachments::Refuse
        },
    };
    let report = bundle::create(&options, &BarProgress::new(ctx))?;
    if !report.missing_images.is_empty() && !ctx.quiet {
        eprintln!(
            "warning: {} image(s) the chart needs are not named in the image archive (sync and upgrade will refuse the bundle; name them in the layout, e.g. with `skopeo copy ... oci:DIR:REPOSITORY:TAG`):",
            report.missing_images.len()
        );
        for image in &report.missing_images {
            eprintln!("  {image}");
        }
    }
    if !report.dropped.is_empty() && !ctx.quiet {
        eprintln!(
            "warning: left out {} signatures, attestations or SBOMs the bundle cannot keep (--drop-signatures):",
            report.dropped.len()
        );
        for d in &report.dropped {
            eprintln!("  {d}");
        }
    }
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&report)?;
    } else if !ctx.quiet {
        println!(
            "Created {} ({}, {}): chart {}, {} hints, {} images, {} signatures, attestations and SBOMs",
            report.output.display(),
            human_bytes(report.size),
            report.digest,
            report.chart,
            report.hints,
            report.images,
            report.attachments
        );
        if let Some(base) = &report.base {
            println!(
                "Differential against {}: {} layers ({}) left out",
                base.base,
                base.omitted.len(),
                human_bytes(base.omitted_bytes())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export(ctx: &Ctx, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let options = ExportOptions {
        open: ctx.open.clone(),
        bundle: args.bundle,
        oci_layout: args.oci_layout.clone(),
        images: args.images,
        oci_manifests: args.oci_manifests,
    };
    let exported = bundle::export_images(&options, &BarProgress::new(ctx))?;
    let report = exported.report;
    if ctx.output == OutputFormat::Json {
        ctx.print_json(&serde_json::json!({ "oci_layout": args.oci_layout, "report": report }))?;
    } else if !ctx.quiet {
        println!(
            "Wrote {} images to OCI layout {} ({} blobs written, {} already present, {})",
            exported.images,
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
