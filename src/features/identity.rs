//! Who is typing: the display name chosen on first visit, kept in the
//! `tandem_name` cookie (accounts come later). Server functions to read and
//! set it, and the form that sets it (works without JavaScript).

use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// The caller's display name, if one was chosen.
#[server(endpoint = "current_name", input = GetUrl)]
pub async fn current_name() -> Result<Option<String>, AppError> {
    let headers: http::HeaderMap = leptos_axum::extract()
        .await
        .map_err(|_| AppError::Internal)?;
    Ok(crate::server::security::display_name(&headers))
}

/// Chooses the caller's display name; returns it normalized.
#[server(endpoint = "set_display_name")]
pub async fn set_display_name(name: String) -> Result<String, AppError> {
    use http::header::{HeaderValue, SET_COOKIE};
    let name = crate::server::validate::display_name(&name)?;
    let https = crate::server::app_state()?.rules.https();
    let cookie = HeaderValue::from_str(&crate::server::security::name_cookie(&name, https))
        .map_err(|_| AppError::Internal)?;
    expect_context::<leptos_axum::ResponseOptions>().insert_header(SET_COOKIE, cookie);
    Ok(name)
}

/// The display name as the whole page sees it. Known at render time (read
/// from the request's cookie on the server and carried to the browser with
/// the page), so it needs no resource and no `<Suspense>`.
#[derive(Clone, Copy)]
pub struct Identity {
    pub name: RwSignal<Option<String>>,
    pub set: ServerAction<SetDisplayName>,
}

impl Identity {
    /// The chosen name, if any.
    pub fn current(&self) -> Option<String> {
        self.name.get_untracked()
    }
}

/// The name in the cookie of the request being rendered (server only).
fn name_from_request() -> Option<String> {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|parts| crate::server::security::display_name(&parts.headers))
    }
    #[cfg(not(feature = "ssr"))]
    {
        None
    }
}

pub fn provide_identity() -> Identity {
    let set = ServerAction::<SetDisplayName>::new();
    let initial = leptos::server::SharedValue::new(name_from_request).into_inner();
    let identity = Identity {
        name: RwSignal::new(initial),
        set,
    };
    Effect::new(move |_| {
        if let Some(Ok(name)) = set.value().get() {
            identity.name.set(Some(name));
        }
    });
    provide_context(identity);
    identity
}

pub fn use_identity() -> Identity {
    expect_context::<Identity>()
}

/// Shows the name, or the form to choose one.
#[component]
pub fn NameBadge() -> impl IntoView {
    let identity = use_identity();
    let editing = RwSignal::new(false);
    let error = move || match identity.set.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let live = crate::sync::use_live_client();
    Effect::new(move |_| {
        if let Some(Ok(_)) = identity.set.value().get() {
            editing.set(false);
            // The socket learns the name at its upgrade: give it a new one.
            live.reconnect();
        }
    });
    move || match identity.name.get() {
        Some(name) if !editing.get() => view! {
            <span class="whoami">
                "You are " <strong data-testid="display-name">{name}</strong>
                <button class="link" on:click=move |_| editing.set(true)>"change"</button>
            </span>
        }
        .into_any(),
        current => view! {
            <ActionForm action=identity.set attr:class="name-form">
                <label>
                    "Display name "
                    <input name="name" required maxlength="32" autocomplete="nickname"
                        placeholder="pick a name" value=current.unwrap_or_default()
                        data-testid="name-input" />
                </label>
                <button type="submit" data-testid="name-submit">"Save"</button>
                <span class="error" role="alert">{error}</span>
            </ActionForm>
        }
        .into_any(),
    }
}
