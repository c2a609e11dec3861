//! Property tests: the bundle crate's parsers (image references, digests, hints, the tar reader
//! behind `Bundle::open` and everything read through it) return an error for bad input and
//! never panic. Inputs are arbitrary text, text built from each grammar's own characters, and
//! the example bundle cut short or with bytes flipped.

use std::io::Write;

use kantup_bundle::hints::{ImagePattern, parse_hints};
use kantup_bundle::reference::Reference;
use kantup_bundle::{Bundle, Digest, UnpackOptions, VerifyOptions};
use kantup_test_support::workspace_root;
use proptest::prelude::*;

/// Text drawn mostly from the characters an image reference is made of.
fn reference_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "[a-zA-Z0-9._:/@\\-\\[\\] ]{0,40}(@sha256:[0-9a-f]{0,64})?|localhost(:[0-9]{1,5})?/[a-z0-9/._-]{0,20}(:[A-Za-z0-9._-]{0,10})?",
    )
    .unwrap()
}

/// Text drawn mostly from the characters a hint template is made of.
fn template_like() -> impl Strategy<Value = String> {
    proptest::string::string_regex("([a-z./:@ -]|\\{\\{|\\}\\}|\\.[a-z]{1,3}|\\|){0,24}").unwrap()
}

/// Runs everything that reads a bundle; the results do not matter, only that none panics.
fn read_everything(bytes: &[u8]) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bundle.tar");
    std::fs::write(&path, bytes).unwrap();
    let Ok(bundle) = Bundle::open(&path) else {
        return;
    };
    let _ = bundle.members();
    let _ = bundle.hints();
    let _ = bundle.chart();
    if let Ok(Some(archive)) = bundle.image_archive() {
        for image in archive.images() {
            let _ = archive.read_blob(&image.config.digest);
        }
    }
    let _ = bundle.verify(
        VerifyOptions {
            deep: true,
            ..VerifyOptions::default()
        },
        &mut |_| {},
    );
    let target = tmp.path().join("out");
    if bundle
        .unpack(&target, UnpackOptions::default(), &mut |_| {})
        .is_err()
    {
        assert!(
            !target.exists(),
            "a failed unpack left {}",
            target.display()
        );
    }
}

fn example_bundle() -> Vec<u8> {
    std::fs::read(workspace_root().join("examples/bundles/testchart.bundle.tar")).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

proptest! {
    #[test]
    fn references_parse_or_fail_and_round_trip(text in prop_oneof![any::<String>(), reference_like()]) {
        if let Ok(reference) = text.parse::<Reference>() {
            // What kantup prints, it reads back as the same reference.
            let again: Reference = reference.to_string().parse().unwrap();
            prop_assert_eq!(&again, &reference);
            let _ = reference.familiar();
        }
        let _ = text.parse::<Digest>();
    }

    #[test]
    fn hint_templates_parse_or_fail(text in prop_oneof![any::<String>(), template_like()]) {
        if let Ok(pattern) = ImagePattern::parse(&text) {
            let values: serde_yaml::Value = serde_yaml::from_str("a: {b: x}").unwrap();
            let _ = pattern.render(&values);
        }
        let _ = parse_hints(&text);
        let _ = parse_hints(&format!("- {text:?}\n- {text}\n"));
    }

    #[test]
    fn arbitrary_bytes_are_not_a_bundle(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        read_everything(&bytes);
        read_everything(&gzip(&bytes));
    }
}

proptest! {
    // Each case writes and reads a whole bundle: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn damaged_example_bundle_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..16),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        compress in any::<bool>(),
    ) {
        let mut bytes = example_bundle();
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if compress {
            bytes = gzip(&bytes);
        }
        read_everything(&bytes);
    }

    #[test]
    fn damaged_tar_headers_never_panic(
        header in 0usize..16,
        offset in 0usize..512,
        value in any::<u8>(),
    ) {
        // Flip one byte inside one of the first member headers (names, sizes, types,
        // checksums), where the tar reader's own parsing is exercised.
        let mut bytes = example_bundle();
        let mut pos = 0usize;
        for _ in 0..header {
            let h = tar::Header::from_byte_slice(&bytes[pos..pos + 512]);
            let Ok(size) = h.entry_size() else { break };
            let next = pos + 512 + (size as usize).div_ceil(512) * 512;
            if next + 512 > bytes.len() { break; }
            pos = next;
        }
        bytes[pos + offset] = value;
        read_everything(&bytes);
    }
}
