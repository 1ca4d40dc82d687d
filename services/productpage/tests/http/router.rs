//! In-process router tests (`oneshot`, no sockets except a refused upstream port).

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use bookinfo_productpage::app;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::support::{closed_port, config, count, state};

async fn router() -> Router {
    let port = closed_port().await;
    app(state(&config(port, port, port, &[])))
}

async fn send(req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = router().await.oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    send(Request::get(path).body(Body::empty()).unwrap()).await
}

fn login(body: &'static str, content_type: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/login");
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    req.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn landing_page_has_the_title_on_one_line_and_the_user_links() {
    for path in ["/", "/index.html"] {
        let (status, headers, body) = get(path).await;
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(
            body.lines()
                .any(|l| l.contains("<title>Simple Bookstore App</title>")),
            "{body}"
        );
        assert!(body.contains("Hello! This is a simple bookstore application consisting of three services as shown below"));
        assert!(body.contains(r#"href="/productpage?u=normal""#) && body.contains("Normal user"));
        assert!(body.contains(r#"href="/productpage?u=test""#) && body.contains("Test user"));
    }
}

#[tokio::test]
async fn health_is_plain_text_in_html() {
    let (status, headers, body) = get("/health").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "Product page is healthy")
    );
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    for path in [
        "/nope",
        "/productpage/",
        "/static/",
        "/static/css/missing.css",
        "/api/v1/products/0/other",
    ] {
        let (status, headers, body) = get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(body.contains("Not Found"), "{body}");
    }
    for (method, path) in [
        (Method::POST, "/productpage"),
        (Method::GET, "/login"),
        (Method::DELETE, "/api/v1/products"),
    ] {
        let (status, headers, body) = send(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert!(headers.contains_key(header::ALLOW), "{path}: {headers:?}");
        assert!(body.contains("Method Not Allowed"));
    }
}

#[tokio::test]
async fn head_works_on_get_routes() {
    let (status, headers, body) = send(Request::head("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(body.is_empty());
}

#[tokio::test]
async fn static_assets_have_types_and_cache_headers() {
    let (status, headers, css) = get("/static/css/bookinfo.css").await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(css.contains(".text-red-500"));
    // Star markers are counted by labs; the stylesheet must never contain one.
    assert_eq!(count(&css, "glyphicon"), 0);

    let resp = router()
        .await
        .oneshot(
            Request::get("/static/img/izzy.png")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/png");
    let png = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // IHDR width and height: 200 x 200.
    assert_eq!(&png[16..24], &[0, 0, 0, 200, 0, 0, 0, 200]);
}

#[tokio::test]
async fn product_list_is_the_exact_original_text() {
    let (status, headers, body) = get("/api/v1/products").await;
    assert_eq!(status, 200);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert!(body.starts_with(r#"[{"id": 0, "title": "The Comedy of Errors", "descriptionHtml": "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: "#));
    assert!(
        body.ends_with(r#"in addition to puns and word play."}]"#),
        "{body}"
    );
}

#[tokio::test]
async fn login_redirects_back_with_a_session_cookie() {
    let mut req = login(
        "username=jason&passwd=password",
        Some("application/x-www-form-urlencoded"),
    );
    req.headers_mut().insert(
        header::REFERER,
        "http://gw.example/productpage?u=test".parse().unwrap(),
    );
    let (status, headers, _) = send(req).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        headers[header::LOCATION],
        "http://gw.example/productpage?u=test"
    );
    assert_eq!(headers[header::VARY], "Cookie");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("session=") && cookie.ends_with("; HttpOnly; Path=/"),
        "{cookie}"
    );

    // No Referer: back to the product page (the original sends `Location: None`).
    let (status, headers, _) = send(login("username=jason", None)).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers[header::LOCATION], "/productpage");
}

#[tokio::test]
async fn login_reads_the_query_string_too() {
    let req = Request::post("/login?username=jason")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(req).await;
    assert_eq!(status, StatusCode::FOUND);
    let cookie = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (_, _, page) = send(
        Request::get("/productpage")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        page.contains(r#"<span class="user-name">jason</span>"#),
        "{page}"
    );
}

#[tokio::test]
async fn logout_expires_the_cookie() {
    let (status, headers, _) = get("/logout").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers[header::LOCATION], "/productpage");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("session=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
}

#[tokio::test]
async fn malformed_login_bodies_are_client_errors() {
    for (body, ct, expected) in [
        (
            "username=%zz",
            Some("application/x-www-form-urlencoded"),
            StatusCode::BAD_REQUEST,
        ),
        ("username=%FF%FE", None, StatusCode::BAD_REQUEST),
        ("username=a%0Ab", None, StatusCode::BAD_REQUEST),
        (
            "--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\njason\r\n--x--",
            Some("multipart/form-data; boundary=x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            r#"{"username":"jason"}"#,
            Some("application/json"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let (status, _, message) = send(login(body, ct)).await;
        assert_eq!(status, expected, "{body}: {message}");
        assert!(!message.is_empty());
    }
    let long = format!("username={}", "a".repeat(300));
    let req = Request::post("/login").body(Body::from(long)).unwrap();
    assert_eq!(send(req).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tampered_cookie_means_signed_out() {
    let (_, headers, _) = send(login("username=jason", None)).await;
    let cookie = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let page = |cookie: String| async move {
        let (status, _, body) = send(
            Request::get("/productpage")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        body
    };
    let signed_in = page(cookie.clone()).await;
    assert!(signed_in.contains("Sign out") && signed_in.contains("/static/img/izzy.png"));
    assert!(!signed_in.contains(r#"id="sign-in-button""#));

    let mut tampered = cookie.into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(tampered).unwrap(),
        "session=garbage".to_owned(),
        "session=a.b".to_owned(),
    ] {
        let body = page(bad.clone()).await;
        assert!(body.contains(r#"id="sign-in-button""#), "{bad}");
        assert!(!body.contains("Sign out"), "{bad}");
        assert!(!body.contains(r#"class="user-name""#), "{bad}");
    }
}

#[tokio::test]
async fn signed_out_page_has_the_sign_in_dialog() {
    let (_, headers, body) = get("/productpage?u=normal").await;
    assert_eq!(headers[header::VARY], "Cookie");
    assert!(body.contains("BookInfo Sample"));
    assert!(body.contains(r#"id="sign-in-button""#));
    assert!(body.contains("<dialog") && body.contains("Sign in to BookInfo"));
    assert!(body.contains(r#"method="post" action="login""#));
    assert!(body.contains(r#"name="username""#) && body.contains(r#"id="username""#));
    assert!(body.contains(r#"type="password" id="password" name="passwd""#));
    assert!(!body.contains(r#"href="logout""#));
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = router().await;
    let health = app
        .clone()
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let resp = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains(r#"http_server_requests_total{method="GET",route="/health",code="200"} 1"#),
        "{text}"
    );
}
