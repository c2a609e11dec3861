//! Relocation of a chart directory on disk: the chart is read, relocated in memory, and only
//! what changed is written back (the edited values files, and the directories of unpacked
//! subchart archives). Nothing is written unless every edit succeeded.

use std::collections::HashMap;
use std::path::Path;

use kantup_bundle::Digest;
use kantup_bundle::atomic::AtomicDir;
use kantup_bundle::chart::Chart as ChartFiles;
use kantup_bundle::hints::ImagePattern;
use kantup_bundle::reference::Reference;

use super::edit::{Edited, Editor, already_exists};
use super::{RelocationReport, RelocationRule, ValueEdit};
use crate::{Error, Result};

/// Relocates the images of the chart directory `dir` in place (see [`super::relocate_chart`]).
///
/// `digests` maps an original reference (as printed in [`super::RelocatedImage::original`]) to
/// its manifest digest; it is used for hints without a tag placeholder.
///
/// ```no_run
/// use kantup_helm_values::relocate::{relocate_chart_dir, RelocationRule};
/// let hints = kantup_bundle::hints::parse_hints(&std::fs::read_to_string("hints.yaml").unwrap()).unwrap();
/// let rule = RelocationRule::new("reg.local:5000", "mirror");
/// let report = relocate_chart_dir("chart".as_ref(), &hints, &rule, &Default::default()).unwrap();
/// for image in report.images { println!("{} -> {}", image.original, image.relocated); }
/// ```
pub fn relocate_chart_dir(
    dir: &Path,
    patterns: &[ImagePattern],
    rule: &RelocationRule,
    digests: &HashMap<String, String>,
) -> Result<RelocationReport> {
    let digests = digests
        .iter()
        .map(|(image, digest)| {
            let bad = |e: String| Error::Relocate(format!("digest for {image}: {e}"));
            let image: Reference = image.parse().map_err(|e| bad(format!("{e}")))?;
            let digest: Digest = digest.parse().map_err(|e| bad(format!("{e}")))?;
            Ok((image, digest))
        })
        .collect::<Result<HashMap<_, _>>>()?;
    let origin = dir.display().to_string();
    let mut chart = ChartFiles::load_dir(dir)?;
    let (mut report, edited) = super::relocate(&mut chart, &origin, patterns, rule, &digests)?;
    write_back(dir, &edited)?;
    for edit in &mut report.edits {
        edit.file = dir.join(&edit.file);
    }
    Ok(report)
}

/// Writes values into a chart directory (see [`super::edit_values`]): each `(path, value)`
/// goes into the `values.yaml` of the chart that owns the path, editing only the scalar (or
/// inserting the missing keys). No file is written when any edit fails; a subchart archive
/// that a path routes into becomes a directory.
pub fn apply_value_edits(dir: &Path, actions: &[(Vec<String>, String)]) -> Result<Vec<ValueEdit>> {
    let origin = dir.display().to_string();
    let chart = ChartFiles::load_dir(dir)?;
    let mut editor = Editor::new(&chart, &origin);
    let mut edits = editor.apply(actions)?;
    let edited = editor.finish()?;
    write_back(dir, &edited)?;
    for edit in &mut edits {
        edit.file = dir.join(&edit.file);
    }
    Ok(edits)
}

/// Writes what `edited` changed under `dir`: each unpacked archive becomes its directory (an
/// archive nested in another is written with it), then the other edited values files.
fn write_back(dir: &Path, edited: &Edited) -> Result<()> {
    let inside_unpacked = |path: &str| {
        edited
            .unpacked
            .iter()
            .any(|(_, unpacked)| path.starts_with(&format!("{unpacked}/")))
    };
    let outermost: Vec<&(String, String)> = edited
        .unpacked
        .iter()
        .filter(|(archive, _)| !inside_unpacked(archive))
        .collect();
    // Check every target before anything is written.
    for (archive, sub_dir) in &outermost {
        let target = dir.join(sub_dir);
        if target.symlink_metadata().is_ok() {
            return Err(already_exists(
                &dir.join(archive).display().to_string(),
                &target.display().to_string(),
            ));
        }
    }
    for (archive, sub_dir) in outermost {
        unpack_on_disk(dir, archive, sub_dir, edited)?;
    }
    for file in edited.written.iter().filter(|f| !inside_unpacked(f)) {
        let path = dir.join(file);
        kantup_bundle::atomic::write(&path, &edited.chart.files[file])
            .map_err(|e| Error::io(e.path, e.source))?;
    }
    Ok(())
}

/// Replaces the archive `dir/archive` by the directory `dir/sub_dir` holding the files the
/// edited chart has under it. The directory is staged in a hidden directory beside it and renamed
/// into place ([`kantup_bundle::atomic::AtomicDir`]), so a failure leaves either the archive or
/// the directory, never half.
fn unpack_on_disk(dir: &Path, archive: &str, sub_dir: &str, edited: &Edited) -> Result<()> {
    let target = dir.join(sub_dir);
    let archive_path = dir.join(archive);
    let staged = AtomicDir::create(&target).map_err(|e| Error::io(e.path, e.source))?;
    let inside = format!("{sub_dir}/");
    for (rest, bytes) in edited
        .chart
        .files
        .iter()
        .filter_map(|(path, bytes)| path.strip_prefix(&inside).map(|rest| (rest, bytes)))
    {
        let file = staged.staging().join(rest);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&file, bytes).map_err(|e| Error::io(&file, e))?;
    }
    staged.commit().map_err(|e| Error::io(e.path, e.source))?;
    if let Err(e) = std::fs::remove_file(&archive_path) {
        // Keep the chart loadable: without this, Helm would see the subchart twice.
        let _ = std::fs::remove_dir_all(&target);
        return Err(Error::io(&archive_path, e));
    }
    Ok(())
}
