//! Concurrent responses never take each other's headers: every page keeps
//! its own Content Security Policy (with the nonce its inline scripts carry)
//! and its own identity while other pages, server functions and big static
//! files are served at once on the same worker threads.
//!
//! Regression: leptos_axum's `file_and_error_handler` served a found file
//! under a reactive owner created as a child of whatever owner was current
//! on the thread, and moved the headers of the `ResponseOptions` it found
//! there onto the file's response. A page being rendered lost its CSP, and
//! the browser blocked its scripts. Files are served by tower-http now.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pages_keep_their_own_csp_nonce_and_identity() {
    // A site root with a big file, compressed on the fly when asked for.
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/big.wasm"), vec![7u8; 4 << 20]).unwrap();
    std::fs::write(site.path().join("favicon.svg"), "<svg/>").unwrap();
    let server = TestServer::with_site_root(site.path()).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let cookies = [
        ("ann", ann.cookie_header()),
        ("bob", bob.cookie_header()),
        ("", None),
    ];
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..600 {
        let (who, cookie) = cookies[i % 3].clone();
        let send_cookie = cookies[(i + 1) % 3].1.clone();
        let client = client.clone();
        let path = if i % 2 == 0 { "/" } else { "/rooms/1" };
        let page = server.url(path);
        let file = server.url(if i % 20 == 0 {
            "/favicon.svg"
        } else {
            "/pkg/big.wasm"
        });
        let api = server.url("/api/send_message");
        tasks.push(tokio::spawn(async move {
            if i % 5 == 0 {
                let r = client
                    .get(file)
                    .header("accept-encoding", "gzip")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
            if let Some(c) = send_cookie.filter(|_| i % 4 == 0) {
                // A server function at the same time.
                let _ = client
                    .post(api)
                    .header("cookie", c)
                    .form(&[("room_id", "1"), ("client_id", &cid()[..]), ("body", "x")])
                    .send()
                    .await;
            }
            let mut req = client.get(page).header("accept", "text/html");
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            let r = req.send().await.unwrap();
            let csp = r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            (who, path, csp, r.text().await.unwrap())
        }));
    }
    let mut bad = Vec::new();
    for t in tasks {
        let (who, path, csp, html) = t.await.unwrap();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .map(str::to_owned);
        let scripts_ok = nonce.as_ref().is_some_and(|n| {
            html.matches("<script").count() == html.matches(&format!("nonce=\"{n}\"")).count()
        });
        let shown = html
            .split("data-testid=\"display-name\">")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap_or("");
        if !scripts_ok || shown != who {
            bad.push(format!(
                "{path} as {who:?}: CSP nonce {nonce:?}, scripts carry it: {scripts_ok}, shown as {shown:?}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of 600 pages lost their own headers or identity: {:#?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}
