//! The request rules (ssr only): which `Host` the server answers, and which
//! `Origin` may change state or open a WebSocket.
//!
//! - **Host**: a request must carry exactly one `Host` header naming one of
//!   the allowed hosts (by default the hosts of the public origins), so a
//!   DNS-rebinding page that reaches the server under another name is
//!   refused.
//! - **Origin**: a state-changing request (any method but GET, HEAD,
//!   OPTIONS) or a WebSocket upgrade that carries `Origin` must carry exactly
//!   one, equal in scheme, host and port to a public origin. One without
//!   `Origin` is a browser request only if it carries `Sec-Fetch-Site`; then
//!   only `same-origin` and `none` (typed by the user) pass. A request with
//!   neither header is not from a browser and carries no ambient credentials.

use axum::http::{header, HeaderMap};
use std::net::SocketAddr;

/// An origin: scheme, host and port, normalised (lower case, port explicit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` (no path, no user info).
    pub fn parse(s: &str) -> Option<Origin> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
            return None;
        }
        let (host, port) = split_port(rest, default_port)?;
        Some(Origin { scheme, host, port })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// The `Host` header a browser sends for this origin.
    pub fn host_header(&self) -> String {
        let default = if self.is_https() { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Origin {
    /// `scheme://host[:port]`, the port only when it is not the default.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host_header())
    }
}

/// Splits `host[:port]` (IPv6 in brackets), lower-casing the host.
fn split_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (format!("[{ip}]"), port)
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        },
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
        None => default_port,
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No, several, or an unknown `Host`.
    Host,
    /// A foreign, malformed or repeated `Origin`, or a cross-site fetch.
    Origin,
}

/// The rules, built once at start from the settings.
#[derive(Clone, Debug)]
pub struct Rules {
    pub public: Vec<Origin>,
    hosts: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("`{0}` is not an origin (scheme://host[:port], http or https)")]
    BadOrigin(String),
    #[error(
        "the server listens on {0}, an address browsers cannot name: set public-origins \
         (TANDEM_PUBLIC_ORIGINS) to the origin(s) users reach it at"
    )]
    NoPublicOrigin(SocketAddr),
}

impl Rules {
    /// From the settings; without public origins, the address the server is
    /// bound to (and `localhost` for a loopback address) is the public origin.
    /// `tls`: the server speaks HTTPS itself, so a derived origin is https.
    pub fn new(
        public_origins: &[String],
        allowed_hosts: &[String],
        bound: SocketAddr,
        tls: bool,
    ) -> Result<Rules, RulesError> {
        let mut public = public_origins
            .iter()
            .map(|o| Origin::parse(o).ok_or_else(|| RulesError::BadOrigin(o.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        if public.is_empty() {
            if bound.ip().is_unspecified() {
                return Err(RulesError::NoPublicOrigin(bound));
            }
            let host = match bound {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            };
            let scheme = if tls { "https" } else { "http" };
            public.push(Origin {
                scheme: scheme.into(),
                host,
                port: bound.port(),
            });
            if bound.ip().is_loopback() {
                public.push(Origin {
                    scheme: scheme.into(),
                    host: "localhost".into(),
                    port: bound.port(),
                });
            }
        }
        let hosts = if allowed_hosts.is_empty() {
            public.iter().map(Origin::host_header).collect()
        } else {
            allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect()
        };
        Ok(Rules { public, hosts })
    }

    /// The `Host` rule, for every request.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut all = headers.get_all(header::HOST).iter();
        let (Some(host), None) = (all.next(), all.next()) else {
            return Err(Refusal::Host);
        };
        let host = host
            .to_str()
            .map_err(|_| Refusal::Host)?
            .to_ascii_lowercase();
        if self.hosts.contains(&host) {
            Ok(())
        } else {
            Err(Refusal::Host)
        }
    }

    /// The `Origin` rule, for state-changing requests and upgrades.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut all = headers.get_all(header::ORIGIN).iter();
        match (all.next(), all.next()) {
            (Some(origin), None) => {
                let origin = origin
                    .to_str()
                    .ok()
                    .and_then(Origin::parse)
                    .ok_or(Refusal::Origin)?;
                if self.public.contains(&origin) {
                    Ok(())
                } else {
                    Err(Refusal::Origin)
                }
            }
            (Some(_), Some(_)) => Err(Refusal::Origin),
            (None, _) => match headers
                .get("sec-fetch-site")
                .map(|v| v.to_str().unwrap_or("?"))
            {
                None | Some("same-origin") | Some("none") => Ok(()),
                Some(_) => Err(Refusal::Origin),
            },
        }
    }

    /// Whether `url` (a `Referer`) is on one of the public origins.
    pub fn is_own_url(&self, url: &str) -> bool {
        let Some((scheme, rest)) = url.split_once("://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        Origin::parse(&format!("{scheme}://{authority}")).is_some_and(|o| self.public.contains(&o))
    }

    /// Whether the canonical (first) public origin is HTTPS.
    pub fn https(&self) -> bool {
        self.public.first().is_some_and(Origin::is_https)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn local() -> Rules {
        Rules::new(&[], &[], "127.0.0.1:3000".parse().unwrap(), false).unwrap()
    }

    #[test]
    fn origins_parse_and_normalise() {
        let o = Origin::parse("HTTPS://Chat.Example").unwrap();
        assert_eq!(
            (o.scheme.as_str(), o.host.as_str(), o.port),
            ("https", "chat.example", 443)
        );
        assert_eq!(o.host_header(), "chat.example");
        assert_eq!(
            Origin::parse("http://a:8080").unwrap().host_header(),
            "a:8080"
        );
        assert_eq!(Origin::parse("http://[::1]:3000").unwrap().host, "[::1]");
        for bad in [
            "null",
            "a.example",
            "ftp://a",
            "http://",
            "http://a/path",
            "http://u@a",
            "http://a:x",
        ] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn derived_rules_and_an_unnameable_bind_address() {
        let r = local();
        assert!(r
            .check_host(&headers(&[("host", "127.0.0.1:3000")]))
            .is_ok());
        assert!(r
            .check_host(&headers(&[("host", "LOCALHOST:3000")]))
            .is_ok());
        assert!(r.check_host(&headers(&[("host", "evil.example")])).is_err());
        assert!(r
            .check_host(&headers(&[("host", "127.0.0.1:3001")]))
            .is_err());
        assert!(r.check_host(&headers(&[])).is_err());
        assert!(r
            .check_host(&headers(&[
                ("host", "127.0.0.1:3000"),
                ("host", "127.0.0.1:3000")
            ]))
            .is_err());
        assert!(matches!(
            Rules::new(&[], &[], "0.0.0.0:3000".parse().unwrap(), false),
            Err(RulesError::NoPublicOrigin(_))
        ));
        let configured = Rules::new(
            &["https://chat.example".into()],
            &[],
            "0.0.0.0:3000".parse().unwrap(),
            false,
        )
        .unwrap();
        assert!(configured.https());
        assert!(configured
            .check_host(&headers(&[("host", "chat.example")]))
            .is_ok());
        assert!(configured
            .check_host(&headers(&[("host", "127.0.0.1:3000")]))
            .is_err());
    }

    #[test]
    fn the_origin_rule_compares_scheme_host_and_port() {
        let r = local();
        let ok = |o: &str| r.check_origin(&headers(&[("origin", o)])).is_ok();
        assert!(ok("http://127.0.0.1:3000"));
        assert!(ok("http://localhost:3000"));
        assert!(!ok("https://127.0.0.1:3000"), "another scheme");
        assert!(!ok("http://127.0.0.1:3001"), "another port");
        assert!(!ok("http://evil.example"));
        assert!(!ok("null"));
        let twice = headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("origin", "http://evil.example"),
        ]);
        assert!(r.check_origin(&twice).is_err(), "a repeated Origin");
        let fetch = |site: &str| {
            r.check_origin(&headers(&[("sec-fetch-site", site)]))
                .is_ok()
        };
        assert!(fetch("same-origin") && fetch("none"));
        assert!(!fetch("same-site") && !fetch("cross-site"));
        assert!(r.check_origin(&headers(&[])).is_ok(), "not a browser");
    }

    #[test]
    fn own_urls() {
        let r = local();
        assert!(r.is_own_url("http://127.0.0.1:3000/rooms/1?x=1"));
        assert!(!r.is_own_url("http://evil.example/rooms/1"));
        assert!(!r.is_own_url("http://127.0.0.1:3000@evil.example/"));
        assert!(!r.is_own_url("/rooms/1"));
    }
}
