//! The release binary is the whole deployment: copied alone into an empty
//! directory (no site folder, no `Leptos.toml`) and started, it serves its
//! pages and the site it was built with, precompressed (brotli or gzip by
//! `Accept-Encoding`, plain to a client that asks for neither), the hashed
//! files cached for a year as immutable, with ETags; a site folder on disk
//! beside it is ignored. The files it serves are the ones cargo-leptos built
//! with it: the names of its hash file and the bytes of `target/site`.
//!
//! It needs `target/release/tandem` from `cargo leptos build --release --split`, so
//! it is `#[ignore]`d in a plain `cargo test`; `scripts/test.sh` builds the
//! release and runs it with `--ignored`.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The binary `cargo leptos build --release --split` writes.
fn release_binary() -> PathBuf {
    let exe = target_dir().join("release/tandem");
    assert!(
        exe.is_file(),
        "{} is missing: run `cargo leptos build --release --split` first",
        exe.display()
    );
    exe
}

/// The copied binary, running in its own empty directory with nothing but
/// the environment given here.
struct Deployed {
    child: Child,
    addr: String,
    log: String,
    _dir: tempfile::TempDir,
}

impl Deployed {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tandem");
        std::fs::copy(release_binary(), &exe).unwrap();
        // A site folder where a build from disk would look for one: ignored.
        let decoy = dir.path().join("target/site");
        std::fs::create_dir_all(decoy.join("pkg")).unwrap();
        std::fs::write(decoy.join("favicon.svg"), "decoy").unwrap();
        let mut child = Command::new(&exe)
            .current_dir(dir.path())
            .env_clear()
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("TANDEM_METRICS", "false")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Read the log until the server says where it listens.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = String::new();
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("the binary said no `listening` line:\n{log}"));
            log.push_str(&line);
            log.push('\n');
            if line.contains(" listening ") {
                let addr = line.split("addr=").nth(1).unwrap();
                break addr.split_whitespace().next().unwrap().to_owned();
            }
        };
        Deployed {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` with this `Accept-Encoding` (none: the header is left out).
async fn get(server: &Deployed, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(server.url(path));
    if let Some(accept) = accept {
        req = req.header("accept-encoding", accept);
    }
    req.send().await.unwrap()
}

fn header<'r>(res: &'r reqwest::Response, name: &str) -> &'r str {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// Every `attr="/pkg/..."` value in the page.
fn pkg_links(html: &str, attr: &str) -> Vec<String> {
    html.split(&format!("{attr}=\"/pkg/"))
        .skip(1)
        .map(|rest| format!("/pkg/{}", &rest[..rest.find('"').unwrap()]))
        .collect()
}

#[tokio::test]
#[ignore = "needs target/release/tandem from `cargo leptos build --release --split` (scripts/test.sh runs it)"]
async fn the_copied_release_binary_serves_its_embedded_site() {
    let server = Deployed::start();
    assert!(
        server
            .log
            .contains("serving the site embedded in this binary"),
        "{}",
        server.log
    );

    // A page, compressed on the fly, naming the hashed files.
    let page = get(&server, "/", Some("gzip")).await;
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-encoding"), "gzip");
    let page = get(&server, "/", None).await;
    // Its hydration script carries the nonce its Content Security Policy allows.
    let csp = header(&page, "content-security-policy").to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!(
            "<script type=\"module\" nonce=\"{nonce}\">import init"
        )),
        "{page}"
    );
    let links = pkg_links(&page, "href");
    let find = |ext: &str| {
        links
            .iter()
            .find(|l| l.ends_with(ext))
            .unwrap_or_else(|| panic!("no {ext} link in the page:\n{page}"))
            .clone()
    };
    let (wasm, js, css) = (find(".wasm"), find(".js"), find(".css"));
    assert!(page.contains(&format!("from \"{js}\"")), "{page}");
    // The names cargo-leptos gave this build's files (its hash file).
    let hashes = std::fs::read_to_string(target_dir().join("release/hash.txt")).unwrap();
    for (kind, link) in [("js", &js), ("wasm", &wasm), ("css", &css)] {
        let hash = hashes
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{kind}: ")))
            .unwrap();
        assert_eq!(link, &format!("/pkg/tandem.{hash}.{kind}"));
    }

    // The wasm: plain to a client that takes no encoding...
    let plain = get(&server, &wasm, None).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, "content-encoding"), "");
    assert_eq!(header(&plain, "content-type"), "application/wasm");
    assert_eq!(
        header(&plain, "cache-control"),
        "max-age=31536000, immutable"
    );
    let etag = header(&plain, "etag").to_owned();
    assert!(!etag.is_empty());
    let plain = plain.bytes().await.unwrap();
    assert_eq!(&plain[..4], b"\0asm");
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/site{wasm}"));
    assert!(
        plain == std::fs::read(built).unwrap(),
        "the wasm is this build's"
    );

    // ...brotli to one that takes it (browsers over HTTPS)...
    let br = get(&server, &wasm, Some("gzip, deflate, br, zstd")).await;
    assert_eq!(br.status(), 200);
    assert_eq!(header(&br, "content-encoding"), "br");
    assert_eq!(header(&br, "cache-control"), "max-age=31536000, immutable");
    let br = br.bytes().await.unwrap();
    assert!(
        br.len() < plain.len() / 2,
        "{} of {}",
        br.len(),
        plain.len()
    );
    let mut unbr = Vec::new();
    brotli::Decompressor::new(&br[..], 4096)
        .read_to_end(&mut unbr)
        .unwrap();
    assert!(unbr == plain, "the brotli body is the wasm");

    // ...gzip to one that takes only gzip (browsers over plain HTTP).
    let gz = get(&server, &wasm, Some("gzip")).await;
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    let gz = gz.bytes().await.unwrap();
    let mut ungz = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut ungz)
        .unwrap();
    assert!(ungz == plain, "the gzip body is the wasm");

    // A repeat visit that revalidates gets 304.
    let again = reqwest::Client::new()
        .get(server.url(&wasm))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // The JS and the CSS are hashed and immutable too.
    for path in [&js, &css] {
        let res = get(&server, path, Some("br")).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(header(&res, "content-encoding"), "br", "{path}");
        assert_eq!(
            header(&res, "cache-control"),
            "max-age=31536000, immutable",
            "{path}"
        );
    }

    // public/'s files keep their names: kept a week. The one served is the
    // build's, not the decoy folder's beside the binary.
    let icon = get(&server, "/favicon.svg", None).await;
    assert_eq!(icon.status(), 200);
    assert!(header(&icon, "cache-control").starts_with("max-age=604800"));
    assert_eq!(header(&icon, "content-type"), "image/svg+xml");
    let icon = icon.text().await.unwrap();
    assert!(icon.contains("<svg"), "{icon}");

    // Only hashed names are served: a page of another build, naming
    // `/pkg/tandem.wasm`, cannot get this build's wasm under it.
    let unhashed = get(&server, "/pkg/tandem.wasm", None).await;
    assert_eq!(unhashed.status(), 404);

    // Built with `--split`: the lobby is a lazy route, and its page names
    // its chunks (the ones the split manifest lists for it) in preload
    // links, each served from the binary like the main wasm. A room page,
    // not lazy, names none.
    let chunks: Vec<&String> = links
        .iter()
        .filter(|l| l.ends_with(".wasm") && **l != wasm)
        .collect();
    assert!(
        chunks.iter().any(|c| c.contains("split___home_page_view_")),
        "the lobby's chunks are preloaded:\n{page}"
    );
    let split_js = hashes
        .lines()
        .find_map(|l| l.strip_prefix("split: "))
        .expect("a --split build");
    assert!(
        links.contains(&format!("/pkg/__wasm_split.{split_js}.js")),
        "{page}"
    );
    for chunk in chunks {
        let res = get(&server, chunk, Some("br")).await;
        assert_eq!(res.status(), 200, "{chunk}");
        assert_eq!(header(&res, "content-encoding"), "br", "{chunk}");
        assert_eq!(header(&res, "cache-control"), "max-age=31536000, immutable");
        let mut body = Vec::new();
        brotli::Decompressor::new(&res.bytes().await.unwrap()[..], 4096)
            .read_to_end(&mut body)
            .unwrap();
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/site{chunk}"));
        assert!(
            body == std::fs::read(built).unwrap(),
            "{chunk} is this build's"
        );
    }
    let room = get(&server, "/rooms/1", None).await.text().await.unwrap();
    let room_wasm: Vec<String> = pkg_links(&room, "href")
        .into_iter()
        .filter(|l| l.ends_with(".wasm"))
        .collect();
    assert_eq!(room_wasm, vec![wasm.clone()]);
}
