//! Logging in: password, then a TOTP code (enrolled at the first login), then a session.

use super::{
    address, cookies, redirect_with, render_status, same, token, token_hash, unavailable, Console,
    Fields, Flash, FLASH_COOKIE, LOGIN_COOKIE, SESSION_COOKIE,
};
use crate::accounts::verify_password;
use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use fiber_link_core::totp;
use fiber_link_store::console::{NoSession, Session};
use fiber_link_store::StoreError;
use std::collections::HashMap;
use std::time::Duration;

/// A hash to verify against when the name is unknown, so that an unknown name takes as long
/// as a wrong password.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn dummy_hash() -> &'static str {
    DUMMY_HASH.get_or_init(|| crate::accounts::hash_password("not a password").unwrap_or_default())
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    flash: Flash,
    username: String,
}

#[derive(Template)]
#[template(path = "console/code.html")]
struct CodePage {
    csrf: String,
    flash: Flash,
    name: String,
    /// Enrolment: the QR code (SVG) and the secret as text.
    qr: Option<String>,
    secret: Option<String>,
}

/// The request's parts the login pages need: cookies and the client's address.
pub struct Visitor {
    jar: HashMap<String, String>,
    address: String,
}

impl FromRequestParts<Console> for Visitor {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &Console) -> Result<Visitor, Response> {
        Ok(Visitor {
            jar: cookies(parts),
            address: address(parts),
        })
    }
}

impl Visitor {
    fn flash(&self) -> Flash {
        self.jar
            .get(FLASH_COOKIE)
            .map(|v| Flash::decode(v))
            .unwrap_or_default()
    }

    fn session_hash(&self) -> Option<Vec<u8>> {
        self.jar
            .get(SESSION_COOKIE)
            .filter(|t| !t.is_empty())
            .map(|t| token_hash(t))
    }
}

fn login_form(
    c: &Console,
    v: &Visitor,
    status: StatusCode,
    flash: Flash,
    username: &str,
) -> Response {
    // the login form's CSRF token: a random value in a cookie and in the form (double submit)
    let csrf = v
        .jar
        .get(LOGIN_COOKIE)
        .filter(|t| t.len() == 64)
        .cloned()
        .unwrap_or_else(token);
    let mut r = render_status(
        status,
        &LoginPage {
            csrf: csrf.clone(),
            flash,
            username: username.to_string(),
        },
        true,
    );
    r.headers_mut()
        .append(header::SET_COOKIE, c.cookie(LOGIN_COOKIE, &csrf, None));
    r
}

pub async fn login_page(State(c): State<Console>, v: Visitor) -> Response {
    let flash = v.flash();
    login_form(&c, &v, StatusCode::OK, flash, "")
}

/// Counts an attempt before its credential is checked (so that attempts made at once cannot all
/// pass): its id, or `None` when this account or this address failed too often lately.
async fn attempt(c: &Console, name: &str, address: &str) -> Result<Option<i64>, Response> {
    let cc = &c.cfg.console;
    let (id, by_name, by_address) = c
        .store
        .login_attempt(name, address, Duration::from_secs(cc.throttle_window_secs))
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(
        (by_name <= cc.max_failures_per_account && by_address <= cc.max_failures_per_address)
            .then_some(id),
    )
}

/// Argon2 verifications at once: each takes 19 MiB and tens of milliseconds of CPU, and a burst
/// of logins must not take the API process's memory or cores.
static ARGON2_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn too_many(c: &Console) -> Flash {
    Flash::error(format!(
        "Too many attempts: this account or this address is locked for up to {} minutes. An operator with shell access can unlock it with `fiber-link operator reset`.",
        c.cfg.console.throttle_window_secs.div_ceil(60)
    ))
}

pub async fn login(State(c): State<Console>, v: Visitor, Fields(f): Fields) -> Response {
    // operator names are at most 32 characters: longer input is cut before it is stored anywhere
    let name: String = f
        .get("username")
        .map(|s| s.trim())
        .unwrap_or("")
        .to_lowercase()
        .chars()
        .take(40)
        .collect();
    let password = f.get("password").map(String::as_str).unwrap_or("");
    let csrf_ok = match (f.get("csrf"), v.jar.get(LOGIN_COOKIE)) {
        (Some(a), Some(b)) => same(a, b),
        _ => false,
    };
    if !csrf_ok {
        return login_form(
            &c,
            &v,
            StatusCode::FORBIDDEN,
            Flash::error("The form token is missing or wrong (the page was open too long, or cookies are off): try again."),
            &name,
        );
    }
    let attempt_id = match attempt(&c, &name, &v.address).await {
        Err(r) => return r,
        Ok(None) => return login_form(&c, &v, StatusCode::TOO_MANY_REQUESTS, too_many(&c), &name),
        Ok(Some(id)) => id,
    };
    let op = match c.store.operator(&name).await {
        Ok(op) => op,
        Err(e) => return unavailable(&e),
    };
    let hash = op.as_ref().map(|o| o.password_hash.clone());
    let pw = password.to_string();
    // Argon2 takes tens of milliseconds of CPU: off the async threads, two at a time
    let ok = match ARGON2_SLOTS.acquire().await {
        Ok(_slot) => tokio::task::spawn_blocking(move || {
            let h = hash.as_deref().unwrap_or_else(|| dummy_hash());
            verify_password(h, &pw)
        })
        .await
        .unwrap_or(false),
        Err(_) => false,
    };
    let Some(op) = op.filter(|_| ok) else {
        if let Err(e) = c
            .store
            .audit_login_failure(&name, &v.address, "password")
            .await
        {
            return unavailable(&e);
        }
        return login_form(
            &c,
            &v,
            StatusCode::UNAUTHORIZED,
            Flash::error("Wrong name or password."),
            &name,
        );
    };
    let t = token();
    if let Err(e) = c.store.forgive_login_attempt(attempt_id).await {
        return unavailable(&e);
    }
    if let Err(e) = c
        .store
        .start_session(&token_hash(&t), &op.name, &token(), &v.address)
        .await
    {
        return unavailable(&e);
    }
    // a session still waiting for its code lives five minutes
    let mut r = Redirect::to(if op.enrolled {
        "/login/code"
    } else {
        "/login/enrol"
    })
    .into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, c.cookie(SESSION_COOKIE, &t, None));
    r
}

/// The visitor's session (its idle clock restarted) and its token's hash: `Ok(None)` without a
/// cookie, `Ok(Some((Err(why), _)))` for an unknown or expired one.
async fn visitor_session(
    c: &Console,
    v: &Visitor,
) -> Result<Option<(Result<Session, NoSession>, Vec<u8>)>, Response> {
    let Some(h) = v.session_hash() else {
        return Ok(None);
    };
    let s = c
        .store
        .touch_session(&h, c.idle(), c.absolute())
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(Some((s, h)))
}

/// The session between the password and the code.
async fn half_session(c: &Console, v: &Visitor) -> Result<(Session, Vec<u8>), Response> {
    match visitor_session(c, v).await? {
        None => Err(Redirect::to("/login").into_response()),
        Some((Ok(s), h)) if s.stage == "password" => Ok((s, h)),
        Some((Ok(_), _)) => Err(Redirect::to("/").into_response()),
        Some((Err(_), _)) => Err(redirect_with(
            c,
            "/login",
            Flash::error("The login took too long or the session has expired: log in again."),
        )),
    }
}

fn code_form(
    c: &Console,
    s: &Session,
    status: StatusCode,
    flash: Flash,
    enrol: Option<&str>,
) -> Response {
    let (qr, secret) = match enrol {
        Some(secret) => (
            fiber_link_api::pay::qr_svg(&totp::uri("Fiber Link", &s.operator, secret)),
            Some(secret.to_string()),
        ),
        None => (None, None),
    };
    let _ = c;
    render_status(
        status,
        &CodePage {
            csrf: s.csrf.clone(),
            flash,
            name: s.operator.clone(),
            qr,
            secret,
        },
        true,
    )
}

fn aad(name: &str) -> String {
    format!("operator/{name}")
}

/// The secret being enrolled: the pending one, or a new one stored as pending.
async fn pending_secret(c: &Console, name: &str) -> Result<String, Response> {
    let op = c
        .store
        .operator(name)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(|| Redirect::to("/login").into_response())?;
    if let Some(s) = op
        .totp_pending
        .as_deref()
        .and_then(|p| c.master.secret_box().open(&aad(name), p))
    {
        return Ok(s);
    }
    let secret = totp::generate_secret();
    c.store
        .set_pending_totp(name, &c.master.secret_box().seal(&aad(name), &secret))
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(secret)
}

pub async fn enrol_page(State(c): State<Console>, v: Visitor) -> Response {
    let (s, _) = match half_session(&c, &v).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c.store.operator(&s.operator).await {
        Ok(Some(op)) if op.enrolled => return Redirect::to("/login/code").into_response(),
        Err(e) => return unavailable(&e),
        _ => {}
    }
    match pending_secret(&c, &s.operator).await {
        Ok(secret) => code_form(&c, &s, StatusCode::OK, v.flash(), Some(&secret)),
        Err(r) => r,
    }
}

pub async fn code_page(State(c): State<Console>, v: Visitor) -> Response {
    let (s, _) = match half_session(&c, &v).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c.store.operator(&s.operator).await {
        Ok(Some(op)) if !op.enrolled => return Redirect::to("/login/enrol").into_response(),
        Err(e) => return unavailable(&e),
        _ => {}
    }
    code_form(&c, &s, StatusCode::OK, v.flash(), None)
}

fn now_step() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    totp::step_at(secs)
}

pub async fn code(State(c): State<Console>, v: Visitor, Fields(f): Fields) -> Response {
    let (s, old_hash) = match half_session(&c, &v).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !f.get("csrf").is_some_and(|t| same(t, &s.csrf)) {
        return code_form(
            &c,
            &s,
            StatusCode::FORBIDDEN,
            Flash::error("The form token is missing or wrong: reload the page and try again."),
            None,
        );
    }
    let op = match c.store.operator(&s.operator).await {
        Ok(Some(op)) => op,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return unavailable(&e),
    };
    let enrolling = !op.enrolled;
    let sealed = if enrolling {
        op.totp_pending.as_deref()
    } else {
        op.totp_secret.as_deref()
    };
    let Some(secret) = sealed.and_then(|p| c.master.secret_box().open(&aad(&op.name), p)) else {
        if enrolling {
            return Redirect::to("/login/enrol").into_response();
        }
        tracing::error!(operator = %op.name, "console: the operator's TOTP secret cannot be opened with this master key");
        return code_form(&c, &s, StatusCode::INTERNAL_SERVER_ERROR, Flash::error("Your second factor cannot be read with this service's master key: ask for `fiber-link operator reset`."), None);
    };
    let again =
        |status, flash| code_form(&c, &s, status, flash, enrolling.then_some(secret.as_str()));
    // counted before the code is checked; a right code clears the account's count
    match attempt(&c, &op.name, &v.address).await {
        Err(r) => return r,
        Ok(None) => return again(StatusCode::TOO_MANY_REQUESTS, too_many(&c)),
        Ok(Some(_)) => {}
    }
    let input = f.get("code").map(String::as_str).unwrap_or("");
    let Some(step) = totp::verify(&secret, input, now_step()) else {
        if let Err(e) = c
            .store
            .audit_login_failure(&op.name, &v.address, "code")
            .await
        {
            return unavailable(&e);
        }
        return again(
            StatusCode::UNAUTHORIZED,
            Flash::error("Wrong code: enter the 6 digits your authenticator app shows now."),
        );
    };
    let replayed = || {
        again(
            StatusCode::UNAUTHORIZED,
            Flash::error("This code was already used; wait for the next one."),
        )
    };
    if (step as i64) <= op.totp_last_step {
        return replayed();
    }
    // a new token for the logged-in session: whatever knew the old one gains nothing
    let t = token();
    match c
        .store
        .complete_login(
            &old_hash,
            &token_hash(&t),
            &op.name,
            step as i64,
            &token(),
            enrolling,
        )
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return replayed(),
        Err(StoreError::NotFound) => return Redirect::to("/login").into_response(),
        Err(e) => return unavailable(&e),
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, c.cookie(SESSION_COOKIE, &t, None));
    r
}

/// The session of a logout form, if its CSRF token is right.
async fn own_session(
    c: &Console,
    v: &Visitor,
    f: &HashMap<String, String>,
) -> Result<(String, Vec<u8>), Response> {
    match visitor_session(c, v).await? {
        Some((Ok(s), h)) if f.get("csrf").is_some_and(|t| same(t, &s.csrf)) => Ok((s.operator, h)),
        Some((Ok(_), _)) => Err(super::refusal(
            c,
            StatusCode::FORBIDDEN,
            "The form token is missing or wrong: reload the page and try again.",
        )),
        None | Some((Err(_), _)) => Err(Redirect::to("/login").into_response()),
    }
}

fn logged_out(c: &Console, message: &str) -> Response {
    let mut r = redirect_with(c, "/login", Flash::ok(message));
    r.headers_mut()
        .append(header::SET_COOKIE, c.cookie(SESSION_COOKIE, "", Some(0)));
    r
}

pub async fn logout(State(c): State<Console>, v: Visitor, Fields(f): Fields) -> Response {
    match own_session(&c, &v, &f).await {
        Ok((_, h)) => match c.store.end_session(&h).await {
            Ok(()) => logged_out(&c, "Logged out."),
            Err(e) => unavailable(&e),
        },
        Err(r) => r,
    }
}

pub async fn logout_all(State(c): State<Console>, v: Visitor, Fields(f): Fields) -> Response {
    match own_session(&c, &v, &f).await {
        Ok((name, _)) => match c.store.end_sessions(&name).await {
            Ok(n) => logged_out(
                &c,
                &format!("Logged out everywhere ({n} session(s) ended)."),
            ),
            Err(e) => unavailable(&e),
        },
        Err(r) => r,
    }
}
