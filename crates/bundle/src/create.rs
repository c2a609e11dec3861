//! Creating bundles: the relok8s layout (`hints.yaml` first, `original-chart/`, `images.tar`)
//! plus `kantup-checksums.sha256`, byte-for-byte reproducible.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::archive::attachment::Attachment;
use crate::archive::{Compression, Image, ImageArchive, oci_layout};
use crate::atomic::{Access, AtomicFile};
use crate::bundle::{Bundle, CHART_DIR, CHECKSUMS_MEMBER, HINTS_MEMBER, IMAGES_MEMBER};
use crate::chart::Chart;
use crate::differential::{BASE_MEMBER, BaseBundle, BaseRecord, OmittedBlob};
use crate::digest::{Digest, DigestReader};
use crate::discovery::needed_images;
use crate::error::BundleError;
use crate::hints::parse_hints;
use crate::image_check::check_images;
use crate::open_options::OpenOptions;
pub use crate::write::CreateReport;
use crate::write::deterministic_header;

/// Inputs for [`create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The chart: a directory or a `.tgz`.
    pub chart: PathBuf,
    /// The hints file (a YAML list of relok8s templates).
    pub hints: PathBuf,
    /// An image archive (docker-archive or OCI layout, tar or directory); `None` for a
    /// charts-only bundle.
    pub images: Option<PathBuf>,
    /// Where to write the bundle.
    pub output: PathBuf,
    /// Outer compression (`None` for a plain tar, as relok8s writes).
    pub compression: Compression,
    /// A base bundle: when set, the bundle is differential and leaves out the layer blobs
    /// the base holds (see [`crate::differential`]).
    pub base: Option<PathBuf>,
}

/// What `bundle create` does with signatures, attestations and SBOMs a bundle cannot keep
/// (see [`carried`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LostAttachments {
    /// Refuse, naming each of them ([`BundleError::AttachmentsNotKept`]).
    #[default]
    Refuse,
    /// Leave them out and say so ([`CreateReport::dropped`]).
    Drop,
}

/// What of `archive` a bundle carries: its images, less the attachments a docker-archive holds
/// as images ([`ImageArchive::lost_attachments`]), and every attachment the archive holds as
/// one. The attachments a docker-archive lost are refused under [`LostAttachments::Refuse`] and
/// listed in [`Carried::dropped`] under [`LostAttachments::Drop`].
pub fn carried(archive: &ImageArchive, lost: LostAttachments) -> Result<Carried<'_>, BundleError> {
    let stranded = archive.lost_attachments();
    let dropped: Vec<String> = stranded.iter().map(|l| l.describe()).collect();
    if !dropped.is_empty() && lost == LostAttachments::Refuse {
        return Err(BundleError::AttachmentsNotKept {
            archive: archive.label(),
            reason: "a docker-archive keeps no registry manifest (nor the layer annotations holding cosign's signatures: bring signed images as an OCI layout, from `cosign save --dir` or `skopeo copy ... oci:DIR:NAME`)".to_string(),
            lost: dropped,
        });
    }
    let skip: HashSet<Digest> = stranded.iter().map(|l| l.image).collect();
    Ok(Carried {
        images: archive
            .images()
            .iter()
            .filter(|i| !skip.contains(&i.manifest_digest))
            .collect(),
        attachments: archive.attachments().iter().collect(),
        dropped,
    })
}

/// An attachment and the image it is about, for messages: `signature sha256:... (tag ...) of
/// example.com/app@sha256:...`.
pub fn describe(archive: &ImageArchive, a: &Attachment) -> String {
    match oci_layout::repository_of(archive, &a.subject) {
        Some(repository) => format!("{} of {repository}@{}", a.describe(), a.subject),
        None => format!("{} of {}", a.describe(), a.subject),
    }
}

/// What [`carried`] found a bundle can carry.
#[derive(Debug)]
pub struct Carried<'a> {
    /// The images to write.
    pub images: Vec<&'a Image>,
    /// The attachments to write.
    pub attachments: Vec<&'a Attachment>,
    /// The attachments left out, described.
    pub dropped: Vec<String>,
}

/// Writes a bundle. The output appears only when complete (written to a temporary file in
/// the same directory, then renamed). Same inputs give the same bytes.
pub fn create(
    options: &CreateOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<CreateReport, BundleError> {
    create_with(options, &OpenOptions::from_env()?, progress)
}

/// [`create`], opening the base bundle (if any) with `open`.
pub fn create_with(
    options: &CreateOptions,
    open: &OpenOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<CreateReport, BundleError> {
    create_carrying(options, open, LostAttachments::Refuse, progress)
}

/// [`create_with`], doing with attachments the bundle cannot keep what `lost` says (see
/// [`carried`]).
pub fn create_carrying(
    options: &CreateOptions,
    open: &OpenOptions,
    lost: LostAttachments,
    progress: &mut dyn FnMut(u64),
) -> Result<CreateReport, BundleError> {
    let chart = Chart::load(&options.chart)?;
    let hints_text =
        fs::read_to_string(&options.hints).map_err(|e| BundleError::io(&options.hints, e))?;
    let hints = parse_hints(&hints_text).map_err(|source| BundleError::Hints {
        path: options.hints.display().to_string(),
        source,
    })?;
    let archive = options
        .images
        .as_ref()
        .map(ImageArchive::open)
        .transpose()?;
    // What the bundle will lack, said now rather than found by `sync` (computed from the
    // inputs: the bundle's names are the archive's).
    let needed = needed_images(&chart, &hints, &options.hints.display().to_string())?;
    let missing_images = check_images(archive.as_ref(), &needed)
        .missing
        .iter()
        .map(ToString::to_string)
        .collect();
    // The relok8s images.tar is an OCI layout: it keeps every attachment.
    let carry = archive.as_ref().map(|a| carried(a, lost)).transpose()?;
    let base_record = match (&options.base, &archive) {
        (Some(base), Some(archive)) => Some(BaseContent::read(base, open)?.record_for(archive)),
        (Some(base), None) => {
            return Err(BundleError::archive(
                base.display().to_string(),
                "a differential bundle needs images: --base without --images",
            ));
        }
        (None, _) => None,
    };
    let omit: HashSet<Digest> = base_record
        .as_ref()
        .map(BaseRecord::omitted_digests)
        .unwrap_or_default();
    let parent = match options.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // images.tar is spooled first: a tar header needs its size.
    let images_tmp = match (&archive, &carry) {
        (Some(a), Some(carry)) => {
            let indexes: Vec<_> = a.indexes().iter().collect();
            let file = tempfile::tempfile_in(&parent).map_err(|e| BundleError::io(&parent, e))?;
            let w = oci_layout::write_archive_tar_carrying(
                io::BufWriter::new(file),
                a,
                &carry.images,
                &indexes,
                &carry.attachments,
                &omit,
                &mut *progress,
            )?;
            let mut file = w
                .into_inner()
                .map_err(|e| BundleError::io(&parent, e.into_error()))?;
            file.rewind().map_err(|e| BundleError::io(&parent, e))?;
            Some(file)
        }
        _ => None,
    };
    let out = AtomicFile::create(&options.output, Access::Normal)?;
    let label = options.output.display().to_string();
    let io_err = |e: io::Error| BundleError::io(&label, e);
    let writer: Box<dyn Write> = match options.compression {
        Compression::None => Box::new(io::BufWriter::new(out.file())),
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
            io::BufWriter::new(out.file()),
            flate2::Compression::default(),
        )),
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(io::BufWriter::new(out.file()), 3)
                .map_err(io_err)?;
            // A frame checksum makes corruption of stored (incompressible) blocks detectable.
            encoder.include_checksum(true).map_err(io_err)?;
            Box::new(encoder.auto_finish())
        }
    };
    let mut tar = tar::Builder::new(writer);
    let mut sums = String::new();
    let mut add = |tar: &mut tar::Builder<Box<dyn Write>>,
                   name: &str,
                   size: u64,
                   data: &mut dyn Read|
     -> io::Result<()> {
        let mut r = DigestReader::new(data);
        let mut h = deterministic_header(size, 0o644);
        tar.append_data(&mut h, name, &mut r)?;
        sums.push_str(&format!("{}  {name}\n", r.finish().0.hex()));
        Ok(())
    };
    add(
        &mut tar,
        HINTS_MEMBER,
        hints_text.len() as u64,
        &mut hints_text.as_bytes(),
    )
    .map_err(io_err)?;
    for (path, bytes) in &chart.files {
        add(
            &mut tar,
            &format!("{CHART_DIR}/{path}"),
            bytes.len() as u64,
            &mut bytes.as_slice(),
        )
        .map_err(io_err)?;
    }
    if let Some(record) = &base_record {
        let json = serde_json::to_vec_pretty(record).expect("base record serializes");
        add(
            &mut tar,
            BASE_MEMBER,
            json.len() as u64,
            &mut json.as_slice(),
        )
        .map_err(io_err)?;
    }
    if let Some(mut file) = images_tmp {
        let size = file.metadata().map_err(io_err)?.len();
        add(&mut tar, IMAGES_MEMBER, size, &mut file).map_err(io_err)?;
        progress(size);
    }
    let mut h = deterministic_header(sums.len() as u64, 0o644);
    tar.append_data(&mut h, CHECKSUMS_MEMBER, sums.as_bytes())
        .map_err(io_err)?;
    let mut w = tar.into_inner().map_err(io_err)?;
    w.flush().map_err(io_err)?;
    drop(w);
    let (digest, size) =
        Digest::of_reader(fs::File::open(out.temp_path()).map_err(io_err)?).map_err(io_err)?;
    out.commit()?;
    Ok(CreateReport {
        output: options.output.clone(),
        chart: chart.name().to_string(),
        hints: hints.len(),
        images: carry.as_ref().map_or(0, |c| c.images.len()),
        attachments: carry.as_ref().map_or(0, |c| c.attachments.len()),
        dropped: carry.map(|c| c.dropped).unwrap_or_default(),
        missing_images,
        size,
        digest,
        base: base_record,
    })
}

/// What a base bundle provides to a differential one made against it.
#[derive(Debug, Clone)]
struct BaseContent {
    record: BaseBundle,
    /// Every layer digest the base's images name (including those a differential base itself
    /// left out: where the base was synced, its registry has them all).
    layers: HashSet<Digest>,
}

impl BaseContent {
    fn read(path: &Path, open: &OpenOptions) -> Result<BaseContent, BundleError> {
        let bundle = Bundle::open_with(path, open)?;
        let chart = bundle.chart()?;
        let file = std::fs::File::open(path).map_err(|e| BundleError::io(path, e))?;
        let (digest, _) = Digest::of_reader(file).map_err(|e| BundleError::io(path, e))?;
        let archive = bundle.image_archive()?;
        let images = archive.as_ref().map(|a| a.images()).unwrap_or_default();
        let layers = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.digest))
            .collect();
        Ok(BaseContent {
            record: BaseBundle {
                digest,
                file: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                chart: chart.name().to_string(),
                chart_version: chart.metadata.version.to_string(),
                images: images.iter().map(|i| i.display_name()).collect(),
            },
            layers,
        })
    }

    /// The record for a differential bundle of `archive`'s images against this base.
    fn record_for(&self, archive: &ImageArchive) -> BaseRecord {
        let mut omitted: BTreeMap<Digest, OmittedBlob> = BTreeMap::new();
        for image in archive.images() {
            for layer in image
                .layers
                .iter()
                .filter(|l| self.layers.contains(&l.digest))
            {
                let entry = omitted.entry(layer.digest).or_insert_with(|| OmittedBlob {
                    digest: layer.digest,
                    size: layer.size,
                    images: Vec::new(),
                });
                let name = image.display_name();
                if !entry.images.contains(&name) {
                    entry.images.push(name);
                }
            }
        }
        BaseRecord {
            version: 1,
            base: self.record.clone(),
            omitted: omitted.into_values().collect(),
        }
    }
}
