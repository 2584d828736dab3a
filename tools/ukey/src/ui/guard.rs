//! Who may talk to the page's server. It listens on loopback only, but
//! every web page the user opens can send requests to loopback, and a
//! DNS name can be rebound to 127.0.0.1; so every request must show:
//!
//! * `Host` = the exact address and port served (DNS rebinding: a page of
//!   another site reaching us under its own name is refused);
//! * the session cookie, got by opening the URL `ukey ui` printed, whose
//!   random secret is exchanged for it (`HttpOnly`, `SameSite=Strict`,
//!   `Path=/`), the secret then leaves the address bar;
//! * for every POST (the only method that changes anything): `Origin` =
//!   the page's origin, and the session's CSRF token in `X-CSRF-Token`
//!   (the page has it from its own HTML; another origin cannot read it);
//! * nothing else: no CORS headers are ever sent, and every response
//!   carries a strict Content-Security-Policy (scripts and styles only from
//!   the page's own files: no inline script), `frame-ancestors 'none'`,
//!   `X-Frame-Options: DENY`, `nosniff`, `no-referrer`, `no-store`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use axum::middleware::Next;
use rand::RngCore;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

use super::App;

/// The session cookie's name is this and the port: cookies are shared by
/// every port of a host, and two `ukey ui` must not take each other's.
pub const COOKIE: &str = "ukey_session";
/// The request header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions kept at once (each browser that opened the URL has one).
const MAX_SESSIONS: usize = 16;

/// 32 random bytes in hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A session: its cookie value and its CSRF token.
pub struct Session {
    pub id: String,
    pub csrf: String,
}

/// The secret of the URL and the sessions it opened.
pub struct Sessions {
    secret: String,
    open: Mutex<Vec<Session>>,
}

impl Sessions {
    pub fn new() -> Self {
        Self {
            secret: random_token(),
            open: Mutex::new(Vec::new()),
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A new session (the oldest goes when there are too many).
    fn open(&self) -> (String, String) {
        let s = Session {
            id: random_token(),
            csrf: random_token(),
        };
        let out = (s.id.clone(), s.csrf.clone());
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= MAX_SESSIONS {
            open.remove(0);
        }
        open.push(s);
        out
    }

    /// The CSRF token of the session with cookie value `id`.
    pub fn csrf_of(&self, id: &str) -> Option<String> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.iter()
            .find(|s| same(&s.id, id))
            .map(|s| s.csrf.clone())
    }
}

/// The session cookie's value in a request (cookie `name`).
pub fn session_cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn refuse(status: StatusCode, why: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(format!("{why}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The `s=` parameter of a query string.
fn secret_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "s")
        .map(|(_, v)| v)
}

/// The session id and CSRF token a request was admitted with.
#[derive(Clone)]
pub struct Admitted {
    pub csrf: String,
}

/// Every request passes here first.
pub async fn guard(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response<Body> {
    app.touch();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let refused = admit(&app, &mut req);
    let mut resp = match refused {
        None => next.run(req).await,
        Some(resp) => resp,
    };
    tracing::debug!(target: "ui", "{method} {path} -> {}", resp.status().as_u16());
    harden(resp.headers_mut());
    resp
}

/// `None` when the request may go on, else the answer refusing it.
fn admit(app: &App, req: &mut Request) -> Option<Response<Body>> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if host != app.host {
        return Some(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "refused: this server answers only to its own loopback address (Host)",
        ));
    }
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        return Some(refuse(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"));
    }
    if method == Method::POST {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|h| h.to_str().ok());
        if origin != Some(app.origin.as_str()) {
            return Some(refuse(
                StatusCode::FORBIDDEN,
                "refused: a request that changes something must come from the page itself (Origin)",
            ));
        }
    }
    // Opening the printed URL: the secret buys a session cookie, and the
    // address bar loses the secret.
    if method == Method::GET && req.uri().path() == "/" {
        if let Some(s) = secret_param(req.uri().query()) {
            if !same(s, app.sessions.secret()) {
                return Some(refuse(
                    StatusCode::FORBIDDEN,
                    "refused: this address's secret is not the one `ukey ui` printed",
                ));
            }
            let (id, _) = app.sessions.open();
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
            let cookie = format!("{}={id}; HttpOnly; SameSite=Strict; Path=/", app.cookie);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return Some(r);
        }
    }
    let csrf = session_cookie(req, &app.cookie).and_then(|id| app.sessions.csrf_of(&id));
    let Some(csrf) = csrf else {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "refused: open the address `ukey ui` printed (it carries a one-time secret)",
        ));
    };
    if method == Method::POST {
        let given = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !same(given, &csrf) {
            return Some(refuse(
                StatusCode::FORBIDDEN,
                "refused: the request lacks the page's CSRF token",
            ));
        }
    }
    req.extensions_mut().insert(Admitted { csrf });
    None
}

/// The headers every response carries.
fn harden(h: &mut axum::http::HeaderMap) {
    const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                       object-src 'none'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'";
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cache-control", "no-store");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
}
