//! Build script: puts the site into the release server binary.
//!
//! In a release build of the server made by `cargo leptos build --release --split`,
//! the site that cargo-leptos has just built (the hydration JS, the wasm and
//! the CSS under `pkg/`, whose names carry their content hashes, and the
//! files of `public/`) is embedded with memory-serve (brotli-compressed at
//! build time) and `cfg(embedded_site)` is set; `TANDEM_SITE_JS`,
//! `TANDEM_SITE_WASM` and `TANDEM_SITE_CSS` name the three hashed files. A
//! `--split` build's chunks are embedded with them, and its manifest too
//! (`split_manifest`).
//!
//! cargo-leptos builds the front end first and the server after it because
//! `hash-files` is on (Cargo.toml), so the site on disk is this build's. The
//! script checks it anyway: the names in `target/site/pkg` must be the ones
//! cargo-leptos wrote into the hash file beside the binary, or the build
//! fails (a site from another build never gets in).
//!
//! Every other build embeds nothing and serves the site folder from disk:
//! debug builds (`cargo leptos watch`), and a release server built by plain
//! `cargo build --release`, which warns when it starts (its pages do not
//! hydrate: cargo-leptos erases component types in both of its builds, plain
//! cargo does not).
//!
//! `cargo leptos watch` does not hash the files it rebuilds (cargo-leptos
//! issue #271), so `make watch` runs it with `LEPTOS_HASH_FILES=false`; a
//! site with unhashed names is refused here rather than embedded stale.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(embedded_site)");
    #[cfg(feature = "ssr")]
    site::embed_if_release();
}

#[cfg(feature = "ssr")]
mod site {
    use std::path::{Path, PathBuf};

    /// What cargo-leptos passes to the builds it runs (`LEPTOS_*`): a change
    /// of any reruns this script. `LEPTOS_BIN_DIR` marks a cargo-leptos build.
    const INPUTS: [&str; 6] = [
        "LEPTOS_BIN_DIR",
        "LEPTOS_SITE_ROOT",
        "LEPTOS_SITE_PKG_DIR",
        "LEPTOS_OUTPUT_NAME",
        "LEPTOS_HASH_FILES",
        "LEPTOS_HASH_FILE_NAME",
    ];

    pub fn embed_if_release() {
        for var in INPUTS {
            println!("cargo::rerun-if-env-changed={var}");
        }
        let env = |k: &str| std::env::var(k).ok();
        if env("PROFILE").as_deref() != Some("release") {
            return;
        }
        let (Some(_), Some(site_root)) = (env("LEPTOS_BIN_DIR"), env("LEPTOS_SITE_ROOT")) else {
            println!(
                "cargo::warning=release server built without cargo-leptos: it embeds no site \
                 and its pages do not hydrate; `cargo leptos build --release --split` builds one file"
            );
            return;
        };
        if env("LEPTOS_HASH_FILES").as_deref() != Some("true") {
            panic!("hash-files must be on in [package.metadata.leptos] to embed the site");
        }
        let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR").expect("cargo sets it"));
        let site_root = manifest_dir.join(site_root);
        let pkg_dir = site_root.join(env("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|| "pkg".into()));
        let output = env("LEPTOS_OUTPUT_NAME").expect("cargo-leptos sets LEPTOS_OUTPUT_NAME");
        let hash_file = exe_dir().join(env("LEPTOS_HASH_FILE_NAME").unwrap_or("hash.txt".into()));
        let hashes = std::fs::read_to_string(&hash_file).unwrap_or_else(|e| {
            panic!(
                "cannot read cargo-leptos's hash file {}: {e}",
                hash_file.display()
            )
        });
        let names = hashed_names(&hashes, &hash_file, &output);
        for ext in ["js", "wasm", "css"] {
            let unhashed = pkg_dir.join(format!("{output}.{ext}"));
            if unhashed.exists() {
                panic!(
                    "{} has no hash in its name: the site was rebuilt without hashing \
                     (`cargo leptos watch`?); run `cargo leptos build --release --split`",
                    unhashed.display()
                );
            }
        }
        let pkg_url = format!(
            "/{}",
            env("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|| "pkg".into())
        );
        println!("cargo::rustc-env=TANDEM_SITE_PKG={pkg_url}");
        for (kind, name) in &names {
            if !pkg_dir.join(name).is_file() {
                panic!(
                    "{} has no {name} ({kind} in {}): the site is not this build's; \
                     run `cargo leptos build --release --split`",
                    pkg_dir.display(),
                    hash_file.display()
                );
            }
            let var = format!("TANDEM_SITE_{}", kind.to_uppercase());
            println!("cargo::rustc-env={var}={pkg_url}/{name}");
        }
        split_manifest(&hashes, &hash_file, &pkg_dir);
        println!("cargo::rerun-if-changed={}", hash_file.display());
        // memory-serve reports each file as a cargo warning unless told not to.
        std::env::set_var("MEMORY_SERVE_QUIET", "1");
        memory_serve::load_names_directories(
            [("pkg", pkg_dir), ("public", manifest_dir.join("public"))],
            true,
        );
        println!("cargo::rustc-cfg=embedded_site");
    }

    /// A `--split` build's lazy-loading files: `TANDEM_SITE_SPLIT_JS` names
    /// the loader (`__wasm_split.<hash>.js`), and `$OUT_DIR/split_manifest.json`
    /// is the manifest of the chunks each lazy function needs (the server
    /// names them in a page's preload links). A site built without `--split`
    /// is refused: its JS imports a loader that does not exist.
    fn split_manifest(hashes: &str, hash_file: &Path, pkg_dir: &Path) {
        let (js, manifest) = match (hash_of(hashes, "split"), hash_of(hashes, "manifest")) {
            (Some(js), Some(manifest)) => {
                let js = format!("__wasm_split.{js}.js");
                let file = pkg_dir.join(format!("__wasm_split_manifest.{manifest}.json"));
                let manifest = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                    panic!("{}: {e}: the site is not this build's", file.display())
                });
                if !pkg_dir.join(&js).is_file() {
                    panic!(
                        "{} has no {js}: the site is not this build's",
                        pkg_dir.display()
                    );
                }
                (js, manifest)
            }
            // The lazy routes' code imports the chunk loader, which only
            // `--split` provides: without it, the pages would not hydrate.
            _ => panic!(
                "the site was built without `--split` (no split manifest in {}): run \
                 `cargo leptos build --release --split`",
                hash_file.display()
            ),
        };
        println!("cargo::rustc-env=TANDEM_SITE_SPLIT_JS={js}");
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        std::fs::write(out.join("split_manifest.json"), manifest).expect("OUT_DIR is writable");
    }

    /// The directory the binary is written to: `OUT_DIR` is
    /// `<target>/<profile>/build/<package>-<hash>/out` (unless cargo's
    /// `build.build-dir` moves build outputs elsewhere: then the hash file is
    /// not found and the build stops, saying where it looked).
    fn exe_dir() -> PathBuf {
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        out.ancestors()
            .nth(3)
            .expect("OUT_DIR is <target>/<profile>/build/<pkg>/out")
            .to_path_buf()
    }

    /// The hash of `kind` in the text of cargo-leptos's hash file
    /// (`js: <hash>` lines).
    fn hash_of<'a>(hashes: &'a str, kind: &str) -> Option<&'a str> {
        hashes
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == kind)
            .map(|(_, h)| h.trim())
    }

    /// `js`, `wasm` and `css` with their hashed file names, from the hash
    /// file's text.
    fn hashed_names(hashes: &str, hash_file: &Path, output: &str) -> Vec<(&'static str, String)> {
        ["js", "wasm", "css"]
            .into_iter()
            .map(|kind| {
                let hash = hash_of(hashes, kind)
                    .unwrap_or_else(|| panic!("{} names no {kind} file", hash_file.display()));
                (kind, format!("{output}.{hash}.{kind}"))
            })
            .collect()
    }
}
