//! Smoke test: the release binary starts on free ports, announces itself, answers OPTIONS
//! on UDP and TCP, and stops on SIGTERM.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn server_starts_and_answers_options() {
    let mut server = Server::start(ServerOpts::default());
    assert!(
        server
            .ready_addr
            .ends_with(&format!(":{}", server.sip_port)),
        "ready line names the lab port: {}",
        server.ready_addr
    );

    let resp = send_raw_udp(
        server.sip_addr(),
        &sip_request("OPTIONS", server.sip_addr(), "UDP", &[], ""),
        Duration::from_secs(3),
    )
    .expect("no response to OPTIONS over UDP");
    assert_eq!(
        status_code(&resp),
        Some(200),
        "{}",
        String::from_utf8_lossy(&resp)
    );

    let resp = send_raw_tcp(
        server.sip_addr(),
        &sip_request("OPTIONS", server.sip_addr(), "TCP", &[], ""),
        Duration::from_secs(3),
    )
    .expect("TCP connect to the SIP port");
    assert_eq!(
        status_code(&resp),
        Some(200),
        "{}",
        String::from_utf8_lossy(&resp)
    );

    Sipp::new("uac_options.xml", server.sip_addr())
        .run()
        .assert_ok();

    let status = server.stop().expect("server was running");
    assert!(status.success(), "clean exit on SIGTERM, got {status:?}");
}
