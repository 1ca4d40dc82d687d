//! `meshctl proxy-status`: which configuration version each proxy holds.

use mesh_api::wire::ProxyStatus;

use super::render::{ago, text};
use crate::CtlError;
use crate::control::ControlClient;
use crate::table::Table;

/// Prints the table; exit code 0.
pub(super) async fn run(control: &ControlClient) -> Result<u8, CtlError> {
    let rows = control.proxy_status().await?;
    if rows.is_empty() {
        eprintln!("No proxies are connected to {}.", control.base());
        return Ok(0);
    }
    print!("{}", table(&rows).render());
    Ok(0)
}

fn table(rows: &[ProxyStatus]) -> Table {
    let mut t = Table::new(["NAME", "MODE", "VERSION", "LATEST", "STATUS", "LAST SEEN"]);
    for r in rows {
        t.row([
            text(&r.workload),
            r.mode.as_str().to_owned(),
            text(&r.version),
            text(&r.latest),
            r.status.as_str().to_owned(),
            ago(r.last_seen_ms),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_every_column() {
        let rows: Vec<ProxyStatus> = serde_json::from_value(json!([
            {"workload": "reviews-v2", "mode": "sidecar", "version": "3", "latest": "4", "status": "STALE", "last_seen_ms": 2000},
            {"workload": "reviews-v3", "mode": "sidecar", "version": "", "latest": "4", "status": "STALE", "last_seen_ms": 300}
        ]))
        .unwrap();
        assert_eq!(
            table(&rows).render(),
            "NAME         MODE      VERSION   LATEST   STATUS   LAST SEEN\n\
             reviews-v2   sidecar   3         4        STALE    2.0s ago\n\
             reviews-v3   sidecar   -         4        STALE    300ms ago\n"
        );
    }
}
