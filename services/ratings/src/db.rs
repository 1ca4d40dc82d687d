//! v2's MySQL/MariaDB back end.
//!
//! Like the original, every request opens its own connection, runs one select and
//! closes the connection: nothing is pooled or cached, so a row changed in the database
//! shows on the very next request (the virtual-machine lab relies on it), and a mesh sees
//! one real TCP connection per request (the TCP-metrics lab relies on that). Each step is
//! bounded by [`MysqlConfig::step_timeout`] so a stuck database cannot hang a request.

use std::future::Future;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row};
use serde_json::Value;

use crate::config::MysqlConfig;

/// The select, in review order: the first row is Reviewer1's rating, the second Reviewer2's.
pub const SELECT_RATINGS: &str = "SELECT Rating FROM ratings ORDER BY ReviewID";

/// Why the ratings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection (refused, unknown host, bad credentials, missing database).
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// `host:port` tried.
        addr: String,
        /// The driver's error.
        source: mysql_async::Error,
    },
    /// The select failed (for example, no `ratings` table).
    #[error("select failed: {0}")]
    Select(#[source] mysql_async::Error),
    /// A step took longer than the configured limit.
    #[error("{step} did not finish within {limit:?}")]
    Timeout {
        /// `connect` or `select`.
        step: &'static str,
        /// The limit.
        limit: Duration,
    },
}

impl DbError {
    /// Whether the failure happened before a connection was established.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Timeout {
                    step: "connect",
                    ..
                }
        )
    }
}

/// Reads Reviewer1's and Reviewer2's ratings; a missing row reads as 0.
pub async fn fetch_ratings(cfg: &MysqlConfig) -> Result<[Value; 2], DbError> {
    let limit = cfg.step_timeout;
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let opts = OptsBuilder::default()
        .ip_or_hostname(cfg.host.clone())
        .tcp_port(cfg.port)
        .user(Some(cfg.user.clone()))
        .pass((!cfg.password.is_empty()).then(|| cfg.password.clone()))
        .db_name(Some(cfg.database.clone()))
        // Stay on the TCP connection even to a local server: the driver would otherwise
        // switch to the Unix socket, and the mesh would no longer see the traffic.
        .prefer_socket(false);
    let mut conn = bounded("connect", limit, Conn::new(opts))
        .await?
        .map_err(|source| DbError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let rows = bounded("select", limit, conn.query::<Row, _>(SELECT_RATINGS)).await;
    // Close in every case, as the original does; a failed goodbye costs nothing but a log line.
    match tokio::time::timeout(limit, conn.disconnect()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "Closing the database connection failed."),
        Err(_) => tracing::debug!(%addr, "Closing the database connection timed out."),
    }
    let rows = rows?.map_err(DbError::Select)?;
    let rating = |i: usize| {
        rows.get(i)
            .and_then(|r| r.as_ref(0))
            .map_or(Value::from(0), to_json)
    };
    Ok([rating(0), rating(1)])
}

async fn bounded<T>(
    step: &'static str,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, DbError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| DbError::Timeout { step, limit })
}

/// A column value as JSON. The text protocol delivers numbers as text, so text that
/// reads as a number becomes one; SQL `NULL` becomes `null`, as in the original.
fn to_json(value: &mysql_async::Value) -> Value {
    use mysql_async::Value as Sql;
    match value {
        Sql::NULL => Value::Null,
        Sql::Int(i) => Value::from(*i),
        Sql::UInt(u) => Value::from(*u),
        Sql::Float(f) => Value::from(f64::from(*f)),
        Sql::Double(d) => Value::from(*d),
        Sql::Bytes(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            if let Ok(i) = text.parse::<i64>() {
                Value::from(i)
            } else if let Ok(u) = text.parse::<u64>() {
                Value::from(u)
            } else if let Some(n) = text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Value::Number(n)
            } else {
                Value::String(text.into_owned())
            }
        }
        other => Value::String(other.as_sql(true).trim_matches('\'').to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use mysql_async::Value as Sql;
    use serde_json::json;

    use super::*;

    #[test]
    fn column_values_become_json() {
        assert_eq!(to_json(&Sql::Bytes(b"5".to_vec())), json!(5));
        assert_eq!(to_json(&Sql::Bytes(b"-2".to_vec())), json!(-2));
        assert_eq!(to_json(&Sql::Bytes(b"4.5".to_vec())), json!(4.5));
        assert_eq!(to_json(&Sql::Bytes(b"five".to_vec())), json!("five"));
        assert_eq!(to_json(&Sql::Int(3)), json!(3));
        assert_eq!(to_json(&Sql::NULL), Value::Null);
    }

    #[test]
    fn only_connection_failures_count_as_connect_errors() {
        let limit = Duration::from_secs(5);
        assert!(
            DbError::Timeout {
                step: "connect",
                limit
            }
            .is_connect()
        );
        assert!(
            !DbError::Timeout {
                step: "select",
                limit
            }
            .is_connect()
        );
    }
}
