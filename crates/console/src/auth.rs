//! Sign-in, sessions and CSRF: the cookie-backed [`Page`] extractor every page takes, the sign-in throttle, and
//! the middleware that refuses any POST without the right token before a handler sees it.

use crate::i18n::Lang;
use crate::{App, ConsoleError, MAX_FORM_BYTES, MOUNT};
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use mailpush_core::{ALPHANUMERIC, random_string};
use mailpush_core::{AccountContext, ConsoleSession, Mailpush};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie.
const SESSION_COOKIE: &str = "mp_session";
/// The sign-in form's double-submit CSRF cookie (there is no session yet).
const LOGIN_CSRF_COOKIE: &str = "mp_login_csrf";
/// A one-shot message shown by the next page (after a redirect).
const FLASH_COOKIE: &str = "mp_flash";
/// The form field (or `X-CSRF-Token` header) carrying the token.
pub(crate) const CSRF_FIELD: &str = "_csrf";

/// Failed sign-ins per (client address, username) within [`SIGN_IN_WINDOW`] before that pair is refused.
const MAX_FAILURES_PER_USER: usize = 5;
/// Failed sign-ins per client address (any usernames) within the window. Never per username alone: that
/// would let anyone lock a tenant out.
const MAX_FAILURES_PER_CLIENT: usize = 20;
/// The throttle's window.
const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failed sign-ins by key, in this process.
#[derive(Default)]
pub(crate) struct SignInLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl SignInLimiter {
    fn keys(client: IpAddr, username: &str) -> (String, String) {
        // IPv6 clients are counted per /64: one host usually holds a whole one.
        let client = match client {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            v4 => v4.to_string(),
        };
        (format!("{client}|{}", username.trim().to_lowercase()), client)
    }

    fn count(map: &mut HashMap<String, Vec<Instant>>, key: &str) -> usize {
        let now = Instant::now();
        let entry = map.entry(key.to_string()).or_default();
        entry.retain(|t| now.duration_since(*t) < SIGN_IN_WINDOW);
        entry.len()
    }

    /// Whether this client may try to sign in as `username` now.
    pub(crate) fn allowed(&self, client: IpAddr, username: &str) -> bool {
        let (pair, client) = Self::keys(client, username);
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        Self::count(&mut map, &pair) < MAX_FAILURES_PER_USER && Self::count(&mut map, &client) < MAX_FAILURES_PER_CLIENT
    }

    /// Counts a failed sign-in.
    pub(crate) fn failed(&self, client: IpAddr, username: &str) {
        let (pair, client) = Self::keys(client, username);
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Bounded memory under a spray of usernames: forget what is old.
            let now = Instant::now();
            map.retain(|_, v| v.iter().any(|t| now.duration_since(*t) < SIGN_IN_WINDOW));
        }
        let now = Instant::now();
        map.entry(pair).or_default().push(now);
        map.entry(client).or_default().push(now);
    }
}

/// The value of cookie `name` in the request's headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the browser reached us over TLS (directly or through a proxy that says so): cookies are then Secure.
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for the console's cookies.
fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={MOUNT}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Percent-encodes a flash message for its cookie.
fn encode_flash(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn decode_flash(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A redirect (303) to `to` carrying a one-shot message for the next page (`ok` = success, else an error).
pub(crate) fn redirect_with(to: &str, ok: bool, message: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    let value = format!("{}{}", if ok { "o" } else { "e" }, encode_flash(message));
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(FLASH_COOKIE, &value, Some(60), false));
    r
}

/// The redirect of a request that needs a session.
pub(crate) fn to_sign_in() -> Response {
    Redirect::to(&format!("{MOUNT}/login")).into_response()
}

/// A signed-in request: who, in which language, with the one-shot message left by the previous POST.
pub(crate) struct Page {
    /// The UI language.
    pub(crate) lang: Lang,
    /// The session.
    pub(crate) session: ConsoleSession,
    /// The cookie value (to switch the operator's account, to sign out).
    pub(crate) token: String,
    /// `(ok, text)` left by a redirect.
    pub(crate) flash: Option<(bool, String)>,
    /// The console's shared state (the core, the templates).
    pub(crate) app: App,
}

impl Page {
    /// The account whose data the page shows; an operator who chose none is sent to choose one.
    pub(crate) fn account(&self) -> Result<&AccountContext, ConsoleError> {
        self.session.account.as_ref().ok_or(ConsoleError::NoAccount)
    }

    /// Whether the user is the operator.
    pub(crate) fn operator(&self) -> bool {
        self.session.user.is_operator()
    }

    /// The core every page acts through.
    pub(crate) fn core(&self) -> &Mailpush {
        &self.app.core
    }
}

impl FromRequestParts<App> for Page {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_accept_language(parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(ConsoleError::SignIn)?;
        let session = app.core.console_session(&token).await?.ok_or(ConsoleError::SignIn)?;
        let flash = cookie(&parts.headers, FLASH_COOKIE)
            .filter(|v| v.len() > 1)
            .map(|v| (v.starts_with('o'), decode_flash(&v[1..])));
        Ok(Page {
            lang,
            session,
            token,
            flash,
            app: app.clone(),
        })
    }
}

/// Clears the flash cookie on a page that showed it.
pub(crate) fn clear_flash(response: &mut Response) {
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(FLASH_COOKIE, "", Some(0), false));
}

/// Refuses a POST whose CSRF token is missing or wrong (403), before any handler: the session's token for
/// signed-in forms, the double-submit cookie for the sign-in form. GETs change nothing and pass.
pub(crate) async fn csrf_guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    let sent = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| urlencoded_field(&bytes, CSRF_FIELD));
    let expected = if parts.uri.path().ends_with("/login") {
        cookie(&parts.headers, LOGIN_CSRF_COOKIE)
    } else {
        match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => match app.core.console_session(&token).await {
                Ok(Some(s)) => Some(s.csrf),
                Ok(None) => return to_sign_in(),
                Err(e) => return ConsoleError::Core(e).into_response(),
            },
            None => return to_sign_in(),
        }
    };
    let valid = matches!((&sent, &expected), (Some(s), Some(e)) if !e.is_empty() && constant_time_eq(s, e));
    if !valid {
        let lang = Lang::from_accept_language(parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
        return (StatusCode::FORBIDDEN, app.views.refused(lang)).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One field of an `application/x-www-form-urlencoded` body.
fn urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    form_pairs(body)?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Decodes a urlencoded body into its pairs (`+` is a space, `%XX` a byte).
pub(crate) fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let unescape = |s: &str| decode_flash(&s.replace('+', " "));
    Some(
        text.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (unescape(k), unescape(v)),
                None => (unescape(p), String::new()),
            })
            .collect(),
    )
}

/// The sign-in form; sets its double-submit CSRF cookie.
pub(crate) async fn login_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let lang = Lang::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    login_form(&app, &headers, lang, None)
}

fn login_form(app: &App, headers: &HeaderMap, lang: Lang, error: Option<&str>) -> Response {
    let token = random_string(32, ALPHANUMERIC);
    let html = app.views.login(lang, &token, error);
    let mut r = html.into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &token, None, behind_tls(headers)),
    );
    r
}

/// Sign-in: throttled failures, then a new session cookie.
pub(crate) async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let lang = Lang::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let fields: HashMap<String, String> = form_pairs(body.as_bytes()).unwrap_or_default().into_iter().collect();
    let username = fields.get("username").map(String::as_str).unwrap_or("");
    let password = fields.get("password").map(String::as_str).unwrap_or("");
    if !app.limiter.allowed(peer.ip(), username) {
        let mut r = login_form(&app, &headers, lang, Some(lang.t("too_many_sign_ins")));
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return r;
    }
    let user = match app.core.console_sign_in(username, password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            app.limiter.failed(peer.ip(), username);
            let mut r = login_form(&app, &headers, lang, Some(lang.t("bad_sign_in")));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            return r;
        }
        Err(e) => return ConsoleError::Core(e).into_response(),
    };
    let token = match app.core.open_console_session(&user).await {
        Ok(t) => t,
        Err(e) => return ConsoleError::Core(e).into_response(),
    };
    if user.is_operator() {
        // The operator starts on the first account, if there is one.
        if let Ok(accounts) = app.core.list_accounts().await
            && let Some(first) = accounts.first()
        {
            let _ = app.core.set_console_account(&token, Some(first.id)).await;
        }
    }
    let mut r = Redirect::to(MOUNT).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, None, behind_tls(&headers)),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", Some(0), false));
    r
}

/// Sign-out: the session is deleted, the cookie cleared.
pub(crate) async fn logout(State(app): State<App>, page: Page) -> Response {
    let _ = app.core.close_console_session(&page.token).await;
    let mut r = to_sign_in();
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0), false));
    r
}

/// The operator chooses the account to look at.
pub(crate) async fn act_as(State(app): State<App>, page: Page, body: String) -> Result<Response, ConsoleError> {
    if !page.operator() {
        return Err(ConsoleError::NotFound);
    }
    let fields: HashMap<String, String> = form_pairs(body.as_bytes()).unwrap_or_default().into_iter().collect();
    let id = fields.get("account").and_then(|v| v.parse::<i64>().ok());
    if let Some(id) = id {
        app.core.account_by_id(id).await?;
    }
    app.core.set_console_account(&page.token, id).await?;
    Ok(Redirect::to(MOUNT).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_counts_pairs_and_clients() {
        let l = SignInLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_USER {
            assert!(l.allowed(ip, "ann"));
            l.failed(ip, "ann");
        }
        assert!(!l.allowed(ip, "ann"));
        assert!(
            l.allowed(ip, "bob"),
            "another username from the same client is still allowed"
        );
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.allowed(other, "ann"), "the username is not locked from other clients");
    }

    #[test]
    fn forms_and_flashes_decode() {
        let pairs = form_pairs(b"a=1&_csrf=x%2By&b=hello+world").unwrap();
        assert_eq!(pairs[1], ("_csrf".into(), "x+y".into()));
        assert_eq!(pairs[2].1, "hello world");
        assert_eq!(decode_flash(&encode_flash("域名 added: ok?")), "域名 added: ok?");
    }
}
