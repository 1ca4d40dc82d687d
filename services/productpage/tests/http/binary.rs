//! The built binary rejects bad configuration with one line and exit code 64.

use std::process::Command;

fn run(var: &str, value: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_productpage"))
        .env_clear()
        .env(var, value)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_exits_64_with_one_line() {
    for (var, value) in [
        ("DETAILS_SERVICE_PORT", "abc"),
        ("FLOOD_FACTOR", "-1"),
        ("PRODUCTPAGE_KEEPALIVE", "sometimes"),
        ("LOG_FORMAT", "xml"),
    ] {
        let (code, stderr) = run(var, value);
        assert_eq!(code, Some(64), "{var}={value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("productpage: invalid ") && stderr.contains(var),
            "{stderr}"
        );
    }
}
