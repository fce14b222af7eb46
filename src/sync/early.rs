//! The early socket (both builds): a page opens its WebSocket while its
//! wasm is still on the way, and the app takes it over once hydrated.
//!
//! Without it the socket's handshake (TCP, TLS, upgrade, the server's
//! session check and its `hello`) starts only after the wasm has arrived,
//! been instantiated and hydrated the page: a first visit went live about
//! 47 ms after hydrating. The page's head carries a small inline script
//! (`boot_script`, with the response's CSP nonce) that opens the socket the
//! app would open, at the same URL, and keeps the text frames it receives
//! until the app takes them. The live task's first WebSocket attempt takes
//! the socket and its frames (`take`, hydrate build) in one synchronous
//! step, so no frame is lost or seen twice; `hello` is usually among them.
//!
//! The script decides as `live::start_rung` does (a value that names no
//! rung is passed over there too): it opens nothing when the page's
//! `?transport=`, the browser's transport setting or the tab's last working
//! rung names another rung. Whatever the app does not take is closed: by
//! the app when it starts on another rung, and by the script if no app has
//! taken it within `UNCLAIMED_MS` (a page whose wasm failed to load). A
//! socket that is already closing or closed when the app asks for it is
//! handed over as what it was: one that closed before hearing anything
//! (blocked on the way, or the server was down) counts as the app's first
//! failed WebSocket attempt on the transport ladder (judged by `/healthz`
//! as any failed attempt is, and followed by the next attempt at once), so
//! a network that refuses WebSockets costs the page two handshakes before
//! it steps down, not three; one that heard `hello` and then closed counts
//! for nothing, and the app opens its own. The server sends only text
//! frames, which is all the script keeps; the socket's `binaryType` is set
//! as the app sets it, so nothing is delivered in another form after the
//! take.

use super::ladder::Rung;
use crate::protocol::PROTOCOL_VERSION;

/// Where the tab remembers the last rung that worked (`sessionStorage`).
pub(crate) const RUNG_KEY: &str = "tandem.rung";
/// The setting that forces a rung (`localStorage`); the URL parameter
/// `TRANSPORT_PARAM` does the same for one page.
pub(crate) const TRANSPORT_KEY: &str = "tandem.transport";
/// The URL parameter that forces a rung for one page.
pub(crate) const TRANSPORT_PARAM: &str = "transport";
/// The global through which the app takes the script's socket (a function,
/// callable once).
pub(crate) const GLOBAL: &str = "tandemEarlySocket";
/// How long the script keeps a socket that no app has taken: well past a
/// slow first visit's wasm (the end-to-end tests allow 30 s to go live),
/// well within the server's idle limit for a socket that subscribes nothing.
const UNCLAIMED_MS: u32 = 60_000;

/// The path (and query) of the tab's WebSocket.
pub fn socket_path() -> String {
    format!("/ws?protocol={PROTOCOL_VERSION}&batch=1")
}

/// The inline script that opens the early socket (for the page's `<head>`,
/// before the hydration scripts).
///
/// `window[GLOBAL]()` stops keeping frames, removes itself and returns
/// `[socket, frames]` (the text frames received so far, in order) while the
/// socket is connecting or open; once it is closing or closed (then closed
/// for good), `[]` if it never heard a frame, else `null`.
pub fn boot_script() -> String {
    let path = socket_path();
    let top = Rung::WebSocket.name();
    let rungs: Vec<&str> = Rung::ALL.iter().map(|r| r.name()).collect();
    format!(
        "(()=>{{try{{\
         const rung=v=>{rungs:?}.includes(v)?v:null;\
         const s=rung(new URLSearchParams(location.search).get({TRANSPORT_PARAM:?}))\
         ||rung(localStorage.getItem({TRANSPORT_KEY:?}))||rung(sessionStorage.getItem({RUNG_KEY:?}));\
         if(s&&s!=={top:?})return;\
         const ws=new WebSocket((location.protocol===\"https:\"?\"wss://\":\"ws://\")+location.host+{path:?});\
         ws.binaryType=\"arraybuffer\";\
         let frames=[];\
         const keep=e=>{{if(typeof e.data===\"string\")frames.push(e.data)}};\
         ws.addEventListener(\"message\",keep);\
         const end=()=>{{delete window.{GLOBAL};clearTimeout(unclaimed);\
         ws.removeEventListener(\"message\",keep);const f=frames;frames=null;return f}};\
         const unclaimed=setTimeout(()=>{{end();ws.close(1000)}},{UNCLAIMED_MS});\
         window.{GLOBAL}=()=>{{const f=end();\
         if(ws.readyState>1){{ws.close(1000);return f.length?null:[]}}return[ws,f]}};\
         }}catch(e){{}}}})();"
    )
}

/// What the page's script hands over (`take`).
#[cfg(feature = "hydrate")]
pub(crate) enum Early {
    /// Connecting or open, with the text frames it has received.
    Socket(web_sys::WebSocket, Vec<String>),
    /// Closed before it heard a frame: a failed attempt.
    Failed,
}

/// Takes the early socket, if the page's script opened one and it has not
/// closed after working (`boot_script`).
#[cfg(feature = "hydrate")]
pub(crate) fn take() -> Option<Early> {
    use wasm_bindgen::{JsCast, JsValue};
    let window = web_sys::window()?;
    let take = js_sys::Reflect::get(&window, &JsValue::from_str(GLOBAL)).ok()?;
    let take: js_sys::Function = take.dyn_into().ok()?;
    let pair: js_sys::Array = take.call0(&JsValue::UNDEFINED).ok()?.dyn_into().ok()?;
    if pair.length() == 0 {
        return Some(Early::Failed);
    }
    let socket: web_sys::WebSocket = pair.get(0).dyn_into().ok()?;
    let frames = js_sys::Array::from(&pair.get(1))
        .iter()
        .filter_map(|f| f.as_string())
        .collect();
    Some(Early::Socket(socket, frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_opens_the_apps_socket_url_and_reads_the_rung_the_app_reads() {
        let script = boot_script();
        assert!(script.contains(&format!("{:?}", socket_path())));
        assert!(socket_path().starts_with("/ws?protocol="));
        for name in [TRANSPORT_PARAM, TRANSPORT_KEY, RUNG_KEY, GLOBAL] {
            assert!(script.contains(name), "{name}");
        }
        // Only a rung's name counts, as `Rung::parse` has it.
        for rung in Rung::ALL {
            assert!(script.contains(&format!("{:?}", rung.name())), "{rung:?}");
        }
        // Inline in a <script>: nothing that could end the element.
        assert!(!script.contains("</"));
    }
}
