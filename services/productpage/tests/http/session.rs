//! Identity and tracing headers reaching the upstreams.

use super::support::{Bookinfo, STAR, client, count};

/// Signs in through `POST /login` and returns the `Cookie` header to send.
async fn sign_in(bi: &Bookinfo, user: &str) -> String {
    let resp = client()
        .post(format!("{}/login", bi.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={user}&passwd=password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn signed_in_user_is_sent_as_end_user() {
    let bi = Bookinfo::healthy().await;
    let cookie = sign_in(&bi, "jason").await;
    let resp = client()
        .get(format!("{}/productpage", bi.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"<span class="user-name">jason</span>"#));
    assert!(page.contains(r#"href="logout""#) && page.contains("Sign out"));
    assert!(page.contains(r#"src="/static/img/izzy.png""#));
    assert_eq!(count(&page, STAR), 9);
    for hits in [bi.details.hits(), bi.reviews.hits()] {
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0]
                .headers
                .get_all("end-user")
                .iter()
                .collect::<Vec<_>>(),
            ["jason"]
        );
    }

    // The API routes carry the identity too, including the direct ratings call.
    let resp = client()
        .get(format!("{}/api/v1/products/0/ratings", bi.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(bi.ratings.hits()[0].headers["end-user"], "jason");

    // After logout the browser drops the cookie; without it nobody is signed in.
    let resp = client()
        .get(format!("{}/logout", bi.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let page = bi.page("/productpage").await.1;
    assert!(page.contains(r#"id="sign-in-button""#));
    assert!(bi.reviews.hits()[1].headers.get("end-user").is_none());
}

#[tokio::test]
async fn incoming_end_user_is_not_forwarded() {
    let bi = Bookinfo::healthy().await;
    let resp = client()
        .get(format!("{}/productpage", bi.url))
        .header("end-user", "jason")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(bi.details.hits()[0].headers.get("end-user").is_none());
    assert!(bi.reviews.hits()[0].headers.get("end-user").is_none());

    // Signed in as someone else, the session wins over a spoofed header.
    let cookie = sign_in(&bi, "alice").await;
    client()
        .get(format!("{}/productpage", bi.url))
        .header("cookie", cookie)
        .header("end-user", "jason")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bi.reviews.hits()[1]
            .headers
            .get_all("end-user")
            .iter()
            .collect::<Vec<_>>(),
        ["alice"]
    );
}

#[tokio::test]
async fn tracing_headers_arrive_unchanged() {
    let bi = Bookinfo::start(
        super::support::Reply::ok("{}"),
        super::support::Reply::ok("{}"),
        super::support::Reply::ok("{}"),
    )
    .await;
    let sent = [
        ("x-request-id", "6f1c0b1a-4a4e-9a7e-bd2d-1c4f5d6e7f80"),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-sampled", "1"),
        ("sw8", "40c7fdf104e3de67"),
        (
            "traceparent",
            "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
        ),
    ];
    for route in ["reviews", "ratings"] {
        let mut req = client().get(format!("{}/api/v1/products/0/{route}", bi.url));
        for (name, value) in sent {
            req = req.header(name, value);
        }
        let resp = req
            .header("x-b3-parentspanid", "05e3ac9a4f6e3b90")
            .header("x-foo", "bar")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{route}");
        assert_eq!(resp.text().await.unwrap(), "{}");
    }
    for fake in [&bi.reviews, &bi.ratings] {
        let hits = fake.hits();
        assert_eq!(hits.len(), 1);
        assert!(
            hits[0].path == "/reviews/0" || hits[0].path == "/ratings/0",
            "{}",
            hits[0].path
        );
        for (name, value) in sent {
            assert_eq!(
                hits[0].headers.get_all(name).iter().collect::<Vec<_>>(),
                [value],
                "{name}"
            );
        }
        assert!(hits[0].headers.get("x-b3-parentspanid").is_none());
        assert!(hits[0].headers.get("x-foo").is_none());
    }
}
