//! A real control plane (`mesh-control`'s API on 127.0.0.1:0) and sidecars that follow
//! it, as the control-plane-mode tests start them.

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_api::wire::WorkloadSpec as Registration;
use mesh_control::{Control, Settings};
use mesh_proxy::config::{Env, Source, WorkloadSpec};

/// A control plane on 127.0.0.1:0; returns it and its address.
pub(crate) async fn control_plane() -> (Arc<Control>, SocketAddr) {
    let control = Control::new(Settings::default()).unwrap();
    control.start_background();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = mesh_control::api::router(control.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (control, addr)
}

/// The service `svc` with one instance outside the mesh, at `address`.
pub(crate) fn svc_at(address: SocketAddr) -> Registration {
    serde_json::from_value(serde_json::json!({
        "name": "svc-v1", "service": "svc", "labels": {"app": "svc"},
        "address": address, "sidecar": false, "ports": [80],
    }))
    .unwrap()
}

/// The environment of a sidecar `client-v1` (every listener on a free loopback port)
/// that takes its configuration from the control plane at `url`.
pub(crate) fn control_env(url: String) -> Env {
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    Env {
        source: Source::Control {
            url,
            token: None,
            workload: WorkloadSpec {
                name: "client-v1".into(),
                namespace: "default".into(),
                service_account: Some("client".into()),
                labels: [("app".to_owned(), "client".to_owned())].into(),
                service: None,
            },
        },
        outbound: lo,
        inbound: lo,
        app: lo,
        admin: lo,
        access_log: false,
        ..Env::with_file("unused".into())
    }
}
