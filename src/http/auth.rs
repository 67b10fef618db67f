//! Who may use the HTTP API: the bearer token (or a session cookie from signing in with it),
//! and the cross-origin rule for state changes.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error;

/// The session cookie the dashboard's sign-in sets.
pub const COOKIE: &str = "stylerd_session";
/// A session lasts this long.
const SESSION_FOR: Duration = Duration::from_secs(12 * 3600);
/// At most this many live sessions; signing in past it ends the oldest.
const MAX_SESSIONS: usize = 64;
/// Paths anyone may fetch: the page itself (it holds no data and asks for the token), the
/// sign-in, and the health probes (which say no more than "alive"/"ready" and why not).
const PUBLIC: [&str; 4] = ["/", "/healthz", "/readyz", "/api/v1/session"];

#[derive(Debug, Default)]
pub struct Auth {
    /// SHA-256 of the token; `None`: no token configured (loopback only).
    token: Option<[u8; 32]>,
    sessions: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Auth {
    /// Reads the token file's first line, if one is configured.
    pub fn load(token_file: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = token_file else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read http.token-file {}", path.display()))?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.len() < 16 {
            bail!(
                "http.token-file {} holds a token of {} characters; use at least 16 (e.g. `openssl rand -hex 32`)",
                path.display(),
                token.len()
            );
        }
        Ok(Self::with_token(token))
    }

    pub fn with_token(token: &str) -> Self {
        Self {
            token: Some(Sha256::digest(token.as_bytes()).into()),
            sessions: Mutex::default(),
        }
    }

    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Constant-time: both sides are hashed to 32 bytes first, so neither the length nor the
    /// first differing byte shows in the time taken.
    fn token_matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        self.token
            .as_ref()
            .is_some_and(|t| bool::from(t.ct_eq(&given)))
    }

    fn session_valid(&self, id: &str) -> bool {
        let Some(id) = decode_hex32(id) else {
            return false;
        };
        let Ok(mut sessions) = self.sessions.lock() else {
            return false;
        };
        let now = Instant::now();
        sessions.retain(|_, until| *until > now);
        // Look up by hash of the id so that the map lookup does not leak a prefix match.
        let key: [u8; 32] = Sha256::digest(id).into();
        sessions.contains_key(&key)
    }

    fn new_session(&self) -> Option<String> {
        let mut id = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut id))
            .ok()?;
        let mut sessions = self.sessions.lock().ok()?;
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(Sha256::digest(id).into(), Instant::now() + SESSION_FOR);
        Some(id.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Whether the request carries the token or a live session.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        if !self.required() {
            return true;
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|t| self.token_matches(t.trim())) {
            return true;
        }
        cookie(headers, COOKIE).is_some_and(|id| self.session_valid(id))
    }
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A state change from another site's page? Browsers send `Origin` (and `Sec-Fetch-Site`)
/// on POSTs; tools like curl send neither and are judged by the token alone.
pub fn cross_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && matches!(site, "cross-site" | "same-site")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    match (origin_host, host) {
        (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h),
        // "null" (a sandboxed or file:// page) or no Host: not this page.
        _ => true,
    }
}

/// The middleware in front of every route.
pub async fn guard(State(state): State<super::State>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let headers = request.headers();
    if !matches!(method, Method::GET | Method::HEAD) && cross_origin(headers) {
        return error(
            StatusCode::FORBIDDEN,
            "cross-origin requests are refused; use the dashboard served by this daemon, or a tool without an Origin header",
        );
    }
    let public = PUBLIC.contains(&request.uri().path());
    if !public && !state.auth.allows(headers) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "this API needs the token: send `Authorization: Bearer TOKEN` (http.token-file)",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"stylerd\""),
        );
        return r;
    }
    next.run(request).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[serde(default)]
    token: String,
}

/// `POST /api/v1/session {"token": "..."}`: sets the session cookie the dashboard's live
/// picture and event stream use (an `<img>` or `EventSource` cannot send a header).
pub async fn sign_in(State(state): State<super::State>, Json(body): Json<SignIn>) -> Response {
    if !state.auth.required() {
        return Json(serde_json::json!({"ok": true, "token_required": false})).into_response();
    }
    if !state.auth.token_matches(body.token.trim()) {
        // Slows guessing down; the token itself is long enough that this is a courtesy.
        tokio::time::sleep(Duration::from_millis(500)).await;
        return error(StatusCode::UNAUTHORIZED, "wrong token");
    }
    let Some(id) = state.auth.new_session() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot create a session (no /dev/urandom)",
        );
    };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_FOR.as_secs()
    );
    let mut r = Json(serde_json::json!({"ok": true, "token_required": true})).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_token_and_sessions() {
        let open = Auth::default();
        assert!(open.allows(&HeaderMap::new()));
        let auth = Auth::with_token("0123456789abcdef0123");
        assert!(!auth.allows(&HeaderMap::new()));
        assert!(auth.allows(&headers(&[(
            "authorization",
            "Bearer 0123456789abcdef0123"
        )])));
        assert!(!auth.allows(&headers(&[("authorization", "Bearer 0123456789abcdef012")])));
        assert!(!auth.allows(&headers(&[("authorization", "Basic 0123456789abcdef0123")])));
        let id = auth.new_session().unwrap();
        assert!(auth.allows(&headers(&[("cookie", &format!("a=b; {COOKIE}={id}"))])));
        let mut forged = id.clone();
        forged.replace_range(0..1, if id.starts_with('0') { "1" } else { "0" });
        assert!(!auth.allows(&headers(&[("cookie", &format!("{COOKIE}={forged}"))])));
        assert!(!auth.allows(&headers(&[("cookie", &format!("{COOKIE}=zz"))])));
    }

    #[test]
    fn short_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "short\n").unwrap();
        let e = Auth::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("at least 16"), "{e}");
        std::fs::write(&path, "0123456789abcdef0123\nignored\n").unwrap();
        assert!(Auth::load(Some(&path)).unwrap().required());
    }

    #[test]
    fn cross_origin_posts_are_recognised() {
        let host = ("host", "127.0.0.1:8080");
        assert!(!cross_origin(&headers(&[host])), "curl: no Origin");
        assert!(!cross_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(cross_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(cross_origin(&headers(&[host, ("origin", "null")])));
        assert!(cross_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!cross_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
    }
}
