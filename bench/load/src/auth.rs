//! Access tokens for the load tool (docs/PROTOCOL.md §2): sign the account
//! up (or log it in if it exists), then create a token with the given
//! scopes over the same session. The server must list the account in its
//! `publishers` setting for the `publish` scope.

use anyhow::Context;

/// The password the load tool's accounts get (local benchmarks only).
const PASSWORD: &str = "tandem-load benchmark password";

/// The `tandem_session=...` pair a sign-up or log-in answer sets.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("tandem_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// A new token of account `name` on the tandem server at `target`.
pub async fn token(target: &str, name: &str, scopes: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let post = |endpoint: &str| {
        http.post(format!("http://{target}/api/{endpoint}"))
            .header("accept", "application/json")
            .form(&[("name", name), ("password", PASSWORD)])
            .send()
    };
    let mut r = post("sign_up").await?;
    if r.status() == reqwest::StatusCode::CONFLICT {
        r = post("log_in").await?;
    }
    let status = r.status();
    let cookie =
        session_cookie(&r).with_context(|| format!("signing in as {name}: HTTP {status}"))?;
    let created = http
        .post(format!("http://{target}/api/create_token"))
        .header("accept", "application/json")
        .header("cookie", cookie)
        .form(&[("label", "tandem-load"), ("scopes", scopes)])
        .send()
        .await?;
    let status = created.status();
    let body: serde_json::Value = serde_json::from_str(&created.text().await?)?;
    body["secret"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("creating a token: HTTP {status}: {body}"))
}
