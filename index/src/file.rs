//! Whole-file snapshots with a checksum, replaced atomically.
//!
//! Layout: magic (8 bytes) ‖ payload length (u64 LE) ‖ crc32 of the payload (u32 LE) ‖ payload.
//! A snapshot is written to `NAME.tmp`, synced, renamed over `NAME`, and the directory synced:
//! a reader sees the old snapshot or the new one, never a mix.

use std::io::Write;
use std::path::Path;

use crate::error::{IndexError, Result};

const HEADER_BYTES: usize = 20;

/// Writes `payload` to `path` atomically.
pub(crate) fn write_snapshot(path: &Path, magic: &[u8; 8], payload: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs_err::File::create(&tmp).map_err(IndexError::io(&tmp))?;
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(magic);
        header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        file.write_all(&header).map_err(IndexError::io(&tmp))?;
        file.write_all(payload).map_err(IndexError::io(&tmp))?;
        file.sync_all().map_err(IndexError::io(&tmp))?;
    }
    fs_err::rename(&tmp, path).map_err(IndexError::io(path))?;
    sync_dir(path)
}

/// Reads a snapshot written by `write_snapshot`; `None` when there is none.
pub(crate) fn read_snapshot(path: &Path, magic: &[u8; 8]) -> Result<Option<Vec<u8>>> {
    let bytes = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(IndexError::Io {
                path: path.into(),
                source: e,
            });
        }
    };
    let corrupt = |reason: String| IndexError::Corrupt {
        path: path.into(),
        reason,
    };
    if bytes.len() < HEADER_BYTES || &bytes[..8] != magic {
        return Err(corrupt("bad magic or short header at offset 0".into()));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[16..20]);
    let payload = &bytes[HEADER_BYTES..];
    if u64::from_le_bytes(len) != payload.len() as u64 {
        return Err(corrupt(format!(
            "payload is {} bytes, header says {}",
            payload.len(),
            u64::from_le_bytes(len)
        )));
    }
    if crc32fast::hash(payload) != u32::from_le_bytes(crc) {
        return Err(corrupt(format!(
            "checksum mismatch over bytes {HEADER_BYTES}.."
        )));
    }
    Ok(Some(payload.to_vec()))
}

/// Syncs the directory holding `path`, so a rename in it is durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        let file = fs_err::File::open(dir).map_err(IndexError::io(dir))?;
        file.sync_all().map_err(IndexError::io(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_round_trips_and_a_flipped_byte_is_caught() -> Result<()> {
        let dir = tempfile::tempdir().map_err(IndexError::io("tempdir"))?;
        let path = dir.path().join("snap.bin");
        assert!(read_snapshot(&path, b"TESTSNAP")?.is_none());
        write_snapshot(&path, b"TESTSNAP", b"hello index")?;
        assert_eq!(
            read_snapshot(&path, b"TESTSNAP")?.as_deref(),
            Some(&b"hello index"[..])
        );
        let mut bytes = std::fs::read(&path).map_err(IndexError::io(&path))?;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).map_err(IndexError::io(&path))?;
        assert!(matches!(
            read_snapshot(&path, b"TESTSNAP"),
            Err(IndexError::Corrupt { .. })
        ));
        Ok(())
    }
}
