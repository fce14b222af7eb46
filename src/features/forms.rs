//! Forms that post to a server function, as Leptos's `ActionForm` makes them,
//! without its reader. Without JavaScript the browser posts the form to the
//! server function's URL (which answers a plain form with a redirect back).
//! With it, [`on_submit`] stops that post and hands the fields the form
//! would have posted to plain code; [`submit`] builds the server function's
//! arguments from them and dispatches its action.
//!
//! `ActionForm` builds the arguments by reading the form's fields as a query
//! string through serde_qs's deserializer, instantiated for each form's
//! argument type. Reading them in plain code took 5% off the wasm (README,
//! "Lazy routes, plain forms and one JSON reader").

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// The fields a submitted form would post, by name.
pub struct Fields {
    #[cfg(feature = "hydrate")]
    data: Option<web_sys::FormData>,
}

impl Fields {
    #[cfg(feature = "hydrate")]
    fn of(ev: &leptos::ev::SubmitEvent) -> Self {
        use wasm_bindgen::JsCast;
        let data = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
            .and_then(|form| web_sys::FormData::new_with_form(&form).ok());
        Self { data }
    }

    /// The field's value; `None` if the form has no such field, or it was
    /// not posted (an unchecked checkbox).
    pub fn get(&self, name: &str) -> Option<String> {
        #[cfg(feature = "hydrate")]
        {
            self.data.as_ref()?.get(name).as_string()
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = name;
            None
        }
    }

    /// The field's value, or an empty string.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default()
    }
}

/// An `on:submit` handler: instead of the browser's post, `handle` gets
/// the fields the form would have posted.
pub fn on_submit(handle: impl Fn(&Fields) + 'static) -> impl Fn(leptos::ev::SubmitEvent) + 'static {
    move |ev| {
        if ev.default_prevented() {
            return;
        }
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        handle(&Fields::of(&ev));
        #[cfg(not(feature = "hydrate"))]
        let _ = &handle;
    }
}

/// An `on:submit` handler that dispatches `action` with the arguments
/// `read` makes of the form's fields.
pub fn submit<S>(
    action: ServerAction<S>,
    read: impl Fn(&Fields) -> S + 'static,
) -> impl Fn(leptos::ev::SubmitEvent) + 'static
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    on_submit(move |fields| {
        action.dispatch(read(fields));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_post_to_the_server_functions_url() {
        assert_eq!(
            crate::features::rooms::CreateRoom::url(),
            "/api/create_room"
        );
        assert_eq!(
            crate::features::members::InviteMember::url(),
            "/api/invite_member"
        );
    }
}
