//! The running server against hostile input: every RFC 4475 / RFC 5118 torture message as one
//! UDP datagram (byte-exact), plus malformed messages of our own over UDP and TCP. Nothing may
//! crash the process, and a normal call must still work afterwards. Where a specific answer is
//! well known, it is checked against the table of the unit-level test (tests/torture.rs).

mod common;
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn torture_root() -> PathBuf {
    repo_root().join("tests/fixtures/torture")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "sip" || x == "dat") {
            out.push(p);
        }
    }
}

/// The first response code coming back to a fresh socket for one datagram (None: nothing in
/// `wait`). Provisional answers count: an INVITE's first answer is 100 Trying.
fn first_code(to: SocketAddr, bytes: &[u8], wait: Duration) -> Option<u16> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(bytes, to).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    Some(
        status_code(&buf[..n]).unwrap_or_else(|| {
            panic!("not a SIP response: {}", String::from_utf8_lossy(&buf[..n]))
        }),
    )
}

fn assert_call_works(server: &mut Server) {
    assert!(
        server.is_running(),
        "server died; stderr:\n{}",
        server.stderr_tail(4000)
    );
    let (sink, _) = RtpSink::bind();
    Sipp::new("uac_info_dtmf.xml", server.sip_addr())
        .rtp_port(sink.port())
        .digits("9")
        .set("first_ms", "1000")
        .set("gap_ms", "0")
        .set("hold_ms", "500")
        .run()
        .assert_ok();
    assert!(
        sink.count() > 20,
        "call audio after the torture: {} packets",
        sink.count()
    );
    assert!(server.is_running(), "server died after the call");
}

#[test]
fn torture_messages_do_not_break_the_server() {
    let mut server = Server::start(ServerOpts::default());
    let mut files = Vec::new();
    walk(&torture_root(), &mut files);
    files.sort();
    assert!(files.len() >= 60, "fixtures present: {}", files.len());
    let mut codes = std::collections::BTreeMap::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let code = first_code(server.sip_addr(), &bytes, Duration::from_millis(400));
        let name = f
            .strip_prefix(torture_root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        codes.insert(name.clone(), code);
        assert!(
            server.is_running(),
            "server died on {name}; stderr:\n{}",
            server.stderr_tail(4000)
        );
    }
    // Well-known answers (RFC 4475 sections 3.1.2.16, 3.3.2, 3.1.2.17, 3.3.5, 3.1.2.1,
    // 3.1.1.2; the response 3.1.1.12 is never answered).
    let expect = [
        ("rfc4475/malformed/3.1.2.16_badvers.sip", Some(505)),
        ("rfc4475/wellformed/3.3.2_unkscm.sip", Some(416)),
        ("rfc4475/malformed/3.1.2.17_mismatch01.sip", Some(400)),
        ("rfc4475/wellformed/3.3.5_bext01.sip", Some(420)),
        ("rfc4475/malformed/3.1.2.1_badinv01.sip", Some(400)),
        ("rfc4475/malformed/3.1.2.2_clerr.sip", Some(400)),
        ("rfc4475/wellformed/3.1.1.2_intmeth.sip", Some(501)),
        ("rfc4475/wellformed/3.1.1.12_unreason.sip", None),
    ];
    let mut wrong: Vec<String> = expect
        .iter()
        .filter(|(f, c)| codes.get(*f) != Some(c))
        .map(|(f, c)| format!("{f}: expected {c:?}, got {:?}", codes.get(*f)))
        .collect();
    // The running server must give the first answer the sans-IO core gives in the unit table.
    // Where the core says 100 (an INVITE handed to the call layer), the call layer may answer
    // at once instead, before the 100 is due (RFC 3261 17.2.1): e.g. 488 for an offer with no
    // G.711 (4.9 offers only G726-32).
    for (f, c) in unit_table() {
        let got = codes.get(&f).copied().flatten();
        let call_layer = c == Some(100) && matches!(got, Some(180) | Some(200) | Some(488));
        if got != c && !call_layer {
            wrong.push(format!(
                "{f}: unit table says {c:?}, server sent {:?}",
                codes.get(&f)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}\nall: {codes:#?}", wrong.join("\n"));
    assert_call_works(&mut server);
}

/// (file, first answer) pairs of the TABLE in tests/torture.rs, read from its source so the
/// two tests cannot drift apart.
fn unit_table() -> Vec<(String, Option<u16>)> {
    let src = std::fs::read_to_string(repo_root().join("tests/torture.rs")).unwrap();
    let mut out = Vec::new();
    let start = src.find("const TABLE").expect("TABLE in tests/torture.rs");
    let mut rest = &src[start..start + src[start..].find("\n];").unwrap()];
    while let Some(i) = rest.find("(\"rfc") {
        rest = &rest[i + 2..];
        let end = rest.find('"').unwrap();
        let file = rest[..end].to_string();
        let after = rest[end + 1..].trim_start_matches([',', ' ', '\n', '\r']);
        let code = if after.starts_with("None") {
            None
        } else {
            let a = after
                .strip_prefix("Some(")
                .unwrap_or_else(|| panic!("table entry {file}: {}", &after[..20]));
            Some(a[..a.find(')').unwrap()].parse().unwrap())
        };
        out.push((file, code));
    }
    assert!(
        out.len() >= 60,
        "parsed the unit table: {} entries",
        out.len()
    );
    out
}

fn options_with(to: SocketAddr, edit: impl Fn(String) -> String) -> Vec<u8> {
    edit(String::from_utf8(sip_request("OPTIONS", to, "UDP", &[], "")).unwrap()).into_bytes()
}

fn drop_header(m: String, name: &str) -> String {
    m.split("\r\n")
        .filter(|l| !l.starts_with(&format!("{name}:")))
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Sends from a socket whose port replaces LOCAL_PORT, so a response has somewhere to go.
fn send_own(to: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let r = send_raw_udp(to, bytes, Duration::from_millis(700));
    r.map(|m| {
        status_code(&m)
            .unwrap_or_else(|| panic!("not a SIP response: {}", String::from_utf8_lossy(&m)))
    })
}

#[test]
fn malformed_inputs_of_our_own() {
    let mut server = Server::start(ServerOpts::default());
    let to = server.sip_addr();

    let full = options_with(to, |m| m);
    assert_eq!(
        send_own(to, &full),
        Some(200),
        "the unedited request is fine"
    );

    // Cut inside the header section: no end-of-headers, Content-Length never seen.
    let cut = &full[..full.len() / 2];
    let r = send_own(to, cut);
    assert!(r.is_none() || r == Some(400), "truncated request: {r:?}");

    let big_cl = options_with(to, |m| {
        m.replace("Content-Length: 0", "Content-Length: 500")
    });
    assert_eq!(
        send_own(to, &big_cl),
        Some(400),
        "Content-Length beyond the datagram (RFC 3261 18.3)"
    );

    for h in ["Call-ID", "CSeq"] {
        let m = options_with(to, |m| drop_header(m, h));
        assert_eq!(send_own(to, &m), Some(400), "missing {h}");
    }
    let m = options_with(to, |m| drop_header(m, "Via"));
    let r = send_own(to, &m);
    assert!(
        r.is_none() || r == Some(400),
        "missing Via: dropped (nowhere to answer) or 400, got {r:?}"
    );

    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let garbage: Vec<u8> = (0..1000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    assert_eq!(send_own(to, &garbage), None, "random bytes are dropped");
    assert_eq!(send_own(to, &[]), None, "an empty datagram is dropped");
    assert!(server.is_running(), "server died on malformed UDP");

    // TCP: announce a body that never comes, then hang up.
    {
        let mut s = TcpStream::connect(to).unwrap();
        let m = String::from_utf8(sip_request("OPTIONS", to, "TCP", &[], ""))
            .unwrap()
            .replace("Content-Length: 0", "Content-Length: 4000");
        s.write_all(m.as_bytes()).unwrap();
        s.write_all(b"only a few bytes").unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    // And a connection that just sends garbage.
    {
        let mut s = TcpStream::connect(to).unwrap();
        s.write_all(&garbage).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.is_running(), "server died on malformed TCP");
    let r = send_raw_tcp(
        to,
        &sip_request("OPTIONS", to, "TCP", &[], ""),
        Duration::from_secs(3),
    )
    .expect("TCP still accepted");
    assert_eq!(
        status_code(&r),
        Some(200),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_call_works(&mut server);
}
