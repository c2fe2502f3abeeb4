//! Reading files whose size the user controls: a config or secret file named
//! `/dev/zero` (or a log file by mistake) must fail, not fill the memory.

use std::io::Read;
use std::path::Path;

/// The largest config file read (hundreds of profiles fit in far less).
pub(crate) const CONFIG_MAX: u64 = 1024 * 1024;

/// The largest secret file or command output read: a secret is one line.
pub(crate) const SECRET_MAX: u64 = 64 * 1024;

/// The file's text, or an `InvalidData` error when it holds more than `cap` bytes.
pub(crate) fn read_to_string(path: &Path, cap: u64) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("more than {} KiB: not what it should name", cap / 1024),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_after_the_cap() {
        let e = read_to_string(Path::new("/dev/zero"), 4096).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("4 KiB"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("f");
        std::fs::write(&small, "x".repeat(4096)).unwrap();
        assert_eq!(read_to_string(&small, 4096).unwrap().len(), 4096);
    }
}
