//! A real HTTP BSS for the billing tests: std `TcpListener`, one thread per connection,
//! `Connection: close`, books in memory, idempotent on the redemption key, speaking the
//! protocol of README "Billing backends". The test can make it slow, fail (500 before
//! applying), drop answers (apply, then close without answering) or lose requests (close
//! without applying), on the next N requests or at random.
//!
//! Usage: `mod bss_server;` then `let bss = bss_server::Bss::start(); bss.seed_demo();`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub struct BssAccount {
    pub name: String,
    pub pin: String,
    pub lang: String,
    pub vip_level: u8,
    pub barred: bool,
    pub opening_fen: i64,
    pub balance_fen: i64,
}

#[derive(Clone, Debug)]
pub struct BssCard {
    pub face_fen: i64,
    pub expired: bool,
    pub redeemed_by: Option<String>,
}

/// One credit the BSS applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credit {
    pub key: String,
    pub card: String,
    pub msisdn: String,
    pub amount_fen: i64,
}

#[derive(Default)]
pub struct Books {
    pub accounts: HashMap<String, BssAccount>,
    pub cards: HashMap<String, BssCard>,
    /// key → the first outcome's JSON body.
    pub redemptions: HashMap<String, Value>,
    pub credits: Vec<Credit>,
}

/// What goes wrong, and how often. Counters say what was actually injected.
#[derive(Default, Clone, Debug)]
pub struct Faults {
    pub delay_before: Duration,
    pub delay_after: Duration,
    pub fail_next: u32,
    pub drop_next: u32,
    pub lose_next: u32,
    pub fail_p: f64,
    pub drop_p: f64,
    pub lose_p: f64,
    /// Random delay up to this, before applying, with probability `slow_p`.
    pub slow_p: f64,
    pub slow_max: Duration,
    /// Only redemption POSTs are disturbed (reads always work).
    pub only_redeem: bool,
}

#[derive(Default, Clone, Debug)]
pub struct Stats {
    pub requests: u64,
    pub redeem_posts: u64,
    /// Idempotency-Key header of every redemption POST, in arrival order.
    pub redeem_keys: Vec<String>,
    /// Request lines (method and path) of everything received.
    pub request_lines: Vec<String>,
    pub failed: u64,
    pub dropped: u64,
    pub lost: u64,
    pub slowed: u64,
}

struct Shared {
    books: Mutex<Books>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    rng: Mutex<u64>,
    token: Option<String>,
    stop: AtomicBool,
}

pub struct Bss {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Bss {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Fate {
    Normal,
    Fail,
    Drop,
    Lose,
}

impl Bss {
    pub fn start() -> Bss {
        Bss::start_with_token(None)
    }

    pub fn start_with_token(token: Option<&str>) -> Bss {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind BSS");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            books: Mutex::new(Books::default()),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(Stats::default()),
            rng: Mutex::new(0x9E37_79B9_7F4A_7C15),
            token: token.map(str::to_string),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || handle(&s, conn));
            }
        });
        Bss {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.shared.books.lock().unwrap()
    }

    pub fn set_faults(&self, f: Faults) {
        *self.shared.faults.lock().unwrap() = f;
    }

    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.shared.faults.lock().unwrap()
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }

    pub fn seed_rng(&self, seed: u64) {
        *self.shared.rng.lock().unwrap() = seed | 1;
    }

    pub fn add_account(&self, msisdn: &str, name: &str, pin: &str, balance_fen: i64, barred: bool) {
        self.books().accounts.insert(
            msisdn.into(),
            BssAccount {
                name: name.into(),
                pin: pin.into(),
                lang: "zh".into(),
                vip_level: 0,
                barred,
                opening_fen: balance_fen,
                balance_fen,
            },
        );
    }

    pub fn add_card(&self, card: &str, face_fen: i64, expired: bool) {
        self.books().cards.insert(
            card.into(),
            BssCard {
                face_fen,
                expired,
                redeemed_by: None,
            },
        );
    }

    /// The demo accounts and cards of the README (the used card is marked used).
    pub fn seed_demo(&self) {
        self.add_account("13800138000", "张三", "123456", 12_850, false);
        self.add_account("13900139000", "李四", "654321", 1_000_205, false);
        self.add_account("13700137000", "王五", "111111", -1_230, false);
        for (c, f) in [
            ("300000000000000001", 3_000),
            ("300000000000000002", 3_000),
            ("500000000000000001", 5_000),
            ("500000000000000002", 5_000),
            ("100000000000000001", 10_000),
            ("100000000000000002", 10_000),
        ] {
            self.add_card(c, f, false);
        }
        self.add_card("800000000000000008", 10_000, true);
        self.add_card("900000000000000009", 5_000, false);
        self.books()
            .cards
            .get_mut("900000000000000009")
            .unwrap()
            .redeemed_by = Some("demo-seed-used-card".into());
    }

    pub fn balance(&self, msisdn: &str) -> i64 {
        self.books().accounts[msisdn].balance_fen
    }
}

fn next_random(s: &Shared) -> f64 {
    let mut x = s.rng.lock().unwrap();
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (*x >> 11) as f64 / (1u64 << 53) as f64
}

fn respond(stream: &mut TcpStream, status: u16, body: &Value) {
    let text = body.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
}

fn handle(s: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut len = 0usize;
    let mut key_header = None;
    let mut auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => len = value.parse().unwrap_or(0),
                "idempotency-key" => key_header = Some(value),
                "authorization" => auth = Some(value),
                _ => {}
            }
        }
    }
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let is_redeem = method == "POST" && path == "/v1/redemptions";
    {
        let mut st = s.stats.lock().unwrap();
        st.requests += 1;
        st.request_lines.push(format!("{method} {path}"));
        if is_redeem {
            st.redeem_posts += 1;
            st.redeem_keys.push(key_header.clone().unwrap_or_default());
        }
    }
    if let Some(t) = &s.token {
        if auth.as_deref() != Some(&format!("Bearer {t}")) {
            return respond(&mut stream, 401, &json!({"error": "unauthorized"}));
        }
    }

    let f = s.faults.lock().unwrap().clone();
    let disturbed = is_redeem || !f.only_redeem;
    let mut fate = Fate::Normal;
    let mut delay = f.delay_before;
    if disturbed {
        let mut faults = s.faults.lock().unwrap();
        if faults.fail_next > 0 {
            faults.fail_next -= 1;
            fate = Fate::Fail;
        } else if faults.drop_next > 0 {
            faults.drop_next -= 1;
            fate = Fate::Drop;
        } else if faults.lose_next > 0 {
            faults.lose_next -= 1;
            fate = Fate::Lose;
        }
        drop(faults);
        if matches!(fate, Fate::Normal) {
            let r = next_random(s);
            if r < f.fail_p {
                fate = Fate::Fail;
            } else if r < f.fail_p + f.drop_p {
                fate = Fate::Drop;
            } else if r < f.fail_p + f.drop_p + f.lose_p {
                fate = Fate::Lose;
            }
        }
        if f.slow_p > 0.0 && next_random(s) < f.slow_p {
            delay += f.slow_max.mul_f64(next_random(s));
            s.stats.lock().unwrap().slowed += 1;
        }
    } else {
        delay = Duration::ZERO;
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    match fate {
        Fate::Fail => {
            s.stats.lock().unwrap().failed += 1;
            return respond(&mut stream, 500, &json!({"error": "injected failure"}));
        }
        Fate::Lose => {
            s.stats.lock().unwrap().lost += 1;
            return; // closed, nothing applied
        }
        _ => {}
    }
    let (status, answer) = route(s, &method, &path, &body);
    if disturbed && !f.delay_after.is_zero() {
        std::thread::sleep(f.delay_after);
    }
    if matches!(fate, Fate::Drop) {
        s.stats.lock().unwrap().dropped += 1;
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return; // applied, never answered
    }
    respond(&mut stream, status, &answer);
}

fn refused(reason: &str) -> Value {
    json!({"outcome": "refused", "reason": reason})
}

fn route(s: &Shared, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let mut books = s.books.lock().unwrap();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("GET", ["v1", "accounts", m]) => match books.accounts.get(*m) {
            Some(a) => (
                200,
                json!({"msisdn": m, "name": a.name, "vip_level": a.vip_level, "lang": a.lang, "barred": a.barred}),
            ),
            None => (404, json!({"error": "not_found"})),
        },
        ("POST", ["v1", "accounts", m, "pin-check"]) => {
            let pin = body.get("pin").and_then(Value::as_str).unwrap_or("");
            let result = match books.accounts.get(*m) {
                None => "no_account",
                Some(a) if a.pin == pin => "ok",
                Some(_) => "wrong",
            };
            (200, json!({ "result": result }))
        }
        ("GET", ["v1", "accounts", m, "statement"]) => match books.accounts.get(*m) {
            Some(a) => (
                200,
                json!({"balance_fen": a.balance_fen, "month_to_date_fen": 0, "last_month_fen": 0}),
            ),
            None => (404, json!({"error": "not_found"})),
        },
        ("POST", ["v1", "cards", "lookup"]) => {
            let card = body.get("card").and_then(Value::as_str).unwrap_or("");
            let v = match books.cards.get(card) {
                None => json!({"status": "card_unknown"}),
                Some(c) if c.redeemed_by.is_some() => json!({"status": "card_used"}),
                Some(c) if c.expired => json!({"status": "card_expired"}),
                Some(c) => json!({"status": "valid", "face_fen": c.face_fen}),
            };
            (200, v)
        }
        ("POST", ["v1", "redemptions"]) => {
            let get = |k: &str| {
                body.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let (key, msisdn, card) = (get("key"), get("msisdn"), get("card"));
            if key.is_empty() {
                return (400, json!({"error": "key required"}));
            }
            if let Some(first) = books.redemptions.get(&key) {
                return (200, first.clone());
            }
            let outcome = match books.accounts.get(&msisdn) {
                None => refused("number_not_found"),
                Some(a) if a.barred => refused("account_barred"),
                Some(_) => match books.cards.get(&card) {
                    None => refused("card_unknown"),
                    Some(c) if c.redeemed_by.is_some() => refused("card_used"),
                    Some(c) if c.expired => refused("card_expired"),
                    Some(c) => {
                        let amount = c.face_fen;
                        books.cards.get_mut(&card).unwrap().redeemed_by = Some(key.clone());
                        let a = books.accounts.get_mut(&msisdn).unwrap();
                        a.balance_fen += amount;
                        let balance = a.balance_fen;
                        books.credits.push(Credit {
                            key: key.clone(),
                            card: card.clone(),
                            msisdn: msisdn.clone(),
                            amount_fen: amount,
                        });
                        json!({"outcome": "credited", "amount_fen": amount, "balance_fen": balance})
                    }
                },
            };
            let mut answer = outcome;
            answer["key"] = json!(key);
            books.redemptions.insert(key, answer.clone());
            (200, answer)
        }
        ("GET", ["v1", "redemptions", key]) => {
            let key = percent_decode(key);
            match books.redemptions.get(&key) {
                Some(v) => (200, v.clone()),
                None => (404, json!({"error": "not_found"})),
            }
        }
        _ => (404, json!({"error": "no such endpoint"})),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
