//! `meshctl up` itself: the product page through the gateway, `--no-mesh`, `meshctl kill`
//! and the supervisor's restart, and a clean stop on SIGTERM.

use std::time::Duration;

use mesh_ctl::state::{Role, State};

use super::support::*;

#[tokio::test]
async fn up_serves_the_product_page_through_the_gateway_and_stops_cleanly() {
    let mut up = Up::start("mesh", 27000, 27080, 27090, &[]);
    let took = up.ready().await;
    eprintln!("meshctl up ready in {took:?}");
    let out = up.output();
    for name in [
        "mesh-control",
        "productpage-v1-proxy",
        "reviews-v3",
        "istio-ingressgateway",
    ] {
        assert!(
            out.contains(&format!("✔ {name}")),
            "{name} not ticked:\n{out}"
        );
    }
    assert!(
        out.contains("http://127.0.0.1:27080/"),
        "no dashboard URL:\n{out}"
    );
    page_with(&up.page_url(), "Reviews served by", Duration::from_secs(10)).await;

    let state = up.state();
    assert!(state.mesh);
    assert_eq!(state.control_url.as_deref(), Some("http://127.0.0.1:27080"));
    // 6 apps, 6 sidecars, the gateway and the control plane.
    assert_eq!(state.processes.len(), 14);
    assert!(state.processes.iter().all(|p| p.pid.is_some()));
    up.stop().await;
}

#[tokio::test]
async fn killing_a_workload_restarts_it_and_the_page_recovers() {
    let mut up = Up::start(
        "kill",
        27200,
        27280,
        27290,
        &["--workloads", "productpage,details,reviews-v2,ratings"],
    );
    up.ready().await;
    page_with(&up.page_url(), "reviews-v2-", Duration::from_secs(10)).await;
    let old = pid_of(&up.state(), "reviews-v2");
    let said = meshctl_kill(&up, &["reviews-v2"]);
    assert!(
        said.contains(&format!("killed reviews-v2 (pid {old})")),
        "{said}"
    );
    let new = restarted(&up, "reviews-v2", old).await;
    assert!(alive(new));
    assert!(
        up.output()
            .contains("reviews-v2 exited (signal 9); restarting in 1 s"),
        "{}",
        up.output()
    );
    page_with(&up.page_url(), "reviews-v2-", Duration::from_secs(15)).await;

    // The sidecar too.
    let old = pid_of(&up.state(), "reviews-v2-proxy");
    meshctl_kill(&up, &["reviews-v2", "--sidecar"]);
    restarted(&up, "reviews-v2-proxy", old).await;
    page_with(&up.page_url(), "reviews-v2-", Duration::from_secs(15)).await;
    up.stop().await;
}

#[tokio::test]
async fn no_mesh_wires_the_services_directly_and_stops_cleanly() {
    let mut up = Up::start(
        "nomesh",
        27400,
        27480,
        27490,
        &["--no-mesh", "--reviews", "v3"],
    );
    up.ready().await;
    let body = page_with(&up.page_url(), "reviews-v3-", Duration::from_secs(10)).await;
    // v3 shows red stars: productpage reached reviews, and reviews reached ratings.
    assert!(
        body.contains("class=\"stars text-red-500\""),
        "no red stars in the page"
    );
    assert!(
        !body.contains("currently unavailable"),
        "a service was not reached"
    );
    let state = up.state();
    assert!(!state.mesh && state.control_url.is_none());
    assert_eq!(state.processes.len(), 4);
    assert!(state.processes.iter().all(|p| p.role == Role::App));
    assert!(!up.output().contains("mesh-control"));

    // Chaos without the mesh: reviews restarts and the page has reviews again.
    let old = pid_of(&state, "reviews-v3");
    meshctl_kill(&up, &["reviews-v3"]);
    restarted(&up, "reviews-v3", old).await;
    page_with(&up.page_url(), "reviews-v3-", Duration::from_secs(15)).await;
    up.stop().await;
}

#[tokio::test]
async fn a_busy_port_is_refused_before_anything_starts() {
    let _busy = std::net::TcpListener::bind("127.0.0.1:27690").unwrap();
    let mut up = Up::start("busy", 27600, 27680, 27690, &["--no-mesh"]);
    let mut child = up.child.take().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let out = up.output();
    assert!(
        out.contains("port 27690 for productpage-v1 (gateway) is already in use"),
        "{out}"
    );
    assert!(out.contains("--gateway-port"), "{out}");
    assert!(!State::path(&up.run_dir).exists());
    let _ = std::fs::remove_dir_all(&up.run_dir);
}
