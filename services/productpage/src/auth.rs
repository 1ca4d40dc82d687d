//! `POST /login` and `GET /logout`: the demo's fake sign-in.
//!
//! Any user name is accepted and the password is ignored: signing in only exists so
//! that productpage can send `end-user: <name>` upstream, which is what the labs'
//! routing rules (`end-user: exact: jason`) match on. Both routes answer 302 back to
//! the page the browser came from.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, REFERER, SET_COOKIE, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::form;
use crate::session::{self, Session};
use crate::state::AppState;

/// Where to go back to without a `Referer`. The original sends the literal
/// `Location: None` there; we send the product page instead.
const DEFAULT_RETURN: &str = "/productpage";

/// Longest accepted user name; the cookie has to fit in a header.
const MAX_USERNAME: usize = 256;

#[derive(Template)]
#[template(path = "redirect.html")]
struct RedirectPage<'a> {
    location: &'a str,
}

/// `POST /login`: `username` from the query string or the form body (the query wins,
/// as in the original's `request.values`); `passwd` is ignored.
pub(crate) async fn login(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let query = form::parse(query.unwrap_or_default().as_bytes())?;
    let body = if body.is_empty() {
        Vec::new()
    } else {
        form::parse(form_body(&headers, &body)?)?
    };
    let user = form::first(&query, "username").or_else(|| form::first(&body, "username"));
    if let Some(u) = user {
        check_username(u)?;
    }
    let session = Session {
        user: user.filter(|u| !u.is_empty()).map(str::to_owned),
    };
    tracing::info!(
        user = session.user.as_deref().unwrap_or(""),
        "User signed in."
    );
    back_to_referer(
        &headers,
        session::set_cookie(&state.sessions().seal(&session)),
    )
}

/// `GET /logout`.
pub(crate) async fn logout(headers: HeaderMap) -> Result<Response, AppError> {
    back_to_referer(&headers, session::clear_cookie())
}

/// The body, if it is sent in an encoding the form decoder reads.
fn form_body<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<&'a [u8], AppError> {
    match headers.get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?")) {
        None => Ok(body),
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                Ok(body)
            } else {
                Err(AppError::UnsupportedForm(ct.to_owned()))
            }
        }
    }
}

/// The name ends up in a cookie and in the `end-user` header of every call.
fn check_username(user: &str) -> Result<(), AppError> {
    if user.len() > MAX_USERNAME {
        return Err(AppError::BadUsername("longer than 256 bytes"));
    }
    if user.chars().any(char::is_control) {
        return Err(AppError::BadUsername("contains control characters"));
    }
    Ok(())
}

/// 302 to the `Referer`, setting `cookie`.
fn back_to_referer(headers: &HeaderMap, cookie: String) -> Result<Response, AppError> {
    let location = headers
        .get(REFERER)
        .cloned()
        .unwrap_or(HeaderValue::from_static(DEFAULT_RETURN));
    let body = RedirectPage {
        location: location.to_str().unwrap_or(DEFAULT_RETURN),
    }
    .render()?;
    // The cookie value is URL-safe base64 and fixed attributes, always a valid header.
    let cookie = HeaderValue::try_from(cookie)
        .map_err(|_| AppError::BadUsername("cannot be stored in a cookie"))?;
    let headers = [
        (LOCATION, location),
        (SET_COOKIE, cookie),
        (VARY, HeaderValue::from_static("Cookie")),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
    ];
    Ok((StatusCode::FOUND, headers, body).into_response())
}
