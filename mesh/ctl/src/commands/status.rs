//! `meshctl proxy-status`: which configuration version each proxy holds.

use serde_json::Value;

use super::render::{ago, cell};
use crate::CtlError;
use crate::control::Control;
use crate::table::Table;

/// Prints the table; exit code 0.
pub(super) async fn run(control: &Control) -> Result<u8, CtlError> {
    let answer = control.get("api/v1/proxy-status", &[]).await?;
    let rows = answer.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        eprintln!("No proxies are connected to {}.", control.base());
        return Ok(0);
    }
    print!("{}", table(&rows).render());
    Ok(0)
}

fn table(rows: &[Value]) -> Table {
    let mut t = Table::new(["NAME", "MODE", "VERSION", "LATEST", "STATUS", "LAST SEEN"]);
    for r in rows {
        t.row([
            cell(r, &["workload"]),
            cell(r, &["mode"]),
            cell(r, &["version"]),
            cell(r, &["latest"]),
            cell(r, &["status"]),
            ago(r, "last_seen_ms"),
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
        let rows = [
            json!({"workload": "reviews-v2", "mode": "sidecar", "version": "3", "latest": "4", "status": "STALE", "last_seen_ms": 2000}),
        ];
        assert_eq!(
            table(&rows).render(),
            "NAME         MODE      VERSION   LATEST   STATUS   LAST SEEN\n\
             reviews-v2   sidecar   3         4        STALE    2.0s ago\n"
        );
    }
}
