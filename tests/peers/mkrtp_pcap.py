#!/usr/bin/env python3
"""Write RTP test media for SIPp (standard library only).

pcap mode: one RTP stream (one SSRC, continuous seq/timestamp) of G.711 caller audio with
RFC 4733 DTMF events at given times, for SIPp's play_pcap_audio:

  mkrtp_pcap.py OUT.pcap --digits "1@1.0,#@2.5" [--law ulaw|alaw] [--duration 5.0]
                [--event-ms 100] [--pt-event 101] [--audio tone|silence|noise] [--inband]

  --digits: comma-separated DIGIT@SECONDS, or a bare string ("12#") for digits every
  --gap-ms starting at --lead-ms. The end packet of each event is sent three times with the
  same sequence number (RFC 4733 2.5.1.4), like SIPp's bundled pcaps.

raw mode: --raw OUT.ulaw writes headerless 8 kHz G.711 audio for SIPp's rtp_stream.

Addresses and ports inside the pcap do not matter: SIPp rewrites them (destination from the
callee's SDP, source from [media_port]).
"""
import argparse, math, random, struct, sys

EVENTS = {**{str(d): d for d in range(10)}, '*': 10, '#': 11, 'A': 12, 'B': 13, 'C': 14, 'D': 15}
DTMF_FREQ = {'1': (697, 1209), '2': (697, 1336), '3': (697, 1477), 'A': (697, 1633),
             '4': (770, 1209), '5': (770, 1336), '6': (770, 1477), 'B': (770, 1633),
             '7': (852, 1209), '8': (852, 1336), '9': (852, 1477), 'C': (852, 1633),
             '*': (941, 1209), '0': (941, 1336), '#': (941, 1477), 'D': (941, 1633)}
RATE = 8000
FRAME = 160  # 20 ms


def lin2ulaw(s):
    BIAS, CLIP = 0x84, 32635
    sign = 0x80 if s < 0 else 0
    s = min(abs(s), CLIP) + BIAS
    exp, mask = 7, 0x4000
    while exp > 0 and not (s & mask):
        exp -= 1
        mask >>= 1
    mant = (s >> (exp + 3)) & 0x0F
    return (~(sign | (exp << 4) | mant)) & 0xFF


def lin2alaw(s):
    sign = 0x80 if s >= 0 else 0
    if s < 0:
        s = min(-s - 1, 32767)  # one's complement magnitude, as in G.711 reference code
    s = min(s, 32767) >> 3
    if s < 32:
        v = s >> 1
    else:
        seg = 1
        while (s >> (seg + 4)) > 1 and seg < 7:
            seg += 1
        v = (seg << 4) | ((s >> seg) & 0x0F)
    return (v | sign) ^ 0x55


WAV_AT = [0.0]
WAV = []  # 8 kHz mono 16-bit samples of --wav, played from --wav-at seconds


def samples(kind, n, start):
    """Caller audio: a quiet 440 Hz tone (easy to see in captures), silence or noise;
    the --wav recording (speech) over silence where it plays."""
    if WAV:
        at = int(WAV_AT[0] * RATE)
        return [WAV[start + i - at] if 0 <= start + i - at < len(WAV) else 0 for i in range(n)]
    if kind == 'silence':
        return [0] * n
    if kind == 'noise':
        return [random.randint(-300, 300) for _ in range(n)]
    return [int(1000 * math.sin(2 * math.pi * 440 * (start + i) / RATE)) for i in range(n)]


def dtmf_tone(digit, n, amp=8000):
    f1, f2 = DTMF_FREQ[digit]
    return [int(amp * (math.sin(2 * math.pi * f1 * i / RATE) + math.sin(2 * math.pi * f2 * i / RATE)) / 2)
            for i in range(n)]


def ip_checksum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(payload, sport=40000, dport=10000, src=b'\x7f\x00\x00\x01', dst=b'\x7f\x00\x00\x01'):
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    iph = struct.pack('!BBHHHBBH4s4s', 0x45, 0xB8, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, dst)
    iph = iph[:10] + struct.pack('!H', ip_checksum(iph)) + iph[12:]
    return b'\x00\x11\x22\x33\x44\x55' + b'\x66\x77\x88\x99\xaa\xbb' + b'\x08\x00' + iph + udp


def parse_digits(spec, lead_ms, gap_ms):
    out = []
    if '@' in spec:
        for item in spec.split(','):
            d, t = item.strip().split('@')
            out.append((d, int(round(float(t) * 1000))))
    else:
        for i, d in enumerate(spec):
            out.append((d, lead_ms + i * gap_ms))
    for d, _ in out:
        if d not in EVENTS:
            sys.exit(f'bad digit {d!r}')
    return sorted(out, key=lambda x: x[1])


def build(a):
    enc = lin2ulaw if a.law == 'ulaw' else lin2alaw
    pt_audio = 0 if a.law == 'ulaw' else 8
    digits = parse_digits(a.digits, a.lead_ms, a.gap_ms)
    total_ms = max(a.duration * 1000, (digits[-1][1] + a.event_ms + 500) if digits else 0)
    nframes = int(total_ms) // 20
    ssrc = a.ssrc if a.ssrc is not None else random.getrandbits(32)
    seq = random.randint(0, 30000)
    ts0 = random.randint(0, 1 << 30)
    pkts = []
    ev_frames = max(1, a.event_ms // 20)
    # frame index -> (digit, k-th frame of the event)
    ev_at = {}
    for d, t in digits:
        f0 = t // 20
        for k in range(ev_frames):
            ev_at[f0 + k] = (d, k, f0)
    marker = True
    for f in range(nframes):
        t_us = f * 20000
        ts = ts0 + f * FRAME
        if f in ev_at and not a.inband:
            d, k, f0 = ev_at[f]
            end = k == ev_frames - 1
            pl = struct.pack('!BBH', EVENTS[d], (0x80 if end else 0) | 10, (k + 1) * FRAME)
            ev_ts = ts0 + f0 * FRAME
            for r in range(3 if end else 1):
                hdr = struct.pack('!BBHII', 0x80, (0x80 if k == 0 else 0) | a.pt_event, seq & 0xFFFF, ev_ts & 0xFFFFFFFF, ssrc)
                pkts.append((t_us + r * 50, frame(hdr + pl)))
            seq += 1
            marker = True  # audio after an event starts a new talkspurt
            continue
        if f in ev_at:  # in-band tone
            pcm = dtmf_tone(ev_at[f][0], FRAME)
        else:
            pcm = samples(a.audio, FRAME, f * FRAME)
        hdr = struct.pack('!BBHII', 0x80, (0x80 if marker else 0) | pt_audio, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        pkts.append((t_us, frame(hdr + bytes(enc(s) for s in pcm))))
        seq += 1
        marker = False
    return pkts, ssrc, total_ms


def write_pcap(path, pkts):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # DLT_EN10MB
        base = 1_700_000_000
        for t_us, b in pkts:
            f.write(struct.pack('<IIII', base + t_us // 1_000_000, t_us % 1_000_000, len(b), len(b)))
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out')
    ap.add_argument('--raw', action='store_true', help='write raw G.711 (for rtp_stream) instead of a pcap')
    ap.add_argument('--digits', default='', help='"1@1.0,#@2.5" or "12#"')
    ap.add_argument('--law', choices=['ulaw', 'alaw'], default='ulaw')
    ap.add_argument('--duration', type=float, default=0.0, help='seconds of stream (at least covers the digits)')
    ap.add_argument('--lead-ms', type=int, default=500)
    ap.add_argument('--gap-ms', type=int, default=400)
    ap.add_argument('--event-ms', type=int, default=100)
    ap.add_argument('--pt-event', type=int, default=101)
    ap.add_argument('--audio', choices=['tone', 'silence', 'noise'], default='tone')
    ap.add_argument('--inband', action='store_true', help='DTMF as in-band tones instead of RFC 4733')
    ap.add_argument('--wav', help='8 kHz mono 16-bit WAV (speech) to send as the caller audio')
    ap.add_argument('--wav-at', type=float, default=0.5, help='seconds into the stream the WAV starts')
    ap.add_argument('--ssrc', type=lambda x: int(x, 0), default=None)
    a = ap.parse_args()
    if a.wav:
        import wave
        with wave.open(a.wav) as w:
            if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                sys.exit(f'{a.wav}: need 8 kHz mono 16-bit (sox in.wav -r 8000 -c 1 -b 16 out.wav)')
            raw = w.readframes(w.getnframes())
        WAV.extend(struct.unpack('<%dh' % (len(raw) // 2), raw))
        WAV_AT[0] = a.wav_at
        a.duration = max(a.duration, a.wav_at + len(WAV) / RATE + 1.0)
    if a.raw:
        enc = lin2ulaw if a.law == 'ulaw' else lin2alaw
        n = int(max(a.duration, 1.0) * RATE)
        open(a.out, 'wb').write(bytes(enc(s) for s in samples(a.audio, n, 0)))
        print(f'{a.out}: {n} samples raw {a.law}')
        return
    pkts, ssrc, total_ms = build(a)
    write_pcap(a.out, pkts)
    print(f'{a.out}: {len(pkts)} packets, {total_ms / 1000:.2f} s, ssrc=0x{ssrc:08x}')


if __name__ == '__main__':
    main()
