use super::*;

fn prefs() -> MediaPrefs {
    MediaPrefs {
        codecs: vec![Law::Alaw, Law::Ulaw],
        telephone_event: true,
        ptime_ms: 20,
    }
}

const FREESWITCH: &str = "v=0\r\n\
o=FreeSWITCH 1700000000 1700000001 IN IP4 192.0.2.20\r\n\
s=FreeSWITCH\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
m=audio 24580 RTP/AVP 0 8 9 101 13\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=rtpmap:13 CN/8000\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtcp:24581 IN IP4 192.0.2.20\r\n";

// Asterisk: no a=ptime at media level, maxptime, telephone-event on 101 with 0-16.
const ASTERISK: &str = "v=0\r\n\
o=- 1234 1234 IN IP4 192.0.2.30\r\n\
s=Asterisk\r\n\
c=IN IP4 192.0.2.30\r\n\
t=0 0\r\n\
m=audio 10000 RTP/AVP 0 3 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:3 GSM/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

// Cisco gateway: ptime 30, telephone-event on 100, X- attributes, no rtpmap for 18.
const CISCO: &str = "v=0\r\n\
o=CiscoSystemsSIP-GW-UserAgent 4411 2981 IN IP4 192.0.2.40\r\n\
s=SIP Call\r\n\
c=IN IP4 192.0.2.40\r\n\
t=0 0\r\n\
m=audio 17142 RTP/AVP 18 8 0 100\r\n\
c=IN IP4 192.0.2.41\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=fmtp:100 0-15\r\n\
a=ptime:30\r\n\
a=X-sqn:0\r\n\
a=X-cap: 1 audio RTP/AVP 100\r\n";

fn offer(media: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n{media}{extra}"
    )
}

#[test]
fn freeswitch_offer_picks_our_first_preference() {
    let n = negotiate(FREESWITCH, &prefs()).unwrap();
    assert_eq!(n.law, Law::Alaw);
    assert_eq!(n.payload_type, 8);
    assert_eq!(n.te_payload_type, Some(101));
    assert_eq!(n.te_fmtp.as_deref(), Some("0-16"));
    assert_eq!(n.remote_rtp, Some("192.0.2.20:24580".parse().unwrap()));
    assert_eq!(n.ptime_ms, 20);
    assert_eq!(n.direction, Direction::SendRecv);
    let a = build_answer(&n, "198.51.100.1".parse().unwrap(), 30000, 7, 8);
    assert!(
        a.contains("o=answerline 7 8 IN IP4 198.51.100.1\r\n"),
        "{a}"
    );
    assert!(a.contains("c=IN IP4 198.51.100.1\r\n"));
    assert!(a.contains("m=audio 30000 RTP/AVP 8 101\r\n"));
    assert!(a.contains("a=rtpmap:8 PCMA/8000\r\n"));
    assert!(a.contains("a=fmtp:101 0-16\r\n"));
    assert!(a.contains("a=ptime:20\r\n"));
    assert!(a.ends_with("a=sendrecv\r\n"));
    // Our answer is itself valid SDP that negotiates back to the same choice.
    let back = negotiate(&a, &prefs()).unwrap();
    assert_eq!(
        (back.law, back.payload_type, back.te_payload_type),
        (Law::Alaw, 8, Some(101))
    );
}

#[test]
fn preference_order_is_ours_not_the_offers() {
    let ulaw_first = MediaPrefs {
        codecs: vec![Law::Ulaw, Law::Alaw],
        ..prefs()
    };
    let n = negotiate(FREESWITCH, &ulaw_first).unwrap();
    assert_eq!((n.law, n.payload_type), (Law::Ulaw, 0));
}

#[test]
fn asterisk_offer_without_ptime_uses_our_ptime_and_states_none() {
    let n = negotiate(
        ASTERISK,
        &MediaPrefs {
            ptime_ms: 20,
            ..prefs()
        },
    )
    .unwrap();
    assert_eq!(n.law, Law::Alaw);
    assert_eq!(n.ptime_ms, 20);
    assert!(!n.offer_had_ptime);
    let a = build_answer(&n, "198.51.100.1".parse().unwrap(), 30002, 1, 1);
    assert!(!a.contains("a=ptime"), "{a}");
}

#[test]
fn cisco_offer_with_ptime_30_and_media_level_connection() {
    let n = negotiate(CISCO, &prefs()).unwrap();
    assert_eq!(n.law, Law::Alaw);
    assert_eq!(n.te_payload_type, Some(100));
    assert_eq!(n.ptime_ms, 30);
    assert_eq!(
        n.remote_rtp,
        Some("192.0.2.41:17142".parse().unwrap()),
        "media c= wins over session c="
    );
    let a = build_answer(&n, "198.51.100.1".parse().unwrap(), 30004, 1, 1);
    assert!(a.contains("m=audio 30004 RTP/AVP 8 100\r\n"), "{a}");
    assert!(a.contains("a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15\r\n"));
    assert!(a.contains("a=ptime:30\r\n"));
}

#[test]
fn pcma_only_and_dynamic_payload_types() {
    let n = negotiate(
        &offer("m=audio 4000 RTP/AVP 8\r\n", ""),
        &MediaPrefs {
            codecs: vec![Law::Ulaw, Law::Alaw],
            ..prefs()
        },
    )
    .unwrap();
    assert_eq!(
        (n.law, n.payload_type, n.te_payload_type),
        (Law::Alaw, 8, None)
    );
    let a = build_answer(&n, "198.51.100.1".parse().unwrap(), 30006, 1, 1);
    assert!(a.contains("m=audio 30006 RTP/AVP 8\r\n"));
    assert!(!a.contains("telephone-event"));
    // PCMU under a dynamic number, telephone-event on 96.
    let o = offer(
        "m=audio 4000 RTP/AVP 112 96\r\n",
        "a=rtpmap:112 pcmu/8000\r\na=rtpmap:96 telephone-event/8000\r\n",
    );
    let n = negotiate(&o, &prefs()).unwrap();
    assert_eq!(
        (n.law, n.payload_type, n.te_payload_type),
        (Law::Ulaw, 112, Some(96))
    );
    let a = build_answer(&n, "198.51.100.1".parse().unwrap(), 30006, 1, 1);
    assert!(a.contains("a=rtpmap:112 PCMU/8000\r\n"));
    assert!(
        a.contains("a=fmtp:96 0-15\r\n"),
        "default events when the offer gave no fmtp"
    );
}

#[test]
fn g729_only_has_no_common_codec() {
    let o = offer(
        "m=audio 4000 RTP/AVP 18 101\r\n",
        "a=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    assert_eq!(negotiate(&o, &prefs()), Err(SdpError::NoCommonCodec));
    // PCMU at the wrong clock rate is not PCMU.
    let o = offer("m=audio 4000 RTP/AVP 97\r\n", "a=rtpmap:97 PCMU/16000\r\n");
    assert_eq!(negotiate(&o, &prefs()), Err(SdpError::NoCommonCodec));
    let o = offer("m=video 4000 RTP/AVP 31\r\n", "");
    assert_eq!(negotiate(&o, &prefs()), Err(SdpError::NoCommonCodec));
}

#[test]
fn garbage_is_malformed() {
    assert!(matches!(
        negotiate("hello", &prefs()),
        Err(SdpError::Malformed(_))
    ));
    assert!(negotiate("", &prefs()).is_err());
}

#[test]
fn hold_and_unhold() {
    let send_only = offer("m=audio 4000 RTP/AVP 0\r\n", "a=sendonly\r\n");
    let n = negotiate(&send_only, &prefs()).unwrap();
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(build_answer(&n, "198.51.100.1".parse().unwrap(), 1, 1, 2).ends_with("a=recvonly\r\n"));
    let recv_only = offer("m=audio 4000 RTP/AVP 0\r\n", "a=recvonly\r\n");
    assert_eq!(
        negotiate(&recv_only, &prefs()).unwrap().direction,
        Direction::SendOnly
    );
    let inactive = offer("m=audio 4000 RTP/AVP 0\r\n", "a=inactive\r\n");
    assert_eq!(
        negotiate(&inactive, &prefs()).unwrap().direction,
        Direction::Inactive
    );
    // Old-style hold: c=0.0.0.0.
    let old = "v=0\r\no=- 1 2 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let n = negotiate(old, &prefs()).unwrap();
    assert_eq!(n.remote_rtp, None);
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(!n.direction.sends());
    // Unhold: sendrecv again with an address.
    let n = negotiate(
        &offer("m=audio 4002 RTP/AVP 0\r\n", "a=sendrecv\r\n"),
        &prefs(),
    )
    .unwrap();
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(n.remote_rtp, Some("192.0.2.50:4002".parse().unwrap()));
}

#[test]
fn session_level_direction_applies_to_media() {
    let o = "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert_eq!(
        negotiate(o, &prefs()).unwrap().direction,
        Direction::RecvOnly
    );
}

#[test]
fn ipv6_offer_and_answer() {
    let o = "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";
    let n = negotiate(o, &prefs()).unwrap();
    assert_eq!(n.remote_rtp, Some("[2001:db8::1]:6000".parse().unwrap()));
    let a = build_answer(&n, "2001:db8::2".parse().unwrap(), 7000, 1, 1);
    assert!(a.contains("c=IN IP6 2001:db8::2\r\n"), "{a}");
    assert!(a.contains("o=answerline 1 1 IN IP6 2001:db8::2\r\n"));
}

#[test]
fn other_streams_are_rejected_in_place() {
    let o = offer("m=video 5000 RTP/AVP 31\r\nm=audio 4000 RTP/AVP 0\r\n", "");
    let n = negotiate(&o, &prefs()).unwrap();
    assert_eq!(n.audio_index, 1);
    let a = build_answer(&n, "198.51.100.1".parse().unwrap(), 30008, 1, 1);
    let m: Vec<&str> = a.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m, vec!["m=video 0 RTP/AVP 31", "m=audio 30008 RTP/AVP 0"]);
}

#[test]
fn torture_ipv6_sdp_bodies() {
    // RFC 5118 4.6/4.8 bodies: IPv6 connection data without brackets.
    let o = "v=0\r\no=assistant 971731711378798081 0 IN IP6 2001:db8::20\r\ns=Live video feed\r\nc=IN IP6 2001:db8::20\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    let n = negotiate(o, &prefs()).unwrap();
    assert_eq!(n.remote_rtp, Some("[2001:db8::20]:6000".parse().unwrap()));
}

#[test]
fn offer_lists_our_codecs() {
    let o = build_offer(&prefs(), "198.51.100.1".parse().unwrap(), 30010, 5, 5);
    assert!(o.contains("m=audio 30010 RTP/AVP 8 0 101\r\n"), "{o}");
    let n = negotiate(&o, &prefs()).unwrap();
    assert_eq!(
        (n.law, n.te_payload_type, n.ptime_ms),
        (Law::Alaw, Some(101), 20)
    );
}
#[test]
fn tolerates_gateway_quirks() {
    let base =
        "v=0\no=- 1 1 IN IP4 192.0.2.50\ns=-\nc=IN IP4 192.0.2.50\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
    let no_t = "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nm=audio 4000 RTP/AVP 0\r\n";
    let empty_s = "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=\r\nc=IN IP4 192.0.2.50 \r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\r\n";
    for o in [base, no_t, empty_s] {
        let n = negotiate(o, &prefs()).unwrap_or_else(|e| panic!("{o:?}: {e}"));
        assert_eq!(
            n.remote_rtp,
            Some("192.0.2.50:4000".parse().unwrap()),
            "{o:?}"
        );
    }
    // SRTP-only offers are not something we can answer.
    let savp = "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n";
    assert_eq!(negotiate(savp, &prefs()), Err(SdpError::NoCommonCodec));
}
