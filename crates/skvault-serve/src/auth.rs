//! Optional bearer-token authentication (`--token-file`).
//!
//! The token file holds one token per line (several during a rotation; blank lines and
//! lines starting with `#` are ignored). It must not be readable by group or others, as an
//! SSH key must not. Tokens are compared through their BLAKE3 digests in constant time, so
//! neither the content nor the length of a token leaks through timing. `/health` and
//! `/ready` answer without a token (probes); every other path needs one.
//!
//! The registry page (`--ui`) is read by browsers, which cannot send a bearer header from a
//! link: a person signs in once at `/ui/login` with a token, and gets a cookie holding the
//! token's BLAKE3 digest (HttpOnly: no script reads it; SameSite=Strict: no other site's page
//! sends it; Path=/ui: accepted for the registry page only, never for predictions). Pages
//! under `/ui` without a valid cookie or header redirect to the login form.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ServeError};
use crate::state::AppState;

/// Reads the tokens of a token file, refusing a file others can read.
pub fn read_tokens(path: &Path) -> Result<Vec<Vec<u8>>, ServeError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |reason: String| ServeError::Token {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "is readable or writable by others (mode {mode:o}): chmod 600 it"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let tokens: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| blake3::hash(l.as_bytes()).as_bytes().to_vec())
        .collect();
    if tokens.is_empty() {
        return Err(fail("holds no token".into()));
    }
    if text
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#') && l.len() < 16)
    {
        return Err(fail(
            "a token shorter than 16 characters is too easy to guess".into(),
        ));
    }
    Ok(tokens)
}

fn authorized(state: &AppState, value: Option<&HeaderValue>) -> bool {
    let Some(presented) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    known_digest(state, blake3::hash(presented.trim().as_bytes()).as_bytes())
}

/// Whether `digest` is one of the tokens' digests; every token is compared, whichever matches.
fn known_digest(state: &AppState, digest: &[u8]) -> bool {
    state
        .tokens
        .iter()
        .fold(subtle::Choice::from(0), |any, t| {
            any | t.as_slice().ct_eq(digest)
        })
        .into()
}

/// The cookie the login form sets: the name, and the token's digest in hex as its value.
const UI_COOKIE: &str = "skvault_ui";

fn hex_digest(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the request carries the registry page's cookie with a known token's digest.
fn ui_cookie_ok(state: &AppState, request: &Request) -> bool {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(UI_COOKIE)?.strip_prefix('='))
        .any(|value| {
            let bytes: Option<Vec<u8>> = (value.len() == 64)
                .then(|| {
                    (0..32)
                        .map(|i| u8::from_str_radix(value.get(2 * i..2 * i + 2)?, 16).ok())
                        .collect()
                })
                .flatten();
            bytes.is_some_and(|b| known_digest(state, &b))
        })
}

fn is_ui(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login_form(State(state): State<Arc<AppState>>) -> Response {
    if state.tokens.is_empty() {
        return redirect("/ui");
    }
    crate::ui::render(
        StatusCode::OK,
        "ui/login.html",
        minijinja::context! { failed => false },
    )
}

/// Checks the token of the login form; on success sets the cookie and goes to the models.
pub async fn login(
    State(state): State<Arc<AppState>>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let digest = blake3::hash(form.token.trim().as_bytes());
    if state.tokens.is_empty() {
        return redirect("/ui");
    }
    if !known_digest(&state, digest.as_bytes()) {
        return crate::ui::render(
            StatusCode::UNAUTHORIZED,
            "ui/login.html",
            minijinja::context! { failed => true },
        );
    }
    let mut response = redirect("/ui");
    let cookie = format!(
        "{UI_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/ui",
        hex_digest(digest.as_bytes())
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

fn redirect(to: &'static str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    response
}

pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let open = matches!(path, "/health" | "/ready" | "/ui/login");
    if state.tokens.is_empty()
        || open
        || authorized(&state, request.headers().get(header::AUTHORIZATION))
        || (is_ui(path) && state.ui.is_some() && ui_cookie_ok(&state, &request))
    {
        return next.run(request).await;
    }
    if is_ui(path) && state.ui.is_some() {
        return redirect("/ui/login");
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this server needs a bearer token: Authorization: Bearer TOKEN",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn token_file(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join("tokens");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn tokens_are_read_one_per_line_without_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = token_file(
            dir.path(),
            "# old\nfirst-token-0123456789\n\n  second-token-0123456789  \n",
            0o600,
        );
        let tokens = read_tokens(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            tokens[1],
            blake3::hash(b"second-token-0123456789").as_bytes().to_vec()
        );
    }

    #[test]
    fn unsafe_or_empty_token_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (text, mode, expected) in [
            ("long-enough-token-123\n", 0o640, "mode 640"),
            ("long-enough-token-123\n", 0o602, "mode 602"),
            ("# nothing\n", 0o600, "no token"),
            ("short\n", 0o600, "shorter than 16"),
        ] {
            let path = token_file(dir.path(), text, mode);
            let e = read_tokens(&path).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
        }
        let e = read_tokens(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
