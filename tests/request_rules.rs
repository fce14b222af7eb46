//! The request rules over real HTTP: allowed hosts, the Origin rule (scheme,
//! host, port; one Origin; `Sec-Fetch-Site` without Origin), redirects only
//! to our own pages, security headers and the pages' nonce-based CSP, HSTS
//! and Secure cookies on an HTTPS site, and names that only look alike.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer, Ws};
use reqwest::header::{HeaderMap, HeaderValue};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_send(server: &TestServer, extra: &[(&'static str, &str)]) -> u16 {
    let cookie = server.user("ann").await.cookie_header().unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in extra {
        headers.append(*k, HeaderValue::from_str(v).unwrap());
    }
    client()
        .post(server.url("/api/send_message"))
        .headers(headers)
        .header("cookie", cookie)
        .form(&[("room_id", "1"), ("client_id", &cid()[..]), ("body", "x")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_hosts_are_answered() {
    let server = TestServer::start().await;
    let ok = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let localhost = format!("localhost:{}", server.addr.port());
    let also = client()
        .get(server.url("/healthz"))
        .header("host", &localhost)
        .send()
        .await
        .unwrap();
    assert_eq!(also.status(), 200, "localhost on a loopback server");
    for host in ["evil.example", "127.0.0.1", "127.0.0.1:1"] {
        let r = client()
            .get(server.url("/"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{host}");
        assert_eq!(r.text().await.unwrap(), "host not allowed");
    }
    // The socket too (a rebinding page with a matching Origin).
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("host", "evil.example".parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_rule_compares_scheme_host_and_port_and_wants_one_origin() {
    let server = TestServer::start().await;
    let own = server.origin();
    let other_scheme = own.replace("http://", "https://");
    assert_eq!(post_send(&server, &[("origin", &own)]).await, 200);
    assert_eq!(post_send(&server, &[("origin", &other_scheme)]).await, 403);
    assert_eq!(
        post_send(&server, &[("origin", &own), ("origin", &own)]).await,
        403
    );
    assert_eq!(
        post_send(&server, &[("sec-fetch-site", "cross-site")]).await,
        403
    );
    assert_eq!(
        post_send(&server, &[("sec-fetch-site", "same-site")]).await,
        403
    );
    assert_eq!(
        post_send(&server, &[("sec-fetch-site", "same-origin")]).await,
        200
    );
    assert_eq!(post_send(&server, &[]).await, 200, "not a browser");
    let refused = Ws::connect(&server, Some(&other_scheme), None)
        .await
        .err()
        .unwrap();
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 403),
        other => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_redirects_go_only_to_our_own_pages() {
    let server = TestServer::start().await;
    for (method, path) in [("POST", "/api/create_room"), ("GET", "/api/list_rooms")] {
        let req = if method == "POST" {
            client()
                .post(server.url(path))
                .form(&[("name", format!("r-{}", cid()))])
        } else {
            client().get(server.url(path))
        };
        let r = req
            .header("accept", "text/html")
            .header("referer", "http://evil.example/phish")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{path}");
        assert_eq!(
            r.headers()["location"],
            "/",
            "{path}: not to the foreign Referer"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_a_nonce_csp_and_every_response_the_security_headers() {
    let server = TestServer::start().await;
    let page = client().get(server.url("/rooms/1")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in script-src")
        .to_owned();
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    assert!(
        page.headers().get("strict-transport-security").is_none(),
        "plain HTTP"
    );
    let html = page.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every inline script carries this response's nonce"
    );
    let again = client().get(server.url("/rooms/1")).send().await.unwrap();
    let other = again.headers()["content-security-policy"].to_str().unwrap();
    assert!(!other.contains(&nonce), "a fresh nonce per response");
    let api = client()
        .get(server.url("/api/list_rooms"))
        .send()
        .await
        .unwrap();
    let api_csp = api.headers()["content-security-policy"].to_str().unwrap();
    assert!(!api_csp.contains("nonce") && !api_csp.contains("unsafe-inline"));
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_site_gets_hsts_and_secure_cookies() {
    let server = TestServer::with(|s| s.public_origins = vec!["https://chat.example".into()]).await;
    let r = client()
        .post(server.url("/api/sign_up"))
        .header("host", "chat.example")
        .header("origin", "https://chat.example")
        .form(&[("name", "ann"), ("password", common::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("__Host-tandem_session=")
            && cookie.contains("Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    let plain = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(
        plain.status(),
        400,
        "the bound address is not a public origin here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_names_that_only_look_alike_are_the_same_name() {
    let server = TestServer::start().await;
    let http = server.user("ann").await;
    let (status, _) = http.post("create_room", &[("name", "paypal")]).await;
    assert_eq!(status, 200);
    for alike in ["раураl", "PAYPAL", "ｐａｙｐａｌ"] {
        let (status, err) = http.post("create_room", &[("name", alike)]).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (409, Some("conflict")),
            "{alike}"
        );
    }
    let (status, err) = http
        .post("create_room", &[("name", "pay\u{200B}pal")])
        .await;
    assert_eq!((status, err["code"].as_str()), (400, Some("validation")));
    let (status, err) = http
        .post(
            "sign_up",
            &[("name", "\u{202E}nimda"), ("password", common::PASSWORD)],
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (400, Some("validation")));
}
