//! HTTP basic authentication against bcrypt hashes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;

/// `user:password` from an `Authorization: Basic …` header.
fn credentials(request: &Request) -> Option<(String, String)> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn unauthorized() -> Response {
    let mut resp = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    resp
}

/// `router` with every request required to carry the credentials of one of `users` (name →
/// bcrypt hash). With no users the router is returned unchanged.
pub fn require_basic_auth(router: Router, users: &BTreeMap<String, String>) -> Router {
    if users.is_empty() {
        return router;
    }
    let users = Arc::new(users.clone());
    router.layer(axum::middleware::from_fn(move |request: Request, next: Next| {
        let users = Arc::clone(&users);
        async move {
            let Some((user, password)) = credentials(&request) else { return unauthorized() };
            let Some(hash) = users.get(&user).cloned() else { return unauthorized() };
            // bcrypt is slow on purpose: keep it off the async threads.
            let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
            if verified {
                next.run(request).await
            } else {
                unauthorized()
            }
        }
    }))
}
