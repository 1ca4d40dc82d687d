//! VirtualService mirroring on a real sidecar: callers get v1's answers only, v2 gets a
//! copy of each request with Envoy's `-shadow` Host, and `mirrorPercentage` thins the
//! copies out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[expect(dead_code, reason = "each test binary uses part of the shared helpers")]
mod support;

use support::{Ep, client_via, file_sidecar};

/// An upstream answering `name` and recording the Host of every request.
async fn upstream(name: &'static str) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let h = hosts.clone();
    let router = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let h = h.clone();
        async move {
            let host = headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            h.lock().unwrap().push(host);
            name
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, hosts)
}

fn rules(percentage: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc}}\nspec:\n  hosts: [svc]\n  http:\n  - route:\n    - destination: {{host: svc, subset: v1}}\n      weight: 100\n    mirror: {{host: svc, subset: v2}}\n{percentage}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n"
    )
}

/// Waits (bounded) until the fire-and-forget copies have arrived.
async fn settle(hosts: &Mutex<Vec<String>>, at_least: usize) {
    for _ in 0..200 {
        if hosts.lock().unwrap().len() >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn users_see_v1_and_v2_gets_shadow_copies() {
    let (v1, v1_hosts) = upstream("v1").await;
    let (v2, v2_hosts) = upstream("v2").await;
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    let proxy = file_sidecar(
        &[Ep(v1, "v1", false), Ep(v2, "v2", false)],
        &rules("    mirrorPercentage: {value: 100.0}\n"),
        lo,
    )
    .await;
    let client = client_via(&proxy);
    for _ in 0..10 {
        let resp = client.get("http://svc/reviews/0").send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "v1");
    }
    settle(&v2_hosts, 10).await;
    assert_eq!(v1_hosts.lock().unwrap().len(), 10);
    let copies = v2_hosts.lock().unwrap().clone();
    assert_eq!(copies.len(), 10, "{copies:?}");
    assert!(copies.iter().all(|h| h == "svc-shadow"), "{copies:?}");
    assert!(v1_hosts.lock().unwrap().iter().all(|h| h == "svc"));
}

#[tokio::test]
async fn mirror_percentage_zero_sends_no_copies() {
    let (v1, _) = upstream("v1").await;
    let (v2, v2_hosts) = upstream("v2").await;
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    let proxy = file_sidecar(
        &[Ep(v1, "v1", false), Ep(v2, "v2", false)],
        &rules("    mirrorPercentage: {value: 0.0}\n"),
        lo,
    )
    .await;
    let client = client_via(&proxy);
    for _ in 0..20 {
        assert_eq!(
            client
                .get("http://svc/")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "v1"
        );
    }
    // A control request through a mirroring route would have arrived by now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(v2_hosts.lock().unwrap().is_empty());
}
