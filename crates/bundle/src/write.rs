//! Shared helpers for writing deterministic tars.

/// The fixed modification time kantup writes (2000-01-01T00:00:00Z): same inputs, same bytes.
pub(crate) const FIXED_MTIME: u64 = 946_684_800;

/// A ustar file header with fixed owner, group, mtime and the given size and mode.
pub(crate) fn deterministic_header(size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(FIXED_MTIME);
    h
}
