//! The server-rendered pages, lazy routes among them (`src/routes/`): each
//! answers with its status and its `<title>`, and its content is in the
//! HTML. A lazy route's view is an async function (its code may be in a
//! chunk of its own in the browser); on the server it must still set the
//! page's status and title before the head is written.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::TestServer;

/// The page at `path` (with `client`): its status, its title and its HTML.
async fn page(server: &TestServer, client: &reqwest::Client, path: &str) -> (u16, String, String) {
    let res = client.get(server.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    let html = res.text().await.unwrap();
    let title = html
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or_else(|| panic!("{path} has no title:\n{html}"))
        .to_owned();
    (status, title, html)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_answers_with_its_status_title_and_content() {
    let server = TestServer::start().await;
    let anon = reqwest::Client::new();
    for (path, status, title, content) in [
        ("/", 200, "Rooms · tandem", "data-testid=\"room-list\""),
        (
            "/login",
            200,
            "Log in · tandem",
            "data-testid=\"credentials-form\"",
        ),
        (
            "/signup",
            200,
            "Sign up · tandem",
            "data-testid=\"credentials-form\"",
        ),
        (
            "/account",
            401,
            "Account · tandem",
            "data-testid=\"account-signed-out\"",
        ),
        (
            "/rooms/1",
            200,
            "general · tandem",
            "data-testid=\"message\"",
        ),
        (
            "/rooms/999",
            404,
            "Room not found · tandem",
            "data-testid=\"room-error\"",
        ),
        (
            "/no/such/page",
            404,
            "Page not found · tandem",
            "There is no page at this address",
        ),
    ] {
        let (got, got_title, html) = page(&server, &anon, path).await;
        assert_eq!((got, got_title.as_str()), (status, title), "{path}");
        assert!(html.contains(content), "{path} lacks {content}:\n{html}");
    }

    // Signed in, the account page lists the session.
    let ann = server.user("ann").await;
    let (status, title, html) = page(&server, &ann.client, "/account").await;
    assert_eq!((status, title.as_str()), (200, "Account · tandem"));
    assert!(html.contains("<h1>Account: <!>ann</h1>"), "{html}");
    assert!(html.contains("data-testid=\"session\""), "{html}");
}
