//! v2 against a real MariaDB/MySQL server.
//!
//! Start one with `scripts/mariadb.sh start` and export its settings for the tests:
//! `RATINGS_TEST_MYSQL_PORT` (required), `RATINGS_TEST_MYSQL_HOST` (default 127.0.0.1),
//! `RATINGS_TEST_MYSQL_USER` (root) and `RATINGS_TEST_MYSQL_PASSWORD` (password). Without
//! the port these tests fail on purpose: skipping silently would hide an untested back end.
//!
//! Tests that change data work in a database of their own, so they can run in parallel
//! with each other and never touch the seeded `test` database.

// Test helpers may panic: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bookinfo_ratings::config::{MysqlConfig, Version};
use bookinfo_ratings::{AppState, app};
use http_body_util::BodyExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use tower::ServiceExt;

/// The test server's settings, as ratings v2 would be configured for its `test` database.
fn server() -> MysqlConfig {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let port = match std::env::var("RATINGS_TEST_MYSQL_PORT") {
        Ok(p) => p
            .parse()
            .unwrap_or_else(|_| panic!("RATINGS_TEST_MYSQL_PORT={p:?} is not a port number")),
        Err(_) => panic!(
            "RATINGS_TEST_MYSQL_PORT is not set. These tests need a real MariaDB: run \
             `scripts/mariadb.sh start` and export RATINGS_TEST_MYSQL_PORT=13306 \
             (the MYSQL_DB_PORT printed by `scripts/mariadb.sh env`)."
        ),
    };
    MysqlConfig {
        host: var("RATINGS_TEST_MYSQL_HOST", "127.0.0.1"),
        port,
        user: var("RATINGS_TEST_MYSQL_USER", "root"),
        password: var("RATINGS_TEST_MYSQL_PASSWORD", "password"),
        database: "test".to_owned(),
        step_timeout: Duration::from_secs(5),
    }
}

/// The test's own connection to the server, outside the service.
async fn connect(cfg: &MysqlConfig) -> Conn {
    let opts = OptsBuilder::default()
        .ip_or_hostname(cfg.host.clone())
        .tcp_port(cfg.port)
        .user(Some(cfg.user.clone()))
        .pass(Some(cfg.password.clone()))
        .prefer_socket(false);
    Conn::new(opts).await.unwrap_or_else(|e| {
        panic!("cannot connect to the test database at {}:{} ({e}); is `scripts/mariadb.sh start` running?", cfg.host, cfg.port)
    })
}

/// A fresh database named after the test and this process; with `rows`, it holds a
/// `ratings` table shaped like the seed's.
async fn scratch_database(
    conn: &mut Conn,
    test: &str,
    rows: Option<&[(i32, Option<i32>)]>,
) -> String {
    let name = format!("ratings_it_{test}_{}", std::process::id());
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .await
        .unwrap();
    conn.query_drop(format!("CREATE DATABASE `{name}`"))
        .await
        .unwrap();
    if let Some(rows) = rows {
        conn.query_drop(format!(
            "CREATE TABLE `{name}`.ratings (ReviewID INT NOT NULL PRIMARY KEY, Rating INT)"
        ))
        .await
        .unwrap();
        for (id, rating) in rows {
            conn.exec_drop(
                format!("INSERT INTO `{name}`.ratings (ReviewID, Rating) VALUES (?, ?)"),
                (id, rating),
            )
            .await
            .unwrap();
        }
    }
    name
}

async fn drop_database(conn: &mut Conn, name: &str) {
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .await
        .unwrap();
}

fn v2(db: MysqlConfig) -> Router {
    app(AppState::new(Version::V2(db), None))
}

/// Status, content type and body of `GET uri`.
async fn get(app: &Router, uri: &str) -> (StatusCode, Option<String>, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn seeded_rows_show_up() {
    let (status, content_type, body) = get(&v2(server()), "/ratings/0").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#);
}

#[tokio::test]
async fn an_update_shows_on_the_next_request() {
    let cfg = server();
    let mut conn = connect(&cfg).await;
    // Inserted in reverse order: the answer follows ReviewID, not insertion order.
    let name = scratch_database(&mut conn, "update", Some(&[(2, Some(4)), (1, Some(5))])).await;
    let app = v2(MysqlConfig {
        database: name.clone(),
        ..cfg
    });

    assert_eq!(
        get(&app, "/ratings/1").await.2,
        r#"{"id":1,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#
    );
    conn.query_drop(format!(
        "UPDATE `{name}`.ratings SET Rating = 1 WHERE ReviewID = 1"
    ))
    .await
    .unwrap();
    assert_eq!(
        get(&app, "/ratings/1").await.2,
        r#"{"id":1,"ratings":{"Reviewer1":1,"Reviewer2":4}}"#
    );
    conn.query_drop(format!(
        "UPDATE `{name}`.ratings SET Rating = NULL WHERE ReviewID = 2"
    ))
    .await
    .unwrap();
    assert_eq!(
        get(&app, "/ratings/1").await.2,
        r#"{"id":1,"ratings":{"Reviewer1":1,"Reviewer2":null}}"#
    );

    drop_database(&mut conn, &name).await;
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn missing_rows_read_as_zero() {
    let cfg = server();
    let mut conn = connect(&cfg).await;
    let one_row = scratch_database(&mut conn, "one_row", Some(&[(1, Some(3))])).await;
    let no_rows = scratch_database(&mut conn, "no_rows", Some(&[])).await;

    let app = v2(MysqlConfig {
        database: one_row.clone(),
        ..cfg.clone()
    });
    assert_eq!(
        get(&app, "/ratings/0").await.2,
        r#"{"id":0,"ratings":{"Reviewer1":3,"Reviewer2":0}}"#
    );
    let app = v2(MysqlConfig {
        database: no_rows.clone(),
        ..cfg
    });
    assert_eq!(
        get(&app, "/ratings/0").await.2,
        r#"{"id":0,"ratings":{"Reviewer1":0,"Reviewer2":0}}"#
    );

    drop_database(&mut conn, &one_row).await;
    drop_database(&mut conn, &no_rows).await;
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_failing_select_answers_500() {
    let cfg = server();
    let mut conn = connect(&cfg).await;
    let name = scratch_database(&mut conn, "no_table", None).await;
    let app = v2(MysqlConfig {
        database: name.clone(),
        ..cfg
    });

    let (status, content_type, body) = get(&app, "/ratings/0").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"error":"could not perform select"}"#);

    drop_database(&mut conn, &name).await;
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_answers_200_without_content_type() {
    // The test server must be up, so the failures below are the service's, not the setup's.
    let cfg = server();
    connect(&cfg).await.disconnect().await.unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wrong_password = MysqlConfig {
        password: "not-the-password".to_owned(),
        ..cfg.clone()
    };
    let no_database = MysqlConfig {
        database: format!("ratings_it_absent_{}", std::process::id()),
        ..cfg.clone()
    };
    for db in [
        MysqlConfig {
            port: closed_port,
            ..cfg
        },
        wrong_password,
        no_database,
    ] {
        let (status, content_type, body) = get(&v2(db.clone()), "/ratings/0").await;
        assert_eq!(status, StatusCode::OK, "{db:?}");
        assert_eq!(content_type, None, "{db:?}");
        assert_eq!(
            body, r#"{"error":"could not connect to ratings database"}"#,
            "{db:?}"
        );
    }
}

/// The server's count of connection attempts since it started.
async fn connections_so_far(conn: &mut Conn) -> u64 {
    let row: Option<(String, u64)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Connections'")
        .await
        .unwrap();
    row.unwrap().1
}

#[tokio::test]
async fn every_request_opens_its_own_connection() {
    let cfg = server();
    let mut conn = connect(&cfg).await;
    let before = connections_so_far(&mut conn).await;
    let app = v2(cfg);
    for _ in 0..3 {
        assert_eq!(get(&app, "/ratings/0").await.0, StatusCode::OK);
    }
    let after = connections_so_far(&mut conn).await;
    // Other tests may connect meanwhile, so at least, not exactly, three.
    assert!(
        after - before >= 3,
        "{} new connections for 3 requests",
        after - before
    );
    conn.disconnect().await.unwrap();
}
