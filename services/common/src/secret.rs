//! Credentials written to disk: random tokens, and files only their owner can read.
//!
//! The control plane generates its admin token this way, and `meshctl up` one token per
//! proxy.

use std::io::Write as _;
use std::path::Path;

use rand::Rng as _;

/// 32 random bytes (the thread-local CSPRNG) as 64 hex digits.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` (it must not exist yet) readable by its owner only from the start, never
/// by others even briefly, and writes `text`.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_files_private() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        let path = std::env::temp_dir().join(format!("bookinfo-secret-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        write_private(&path, &a).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            write_private(&path, "again").is_err(),
            "an existing file is not replaced"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
