//! Opens a bundle and prints its chart, image hints and images.
//!
//! `cargo run -p kantup-examples --example open_bundle [BUNDLE]` (default: the relok8s
//! `examples/bundles/testchart.bundle.tar`).

use std::path::PathBuf;

use kantup_bundle::Bundle;

fn main() -> anyhow::Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bundles/testchart.bundle.tar")
        });
    let bundle = Bundle::open(&path)?;
    let chart = bundle.chart()?;
    println!("bundle {} ({:?})", path.display(), bundle.compression());
    println!("chart  {} {}", chart.name(), chart.metadata.version);
    for sub in &chart.subcharts {
        println!("  subchart {} {}", sub.name(), sub.metadata.version);
    }
    println!("hints:");
    for hint in bundle.hints()? {
        // Render each hint against the chart's defaults to show the image it points at; a
        // hint under a subchart's key reads that subchart's own values.yaml.
        let original = hint.render(&chart.values).or_else(|e| {
            let first = &hint.repository.segments()[0];
            let sub = chart
                .subcharts
                .iter()
                .find(|c| c.name() == first)
                .ok_or(e.clone())?;
            let local = hint.template.replace(&format!(".{first}."), ".");
            kantup_bundle::hints::ImagePattern::parse(&local)?
                .render(&sub.values)
                .map_err(|_| e)
        });
        let original = original.unwrap_or_else(|e| format!("<{e}>"));
        println!("  {}  ->  {original}", hint.template);
    }
    match bundle.image_archive()? {
        None => println!("images: none (charts-only bundle)"),
        Some(archive) => {
            println!("images:");
            for image in archive.images() {
                println!("  {}  {}", image.display_name(), image.manifest_digest);
                for layer in &image.layers {
                    println!("    layer {} {} bytes", layer.digest, layer.size);
                }
            }
        }
    }
    Ok(())
}
