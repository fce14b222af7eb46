//! Accounts on screen: who is signed in (known at render time), the header
//! badge, the sign-up, log-in and account pages, and their server functions.
//!
//! Sign-up, log-in, log-out, "log out everywhere" and revoking a session or
//! a token are plain HTML forms that post to their server functions: they
//! work the same with or without JavaScript, and the page reloads with the
//! new identity (and a new live connection). A plain form post is answered
//! with a redirect (`redirect_form_post`); a failed sign-up or log-in
//! redirects back with an error code the page turns into a fixed message.
//! Creating a token needs JavaScript: its secret is shown once, in the page,
//! never in a URL.

use super::forms;
use crate::error::AppError;
use crate::json::{self, Json};
use crate::model::{Me, NewToken, SessionInfo, TokenInfo};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos::server_fn::ServerFn;

/// Creates an account and signs it in (sets the session cookie).
#[server(endpoint = "sign_up")]
pub async fn sign_up(name: String, password: String) -> Result<Me, AppError> {
    let state = crate::server::app_state()?;
    let client = crate::server::client(&state).await?;
    let result = crate::server::accounts::service::sign_up(&state, &client, &name, &password).await;
    signed_in(&state, result, "/signup")
}

/// Signs in (sets the session cookie). Throttled per account and address;
/// a wrong name and a wrong password get the same answer.
#[server(endpoint = "log_in")]
pub async fn log_in(name: String, password: String) -> Result<Me, AppError> {
    let state = crate::server::app_state()?;
    let client = crate::server::client(&state).await?;
    let result = crate::server::accounts::service::log_in(&state, &client, &name, &password).await;
    signed_in(&state, result, "/login")
}

#[cfg(feature = "ssr")]
fn signed_in(
    state: &crate::server::state::AppState,
    result: Result<(crate::server::accounts::User, String), AppError>,
    form: &str,
) -> Result<Me, AppError> {
    match result {
        Ok((user, secret)) => {
            crate::server::set_session_cookie(state, Some(&secret))?;
            crate::server::redirect_form_post("/");
            Ok(Me {
                id: user.id,
                name: user.name,
            })
        }
        Err(e) => {
            crate::server::redirect_form_post(&format!("{form}?error={}", form_error_code(&e)));
            Err(e)
        }
    }
}

/// Ends this session (and closes its live connections); clears the cookie.
#[server(endpoint = "log_out")]
pub async fn log_out() -> Result<(), AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal().unwrap_or(crate::server::accounts::Principal::Anonymous);
    crate::server::accounts::service::log_out(&state, &who).await?;
    crate::server::set_session_cookie(&state, None)?;
    crate::server::redirect_form_post("/");
    Ok(())
}

/// Ends every session of the account, this one included.
#[server(endpoint = "log_out_everywhere")]
pub async fn log_out_everywhere() -> Result<usize, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    let n = crate::server::accounts::service::log_out_everywhere(&state, &who).await?;
    crate::server::set_session_cookie(&state, None)?;
    crate::server::redirect_form_post("/");
    Ok(n)
}

/// The signed-in account, if any.
#[server(endpoint = "whoami", input = GetUrl)]
pub async fn whoami() -> Result<Option<Me>, AppError> {
    Ok(me_of(&crate::server::principal()?))
}

#[server(endpoint = "my_sessions", input = GetUrl)]
pub async fn my_sessions() -> Result<Vec<SessionInfo>, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::accounts::service::sessions(&state, &who).await
}

/// Ends one of the account's sessions (its live connections close).
#[server(endpoint = "revoke_session")]
pub async fn revoke_session(id: i64) -> Result<(), AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::accounts::service::revoke_session(&state, &who, id).await?;
    crate::server::redirect_form_post("/account");
    Ok(())
}

#[server(endpoint = "my_tokens", input = GetUrl)]
pub async fn my_tokens() -> Result<Vec<TokenInfo>, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::accounts::service::tokens(&state, &who).await
}

/// Creates an access token. Scopes come as `scopes=read,write` or as
/// checkboxes (`read`, `write`, `publish` present). The secret is in the
/// answer only.
#[server(endpoint = "create_token")]
pub async fn create_token(
    label: String,
    scopes: Option<String>,
    read: Option<String>,
    write: Option<String>,
    publish: Option<String>,
) -> Result<NewToken, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    let mut list: Vec<&str> = scopes.as_deref().into_iter().collect();
    for (on, name) in [(&read, "read"), (&write, "write"), (&publish, "publish")] {
        if on.is_some() {
            list.push(name);
        }
    }
    crate::server::accounts::service::create_token(&state, &who, &label, &list.join(",")).await
}

/// Deletes an access token (its live connections close).
#[server(endpoint = "revoke_token")]
pub async fn revoke_token(id: i64) -> Result<(), AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::accounts::service::revoke_token(&state, &who, id).await?;
    crate::server::redirect_form_post("/account");
    Ok(())
}

#[cfg(feature = "ssr")]
fn me_of(who: &crate::server::accounts::Principal) -> Option<Me> {
    who.user().map(|u| Me {
        id: u.id,
        name: u.name.clone(),
    })
}

/// The code a failed plain-form sign-up or log-in is redirected with.
pub fn form_error_code(e: &AppError) -> &'static str {
    match e {
        AppError::Unauthenticated(_) => "wrong",
        AppError::Limit(_) => "limit",
        AppError::Conflict(_) => "taken",
        AppError::Validation(m) if m.contains("password") => "password",
        AppError::Validation(_) => "name",
        _ => "internal",
    }
}

/// The fixed message for a form error code (never text from the URL).
pub fn form_error_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "wrong" => "Wrong name or password.",
        "limit" => "Too many attempts. Wait a minute, then try again.",
        "taken" => "That name is taken (or looks like one that is).",
        "password" => {
            "A password has at least 10 characters (at most 256 bytes) and is not the name."
        }
        "name" => {
            "A name has 1 to 32 characters, without control or invisible formatting characters."
        }
        "internal" => "The server had a problem; please try again.",
        _ => return None,
    })
}

/// Who is signed in, as the whole page sees it: read from the request on
/// the server and carried to the browser with the page, so it needs no
/// resource. Signing in or out reloads the page.
#[derive(Clone, Debug)]
pub struct Identity {
    pub me: Option<Me>,
}

impl Identity {
    pub fn name(&self) -> Option<String> {
        self.me.as_ref().map(|m| m.name.clone())
    }
}

/// The signed-in account of the request being rendered (server only).
fn me_from_request() -> Option<Me> {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|parts| {
                parts
                    .extensions
                    .get::<crate::server::accounts::Auth>()
                    .cloned()
            })
            .and_then(|crate::server::accounts::Auth(auth)| auth.ok())
            .and_then(|who| me_of(&who))
    }
    #[cfg(not(feature = "ssr"))]
    {
        None
    }
}

pub fn provide_identity() -> Identity {
    let me =
        leptos::server::SharedValue::<_, Json>::new_with_encoding(me_from_request).into_inner();
    let identity = Identity { me };
    provide_context(identity.clone());
    identity
}

pub fn use_identity() -> Identity {
    expect_context::<Identity>()
}

/// The header's account corner: who is signed in and a log-out button, or
/// links to log in and sign up.
#[component]
pub fn AccountBadge() -> impl IntoView {
    match use_identity().me {
        Some(me) => view! {
            <span class="whoami">
                "Signed in as " <strong data-testid="display-name">{me.name}</strong>
                " · " <a href="/account" data-testid="account-link">"account"</a>
                <form class="inline" method="post" action="/api/log_out">
                    <button type="submit" class="link" data-testid="log-out">"log out"</button>
                </form>
            </span>
        }
        .into_any(),
        None => view! {
            <span class="whoami">
                <a href="/login" data-testid="log-in-link">"Log in"</a>
                " · "
                <a href="/signup" data-testid="sign-up-link">"Sign up"</a>
            </span>
        }
        .into_any(),
    }
}

/// The `error` query parameter's message, if it is a known code.
fn query_error() -> impl Fn() -> Option<&'static str> {
    let query = leptos_router::hooks::use_query_map();
    move || query.read().get("error").and_then(|c| form_error_text(&c))
}

/// `/login` and `/signup`: one form each, plain HTML.
#[component]
pub fn CredentialsForm(sign_up: bool) -> impl IntoView {
    let error = query_error();
    let (title, action, submit, autocomplete) = if sign_up {
        ("Sign up", "/api/sign_up", "Create account", "new-password")
    } else {
        ("Log in", "/api/log_in", "Log in", "current-password")
    };
    if let Some(me) = use_identity().me {
        return view! {
            <section class="account">
                <h1>{title}</h1>
                <p>"You are signed in as " <strong>{me.name}</strong> ". " <a href="/">"Go to the rooms"</a></p>
            </section>
        }
        .into_any();
    }
    view! {
        <section class="account">
            <h1>{title}</h1>
            <form class="credentials" method="post" action=action data-testid="credentials-form">
                <label>"Name "
                    <input name="name" required maxlength="32" autocomplete="username" data-testid="account-name" />
                </label>
                <label>"Password "
                    <input name="password" type="password" required minlength="10" maxlength="256"
                        autocomplete=autocomplete data-testid="account-password" />
                </label>
                <button type="submit" data-testid="account-submit">{submit}</button>
                <p class="error" role="alert" data-testid="account-error">{error}</p>
            </form>
            {if sign_up {
                view! { <p>"Have an account? " <a href="/login">"Log in"</a></p> }.into_any()
            } else {
                view! { <p>"New here? " <a href="/signup">"Sign up"</a></p> }.into_any()
            }}
        </section>
    }
    .into_any()
}

/// `/account`: the account's sessions and access tokens.
#[component]
pub fn AccountPanel() -> impl IntoView {
    let Some(me) = use_identity().me else {
        #[cfg(feature = "ssr")]
        crate::server::set_page_status(401);
        return view! {
            <section class="account">
                <h1>"Account"</h1>
                <p data-testid="account-signed-out">"Log in to see your account. " <a href="/login">"Log in"</a></p>
            </section>
        }
        .into_any();
    };
    let create = ServerAction::<CreateToken>::new();
    let sessions = json::resource(|| (), |_| my_sessions());
    let tokens = json::resource(move || create.version().get(), |_| my_tokens());
    let created = move || match create.value().get() {
        Some(Ok(t)) => Some(
            view! {
                <p class="new-token">"Your new token (shown only now): "
                    <code data-testid="new-token">{t.secret}</code></p>
            }
            .into_any(),
        ),
        Some(Err(e)) => {
            Some(view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any())
        }
        None => None,
    };
    view! {
        <section class="account">
            <h1>"Account: " {me.name}</h1>
            <h2>"Sessions"</h2>
            {loaded_list(sessions, "sessions", |s: SessionInfo| view! {
                <li data-testid="session">
                    <span>{s.user_agent}</span> " · " <span>{s.ip}</span>
                    {s.current.then(|| view! { <strong>" (this session)"</strong> })}
                    <RevokeForm action="/api/revoke_session" id=s.id testid="revoke-session" />
                </li>
            })}
            <form method="post" action="/api/log_out_everywhere">
                <button type="submit" data-testid="log-out-everywhere">"Log out everywhere"</button>
            </form>
            <h2>"Access tokens"</h2>
            <p>"For bots, scripts and other clients: send as " <code>"Authorization: Bearer <token>"</code> "."</p>
            {loaded_list(tokens, "tokens", |t: TokenInfo| view! {
                <li data-testid="token">
                    <strong>{t.label}</strong> " · " <span>{t.scopes}</span>
                    <RevokeForm action="/api/revoke_token" id=t.id testid="revoke-token" />
                </li>
            })}
            <form class="create-token" method="post" action={CreateToken::url()}
                on:submit={forms::submit(create, |f| CreateToken {
                    label: f.text("label"), scopes: None, read: f.get("read"), write: f.get("write"), publish: f.get("publish"),
                })}>
                <input name="label" required maxlength="64" placeholder="token label" aria-label="Token label" data-testid="token-label" />
                <label><input type="checkbox" name="read" checked /> " read"</label>
                <label><input type="checkbox" name="write" /> " write"</label>
                <label><input type="checkbox" name="publish" /> " publish"</label>
                <button type="submit" data-testid="create-token">"Create token"</button>
            </form>
            {created}
            <TransportSetting />
        </section>
    }
    .into_any()
}

/// This browser's live transport: automatic (the ladder picks), or one rung
/// forced (for networks known to break the others). Saved in this browser;
/// changing it reloads the page.
#[component]
fn TransportSetting() -> impl IntoView {
    use crate::sync::ladder::Rung;
    let chosen = RwSignal::new("auto");
    // The browser's setting, once hydrated (the server cannot know it).
    Effect::new(move |_| {
        chosen.set(crate::sync::transport_setting().map_or("auto", Rung::name));
    });
    let change = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        crate::sync::set_transport_setting(Rung::parse(&value));
    };
    view! {
        <h2>"Connection"</h2>
        <label>"Live updates over "
            <select data-testid="transport-setting" prop:value=move || chosen.get() on:change=change>
                <option value="auto">"automatic (WebSocket, then SSE, long or short polling)"</option>
                {Rung::ALL.into_iter().map(|r| view! { <option value=r.name()>{r.label()}</option> }).collect_view()}
            </select>
        </label>
        <p class="hint">"Automatic steps down when a network blocks a transport and climbs back when it works again. This browser only."</p>
    }
}

/// A loaded list (`<ul class=class data-testid=class>` of `row`s), or its error.
fn loaded_list<T, V>(
    items: Resource<Result<Vec<T>, AppError>, Json>,
    class: &'static str,
    row: fn(T) -> V,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: IntoView + 'static,
{
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match items.await {
                    Ok(list) => view! {
                        <ul class=class data-testid=class>{list.into_iter().map(row).collect_view()}</ul>
                    }.into_any(),
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A plain form that revokes item `id` (works without JavaScript).
#[component]
fn RevokeForm(action: &'static str, id: i64, testid: &'static str) -> impl IntoView {
    view! {
        <form class="inline" method="post" action=action>
            <input type="hidden" name="id" value=id.to_string() />
            <button type="submit" class="link" data-testid=testid>"revoke"</button>
        </form>
    }
}
