//! The binary's command line: bad flags end with one line and exit code 64.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::process::Command;

/// The binary, without the caller's `MESH_CONTROL_*` settings.
fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-control"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MESH_CONTROL_") {
            command.env_remove(key);
        }
    }
    command
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = command().args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn bad_flags_exit_64_with_one_line() {
    for (args, expected) in [
        (&["--bogus"][..], "--bogus"),
        (&["--cert-ttl", "5s"][..], "shorter than 10s"),
        (&["--cert-ttl", "soon"][..], "soon"),
        (&["--listen", "nowhere"][..], "nowhere"),
        (&["--ca-cert", "/tmp/x.pem"][..], "--ca-key"),
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("mesh-control: "), "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn an_invalid_config_dir_at_start_exits_64() {
    let dir = std::env::temp_dir().join(format!("mesh-control-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: []}\n",
    )
    .unwrap();
    let (code, stderr) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--config-dir",
        dir.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, Some(64), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.yaml"), "{stderr}");
}

#[test]
fn off_loopback_identities_and_changes_must_be_guarded() {
    let (code, stderr) = run(&["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("needs a workload credential source"),
        "{stderr}"
    );
    let dir = scratch("guard");
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        "- token: productpage-token-0123456789\n  serviceAccount: bookinfo-productpage\n",
    )
    .unwrap();
    let (code, stderr) = run(&[
        "--listen",
        "0.0.0.0:0",
        "--workload-tokens",
        tokens.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("--api-token-file"), "{stderr}");
    std::fs::write(&tokens, "- token: short\n  serviceAccount: x\n").unwrap();
    let (code, stderr) = run(&["--workload-tokens", tokens.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("--workload-tokens") && stderr.contains("entry 0"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mesh-control-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Kills the control plane when the test ends, passed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn off_loopback_the_mutating_api_needs_the_admin_token() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = scratch("admin");
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        "- token: productpage-token-0123456789\n  serviceAccount: bookinfo-productpage\n",
    )
    .unwrap();
    let api_token = dir.join("secret/api-token");
    // A free port, listened on at every address (the test only connects to 127.0.0.1).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _control = Running(
        command()
            .args(["--listen", &format!("0.0.0.0:{port}")])
            .args(["--workload-tokens", tokens.to_str().unwrap()])
            .args(["--api-token-file", api_token.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut up = false;
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(up, "mesh-control did not start");
    // Generated at start, private to its owner.
    let token = std::fs::read_to_string(&api_token).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&api_token).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [ratings], http: [{route: [{destination: {host: ratings}}]}]}\n";
    let apply = |token: Option<&str>| {
        let mut request = client
            .post(format!("{base}/api/v1/apply?file=r.yaml"))
            .body(yaml);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(apply(None).await.unwrap().status(), 401);
    assert_eq!(
        apply(Some("not-the-admin-token-0123456789"))
            .await
            .unwrap()
            .status(),
        401
    );
    let applied = apply(Some(token)).await.unwrap();
    assert_eq!(applied.status(), 200, "{:?}", applied.text().await);
    // Reads stay open.
    let resources = client
        .get(format!("{base}/api/v1/resources"))
        .send()
        .await
        .unwrap();
    assert_eq!(resources.status(), 200);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kubernetes_without_a_cluster_exits_64_with_one_line() {
    let home = std::env::temp_dir().join(format!("mesh-control-nokube-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mesh-control"))
        .args(["--listen", "127.0.0.1:0"])
        .env("MESH_CONTROL_KUBERNETES", "true")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("KUBECONFIG", home.join("missing-kubeconfig"))
        .env("HOME", &home)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&home).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("mesh-control: --kubernetes: no Kubernetes cluster configuration found"),
        "{stderr}"
    );

    let (code, stderr) = run(&["--kubernetes=maybe"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("maybe"), "{stderr}");
}
