//! Decompression bombs: a gzip or zstd bundle of a few KiB that expands past its limit is
//! refused while it is being expanded (the temporary file stops at the limit), with an error
//! naming the bundle, the limit and how to raise it. The bombs are real: tars of zeros made
//! here and compressed by flate2 and zstd; with a limit above their size they open.

use std::io::{Read as _, Write};
use std::path::Path;

use kantup_bundle::{Bundle, BundleError, OpenOptions};

const MIB: u64 = 1 << 20;

#[derive(Clone, Copy, Debug)]
enum Format {
    Gzip,
    Zstd,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
        }
    }
}

/// A tar holding one member of `size` zero bytes, compressed: streamed, never in memory.
fn bomb(format: Format, size: u64) -> Vec<u8> {
    fn write_tar<W: Write>(out: W, size: u64) -> W {
        let mut builder = tar::Builder::new(out);
        let mut header = tar::Header::new_gnu();
        header.set_path("images.tar").unwrap();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append(&header, std::io::repeat(0).take(size))
            .unwrap();
        builder.into_inner().unwrap()
    }
    match format {
        Format::Gzip => {
            let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            write_tar(encoder, size).finish().unwrap()
        }
        Format::Zstd => {
            let encoder = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
            write_tar(encoder, size).finish().unwrap()
        }
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bombs_are_refused_at_a_set_limit_and_open_under_a_higher_one() {
    let tmp = tempfile::tempdir().unwrap();
    for format in [Format::Gzip, Format::Zstd] {
        let bytes = bomb(format, 16 * MIB);
        assert!(
            bytes.len() < 20 << 10,
            "{format:?}: {} bytes is not a few KiB",
            bytes.len()
        );
        let path = write(tmp.path(), &format!("bomb.tar.{}", format.name()), &bytes);

        let limited = OpenOptions {
            max_expanded_size: Some(4 * MIB),
        };
        let err = Bundle::open_with(&path, &limited).expect_err("refused");
        match &err {
            BundleError::ExpansionLimit {
                path: p,
                format: f,
                limit,
                compressed,
                configured,
            } => {
                assert_eq!(p, &path);
                assert_eq!(*f, format.name());
                assert_eq!(*limit, 4 * MIB);
                assert_eq!(*compressed, bytes.len() as u64);
                assert!(configured);
            }
            other => panic!("{format:?}: {other}"),
        }
        let message = err.to_string();
        for want in [
            path.display().to_string().as_str(),
            "expands past 4.0 MiB",
            "the limit set for it",
            "--max-expanded-size",
            "KANTUP_MAX_EXPANDED_SIZE",
        ] {
            assert!(message.contains(want), "{message:?} lacks {want:?}");
        }

        // The same file under a limit above its size: it opens, 16 MiB of tar.
        let roomy = OpenOptions {
            max_expanded_size: Some(64 * MIB),
        };
        let bundle = Bundle::open_with(&path, &roomy).expect("opens under 64 MiB");
        assert!(bundle.tar_size() > 16 * MIB);
        assert!(bundle.has_member("images.tar"));
    }
}

/// The default limit: a zstd file of a few dozen KiB that expands past 1 GiB is refused at
/// 1 GiB (its compressed size times 100 is far less). This one writes up to 1 GiB to the
/// anonymous temporary file, freed at once.
#[test]
fn default_limit_refuses_a_bomb_past_1_gib() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = bomb(Format::Zstd, (1 << 30) + MIB);
    assert!(bytes.len() < 256 << 10, "{} bytes", bytes.len());
    let path = write(tmp.path(), "bomb.tar.zst", &bytes);
    let err = Bundle::open_with(&path, &OpenOptions::default()).expect_err("refused");
    assert!(
        matches!(
            err,
            BundleError::ExpansionLimit {
                limit,
                configured: false,
                ..
            } if limit == 1 << 30
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("the default limit (100 times its compressed size of"),
        "{message}"
    );
    assert!(message.contains("at least 1.0 GiB"), "{message}");
}

#[test]
fn the_default_limit_is_100_times_the_bundle_and_at_least_1_gib() {
    let default = OpenOptions::default();
    assert_eq!(default.expansion_limit(0), 1 << 30);
    assert_eq!(default.expansion_limit(10 * MIB), 1 << 30);
    assert_eq!(default.expansion_limit(20 * MIB), 2000 * MIB);
    assert_eq!(default.expansion_limit(u64::MAX), u64::MAX);
    let set = OpenOptions {
        max_expanded_size: Some(5),
    };
    assert_eq!(set.expansion_limit(20 * MIB), 5);
    for (text, bytes) in [
        ("8GiB", 8u64 << 30),
        ("500 MiB", 500 * MIB),
        ("1000000", 1_000_000),
        ("2 GB", 2_000_000_000),
    ] {
        assert_eq!(OpenOptions::parse_size(text), Ok(bytes), "{text}");
    }
    assert!(OpenOptions::parse_size("lots").is_err());
}
