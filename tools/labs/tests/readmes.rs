//! Every lab in `labs/` parses: its fences, step kinds and expectations are valid, and
//! it starts its own `meshctl up`. (Running them is `scripts/labs.sh run all`.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

use bookinfo_labs::markdown::Kind;
use bookinfo_labs::runner;

#[test]
fn every_lab_readme_parses_and_starts_its_own_mesh() {
    let labs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../labs");
    let mut found = 0;
    for entry in std::fs::read_dir(&labs).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let lab = runner::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let ups = lab.steps.iter().filter(|s| s.kind == Kind::Up).count();
        assert_eq!(ups, 1, "{name}: one `sh up` step");
        assert!(
            lab.steps.iter().any(|s| !s.expect.checks.is_empty()),
            "{name}: a lab checks something"
        );
        found += 1;
    }
    assert!(found >= 10, "only {found} labs in {}", labs.display());
}
