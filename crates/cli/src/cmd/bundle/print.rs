//! The text forms of `bundle inspect` and `bundle diff`.

use std::fmt::Write as _;

use kantup::ops::bundle::BundleInspection;
use kantup::ops::bundle_diff::BundleDiff;
use kantup_bundle::archive::Compression;
use kantup_bundle::archive::attachment_info::{SbomSource, SignatureFormat};

use crate::cmd::tables::{crd_details, schema_changes, value_changes};
use crate::output::human_bytes;

/// `bundle inspect`'s table: the bundle, its chart, hints, chart images and images.
pub(super) fn inspection(info: &BundleInspection) -> String {
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
            human_bytes(base.omitted_bytes())
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
            "  none: no hints.yaml, .relok8s-images.yaml, Images.lock or images annotation; --helm PATH renders the chart to find them"
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
    attachments(&mut text, info);
    text
}

/// Per image: its signatures (who signed), attestations (predicate types) and SBOMs.
fn attachments(text: &mut String, info: &BundleInspection) {
    if info.attachments.is_empty() {
        return;
    }
    let _ = writeln!(
        text,
        "\nSignatures, attestations, SBOMs (as carried, not verified):"
    );
    for image in &info.attachments {
        let platform = image
            .platform
            .as_ref()
            .map(|p| format!(" {p}"))
            .unwrap_or_default();
        let _ = writeln!(text, "  {}{platform} ({})", image.image, image.digest);
        let a = &image.attached;
        for s in &a.signatures {
            let _ = writeln!(
                text,
                "    signature    {} ({}, {})",
                s.signer,
                match s.format {
                    SignatureFormat::Cosign => "cosign",
                    SignatureFormat::SigstoreBundle => "sigstore bundle",
                },
                s.attachment
            );
        }
        for t in &a.attestations {
            let _ = writeln!(
                text,
                "    attestation  {} ({})",
                t.predicate_type, t.attachment
            );
        }
        for s in &a.sboms {
            let _ = writeln!(
                text,
                "    sbom         {} from {} ({})",
                s.format.extension(),
                match s.source {
                    SbomSource::Attestation => "attestation",
                    SbomSource::Attachment => "attachment",
                },
                s.attachment
            );
        }
        for r in &a.referrers {
            let _ = writeln!(text, "    referrer     {r}");
        }
    }
}

/// `bundle diff`'s summary: chart, images, transfer, CRDs, default values.
pub(super) fn diff(diff: &BundleDiff) {
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
        let details = crd_details(ch);
        println!("  {sign} {} {}", crd.name, details.join("; "));
        for version in &ch.versions_changed {
            schema_changes(version, "  ");
        }
    }
    println!("default values:");
    if diff.values.is_empty() {
        println!("  (no change)");
    }
    value_changes(&diff.values);
}
