//! The site's static files (ssr): the hydration JS, the wasm and the CSS
//! under `/pkg/`, the files of `public/` at the top, and the head elements
//! that load them.
//!
//! A release binary built by `cargo leptos build --release --split` carries
//! its site (`build.rs` sets `cfg(embedded_site)`): served from memory by
//! memory-serve, brotli-compressed at build time and gzipped once at start,
//! chosen by the request's `Accept-Encoding`, with an ETag. The `pkg/` names
//! carry their content hashes (cargo-leptos `hash-files`), so they are cached
//! for a year as `immutable`; `public/`'s files keep their names and are
//! kept a week (memory-serve's `Medium`: `max-age=604800,
//! stale-while-revalidate=86400`). Copying the binary is the whole deployment, and
//! it can only serve the site it was built with. The lazy routes' wasm
//! chunks (`--split`) are served the same way, and a page that renders a
//! lazy route preloads its chunks (`preload_lazy`).
//!
//! Any other build (debug, or a release server built by plain `cargo build`)
//! serves the site folder (`site-root`) from disk, for `cargo leptos watch`,
//! and names the hashed files from cargo-leptos's hash file at each render,
//! as Leptos's own components do.

use super::state::AppState;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::*;

/// Whether this binary carries its site.
pub const EMBEDDED: bool = cfg!(embedded_site);

/// Makes the site's routes ready (embedded: gzips the files once) and says
/// where they come from. Called at start, before the server answers.
pub fn prepare(options: &LeptosOptions) {
    if EMBEDDED {
        let started = std::time::Instant::now();
        let _ = router(options);
        tracing::info!(
            ready_ms = started.elapsed().as_millis() as u64,
            "serving the site embedded in this binary"
        );
    } else if cfg!(debug_assertions) {
        tracing::info!(site_root = %options.site_root, "serving the site folder");
        if !split_site(&options.site_root, &options.site_pkg_dir) {
            tracing::warn!(
                site_root = %options.site_root,
                "the site folder was built without `--split`: its JS imports a chunk loader \
                 that does not exist, and its pages do not hydrate (`make run` and `make \
                 watch` pass `--split`)"
            );
        }
    } else {
        tracing::warn!(
            site_root = %options.site_root,
            "this release binary carries no site (it was not built by `cargo leptos build \
             --release --split`): serving the site folder, which may be from another build, \
             and its pages do not hydrate"
        );
    }
}

/// Whether the site folder's front end was built with `--split` (it has a
/// split manifest).
fn split_site(site_root: &str, pkg_dir: &str) -> bool {
    std::fs::read_dir(std::path::Path::new(site_root).join(pkg_dir)).is_ok_and(|files| {
        files.flatten().any(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with("__wasm_split_manifest")
        })
    })
}

/// The routes of the site's files.
#[cfg(embedded_site)]
pub fn router(_: &LeptosOptions) -> Router<AppState> {
    embedded::router()
}

/// The routes of the site's files.
#[cfg(not(embedded_site))]
pub fn router(options: &LeptosOptions) -> Router<AppState> {
    from_disk(&options.site_root)
}

/// Preload links, in the page's `<head>`, for the chunks of lazy function
/// `name`: a `#[lazy]` function's name (the split manifest's key is
/// `<name>_<hash>`), or `__<route>_view` for a lazy route's view
/// (`#[lazy_route]` names it so; `<route>` is the type's name in snake
/// case). Called where the page's server render runs it (a lazy route's
/// `data()`, a lazy function's body). Without it the browser would learn
/// of the chunks only once the main wasm runs, and fetch them after it.
/// Nothing in a build that serves the site folder.
pub fn preload_lazy(name: &str) {
    #[cfg(embedded_site)]
    embedded::preload_lazy(name);
    #[cfg(not(embedded_site))]
    let _ = name;
}

/// The stylesheet and the hydration scripts, for the document's `<head>`.
#[cfg(embedded_site)]
pub fn site_head(_: LeptosOptions) -> impl IntoView {
    embedded::head()
}

/// The stylesheet and the hydration scripts, for the document's `<head>`:
/// Leptos's own components, which read the hash file at each render.
#[cfg(not(embedded_site))]
pub fn site_head(options: LeptosOptions) -> impl IntoView {
    use leptos_meta::HashedStylesheet;
    view! {
        <HashedStylesheet options=options.clone() id="leptos" />
        <HydrationScripts options />
    }
}

#[cfg(embedded_site)]
mod embedded {
    use super::AppState;
    use axum::Router;
    use leptos::prelude::*;
    use memory_serve::CacheControl;
    use std::collections::HashMap;
    use std::sync::OnceLock;

    /// The hashed files' paths (`/pkg/tandem.<hash>.js`...) and their
    /// folder, from `build.rs`.
    const PKG: &str = env!("TANDEM_SITE_PKG");
    const JS: &str = env!("TANDEM_SITE_JS");
    const WASM: &str = env!("TANDEM_SITE_WASM");
    const CSS: &str = env!("TANDEM_SITE_CSS");
    /// The chunk loader of the `--split` build (`__wasm_split.<hash>.js`).
    const SPLIT_JS: &str = env!("TANDEM_SITE_SPLIT_JS");
    /// Which chunks each lazy route needs.
    const SPLIT_MANIFEST: &str = include_str!(concat!(env!("OUT_DIR"), "/split_manifest.json"));

    /// Built once per process: memory-serve decompresses each file and
    /// gzips it when its router is made, and keeps them for good.
    pub fn router() -> Router<AppState> {
        static FILES: OnceLock<Router<AppState>> = OnceLock::new();
        FILES
            .get_or_init(|| {
                let pkg = memory_serve::load!("pkg")
                    .index_file(None)
                    .cache_control(CacheControl::Long)
                    .into_router();
                let public = memory_serve::load!("public")
                    .index_file(None)
                    .cache_control(CacheControl::Medium)
                    .into_router();
                Router::new().nest(PKG, pkg).merge(public)
            })
            .clone()
    }

    /// What Leptos's `HydrationScripts` and `HashedStylesheet` render, with
    /// the embedded names: the wasm is fetched while the JS loads. A
    /// performance mark, `tandem:wasm-ready`, times the wasm's instantiation
    /// (the wasm marks `tandem:hydrated` when the page is hydrated), for
    /// `bench/first_load.mjs` and any real-user monitoring.
    pub fn head() -> impl IntoView {
        let nonce = leptos::nonce::use_nonce();
        let boot = format!(
            "import init, {{ hydrate }} from {JS:?}; \
             init({{ module_or_path: {WASM:?} }}).then(() => {{ \
             performance.mark(\"tandem:wasm-ready\"); hydrate(); }});"
        );
        view! {
            <link id="leptos" rel="stylesheet" href=CSS />
            <link rel="modulepreload" href=JS />
            <link rel="preload" href=WASM r#as="fetch" r#type="application/wasm" crossorigin="" />
            // The chunk loader, which the JS imports.
            <link rel="modulepreload" href=format!("{PKG}/{SPLIT_JS}") />
            <script type="module" nonce=nonce>{boot}</script>
        }
    }

    /// Which chunks each lazy route needs (`--split`), by its view's name.
    fn split_manifest() -> &'static HashMap<String, Vec<String>> {
        static MANIFEST: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
        MANIFEST.get_or_init(|| {
            serde_json::from_str(SPLIT_MANIFEST)
                .expect("cargo-leptos writes the split manifest as JSON")
        })
    }

    pub fn preload_lazy(name: &str) {
        use leptos_meta::Link;
        let ours = |key: &str| {
            key.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|hash| !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_digit()))
        };
        let chunks = split_manifest()
            .iter()
            .filter(|(key, _)| ours(key))
            .flat_map(|(_, chunks)| chunks);
        // Rendering a `Link` on the server adds it to the page's head.
        for chunk in chunks {
            let _ = view! {
                <Link rel="preload" href=format!("{PKG}/{chunk}.wasm") as_="fetch"
                    type_="application/wasm" crossorigin="" />
            }
            .to_html();
        }
    }
}

/// The site root's files (the hydration JS/WASM and CSS under `pkg/`, and
/// `public/`'s files at the top), served by tower-http.
///
/// Not through leptos_axum's `file_and_error_handler`: for a file it finds,
/// that handler creates its reactive owner as a child of whatever owner is
/// current on the worker thread and then *takes* the headers of the
/// `ResponseOptions` it finds there. When that was a page being rendered on
/// the same thread, the page lost its headers, its nonce Content Security
/// Policy included, and the browser blocked its scripts (it never
/// hydrated). `tests/render_isolation.rs` reproduces it.
#[cfg(not(embedded_site))]
fn from_disk(site_root: &str) -> Router<AppState> {
    use tower_http::services::{ServeDir, ServeFile};
    let root = std::path::Path::new(site_root);
    let mut files = Router::new().nest_service("/pkg", ServeDir::new(root.join("pkg")));
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                    files = files.route_service(&format!("/{name}"), ServeFile::new(&path));
                }
            }
        }
    }
    files
}
