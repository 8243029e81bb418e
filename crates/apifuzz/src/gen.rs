//! What to send: a target (a JSON-RPC method, `POST /tips`, a public page, a stray route) and a
//! mutation of a valid request (fields, envelope, bytes, headers, content type). Every request is
//! drawn from its own RNG, seeded from `--seed` and the request's number.

use fiber_link_client::SignedClient;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::Mutex;

/// The JSON-RPC methods of crates/api/src/rpc.rs `dispatch` (docs/api.md).
pub const METHODS: &[&str] = &[
    "tip.create",
    "tip.get",
    "tip.list",
    "tip.settled_feed",
    "balance.get",
    "dashboard.summary",
    "post.totals",
    "withdrawal.quote",
    "withdrawal.request",
    "withdrawal.get",
    "withdrawal.list",
    "withdrawal.cancel",
    "health.ping",
];

pub const TESTNET_FULL: &str = "ckt1qzda0cr08m85hc8jlnfp3zer7xulejywt49kt2rr0vthywaa50xwsqwgx292hnvmn68xf779vmzrshpmm6epn4c0cgwga";
pub const TESTNET_SHORT: &str = "ckt1qyqvsv5240xeh85wvnau2eky8pwrhh4jr8ts8vyj37";
const MAINNET: &str = "ckb1qzda0cr08m85hc8jlnfp3zer7xulejywt49kt2rr0vthywaa50xwsqdnnw7qkdnnclfkg59uzn8umtfd2kwxceqxwquc4";

/// Markup a pay page must never show unescaped (some of it ends up in accepted tips).
pub const MARKUP: &[&str] = &["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"];

/// Who signed a request, as far as the service should see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Correctly signed by this app: the request reaches the method.
    Valid(usize),
    /// Signed so that authentication must refuse it (the mutation's name).
    Broken(&'static str),
    /// Either answer is right (e.g. an upper-case signature, which hex decoding accepts).
    Ambiguous(usize),
    /// A public route: no authentication.
    Public,
}

pub struct App {
    pub id: String,
    pub client: SignedClient,
}

/// What the run has learned so far: ids, invoices, cursors, used nonces.
#[derive(Default)]
pub struct Known {
    pub tips: Vec<(String, usize)>,
    pub invoices: Vec<String>,
    pub cursors: Vec<String>,
    pub nonces: [VecDeque<String>; 2],
    /// Invoices of another node: valid withdrawal destinations.
    /// (invoice, asset, the amount that pays it exactly with the default 0.5 % Fiber fee)
    pub payee_invoices: Vec<(String, &'static str, &'static str)>,
}

pub struct World {
    pub apps: [App; 2],
    pub known: Mutex<Known>,
}

impl World {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tip_id(&self, rng: &mut StdRng) -> String {
        let k = self.known();
        if k.tips.is_empty() {
            return uuid::Uuid::new_v4().to_string();
        }
        k.tips[rng.gen_range(0..k.tips.len())].0.clone()
    }

    fn invoice(&self, rng: &mut StdRng) -> String {
        let k = self.known();
        if !k.payee_invoices.is_empty() && chance(rng, 0.5) {
            return k.payee_invoices[rng.gen_range(0..k.payee_invoices.len())]
                .0
                .clone();
        }
        if k.invoices.is_empty() {
            return "fibd1".into();
        }
        k.invoices[rng.gen_range(0..k.invoices.len())].clone()
    }

    fn cursor(&self, rng: &mut StdRng) -> Option<String> {
        let k = self.known();
        if k.cursors.is_empty() {
            return None;
        }
        Some(k.cursors[rng.gen_range(0..k.cursors.len())].clone())
    }

    fn used_nonce(&self, rng: &mut StdRng, app: usize) -> Option<String> {
        let k = self.known();
        let q = &k.nonces[app];
        if q.is_empty() {
            return None;
        }
        Some(q[rng.gen_range(0..q.len())].clone())
    }

    /// Remembers what an accepted answer taught (bounded).
    pub fn learn_tip(&self, id: &str, app: usize, invoice: Option<&str>) {
        let mut k = self.known();
        if k.tips.len() < 4096 {
            k.tips.push((id.to_string(), app));
        }
        if let Some(inv) = invoice {
            if k.invoices.len() < 512 {
                k.invoices.push(inv.to_string());
            }
        }
    }

    pub fn learn_cursor(&self, c: &str) {
        let mut k = self.known();
        if k.cursors.len() < 512 && !k.cursors.iter().any(|x| x == c) {
            k.cursors.push(c.to_string());
        }
    }

    pub fn learn_nonce(&self, app: usize, nonce: &str) {
        let mut k = self.known();
        let q = &mut k.nonces[app];
        if q.len() >= 2048 {
            q.pop_front();
        }
        q.push_back(nonce.to_string());
    }
}

/// One request, exactly as it is sent.
pub struct Plan {
    pub index: u64,
    /// For the counts: `POST /rpc tip.create`, `GET /pay/{id}`, ...
    pub target: String,
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// What was done to the valid request, in order.
    pub mutations: Vec<String>,
    /// The mutation's class, for the counts.
    pub class: &'static str,
    /// The header mutation's class (`-` for none).
    pub header_class: &'static str,
    pub auth: Auth,
    /// The nonce sent, when the request was correctly signed (to replay it later).
    pub nonce: Option<(usize, String)>,
    /// An event stream: read the status, then drop the connection.
    pub stream: bool,
}

fn pick<'a, T>(rng: &mut StdRng, v: &'a [T]) -> &'a T {
    &v[rng.gen_range(0..v.len())]
}

fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.gen_bool(p)
}

// ---------------------------------------------------------------- garbage

const STRINGS: &[&str] = &[
    "",
    " ",
    "a",
    "0",
    "-1",
    "1",
    "1.5",
    "01",
    ".5",
    "5.",
    "1e3",
    "1E-3",
    "+1",
    " 1",
    "1 ",
    "0x10",
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "true",
    "undefined",
    "٣",
    "１",
    "1.000000001",
    "1.00000000",
    "0.00000001",
    "0.000000001",
    "1000000",
    "1000000.00000001",
    "1000001",
    "99999999999999999999999999999999999999",
    "340282366920938463463374607431768211456",
    "18446744073709551616",
    "1,5",
    "1_000",
    "½",
    "😀",
    "\u{202e}desrever",
    "\u{0}",
    "a\u{0}b",
    "\t",
    "\n",
    "a\nb",
    "\r\n",
    "é",
    "e\u{301}",
    "\u{feff}",
    "\u{200b}",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "ＣＫＢ",
    "ckb",
    "CKB ",
    "C\u{200b}KB",
    "RUSD",
    "rusd",
    "'; DROP TABLE tip_intents;--",
    "\\",
    "\"",
    "%s%n%x",
    "../../etc/passwd",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "UNPAID",
    "SETTLED",
    "settled",
    "received",
    "sent",
    "RECEIVED",
    "ckb_address",
    "fiber_invoice",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "ckt1laf3m2",
    "ckt1qh92lp2",
    "ckb1laf3m2",
    "ckt1",
    "ckt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    TESTNET_SHORT,
    TESTNET_FULL,
    MAINNET,
    "fibd1",
    "fibt1",
    "fibb1",
    "fibd1000000001pcsaug",
    "AAAA",
    "eyJ0IjoxfQ",
    "!!!",
    "tip.create",
    "health.ping",
    "2.0",
];

fn long_string(rng: &mut StdRng) -> String {
    let unit = *pick(rng, &["x", "é", "😀", "\u{301}", "ab", " "]);
    let n = *pick(
        rng,
        &[
            127usize, 128, 129, 200, 279, 280, 281, 500, 1000, 4096, 20000, 70000,
        ],
    );
    let n = if unit.len() > 1 && n > 20000 {
        n / unit.len()
    } else {
        n
    };
    unit.repeat(n)
}

fn random_unicode(rng: &mut StdRng) -> String {
    let len = rng.gen_range(1..40);
    (0..len)
        .map(|_| {
            let ranges: &[(u32, u32)] = &[
                (0x20, 0x7e),
                (0xa0, 0x2ff),
                (0x300, 0x36f),
                (0x590, 0x6ff),
                (0x200b, 0x202e),
                (0x4e00, 0x4fff),
                (0xfff0, 0xfffd),
                (0x1f300, 0x1f64f),
                (0x1, 0x1f),
            ];
            let (a, b) = *pick(rng, ranges);
            char::from_u32(rng.gen_range(a..=b)).unwrap_or('?')
        })
        .collect()
}

fn uuid_variant(rng: &mut StdRng, world: &World) -> String {
    let id = if chance(rng, 0.6) {
        world.tip_id(rng)
    } else {
        uuid::Uuid::from_u128(rng.gen()).to_string()
    };
    match rng.gen_range(0..9) {
        0 => id.to_uppercase(),
        1 => id.replace('-', ""),
        2 => format!("{{{id}}}"),
        3 => format!("urn:uuid:{id}"),
        4 => format!(" {id}"),
        5 => id[..id.len() - 1].to_string(),
        6 => format!("{id}0"),
        7 => id.replacen('-', "_", 1),
        _ => id,
    }
}

fn flip_char(rng: &mut StdRng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.is_empty() {
        return "x".into();
    }
    let i = rng.gen_range(0..c.len());
    c[i] = *pick(rng, &['q', 'Q', '0', '1', 'z', '-', 'é', '\u{0}']);
    c.into_iter().collect()
}

pub fn garbage_string(rng: &mut StdRng, world: &World) -> String {
    match rng.gen_range(0..12) {
        0..=3 => pick(rng, STRINGS).to_string(),
        4 => long_string(rng),
        5 => random_unicode(rng),
        6 => uuid_variant(rng, world),
        7 => {
            let inv = world.invoice(rng);
            match rng.gen_range(0..4) {
                0 => inv,
                1 => inv[..rng.gen_range(0..inv.len().max(1))].to_string(),
                2 => flip_char(rng, &inv),
                _ => inv.to_uppercase(),
            }
        }
        8 => {
            let a = *pick(rng, &[TESTNET_FULL, TESTNET_SHORT, MAINNET]);
            match rng.gen_range(0..3) {
                0 => a[..rng.gen_range(0..a.len())].to_string(),
                1 => flip_char(rng, a),
                _ => a.to_uppercase(),
            }
        }
        9 => match world.cursor(rng) {
            Some(c) => match rng.gen_range(0..3) {
                0 => flip_char(rng, &c),
                1 => format!("{c}{c}"),
                _ => c[..rng.gen_range(0..c.len().max(1))].to_string(),
            },
            None => "AAAA".into(),
        },
        10 => format!("{}", rng.gen::<i64>()),
        _ => format!("{}.{}", rng.gen::<u32>(), rng.gen::<u32>()),
    }
}

/// A piece of a request: a JSON value, or raw text a `Value` cannot hold (invalid or deep JSON).
pub enum Piece {
    V(Value),
    Raw(String, &'static str),
}

fn raw_piece(rng: &mut StdRng) -> (String, &'static str) {
    match rng.gen_range(0..6) {
        0 => {
            let d = *pick(
                rng,
                &[32usize, 100, 126, 127, 128, 129, 200, 1000, 5000, 40000],
            );
            (format!("{}{}", "[".repeat(d), "]".repeat(d)), "deep_array")
        }
        1 => {
            let d = *pick(rng, &[64usize, 127, 128, 129, 1000, 10000]);
            (
                format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d)),
                "deep_object",
            )
        }
        2 => (
            pick(
                rng,
                &[
                    "1e999",
                    "-1e999",
                    "123456789012345678901234567890",
                    "-123456789012345678901234567890",
                    "1.7976931348623157e309",
                    "4.9e-330",
                    "18446744073709551616",
                    "18446744073709551615",
                    "-9223372036854775809",
                    "0.1e1",
                    "1E400",
                ],
            )
            .to_string(),
            "big_number",
        ),
        3 => (
            pick(
                rng,
                &[
                    "\"\\ud800\"",
                    "\"\\udc00x\"",
                    "\"\\ud83d\\ude00\"",
                    "\"\\u0000\"",
                    "\"\\x41\"",
                    "\"\\q\"",
                    "\"tab\there\"",
                    "\"nl\nhere\"",
                    "\"\\uD800\\uD800\"",
                ],
            )
            .to_string(),
            "escape",
        ),
        4 => (
            pick(
                rng,
                &[
                    "NaN",
                    "Infinity",
                    "-Infinity",
                    "undefined",
                    "'single'",
                    "01",
                    ".5",
                    "+1",
                    "0x10",
                    "true1",
                    "nul",
                    "-",
                    "[1,]",
                    "{\"a\":1,}",
                    "[1 2]",
                    "{\"a\" 1}",
                    "{a:1}",
                    "\"unterminated",
                    "/* c */1",
                ],
            )
            .to_string(),
            "invalid_literal",
        ),
        _ => {
            // duplicate keys in an object
            let k = *pick(rng, &["a", "tip_id", "amount", "kind", "user_id"]);
            (format!("{{\"{k}\":1,\"{k}\":\"x\"}}"), "duplicate_keys")
        }
    }
}

pub fn garbage(rng: &mut StdRng, world: &World, depth: u32) -> Piece {
    let pick_n = if depth > 2 {
        rng.gen_range(0..5)
    } else {
        rng.gen_range(0..9)
    };
    Piece::V(match pick_n {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => json!(*pick(
            rng,
            &[
                0i64,
                -1,
                1,
                2,
                100,
                101,
                500,
                501,
                i64::MAX,
                i64::MIN,
                9007199254740993,
                -9007199254740993
            ]
        )),
        3 => {
            if chance(rng, 0.5) {
                json!(*pick(rng, &[u64::MAX, 1u64 << 63, 4294967296]))
            } else {
                json!(*pick(rng, &[0.5f64, 1.5, -0.0, 1e308, -1e308, 1e-300, 3.0]))
            }
        }
        4 => Value::String(garbage_string(rng, world)),
        5 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| match garbage(rng, world, depth + 1) {
                    Piece::V(v) => v,
                    Piece::Raw(..) => Value::Null,
                })
                .collect(),
        ),
        6 => {
            let mut m = Map::new();
            for _ in 0..rng.gen_range(0..4) {
                let k = garbage_key(rng);
                if let Piece::V(v) = garbage(rng, world, depth + 1) {
                    m.insert(k, v);
                }
            }
            Value::Object(m)
        }
        7 => {
            let (s, _) = raw_piece(rng);
            return Piece::Raw(s, "raw");
        }
        _ => Value::String(garbage_string(rng, world)),
    })
}

fn garbage_key(rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 => pick(
            rng,
            &[
                "",
                "__proto__",
                "constructor",
                "jsonrpc",
                "id",
                "method",
                "params",
                "tip_id",
                "amount",
                "user_id",
                "app_id",
                "kind",
                "address",
                "invoice",
                "idempotency_key",
                "include_events",
                "limit",
                "cursor",
                "after",
                "state",
                "direction",
                "destination",
                "withdrawal_id",
                "Amount",
                "AMOUNT",
                "amount ",
                "😀",
            ],
        )
        .to_string(),
        1 => "k".repeat(rng.gen_range(1..300)),
        _ => random_unicode(rng),
    }
}

// ---------------------------------------------------------------- valid requests

fn user(rng: &mut StdRng, role: &str) -> Value {
    if chance(rng, 0.15) {
        json!(rng.gen_range(0u64..50))
    } else {
        Value::String(format!("{role}-{}", rng.gen_range(0..20)))
    }
}

fn destination(rng: &mut StdRng, world: &World) -> Value {
    if chance(rng, 0.5) {
        json!({"kind": "ckb_address", "address": if chance(rng, 0.5) { TESTNET_FULL } else { TESTNET_SHORT }})
    } else {
        json!({"kind": "fiber_invoice", "invoice": world.invoice(rng)})
    }
}

fn asset(rng: &mut StdRng) -> &'static str {
    if chance(rng, 0.8) {
        "CKB"
    } else {
        "RUSD"
    }
}

/// Valid params of `method`, with the ids the run knows.
pub fn valid_params(rng: &mut StdRng, world: &World, method: &str) -> Value {
    let mut p = Map::new();
    let mut put = |k: &str, v: Value| {
        p.insert(k.to_string(), v);
    };
    match method {
        "tip.create" => {
            put(
                "post_id",
                if chance(rng, 0.2) {
                    json!(rng.gen_range(1u64..1000))
                } else {
                    json!(format!("post-{}", rng.gen_range(0..100)))
                },
            );
            put("from_user_id", user(rng, "reader"));
            put("to_user_id", user(rng, "author"));
            put("asset", json!(asset(rng)));
            put(
                "amount",
                json!(*pick(rng, &["1", "1.5", "0.000001", "100", "2.25", "10"])),
            );
            if chance(rng, 0.3) {
                put("message", json!(*pick(rng, &["thanks!", "great post", ""])));
            }
            if chance(rng, 0.4) {
                put(
                    "idempotency_key",
                    json!(format!("k-{}", rng.gen_range(0..300))),
                );
            }
        }
        "tip.get" => {
            put("tip_id", json!(world.tip_id(rng)));
            if chance(rng, 0.5) {
                put("include_events", json!(rng.gen::<bool>()));
            }
        }
        "tip.list" => {
            put("user_id", user(rng, "author"));
            put(
                "direction",
                json!(if chance(rng, 0.5) { "received" } else { "sent" }),
            );
            if chance(rng, 0.3) {
                put(
                    "state",
                    json!(*pick(
                        rng,
                        &["UNPAID", "PENDING", "SETTLED", "EXPIRED", "FAILED"]
                    )),
                );
            }
            if chance(rng, 0.3) {
                if let Some(c) = world.cursor(rng) {
                    put("cursor", json!(c));
                }
            }
            if chance(rng, 0.5) {
                put("limit", json!(rng.gen_range(1u64..=100)));
            }
        }
        "tip.settled_feed" => {
            if chance(rng, 0.3) {
                if let Some(c) = world.cursor(rng) {
                    put("after", json!(c));
                }
            }
            if chance(rng, 0.5) {
                put("limit", json!(rng.gen_range(1u64..=500)));
            }
        }
        "balance.get" | "dashboard.summary" => put("user_id", user(rng, "author")),
        "post.totals" => {
            let n = *pick(rng, &[0usize, 1, 5, 20, 200]);
            let ids: Vec<Value> = (0..n)
                .map(|_| {
                    if chance(rng, 0.2) {
                        json!(rng.gen_range(1u64..1000))
                    } else {
                        json!(format!("post-{}", rng.gen_range(0..100)))
                    }
                })
                .collect();
            put("post_ids", json!(ids));
        }
        "withdrawal.quote" | "withdrawal.request" => {
            put("user_id", user(rng, "author"));
            let payee = {
                let k = world.known();
                if !k.payee_invoices.is_empty() && chance(rng, 0.5) {
                    Some(k.payee_invoices[rng.gen_range(0..k.payee_invoices.len())].clone())
                } else {
                    None
                }
            };
            let (a, amount, dest) = match payee {
                // another node's invoice with the amount that pays it: gets to the balance
                Some((inv, a, amount)) => {
                    (a, amount, json!({"kind": "fiber_invoice", "invoice": inv}))
                }
                None => (
                    asset(rng),
                    *pick(rng, &["100", "61.5", "1", "0.5", "1000"]),
                    destination(rng, world),
                ),
            };
            put("asset", json!(a));
            if method == "withdrawal.request" || chance(rng, 0.7) {
                put("amount", json!(amount));
            }
            put("destination", dest);
            if method == "withdrawal.request" {
                put("idempotency_key", json!(format!("w-{}", rng.gen::<u32>())));
            }
        }
        "withdrawal.get" | "withdrawal.cancel" => put(
            "withdrawal_id",
            json!(uuid::Uuid::from_u128(rng.gen()).to_string()),
        ),
        "withdrawal.list" => {
            put("user_id", user(rng, "author"));
            if chance(rng, 0.3) {
                if let Some(c) = world.cursor(rng) {
                    put("cursor", json!(c));
                }
            }
            if chance(rng, 0.5) {
                put("limit", json!(rng.gen_range(1u64..=100)));
            }
        }
        _ => {}
    }
    Value::Object(p)
}

// ---------------------------------------------------------------- structural mutations

#[derive(Clone, Debug)]
enum Key {
    F(String),
    I(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Key>, out: &mut Vec<Vec<Key>>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(Key::F(k.clone()));
                out.push(prefix.clone());
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate().take(8) {
                prefix.push(Key::I(i));
                out.push(prefix.clone());
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Key]) -> Option<&'a mut Value> {
    let mut cur = v;
    for k in path {
        cur = match (k, cur) {
            (Key::F(f), Value::Object(m)) => m.get_mut(f)?,
            (Key::I(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn show(path: &[Key]) -> String {
    let mut s = String::new();
    for k in path {
        match k {
            Key::F(f) => {
                if !s.is_empty() {
                    s.push('.');
                }
                let f: String = f.chars().take(24).collect();
                s.push_str(&f);
            }
            Key::I(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        "<root>".into()
    } else {
        s
    }
}

/// A body being built: a value with raw pieces to splice in at serialization.
struct Draft {
    v: Value,
    raws: Vec<String>,
}

impl Draft {
    fn put(&mut self, piece: Piece) -> Value {
        match piece {
            Piece::V(v) => v,
            Piece::Raw(s, _) => {
                let ph = format!("\u{1}RAW{}\u{1}", self.raws.len());
                self.raws.push(s);
                Value::String(ph)
            }
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut s = serde_json::to_string(&self.v).unwrap_or_default();
        for (i, r) in self.raws.iter().enumerate() {
            let ph = format!("\"\\u0001RAW{i}\\u0001\"");
            s = s.replacen(&ph, r, 1);
        }
        s.into_bytes()
    }
}

fn describe(p: &Piece) -> String {
    match p {
        Piece::V(v) => {
            let t = match v {
                Value::Null => "null",
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(s) if s.len() > 1000 => "long string",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            let mut s = v.to_string();
            if s.len() > 60 {
                s = format!(
                    "{}…({} bytes)",
                    s.chars().take(40).collect::<String>(),
                    s.len()
                );
            }
            format!("{t} {s}")
        }
        Piece::Raw(r, what) => format!(
            "raw {what} {}",
            if r.len() > 60 {
                format!(
                    "{}…({} bytes)",
                    r.chars().take(40).collect::<String>(),
                    r.len()
                )
            } else {
                r.clone()
            }
        ),
    }
}

/// One structural change to the request; returns its description.
fn mutate_once(
    rng: &mut StdRng,
    world: &World,
    d: &mut Draft,
    rpc: bool,
    method: &str,
) -> (String, &'static str) {
    let mut all = Vec::new();
    paths(&d.v, &mut Vec::new(), &mut all);
    // prefer the params' own fields
    let in_params: Vec<Vec<Key>> = all
        .iter()
        .filter(|p| !rpc || matches!(p.first(), Some(Key::F(f)) if f == "params") && p.len() > 1)
        .cloned()
        .collect();
    let choose = |rng: &mut StdRng| -> Option<Vec<Key>> {
        if !in_params.is_empty() && chance(rng, 0.8) {
            Some(pick(rng, &in_params).clone())
        } else if !all.is_empty() {
            Some(pick(rng, &all).clone())
        } else {
            None
        }
    };
    let op = rng.gen_range(0..100);
    match op {
        // a field := garbage of any type
        0..=39 => {
            let Some(path) = choose(rng) else {
                return ("nothing to replace".into(), "field");
            };
            let g = garbage(rng, world, 0);
            let desc = format!("{} := {}", show(&path), describe(&g));
            let v = d.put(g);
            if let Some(slot) = get_mut(&mut d.v, &path) {
                *slot = v;
            }
            (desc, "field")
        }
        // a field removed
        40..=49 => {
            let Some(path) = choose(rng) else {
                return ("nothing to remove".into(), "missing");
            };
            let (last, parent) = path.split_last().expect("non-empty path");
            if let Some(parent) = get_mut(&mut d.v, parent) {
                match (parent, last) {
                    (Value::Object(m), Key::F(f)) => {
                        m.remove(f);
                    }
                    (Value::Array(a), Key::I(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
            (format!("{} removed", show(&path)), "missing")
        }
        // an extra field
        50..=59 => {
            let target: Vec<Key> = if rpc && chance(rng, 0.7) {
                vec![Key::F("params".into())]
            } else {
                vec![]
            };
            let k = garbage_key(rng);
            let g = garbage(rng, world, 1);
            let desc = format!("extra {}.{:?} = {}", show(&target), k, describe(&g));
            let v = d.put(g);
            if let Some(Value::Object(m)) = get_mut(&mut d.v, &target) {
                m.insert(k, v);
            }
            (desc, "extra")
        }
        // numbers as strings and back
        60..=69 => {
            let Some(path) = choose(rng) else {
                return ("nothing to convert".into(), "numstr");
            };
            let mut desc = format!("{} unchanged", show(&path));
            if let Some(slot) = get_mut(&mut d.v, &path) {
                let new = match slot.clone() {
                    Value::String(s) => match s.parse::<f64>() {
                        Ok(f) if s.contains('.') => Some(json!(f)),
                        Ok(_) => s.parse::<i128>().ok().map(|i| {
                            serde_json::from_str::<Value>(&i.to_string()).unwrap_or(json!(0))
                        }),
                        Err(_) => Some(json!(s.len())),
                    },
                    Value::Number(n) => Some(Value::String(n.to_string())),
                    Value::Bool(b) => Some(Value::String(b.to_string())),
                    Value::Null => Some(Value::String("null".into())),
                    v @ (Value::Array(_) | Value::Object(_)) => Some(Value::String(v.to_string())),
                };
                if let Some(n) = new {
                    desc = format!("{}: {} -> {}", show(&path), slot, n);
                    *slot = n;
                }
            }
            (desc, "numstr")
        }
        // unicode look-alikes and case of a string
        70..=74 => {
            let Some(path) = choose(rng) else {
                return ("nothing".into(), "unicode");
            };
            let mut desc = format!("{} unchanged", show(&path));
            if let Some(Value::String(s)) = get_mut(&mut d.v, &path) {
                let n = match rng.gen_range(0..6) {
                    0 => s.to_uppercase(),
                    1 => s.to_lowercase(),
                    2 => format!("{s}\u{200b}"),
                    3 => format!("\u{feff}{s}"),
                    4 => s
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() {
                                char::from_u32(c as u32 + 0xfee0).unwrap_or(c)
                            } else {
                                c
                            }
                        })
                        .collect(),
                    _ => format!("{s}{}", random_unicode(rng)),
                };
                desc = format!("{}: unicode variant {:?}", show(&path), n);
                *s = n;
            }
            (desc, "unicode")
        }
        // the envelope
        75..=87 if rpc => {
            let Value::Object(m) = &mut d.v else {
                return ("no envelope".into(), "envelope");
            };
            let desc = match rng.gen_range(0..9) {
                0 => {
                    let v = pick(
                        rng,
                        &[
                            json!("1.0"),
                            json!(2.0),
                            json!("2"),
                            json!("2.0 "),
                            Value::Null,
                            json!(["2.0"]),
                        ],
                    )
                    .clone();
                    let s = format!("jsonrpc := {v}");
                    m.insert("jsonrpc".into(), v);
                    s
                }
                1 => {
                    m.remove("jsonrpc");
                    "jsonrpc removed".into()
                }
                2 => {
                    let v = pick(
                        rng,
                        &[
                            Value::Null,
                            json!(true),
                            json!({"a": 1}),
                            json!([1]),
                            json!(1.5),
                            json!(-1),
                            json!(u64::MAX),
                            json!("x".repeat(10000)),
                            json!(""),
                        ],
                    )
                    .clone();
                    let s = format!("id := {}", describe(&Piece::V(v.clone())));
                    m.insert("id".into(), v);
                    s
                }
                3 => {
                    m.remove("id");
                    "id removed".into()
                }
                4 => {
                    let other = *pick(rng, METHODS);
                    m.insert("method".into(), json!(other));
                    format!("method := {other} (params of {method})")
                }
                5 => {
                    let v = json!(*pick(
                        rng,
                        &[
                            "tip.Create",
                            "TIP.CREATE",
                            "tip.create ",
                            "tip",
                            "",
                            "rpc.discover",
                            "tip.delete",
                            "__proto__",
                            "health.ping\u{0}",
                            "withdrawal.approve",
                            "app.create"
                        ]
                    ));
                    let s = format!("method := {v}");
                    m.insert("method".into(), v);
                    s
                }
                6 => {
                    let v =
                        pick(rng, &[json!(1), Value::Null, json!(["tip.get"]), json!({})]).clone();
                    let s = format!("method := {v}");
                    m.insert("method".into(), v);
                    s
                }
                7 => {
                    let p = m.remove("params").unwrap_or(Value::Null);
                    let v = pick(
                        rng,
                        &[
                            json!([p.clone()]),
                            json!([]),
                            json!("params"),
                            json!(1),
                            Value::Null,
                            json!(true),
                            json!({}),
                        ],
                    )
                    .clone();
                    let s = format!("params := {}", describe(&Piece::V(v.clone())));
                    m.insert("params".into(), v);
                    s
                }
                _ => {
                    m.remove("params");
                    "params removed".into()
                }
            };
            (desc, "envelope")
        }
        // params of another method
        75..=87 => {
            let other = *pick(rng, METHODS);
            d.v = valid_params(rng, world, other);
            (format!("body := params of {other}"), "envelope")
        }
        // a batch
        88..=91 if rpc => {
            let one = d.v.clone();
            d.v = match rng.gen_range(0..4) {
                0 => json!([one]),
                1 => json!([one.clone(), one]),
                2 => json!([]),
                _ => json!([[one]]),
            };
            ("wrapped in a batch array".into(), "batch")
        }
        // the whole body := garbage
        _ => {
            let g = garbage(rng, world, 0);
            let desc = format!("body := {}", describe(&g));
            d.v = d.put(g);
            (desc, "body")
        }
    }
}

// ---------------------------------------------------------------- byte mutations

fn mutate_bytes(rng: &mut StdRng, b: &mut Vec<u8>) -> String {
    match rng.gen_range(0..12) {
        0 => {
            let n = rng.gen_range(0..b.len().max(1));
            b.truncate(n);
            format!("truncated to {n} bytes")
        }
        1 => {
            let k = rng.gen_range(1..6);
            for _ in 0..k {
                if !b.is_empty() {
                    let i = rng.gen_range(0..b.len());
                    b[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            format!("{k} bit(s) flipped")
        }
        2 => {
            let i = rng.gen_range(0..=b.len());
            let ins: Vec<u8> = (0..rng.gen_range(1..8)).map(|_| rng.gen()).collect();
            let s = format!("inserted {} at {i}", hex::encode(&ins));
            b.splice(i..i, ins);
            s
        }
        3 => {
            if !b.is_empty() {
                let i = rng.gen_range(0..b.len());
                let j = (i + rng.gen_range(1..10)).min(b.len());
                b.drain(i..j);
            }
            "bytes deleted".into()
        }
        4 => {
            b.splice(0..0, [0xef, 0xbb, 0xbf]);
            "UTF-8 BOM prefix".into()
        }
        5 => {
            let n = *pick(rng, &[1usize, 100, 65536]);
            let ws = *pick(rng, &[b" ", b"\n", b"\t", b"\r"]);
            let pad = ws.repeat(n);
            if chance(rng, 0.5) {
                b.splice(0..0, pad);
            } else {
                b.extend_from_slice(&pad);
            }
            format!("{n} whitespace bytes added")
        }
        6 => {
            let n = *pick(rng, &[0usize, 1, 16, 512, 4096]);
            *b = (0..n).map(|_| rng.gen()).collect();
            format!("{n} random bytes")
        }
        7 => {
            let s = String::from_utf8_lossy(b).to_string();
            let mut out = vec![0xff, 0xfe];
            for u in s.encode_utf16() {
                out.extend_from_slice(&u.to_le_bytes());
            }
            *b = out;
            "UTF-16LE".into()
        }
        8 => {
            // an invalid UTF-8 sequence inside a string
            if let Some(i) = b.iter().position(|&c| c == b'"') {
                let bad = pick(
                    rng,
                    &[
                        &[0xc3u8, 0x28][..],
                        &[0xa0, 0xa1],
                        &[0xe2, 0x28, 0xa1],
                        &[0xf0, 0x28, 0x8c, 0xbc],
                        &[0xed, 0xa0, 0x80],
                        &[0xc0, 0xaf],
                        &[0x00],
                    ],
                )
                .to_vec();
                b.splice(i + 1..i + 1, bad);
            }
            "invalid UTF-8 in a string".into()
        }
        9 => {
            let v = *pick(
                rng,
                &[
                    &b""[..],
                    b"null",
                    b"[]",
                    b"{}",
                    b"\"str\"",
                    b"1",
                    b"true",
                    b"{\"jsonrpc\":\"2.0\"}",
                    b"[{}]",
                    b"\x00",
                ],
            );
            *b = v.to_vec();
            format!("body := {:?}", String::from_utf8_lossy(v))
        }
        10 => {
            let extra = rng.gen_range(1..200);
            let n = 64 * 1024 + extra - 100;
            let mut s = b.clone();
            s.resize(n.max(s.len()), b' ');
            *b = s;
            format!("padded to {n} bytes (around the 64 KiB limit)")
        }
        _ => {
            let i = rng.gen_range(0..=b.len());
            let s = (*pick(rng, &[&b"}"[..], b"]", b",", b"\"", b":", b"{", b"\\"])).to_vec();
            let d = format!("{:?} inserted at {i}", String::from_utf8_lossy(&s));
            b.splice(i..i, s);
            d
        }
    }
}

// ---------------------------------------------------------------- headers

/// The signed headers of `body` for `app`, with `ts` and `nonce`.
fn signed(world: &World, app: usize, ts: i64, nonce: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    world.apps[app]
        .client
        .headers(ts, nonce, body)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_bytes()))
        .collect()
}

fn set(h: &mut [(String, Vec<u8>)], name: &str, v: Vec<u8>) {
    for (k, val) in h.iter_mut() {
        if k == name {
            *val = v;
            return;
        }
    }
}

fn get(h: &[(String, Vec<u8>)], name: &str) -> Vec<u8> {
    h.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

const AUTH_HEADERS: &[&str] = &["x-app-id", "x-ts", "x-nonce", "x-signature"];

/// A header value that differs from `valid` and is malformed for `name`.
fn bad_value(rng: &mut StdRng, name: &str, valid: &[u8]) -> (Vec<u8>, &'static str) {
    let r = rng.gen_range(0..4);
    if r == 0 {
        // non-ASCII (obs-text) bytes
        let mut v = valid.to_vec();
        let i = rng.gen_range(0..=v.len());
        let ins = *pick::<&[u8]>(rng, &[&[0xc3u8, 0xa9][..], &[0xff], &[0x80, 0x80]]);
        v.splice(i..i, ins.iter().copied());
        return (v, "non_ascii");
    }
    if r == 1 {
        let n = *pick(rng, &[200usize, 4096, 16384, 60000]);
        return (vec![b'a'; n], "overlong");
    }
    let v: Vec<u8> = match name {
        "x-app-id" => pick(
            rng,
            &[
                &b""[..],
                b"app_",
                b"app_0000000000000000000000000",
                b"app_00000000000000000000000",
                b"APP_000000000000000000000000",
                b"app_00000000000000000000000G",
                b"app_000000000000000000000000 ",
                b" app_000000000000000000000000",
                b"app_ABCDEF000000000000000000",
                b"app_*",
                b"../app",
            ],
        )
        .to_vec(),
        "x-ts" => pick(
            rng,
            &[
                &b""[..],
                b"abc",
                b"-5",
                b"1.5",
                b" 1767225600",
                b"0x10",
                b"1767225600000",
                b"+1767225600",
                b"1e9",
                b"99999999999999999999",
                b"NaN",
            ],
        )
        .to_vec(),
        "x-nonce" => pick(
            rng,
            &[
                &b""[..],
                b"short",
                b"1234567",
                b"has space x",
                b"dots.are.bad",
                b"slash/bad/bad",
                b"plus+bad+bad",
                b"percent%20bad",
                b"quote\"quote\"",
            ],
        )
        .to_vec(),
        _ => {
            let s = String::from_utf8_lossy(valid).to_string();
            match rng.gen_range(0..6) {
                0 => s.as_bytes()[..63.min(s.len())].to_vec(),
                1 => format!("{s}0").into_bytes(),
                2 => format!("0x{}", &s[..62.min(s.len())]).into_bytes(),
                3 => "g".repeat(64).into_bytes(),
                4 => "0".repeat(64).into_bytes(),
                _ => format!("sha256={s}").into_bytes(),
            }
        }
    };
    let v = if v == valid { b"zz".to_vec() } else { v };
    (v, "malformed")
}

/// Applies a header mutation to the signed headers; returns the auth expectation.
fn mutate_headers(
    rng: &mut StdRng,
    world: &World,
    app: usize,
    h: &mut Vec<(String, Vec<u8>)>,
    body: &[u8],
    now: i64,
    descs: &mut Vec<String>,
) -> (Auth, &'static str) {
    let other = 1 - app;
    match rng.gen_range(0..100) {
        0..=11 => {
            let name = *pick(rng, AUTH_HEADERS);
            if chance(rng, 0.2) {
                h.clear();
                descs.push("all auth headers removed".into());
            } else {
                h.retain(|(k, _)| k != name);
                descs.push(format!("{name} removed"));
            }
            (Auth::Broken("missing_header"), "missing")
        }
        12..=23 => {
            let name = *pick(rng, AUTH_HEADERS);
            let valid = get(h, name);
            let (bad, class) = bad_value(rng, name, &valid);
            descs.push(format!(
                "{name} := {} ({class}, {} bytes)",
                String::from_utf8_lossy(&bad[..bad.len().min(40)]),
                bad.len()
            ));
            set(h, name, bad);
            (Auth::Broken("malformed_header"), class)
        }
        24..=33 => {
            // duplicated header: the service reads the first value
            let name = *pick(rng, AUTH_HEADERS);
            let valid = get(h, name);
            let (bad, _) = bad_value(rng, name, &valid);
            let bad_first = chance(rng, 0.5);
            let pos = h.iter().position(|(k, _)| k == name).unwrap_or(0);
            if bad_first {
                h.insert(pos, (name.to_string(), bad));
                descs.push(format!("{name} duplicated, malformed value first"));
                (Auth::Broken("duplicate_bad_first"), "duplicate")
            } else {
                h.insert(pos + 1, (name.to_string(), bad));
                descs.push(format!("{name} duplicated, valid value first"));
                (Auth::Valid(app), "duplicate")
            }
        }
        34..=43 => {
            // 30 s of margin over the ±300 s window: a request may wait a moment before the
            // service reads its clock
            let delta = rng.gen_range(330..100_000_000i64);
            let (ts, what) = if chance(rng, 0.5) {
                (now - delta, "stale")
            } else {
                (now + delta, "future")
            };
            let ts = ts.max(0);
            let nonce = get(h, "x-nonce");
            *h = signed(world, app, ts, &String::from_utf8_lossy(&nonce), body);
            descs.push(format!("{what} x-ts {ts} (now {now}), validly signed"));
            (Auth::Broken("timestamp"), "timestamp")
        }
        44..=53 => match world.used_nonce(rng, app) {
            Some(n) => {
                *h = signed(world, app, now, &n, body);
                descs.push(format!("reused nonce {n}, validly signed"));
                (Auth::Broken("replayed_nonce"), "replay")
            }
            None => (Auth::Valid(app), "-"),
        },
        54..=63 => {
            let ts = get(h, "x-ts");
            let nonce = get(h, "x-nonce");
            match rng.gen_range(0..3) {
                0 => {
                    let id = format!("app_{}", hex::encode(rng.gen::<[u8; 12]>()));
                    descs.push(format!("x-app-id := unknown app {id}"));
                    set(h, "x-app-id", id.into_bytes());
                }
                1 => {
                    descs.push("x-app-id := the other app (signed with this app's secret)".into());
                    set(h, "x-app-id", world.apps[other].id.clone().into_bytes());
                }
                _ => {
                    // signed by the other app, sent with this app's id
                    let ts: i64 = String::from_utf8_lossy(&ts).parse().unwrap_or(now);
                    let o = signed(world, other, ts, &String::from_utf8_lossy(&nonce), body);
                    set(h, "x-signature", get(&o, "x-signature"));
                    descs.push("x-signature by the other app's secret".into());
                }
            }
            (Auth::Broken("wrong_app"), "wrong_app")
        }
        64..=73 => {
            // a valid signature of something else
            let ts = String::from_utf8_lossy(&get(h, "x-ts")).to_string();
            let nonce = String::from_utf8_lossy(&get(h, "x-nonce")).to_string();
            let tsn: i64 = ts.parse().unwrap_or(now);
            let (sig_of, d) = match rng.gen_range(0..3) {
                0 => {
                    let mut other_body = body.to_vec();
                    other_body.push(b' ');
                    (
                        signed(world, app, tsn, &nonce, &other_body),
                        "signature of the body plus a space",
                    )
                }
                1 => (
                    signed(world, app, tsn + 1, &nonce, body),
                    "signature with x-ts + 1",
                ),
                _ => (
                    signed(world, app, tsn, &format!("{nonce}x"), body),
                    "signature with another nonce",
                ),
            };
            set(h, "x-signature", get(&sig_of, "x-signature"));
            descs.push(d.into());
            (Auth::Broken("bad_signature"), "bad_signature")
        }
        74..=77 => {
            let s = String::from_utf8_lossy(&get(h, "x-signature")).to_uppercase();
            set(h, "x-signature", s.into_bytes());
            descs.push("x-signature in upper case".into());
            (Auth::Ambiguous(app), "upper_case_signature")
        }
        78..=89 => {
            // noise: extra headers that mean nothing to the service
            let n = *pick(rng, &[1usize, 3, 3, 30, 30, 60, 60, 120]);
            for i in 0..n {
                let name = format!("x-fuzz-{i}");
                let v: Vec<u8> = match rng.gen_range(0..3) {
                    0 => random_unicode(rng)
                        .bytes()
                        .filter(|b| *b >= 0x20 && *b != 0x7f)
                        .collect(),
                    1 => vec![b'v'; rng.gen_range(0..5000)],
                    _ => b"x-app-id".to_vec(),
                };
                h.push((name, v));
            }
            if chance(rng, 0.3) {
                h.push(("x-forwarded-for".into(), b"1.2.3.4, ::1, garbage".to_vec()));
            }
            descs.push(format!("{n} extra headers"));
            (Auth::Valid(app), "extra_headers")
        }
        _ => {
            // the other app, correctly signed: acts on its own data
            let ts = now;
            let nonce = String::from_utf8_lossy(&get(h, "x-nonce")).to_string();
            *h = signed(world, other, ts, &nonce, body);
            descs.push("signed by the other app".into());
            (Auth::Valid(other), "other_app")
        }
    }
}

fn content_type(rng: &mut StdRng) -> Option<(Vec<u8>, &'static str)> {
    if chance(rng, 0.8) {
        return Some((b"application/json".to_vec(), "json"));
    }
    let v = *pick::<&[u8]>(
        rng,
        &[
            &b""[..],
            b"text/plain",
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"application/json; charset=utf-16",
            b"application/xml",
            b"*/*",
            b"application/json\xff",
        ],
    );
    if v.is_empty() {
        None
    } else {
        Some((v.to_vec(), "other"))
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn nonce(rng: &mut StdRng) -> String {
    hex::encode(rng.gen::<[u8; 16]>())
}

// ---------------------------------------------------------------- plans

pub fn plan(rng: &mut StdRng, world: &World, index: u64) -> Plan {
    let t = rng.gen_range(0..1000);
    if t < 700 {
        let method = if chance(rng, 0.03) {
            *pick(rng, &["tip.delete", "rpc.discover", "system.listMethods"])
        } else {
            *pick(rng, METHODS)
        };
        signed_plan(rng, world, index, Some(method))
    } else if t < 800 {
        signed_plan(rng, world, index, None)
    } else if t < 880 {
        pay_plan(rng, world, index, false)
    } else if t < 930 {
        pay_plan(rng, world, index, true)
    } else if t < 960 {
        let mut p = public_plan(
            index,
            "GET /healthz/live",
            reqwest::Method::GET,
            "/healthz/live",
        );
        noise(rng, &mut p);
        p
    } else {
        stray_plan(rng, world, index)
    }
}

/// `POST /rpc` with `method`, or `POST /tips` when `None`.
fn signed_plan(rng: &mut StdRng, world: &World, index: u64, method: Option<&str>) -> Plan {
    let rpc = method.is_some();
    let m = method.unwrap_or("tip.create");
    let params = valid_params(rng, world, m);
    let v = if rpc {
        let mut env = Map::new();
        env.insert("jsonrpc".into(), json!("2.0"));
        env.insert(
            "id".into(),
            if chance(rng, 0.5) {
                json!(index)
            } else {
                json!(format!("r{index}"))
            },
        );
        env.insert("method".into(), json!(m));
        if !(m == "health.ping" && chance(rng, 0.5)) {
            env.insert("params".into(), params);
        }
        Value::Object(env)
    } else {
        params
    };
    let mut d = Draft { v, raws: vec![] };
    let mut mutations = Vec::new();
    let r = rng.gen_range(0..100);
    let mut class = "valid";
    if (8..80).contains(&r) {
        let n = 1 + (rng.gen_range(0..10) / 7) + (rng.gen_range(0..10) / 9);
        for i in 0..n {
            let (desc, c) = mutate_once(rng, world, &mut d, rpc, m);
            if i == 0 {
                class = c;
            }
            mutations.push(desc);
        }
    }
    let mut body = d.bytes();
    if r >= 80 {
        if r < 92 && chance(rng, 0.5) {
            let (desc, _) = mutate_once(rng, world, &mut d, rpc, m);
            mutations.push(desc);
            body = d.bytes();
        }
        mutations.push(mutate_bytes(rng, &mut body));
        class = "bytes";
    }
    // signed as which app: mostly the first
    let app = 0;
    let now = chrono::Utc::now().timestamp();
    let n = nonce(rng);
    let mut headers = signed(world, app, now, &n, &body);
    let (auth, header_class) = if chance(rng, 0.4) {
        mutate_headers(rng, world, app, &mut headers, &body, now, &mut mutations)
    } else {
        (Auth::Valid(app), "-")
    };
    // the nonce that was sent, if it was a fresh one in a correctly signed request
    let sent_nonce = match auth {
        Auth::Valid(a) | Auth::Ambiguous(a) => {
            let sent = String::from_utf8_lossy(&get(&headers, "x-nonce")).to_string();
            Some((a, sent))
        }
        _ => None,
    };
    if let Some((ct, c)) = content_type(rng) {
        if c != "json" {
            mutations.push(format!("content-type: {}", String::from_utf8_lossy(&ct)));
        }
        headers.push(("content-type".into(), ct));
    } else {
        mutations.push("no content-type".into());
    }
    Plan {
        index,
        target: match method {
            Some(m) => format!("POST /rpc {m}"),
            None => "POST /tips".into(),
        },
        method: reqwest::Method::POST,
        path: if rpc { "/rpc".into() } else { "/tips".into() },
        headers,
        body,
        mutations,
        class,
        header_class,
        auth,
        nonce: sent_nonce,
        stream: false,
    }
}

fn public_plan(index: u64, target: &str, method: reqwest::Method, path: &str) -> Plan {
    Plan {
        index,
        target: target.into(),
        method,
        path: path.into(),
        headers: vec![],
        body: vec![],
        mutations: vec![],
        class: "valid",
        header_class: "-",
        auth: Auth::Public,
        nonce: None,
        stream: false,
    }
}

fn noise(rng: &mut StdRng, p: &mut Plan) {
    if chance(rng, 0.3) {
        let n = *pick(rng, &[1usize, 1, 5, 5, 40, 40, 60, 150]);
        for i in 0..n {
            let v: Vec<u8> = match rng.gen_range(0..4) {
                0 => vec![0xc3, 0xa9, b'x'],
                1 => vec![b'v'; rng.gen_range(0..20000)],
                2 => b"garbage, ::1, 300.1.1.1".to_vec(),
                _ => random_unicode(rng)
                    .bytes()
                    .filter(|b| *b >= 0x20 && *b != 0x7f)
                    .collect(),
            };
            let name = match i % 5 {
                0 => "x-forwarded-for".to_string(),
                1 => "cookie".to_string(),
                2 => "last-event-id".to_string(),
                3 => "accept".to_string(),
                _ => format!("x-fuzz-{i}"),
            };
            p.headers.push((name, v));
        }
        p.mutations.push(format!("{n} noise headers"));
        p.header_class = "noise";
    }
    if chance(rng, 0.1) {
        p.body = (0..rng.gen_range(0..2000)).map(|_| rng.gen()).collect();
        p.mutations.push(format!("a {}-byte body", p.body.len()));
    }
}

fn pay_plan(rng: &mut StdRng, world: &World, index: u64, events: bool) -> Plan {
    let (id, class) = match rng.gen_range(0..10) {
        0..=3 => (world.tip_id(rng), "valid"),
        4..=5 => (uuid::Uuid::from_u128(rng.gen()).to_string(), "unknown_id"),
        6 => (uuid_variant(rng, world), "id_variant"),
        _ => (garbage_string(rng, world), "garbage_id"),
    };
    // a URI holds at most 64 KiB: longer ids are cut (still far over any valid id)
    let mut path = format!("/pay/{}", percent_encode(&id));
    path.truncate(30_000);
    if id.is_empty() {
        path = "/pay/".into();
    }
    if events {
        path.push_str("/events");
    }
    let target = if events {
        "GET /pay/{id}/events"
    } else {
        "GET /pay/{id}"
    };
    let mut p = public_plan(index, target, reqwest::Method::GET, &path);
    p.class = class;
    if class != "valid" {
        p.mutations
            .push(format!("id {:?}", id.chars().take(60).collect::<String>()));
    }
    p.stream = events;
    noise(rng, &mut p);
    p
}

fn stray_plan(rng: &mut StdRng, world: &World, index: u64) -> Plan {
    use reqwest::Method as M;
    let tip = world.tip_id(rng);
    let long = "a".repeat(*pick(rng, &[100usize, 5000, 20000]));
    let (m, path) = match rng.gen_range(0..16) {
        0 => (M::GET, "/rpc".to_string()),
        1 => (M::PUT, "/rpc".into()),
        2 => (M::DELETE, "/tips".into()),
        3 => (M::GET, "/tips".into()),
        4 => (M::POST, format!("/pay/{tip}")),
        5 => (M::POST, "/healthz/live".into()),
        6 => (M::GET, "/healthz/ready".into()),
        7 => (M::GET, "/metrics".into()),
        8 => (M::GET, "/".into()),
        9 => (M::POST, "/rpc/".into()),
        10 => (M::GET, "/%2e%2e/%2e%2e/etc/passwd".into()),
        11 => (M::OPTIONS, "/rpc".into()),
        12 => (M::HEAD, "/healthz/live".into()),
        13 => (M::GET, format!("/{long}")),
        14 => (M::PATCH, format!("/pay/{tip}/events")),
        _ => (M::GET, format!("/pay/{tip}/events/extra")),
    };
    let target = format!(
        "stray {m} {}",
        if path.len() > 40 { "/<long>" } else { &path }
    );
    let target = if path.starts_with("/pay/") {
        format!("stray {m} {}", path.replace(&tip, "{id}"))
    } else {
        target
    };
    let mut p = public_plan(index, &target, m, &path);
    p.class = "stray";
    noise(rng, &mut p);
    p
}
