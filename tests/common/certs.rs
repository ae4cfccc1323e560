//! The test PKI of `examples/certs/gen.sh` (a CA, server and client certificates with SPIFFE
//! IDs, an unrelated CA), made at run time in a temporary folder: keys never live in the repo.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Runs `examples/certs/gen.sh` into `dir`.
pub fn generate(dir: &Path) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/certs/gen.sh");
    let out = Command::new("bash").arg(script).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "gen.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test PKI, made once per test binary.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path());
        dir
    })
    .path()
}

/// The path of one of its files, as config text wants it.
pub fn file(name: &str) -> String {
    dir().join(name).display().to_string()
}
