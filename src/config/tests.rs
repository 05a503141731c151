use super::*;
use std::path::PathBuf;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("answerline-cfg-{}-{}", tag, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("profiles")).unwrap();
    std::fs::create_dir_all(d.join("hardware")).unwrap();
    d
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_profiles_load_with_the_documented_defaults() {
    let p = load_profiles(&repo().join("sip-profiles"), &repo().join("hardware")).unwrap();
    let lab = p.iter().find(|p| p.name == "lab").unwrap();
    assert_eq!(lab.port, 5060);
    assert!(lab.udp && lab.tcp);
    assert_eq!(lab.route(Some("12345")), "welcome");
    let trunk = p.iter().find(|p| p.name == "trunk").unwrap();
    assert_eq!(trunk.port, 5080);
    // The device file's 30 ms packetisation applies where the profile is silent.
    assert_eq!(trunk.ptime_ms, 30);
    assert!(trunk.allows("127.0.0.1".parse().unwrap()));
    assert!(!trunk.allows("127.0.0.2".parse().unwrap()));
    assert!(!trunk.allows("203.0.113.9".parse().unwrap()));
}

#[test]
fn a_bad_value_names_file_line_key_and_fix() {
    let d = tmpdir("badval");
    std::fs::write(
        d.join("profiles/gw.toml"),
        "port = 5070\n\nrtp_ports = \"30000-2\"\n",
    )
    .unwrap();
    let e = load_profiles(&d.join("profiles"), &d.join("hardware"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gw.toml:3"), "{e}");
    assert!(e.contains("'rtp_ports'"), "{e}");
    assert!(e.contains("LO-HI"), "{e}");
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let d = tmpdir("unknown");
    std::fs::write(
        d.join("profiles/gw.toml"),
        "port = 5070\ncodec = [\"PCMA\"]\n",
    )
    .unwrap();
    let e = load_profiles(&d.join("profiles"), &d.join("hardware"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gw.toml:2"), "{e}");
    assert!(e.contains("'codec'"), "{e}");
}

#[test]
fn a_syntax_error_names_the_line() {
    let d = tmpdir("syntax");
    std::fs::write(
        d.join("profiles/gw.toml"),
        "port = 5070\nbind = \"0.0.0.0\n",
    )
    .unwrap();
    let e = load_profiles(&d.join("profiles"), &d.join("hardware"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gw.toml:2"), "{e}");
}

#[test]
fn a_bad_device_value_is_reported_against_the_device_file() {
    let d = tmpdir("device");
    std::fs::write(d.join("hardware/odd.toml"), "ptime_ms = 40\n").unwrap();
    std::fs::write(d.join("profiles/gw.toml"), "device = \"odd\"\n").unwrap();
    let e = load_profiles(&d.join("profiles"), &d.join("hardware"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("odd.toml:1"), "{e}");
    assert!(e.contains("use 20 or 30"), "{e}");
    std::fs::write(d.join("profiles/gw.toml"), "device = \"missing\"\n").unwrap();
    let e = load_profiles(&d.join("profiles"), &d.join("hardware"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.toml"), "{e}");
}

#[test]
fn two_profiles_on_one_port_are_refused() {
    let d = tmpdir("clash");
    std::fs::write(
        d.join("profiles/a.toml"),
        "port = 5070\nrtp_ports = \"20000-20099\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("profiles/b.toml"),
        "port = 5070\nrtp_ports = \"21000-21099\"\n",
    )
    .unwrap();
    let e = load_profiles(&d.join("profiles"), &d.join("hardware"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("b.toml") && e.contains("already used"), "{e}");
    std::fs::write(
        d.join("profiles/b.toml"),
        "port = 5071\nrtp_ports = \"20050-20150\"\n",
    )
    .unwrap();
    let e = load_profiles(&d.join("profiles"), &d.join("hardware"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("overlaps"), "{e}");
}

#[test]
fn cidr_matching() {
    let c: Cidr = "10.1.0.0/16".parse().unwrap();
    assert!(c.contains("10.1.200.3".parse().unwrap()));
    assert!(!c.contains("10.2.0.1".parse().unwrap()));
    assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains("2001:db8::5".parse().unwrap()));
    assert!("10.0.0.0/33".parse::<Cidr>().is_err());
}

#[test]
fn billing_toml_beside_the_profiles_is_not_a_profile() {
    let d = tmpdir("billingskip");
    std::fs::write(d.join("profiles/gw.toml"), "port = 5070\n").unwrap();
    std::fs::write(d.join("profiles/billing.toml"), "backend = \"embedded\"\n").unwrap();
    let p = load_profiles(&d.join("profiles"), &d.join("hardware")).unwrap();
    assert_eq!(p.len(), 1);
}
