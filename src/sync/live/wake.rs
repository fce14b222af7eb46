//! Browser events that wake the connection task (hydrate build only):
//! `online` and a tab becoming visible (`Check`), `offline` (`Offline`), a
//! tab becoming hidden (`Hidden`).
//! The listeners are removed when the app's owner is cleaned up.

use super::Wake;
use futures::channel::mpsc;
use leptos::prelude::*;

pub(super) fn listen(wake: mpsc::UnboundedSender<Wake>) {
    let online = {
        let wake = wake.clone();
        window_event_listener(leptos::ev::online, move |_| {
            let _ = wake.unbounded_send(Wake::Check);
        })
    };
    let offline = {
        let wake = wake.clone();
        window_event_listener(leptos::ev::offline, move |_| {
            let _ = wake.unbounded_send(Wake::Offline);
        })
    };
    // `visibilitychange` is fired at the document and bubbles to the window.
    let visible = window_event_listener_untyped("visibilitychange", move |_| {
        let shown = crate::sync::document_visible();
        let _ = wake.unbounded_send(if shown { Wake::Check } else { Wake::Hidden });
    });
    on_cleanup(move || {
        online.remove();
        offline.remove();
        visible.remove();
    });
}
