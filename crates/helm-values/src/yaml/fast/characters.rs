//! The characters the fast path reads as the general reader does.

/// Whether `bytes` holds only characters the fast path reads the way the general reader
/// does: no tab, CR, NUL or other control character, no C1 control (NEL), line or paragraph
/// separator, byte-order mark or noncharacter U+FFFE/U+FFFF. (`bytes` is valid UTF-8, so
/// these byte patterns are exactly those characters.)
pub(super) fn plain_characters(bytes: &[u8]) -> bool {
    const CHUNK: usize = 64;
    for (n, chunk) in bytes.chunks(CHUNK).enumerate() {
        // Printable ASCII and line feeds only? (A branchless fold, which the compiler
        // vectorizes; most chunks of most files are.)
        let other = chunk.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\n')) | (b >= 0x7f)
        });
        if other && !plain_characters_in(bytes, n * CHUNK..n * CHUNK + chunk.len()) {
            return false;
        }
    }
    true
}

/// [`plain_characters`] for the characters starting in `range` of `bytes`.
fn plain_characters_in(bytes: &[u8], range: std::ops::Range<usize>) -> bool {
    let next = |i: usize| bytes.get(i).copied().unwrap_or(0);
    for i in range {
        let b = bytes[i];
        let bad = match b {
            b'\n' | 0x20..=0x7e => false,
            0..=0x1f | 0x7f => true,
            0xc2 => (0x80..=0x9f).contains(&next(i + 1)),
            0xe2 => next(i + 1) == 0x80 && matches!(next(i + 2), 0xa8 | 0xa9),
            0xef => {
                (next(i + 1) == 0xbb && next(i + 2) == 0xbf)
                    || (next(i + 1) == 0xbf && matches!(next(i + 2), 0xbe | 0xbf))
            }
            _ => false,
        };
        if bad {
            return false;
        }
    }
    true
}
