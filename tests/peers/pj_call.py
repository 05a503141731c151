#!/usr/bin/env python3
"""Headless pjsua2 caller for end-to-end tests: a real SIP stack (pjsip 2.15) with jitter
buffer and conference bridge, as a softphone would run it.

  pj_call.py sip:10010@127.0.0.1:5060 [--record out.wav] [--play in.wav]
             [--digits "1@6.0,9@14.0"] [--hangup 20] [--codec PCMA|PCMU] [--port 0]
             [--from 13800138000] [--tcp]

Dials the URI, records what it hears (8 kHz 16-bit mono WAV, timed from call setup), plays
--play into the call, sends RFC 4733 digits at the given seconds after the call was answered,
hangs up --hangup seconds after answer unless the far end hangs up first. Uses the null audio
device. Prints one JSON line: {"answered", "codes", "setup_ms", "duration_s", "hangup_by",
"last_code", "last_reason", "digits_sent"} and exits 0 if the call was answered.
"""
import argparse, json, sys, time

import pjsua2 as pj


def parse_digits(spec):
    out = []
    for item in filter(None, (s.strip() for s in spec.split(','))):
        d, t = item.split('@')
        out.append((float(t), d))
    return sorted(out)


class Call(pj.Call):
    def __init__(self, acc, args):
        super().__init__(acc)
        self.args = args
        self.codes = []
        self.rec = None
        self.player = None
        self.answered_at = None
        self.ended_at = None
        self.last_code = None
        self.last_reason = ''

    def onCallState(self, prm):
        ci = self.getInfo()
        code = ci.lastStatusCode
        if code and (not self.codes or self.codes[-1] != code):
            self.codes.append(int(code))
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.answered_at is None:
            self.answered_at = time.time()
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended_at = time.time()
            self.last_code = int(code)
            self.last_reason = ci.lastReason

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            am = self.getAudioMedia(i)
            if self.args.record and self.rec is None:
                self.rec = pj.AudioMediaRecorder()
                self.rec.createRecorder(self.args.record)
                am.startTransmit(self.rec)
            if self.args.play and self.player is None:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(self.args.play, pj.PJMEDIA_FILE_NO_LOOP)
                self.player.startTransmit(am)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('uri')
    ap.add_argument('--record')
    ap.add_argument('--play')
    ap.add_argument('--digits', default='')
    ap.add_argument('--hangup', type=float, default=10.0, help='seconds after answer')
    ap.add_argument('--answer-timeout', type=float, default=10.0)
    ap.add_argument('--codec', choices=['PCMA', 'PCMU'], default='PCMA')
    ap.add_argument('--port', type=int, default=0, help='local SIP port (0: any)')
    ap.add_argument('--from', dest='from_user', default='13800138000')
    ap.add_argument('--tcp', action='store_true')
    ap.add_argument('--log-level', type=int, default=1)
    a = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.logConfig.level = a.log_level
    cfg.logConfig.consoleLevel = a.log_level
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = 'answerline-tests/pjsua2'
    # 8 kHz bridge: no resampling between G.711 and the recording
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    ep.libInit(cfg)
    tc = pj.TransportConfig()
    tc.port = a.port
    tc.boundAddress = '127.0.0.1'
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_TCP if a.tcp else pj.PJSIP_TRANSPORT_UDP, tc)
    ep.libStart()
    ep.audDevManager().setNullDev()
    for c in ep.codecEnum2():
        ep.codecSetPriority(c.codecId, 255 if c.codecId.startswith(a.codec + '/') else
                            (128 if c.codecId.startswith('telephone-event') else 0))
    local_port = ep.transportGetInfo(tid).localName.split(':')[-1]
    acc = pj.Account()
    ac = pj.AccountConfig()
    ac.idUri = f'sip:{a.from_user}@127.0.0.1:{local_port}'
    acc.create(ac)

    call = Call(acc, a)
    prm = pj.CallOpParam(True)
    t0 = time.time()
    call.makeCall(a.uri + (';transport=tcp' if a.tcp and 'transport=' not in a.uri else ''), prm)

    def pump(until, stop=lambda: False):
        while time.time() < until and call.ended_at is None and not stop():
            ep.libHandleEvents(10)

    pump(t0 + a.answer_timeout, lambda: call.answered_at is not None)
    hangup_by = 'remote'
    sent = ''
    if call.answered_at is not None and call.ended_at is None:
        for at, d in parse_digits(a.digits):
            pump(call.answered_at + at)
            if call.ended_at is not None:
                break
            call.dialDtmf(d)   # RFC 4733 when telephone-event was negotiated (pjsua default)
            sent += d
        pump(call.answered_at + a.hangup)
        if call.ended_at is None:
            hangup_by = 'local'
            call.hangup(pj.CallOpParam(True))
    elif call.ended_at is None:
        hangup_by = 'local'
        call.hangup(pj.CallOpParam(True))
    pump(time.time() + 3)

    out = {
        'answered': call.answered_at is not None,
        'codes': call.codes,
        'setup_ms': round((call.answered_at - t0) * 1000) if call.answered_at else None,
        'duration_s': round(((call.ended_at or time.time()) - call.answered_at), 3) if call.answered_at else 0,
        'hangup_by': hangup_by if call.ended_at else 'none',
        'last_code': call.last_code,
        'last_reason': call.last_reason,
        'digits_sent': sent,
    }
    call.rec = None
    call.player = None
    del call
    acc.shutdown()
    del acc
    ep.libDestroy()
    print(json.dumps(out), flush=True)
    sys.exit(0 if out['answered'] else 1)


if __name__ == '__main__':
    main()
