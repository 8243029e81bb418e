//! The operator console's security rules over real HTTP against a real `fiber-link serve`
//! (its console listener) and Postgres, with accounts made by the real `fiber-link operator`
//! commands: the login steps and their CSRF, cookie flags and page headers, a session stuck
//! between password and code, idle and absolute expiry, and `operator reset` / `remove` ending
//! sessions at once. The flows in a browser are in tests/browser/console.test.mjs.

mod common;

use common::*;
use fiber_link_core::totp;
use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Console {
    dir: std::path::PathBuf,
    db_url: String,
    hub_url: String,
    master: String,
    url: String,
    api_url: String,
    serve: Child,
}

impl Console {
    async fn start(s: &Stack, idle: u64, absolute: u64) -> Console {
        let dir = std::env::temp_dir().join(format!("fl-console-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (port, api_port, ops_port) = (free_port(), free_port(), free_port());
        std::fs::write(
            dir.join("fiber-link.toml"),
            format!(
                "currency = \"Fibd\"\nlisten = \"127.0.0.1:{api_port}\"\n[api]\nops_listen = \"127.0.0.1:{ops_port}\"\n\
                 [console]\nlisten = \"127.0.0.1:{port}\"\nidle_timeout_secs = {idle}\nabsolute_timeout_secs = {absolute}\n\
                 secure_cookies = false\n"
            ),
        )
        .unwrap();
        let mut c = Console {
            dir,
            db_url: s.db_url.clone(),
            hub_url: s.hub_url.clone(),
            master: s.master.to_hex(),
            url: format!("http://127.0.0.1:{port}"),
            api_url: format!("http://127.0.0.1:{api_port}"),
            serve: Command::new("true").spawn().unwrap(),
        };
        c.serve = c
            .command(&["serve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(c.dir.join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while reqwest::get(format!("{}/login", c.url)).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the console did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fiber-link"));
        c.args(args)
            .env("FIBER_LINK_CONFIG", self.dir.join("fiber-link.toml"))
            .env("DATABASE_URL", &self.db_url)
            .env("FIBER_LINK_MASTER_KEY", &self.master)
            .env("FIBER_LINK_HUB_URL", &self.hub_url)
            .env("USER", "root-shell")
            .env_remove("FIBER_LINK_CONSOLE_LISTEN");
        c
    }

    /// `fiber-link operator …`: stdout (the command must succeed).
    fn operator(&self, args: &[&str]) -> String {
        let mut all = vec!["operator"];
        all.extend_from_slice(args);
        let out = self.command(&all).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// A new operator; its password.
    fn add(&self, name: &str, role: &str) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.operator(&["add", name, "--role", role, "--json"])).unwrap();
        v["password"].as_str().unwrap().to_string()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A browser reduced to what the console needs: its cookies, no redirects followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: String,
    body: String,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            cookies: HashMap::new(),
        }
    }

    async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", cookie);
        if let Some(f) = form {
            r = r.form(f);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status,
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            body: res.text().await.unwrap(),
            set_cookies,
            headers,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(reqwest::Method::POST, path, Some(form)).await
    }

    /// The value of the first `name="…" value="…"` hidden input.
    fn field(body: &str, name: &str) -> String {
        let key = format!("name=\"{name}\" value=\"");
        let at = body
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            + key.len();
        body[at..].split('"').next().unwrap().to_string()
    }

    /// Password then code; the secret (enrolled now when `secret` is None).
    async fn login(&mut self, name: &str, password: &str, secret: Option<&str>) -> String {
        let p = self.get("/login").await;
        let csrf = Self::field(&p.body, "csrf");
        let p = self
            .post(
                "/login",
                &[("csrf", &csrf), ("username", name), ("password", password)],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let secret = match secret {
            Some(s) => {
                assert_eq!(p.location, "/login/code");
                s.to_string()
            }
            None => {
                assert_eq!(p.location, "/login/enrol");
                let e = self.get("/login/enrol").await;
                let at = e.body.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
                e.body[at..].split('<').next().unwrap().to_string()
            }
        };
        let page = self
            .get(if p.location == "/login/code" {
                "/login/code"
            } else {
                "/login/enrol"
            })
            .await;
        let csrf = Self::field(&page.body, "csrf");
        let step = fresh_step(&secret).await;
        let code = format!("{:06}", totp::code(&secret, step).unwrap());
        let p = self
            .post("/login/code", &[("csrf", &csrf), ("code", &code)])
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, "/"), "{}", p.body);
        secret
    }
}

fn now_step() -> u64 {
    totp::step_at(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

/// The current step, after waiting for a new one if less than 3 s of it are left (so the code
/// is still good when it arrives).
async fn fresh_step(_secret: &str) -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 30 >= 27 {
        tokio::time::sleep(Duration::from_secs(30 - secs % 30)).await;
    }
    now_step()
}

#[tokio::test]
async fn logging_in_takes_a_password_and_a_code_and_every_form_its_token() {
    let s = Stack::start().await;
    let c = Console::start(&s, 1800, 43200).await;
    let pw = c.add("ann", "admin");
    let mut b = Browser::new(&c.url);

    // nothing without a session; the console is not on the public API's port
    let p = b.get("/").await;
    assert_eq!((p.status, p.location.as_str()), (303, "/login"));
    let (api_login, _) = (
        reqwest::get(format!("{}/login", c.api_url))
            .await
            .unwrap()
            .status(),
        (),
    );
    assert_eq!(api_login, 404, "the public listener has no console");

    // the login form's token is a cookie and a field (double submit): without the cookie, refused
    let p = b.get("/login").await;
    let csrf = Browser::field(&p.body, "csrf");
    assert!(p.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(p.headers["x-frame-options"], "DENY");
    assert_eq!(p.headers["cache-control"], "no-store");
    let mut stranger = Browser::new(&c.url);
    let r = stranger
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "ann"), ("password", &pw)],
        )
        .await;
    assert_eq!(r.status, 403, "a login form posted from elsewhere");

    // a wrong password, then the right one: a session that only reaches the code page
    let r = b
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "ann"), ("password", "nope")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong name or password"));
    let r = b
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "ann"), ("password", &pw)],
        )
        .await;
    assert_eq!((r.status, r.location.as_str()), (303, "/login/enrol"));
    let cookie = r
        .set_cookies
        .iter()
        .find(|c| c.starts_with("fl_console="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "secure_cookies = false: {cookie}"
    );
    let half = b.cookies["fl_console"].clone();
    let p = b.get("/").await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/login/code"),
        "no page before the code"
    );
    let p = b.get("/withdrawals").await;
    assert_eq!(p.location, "/login/code");

    // enrol: the secret shown, a wrong code refused, the right one logs in under a new token
    let e = b.get("/login/enrol").await;
    assert!(e.body.contains("<svg"), "the QR code");
    let at = e.body.find("id=\"totp-secret\">").unwrap() + 17;
    let secret = e.body[at..].split('<').next().unwrap().to_string();
    assert!(
        b.get("/login/enrol").await.body.contains(&secret),
        "the same secret on a reload"
    );
    let csrf2 = Browser::field(&e.body, "csrf");
    let r = b
        .post("/login/code", &[("csrf", &csrf2), ("code", "000000x")])
        .await;
    assert_eq!(r.status, 401);
    let step = fresh_step(&secret).await;
    let code = format!("{:06}", totp::code(&secret, step).unwrap());
    let r = b.post("/login/code", &[("code", &code)]).await;
    assert_eq!(r.status, 403, "the code form without its token");
    let r = b
        .post("/login/code", &[("csrf", &csrf2), ("code", &code)])
        .await;
    assert_eq!((r.status, r.location.as_str()), (303, "/"), "{}", r.body);
    assert_ne!(
        b.cookies["fl_console"], half,
        "a new session token after the code"
    );
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("ann (admin)"));

    // the old (password-stage) token is worth nothing now
    let mut old = Browser::new(&c.url);
    old.cookies.insert("fl_console".into(), half);
    assert_eq!(old.get("/").await.location, "/login");

    // every form needs the session's token; a viewer's role is checked on the server
    let token = Browser::field(&home.body, "csrf");
    let r = b.post("/reconcile", &[("csrf", "wrong")]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("form token"));
    let apps_page = b.get("/apps").await;
    let once = Browser::field(&apps_page.body, "once");
    let form = [
        ("csrf", token.as_str()),
        ("once", once.as_str()),
        ("name", "Forum from the console"),
    ];
    let r = b.post("/apps", &form).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("id=\"new-secret\">fls_"),
        "the new app's secret, once"
    );
    // the same form again (a reload of the secret page): nothing is created twice
    let r = b.post("/apps", &form).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/apps"));
    assert!(b.get("/apps").await.body.contains("already sent"));
    let r = b
        .post("/apps", &[("csrf", &token), ("name", "no once")])
        .await;
    assert_eq!(
        r.status, 303,
        "a create form without its one-time value does nothing"
    );
    let made = s.store.list_apps().await.unwrap();
    assert_eq!(
        made.iter()
            .filter(|a| a.name == "Forum from the console")
            .count(),
        1
    );
    assert!(!made.iter().any(|a| a.name == "no once"));

    let vpw = c.add("vic", "viewer");
    let mut v = Browser::new(&c.url);
    v.login("vic", &vpw, None).await;
    let vt = Browser::field(&v.get("/").await.body, "csrf");
    let vonce = token_like();
    let r = v
        .post(
            "/apps",
            &[("csrf", &vt), ("once", &vonce), ("name", "not allowed")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("cannot"));
    let apps = s.store.list_apps().await.unwrap();
    assert!(!apps.iter().any(|a| a.name == "not allowed"));

    // the audit trail names the console's operator for what she did, and logins
    let trail = s
        .store
        .audit_trail(&fiber_link_store::ops::AuditFilter::Operator("ann".into()))
        .await
        .unwrap();
    let events: Vec<&str> = trail.iter().map(|r| r.event.as_str()).collect();
    assert!(events.contains(&"console.enrolled"), "{events:?}");
    assert!(events.contains(&"console.login_failed"), "{events:?}");
    assert!(events.contains(&"operator.app_created"), "{events:?}");

    // logout needs the token too, and ends the session
    let r = b.post("/logout", &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(b.get("/").await.status, 200, "still logged in");
    let r = b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(r.location, "/login");
    assert_eq!(b.get("/").await.location, "/login");
}

#[tokio::test]
async fn sessions_end_when_idle_when_old_and_when_the_account_is_reset_or_removed() {
    let s = Stack::start().await;
    // idle 3 s, absolute 8 s
    let c = Console::start(&s, 3, 8).await;
    let pw = c.add("ida", "admin");
    let mut b = Browser::new(&c.url);
    let secret = b.login("ida", &pw, None).await;

    // idle: 4 s without a request ends it, with a message on the login page
    tokio::time::sleep(Duration::from_secs(4)).await;
    let p = b.get("/").await;
    assert_eq!(p.location, "/login");
    assert!(b.get("/login").await.body.contains("session has expired"));

    // absolute: used every second, it still ends 8 s after the login
    let started = Instant::now();
    // a code is good once: wait for the next step
    let used = now_step();
    while now_step() == used {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.login("ida", &pw, Some(&secret)).await;
    let mut ended = None;
    while started.elapsed() < Duration::from_secs(40) {
        let p = b.get("/").await;
        if p.status != 200 {
            ended = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ended = ended.expect("the session never ended");
    assert!(
        ended >= Duration::from_secs(7),
        "ended too early: {ended:?}"
    );

    // reset: every session ends at once, the second factor must be enrolled again
    let used = now_step();
    while now_step() == used {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.login("ida", &pw, Some(&secret)).await;
    let out = c.operator(&["reset", "ida", "--json"]);
    let new_pw = serde_json::from_str::<serde_json::Value>(&out).unwrap()["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        b.get("/").await.location,
        "/login",
        "reset ended the session"
    );
    let mut again = Browser::new(&c.url);
    let p = again.get("/login").await;
    let csrf = Browser::field(&p.body, "csrf");
    let r = again
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "ida"), ("password", &pw)],
        )
        .await;
    assert_eq!(r.status, 401, "the old password is gone");
    let new_secret = again.login("ida", &new_pw, None).await;
    assert_ne!(new_secret, secret, "a new second factor is enrolled");

    // remove: the session ends, the name cannot log in
    c.operator(&["remove", "ida"]);
    assert_eq!(again.get("/").await.location, "/login");
    let list = c.operator(&["list", "--json"]);
    assert_eq!(list.trim(), "[]");
}

/// Guesses sent at once are counted before any is checked: no more than the limit are tried,
/// and the account is locked after them, the right password included.
#[tokio::test]
async fn guesses_sent_at_once_cannot_pass_the_throttle() {
    let s = Stack::start().await;
    let c = Console::start(&s, 1800, 43200).await;
    let pw = c.add("pat", "viewer");
    let mut guesses = Vec::new();
    for i in 0..12 {
        let url = c.url.clone();
        guesses.push(tokio::spawn(async move {
            let mut b = Browser::new(&url);
            let p = b.get("/login").await;
            let csrf = Browser::field(&p.body, "csrf");
            let wrong = format!("wrong-{i}");
            b.post(
                "/login",
                &[("csrf", &csrf), ("username", "pat"), ("password", &wrong)],
            )
            .await
            .status
        }));
    }
    let mut tried = 0;
    for g in guesses {
        match g.await.unwrap() {
            401 => tried += 1,
            429 => {}
            other => panic!("a guess answered {other}"),
        }
    }
    assert!(tried <= 5, "{tried} guesses were checked; the limit is 5");
    let mut b = Browser::new(&c.url);
    let p = b.get("/login").await;
    let csrf = Browser::field(&p.body, "csrf");
    let r = b
        .post(
            "/login",
            &[("csrf", &csrf), ("username", "pat"), ("password", &pw)],
        )
        .await;
    assert_eq!(r.status, 429, "locked, even for the right password");
    assert!(r.body.contains("Too many attempts"));
}

/// A well-formed one-time value (a viewer sees no create form to take one from).
fn token_like() -> String {
    "ab".repeat(32)
}
