#!/usr/bin/env python3
"""Headless agent phone for end-to-end tests: pjsua2 (pjsip 2.15) registers with digest
auth (MD5 or SHA-256, whichever the registrar challenges with), rings, answers, talks,
hangs up, and can dial feature codes. Null audio device.

  pj_agent.py --registrar 127.0.0.1:5060 --user 8001 --password secret [--realm answerline]
              [--local-port 0] [--answer-after-ms 0|N|-1|reject:486]
              [--play in.wav] [--record out.wav] [--headers-out invite.json]
              [--hangup-after-ms 0] [--dial '*21' ...] [--duration-s 30]
              [--transfer-to senior --transfer-after-ms 3000]
              [--hold-after-ms N --hold-for-ms M]

Without --registrar it registers nowhere and just answers calls sent to --local-port.

stdout, one event a line, flushed (everything else goes to stderr):
  REGISTERED <code>        the registrar accepted us (again after a failure)
  REGISTER_FAILED <code>   it refused, or never answered (code 408)
  INCOMING <sip-call-id>   an INVITE arrived
  ANSWERED                 an incoming call was answered and ACKed
  DISCONNECTED <code>      a call ended (the INVITE's last status code: 200 after a
                           talk, 486/603 when we rejected, 487 when the caller gave up)
  DIAL_RESULT <code>       final answer to a --dial (200 when answered)
  TRANSFER <code>          the transfer's outcome the registrar NOTIFYed (sipfrag status;
                           the REFER's own code when it was refused)
  UNREGISTERED <code>      at exit, when we had registered
  HELD rx=N / RESUMED rx=N --hold-after-ms: the phone's hold key (re-INVITE a=sendonly)
                           is pressed, and M ms later resume (re-INVITE a=sendrecv); N is
                           the RTP packets received so far

--answer-after-ms: 0 answers at once, N rings N ms first, -1 rings forever,
'reject:CODE' declines with CODE. --hangup-after-ms N hangs up N ms after answer (0: wait
for the caller's BYE); it applies to dialled calls too. --dial may repeat: each target is
dialled (sip:<target>@<registrar>) after registering and after the previous one ended.
--headers-out writes the last INVITE received as JSON
{"request_uri": ..., "headers": [[name, value], ...]} (as received, continuation lines
unfolded). --play loops the WAV into each answered call; --record records what the agent
hears (the second call goes to out.2.wav, ...). --transfer-to T presses the phone's
transfer key (a blind REFER to sip:T@<registrar>) --transfer-after-ms after answering; it
may repeat: the next target is tried that long after a transfer failed. Exits after --duration-s or on
SIGTERM/SIGINT, un-registering first.
"""
import argparse, json, os, signal, sys, time

import pjsua2 as pj


def load_digests():
    """The pjsua2-python 2.15.1 wheel bundles OpenSSL 1.0.2, where EVP_get_digestbyname()
    finds nothing until OpenSSL_add_all_digests() ran; pjsip calls that only when it sets
    up TLS, so without this every digest challenge (even MD5) fails with "The algorithm
    (MD5) referenced by algorithm_type is not supported" and REGISTER stays at 401."""
    import ctypes, glob
    libs = os.path.join(os.path.dirname(pj.__file__), '..', 'pjsua2_python.libs')
    for path in glob.glob(os.path.join(libs, 'libcrypto*.so*')):
        lib = ctypes.CDLL(path)    # the copy pjsua2 already loaded, by its exact path
        init = getattr(lib, 'OpenSSL_add_all_digests', None)
        if init is not None:
            init()


# pjlib logs to the process's stdout before any config applies: fd 1 goes to stderr and
# our events to a private copy of the real stdout, so stdout holds events only.
_events = os.fdopen(os.dup(1), 'w', buffering=1)
os.dup2(2, 1)


def out(line):
    _events.write(line + '\n')
    _events.flush()


def parse_headers(whole):
    """(request_uri, [[name, value], ...]) from a SIP message as received."""
    head = whole.replace('\r\n', '\n').split('\n\n', 1)[0]
    lines = head.split('\n')
    parts = lines[0].split(' ')
    request_uri = parts[1] if len(parts) >= 3 else ''
    headers = []
    for line in lines[1:]:
        if line[:1] in (' ', '\t') and headers:
            headers[-1][1] += ' ' + line.strip()
        elif ':' in line:
            name, value = line.split(':', 1)
            headers.append([name.strip(), value.strip()])
    return request_uri, headers


def header(headers, *names):
    for n, v in headers:
        if n.lower() in names:
            return v
    return None


class AgentCall(pj.Call):
    def __init__(self, app, acc, call_id=pj.PJSUA_INVALID_ID, dialled=False):
        super().__init__(acc, call_id)
        self.app = app
        self.dialled = dialled
        self.answer_at = None
        self.answered_at = None
        self.ended = False
        self.reported = False
        self.rec = None
        self.player = None
        self.xfers = list(app.args.transfer_to)
        self.xfer_at = None       # when to press transfer next; None: not before the answer
        self.hold_base = None     # when the call was answered, for --hold-after-ms
        self.hold_state = None    # None, 'held', 'resumed'

    def onCallTransferStatus(self, prm):
        code = int(prm.statusCode)
        if prm.finalNotify or code >= 200:
            out(f'TRANSFER {code}')
            prm.cont = False
            if not 200 <= code < 300 and self.xfers:
                self.xfer_at = time.time() + self.app.args.transfer_after_ms / 1000.0

    def onCallState(self, prm):
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.answered_at is None:
            self.answered_at = time.time()
            self.hold_base = self.answered_at
            self.xfer_at = self.answered_at + self.app.args.transfer_after_ms / 1000.0
            if self.dialled:
                self.report(200)
            else:
                out('ANSWERED')
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.ended:
            self.ended = True
            code = int(ci.lastStatusCode)
            if self.dialled:
                self.report(code)
            out(f'DISCONNECTED {code}')

    def rx_packets(self):
        """RTP packets received on the audio stream so far (-1 when unknown)."""
        try:
            ci = self.getInfo()
            for i, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                    return int(self.getStreamStat(i).rtcp.rxStat.pkt)
        except pj.Error:
            pass
        return -1

    def report(self, code):
        if not self.reported:
            self.reported = True
            out(f'DIAL_RESULT {code}')

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, mi in enumerate(ci.media):
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            am = self.getAudioMedia(i)
            a = self.app.args
            if a.record and self.rec is None:
                self.app.recordings += 1
                path = a.record
                if self.app.recordings > 1:
                    root, ext = os.path.splitext(a.record)
                    path = f'{root}.{self.app.recordings}{ext or ".wav"}'
                self.rec = pj.AudioMediaRecorder()
                self.rec.createRecorder(path)
            if a.play and self.player is None:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(a.play, 0)   # 0: loop until the call ends
            # (Re)connected on every activation: after hold and resume the call's media
            # comes back as a new conference port, unconnected.
            if self.rec is not None:
                am.startTransmit(self.rec)
            if self.player is not None:
                self.player.startTransmit(am)


class AgentAccount(pj.Account):
    def __init__(self, app):
        super().__init__()
        self.app = app
        self.registered = None    # None: no answer yet; True/False after one
        self.last_code = None

    def onRegState(self, prm):
        code = int(prm.code)
        ok = 200 <= code < 300 and prm.expiration > 0
        if self.app.unregistering:
            if 200 <= code < 300 and prm.expiration == 0:
                out(f'UNREGISTERED {code}')
            return
        if ok and self.registered is not True:
            out(f'REGISTERED {code}')
        elif not ok and (self.registered is not False or code != self.last_code):
            out(f'REGISTER_FAILED {code}')
        self.registered = ok
        self.last_code = code

    def onIncomingCall(self, prm):
        app = self.app
        uri, headers = parse_headers(prm.rdata.wholeMsg)
        if app.args.headers_out:
            tmp = app.args.headers_out + '.tmp'
            with open(tmp, 'w') as f:
                json.dump({'request_uri': uri, 'headers': headers}, f, ensure_ascii=False)
            os.replace(tmp, app.args.headers_out)
        out(f'INCOMING {header(headers, "call-id", "i") or "?"}')
        call = AgentCall(app, self, prm.callId)
        app.calls.append(call)
        mode = app.args.answer_after_ms
        op = pj.CallOpParam()
        if mode.startswith('reject:'):
            op.statusCode = int(mode.split(':', 1)[1])
            call.hangup(op)
            return
        ms = int(mode)
        if ms == 0:
            op.statusCode = 200
            call.answer(op)
            return
        op.statusCode = 180
        call.answer(op)
        if ms > 0:
            call.answer_at = time.time() + ms / 1000.0


class App:
    def __init__(self, args):
        self.args = args
        self.calls = []
        self.recordings = 0
        self.unregistering = False
        self.stop = False


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--registrar', help='host:port of the registrar (none: no REGISTER)')
    ap.add_argument('--domain', help='domain of our AOR (default: the registrar host)')
    ap.add_argument('--user', default='8001')
    ap.add_argument('--password', default='')
    ap.add_argument('--realm', default='answerline', help="digest realm, '*' for any")
    ap.add_argument('--expires', type=int, default=300)
    ap.add_argument('--local-port', type=int, default=0)
    ap.add_argument('--bind', default='127.0.0.1')
    ap.add_argument('--tcp', action='store_true')
    ap.add_argument('--answer-after-ms', default='0',
                    help="0 | N | -1 (ring forever) | reject:CODE")
    ap.add_argument('--play')
    ap.add_argument('--record')
    ap.add_argument('--headers-out')
    ap.add_argument('--hangup-after-ms', type=int, default=0)
    ap.add_argument('--dial', action='append', default=[])
    ap.add_argument('--duration-s', type=float, default=30.0)
    ap.add_argument('--transfer-to', action='append', default=[])
    ap.add_argument('--transfer-after-ms', type=int, default=3000)
    ap.add_argument('--hold-after-ms', type=int, default=0)
    ap.add_argument('--hold-for-ms', type=int, default=3000)
    ap.add_argument('--codec', choices=['PCMA', 'PCMU'], default='PCMA')
    ap.add_argument('--log-level', type=int, default=1)
    a = ap.parse_args()
    mode = a.answer_after_ms
    if not (mode.startswith('reject:') and mode[7:].isdigit()
            or mode.lstrip('-').isdigit() and int(mode) >= -1):
        ap.error('--answer-after-ms: 0, N, -1 or reject:CODE')
    if a.dial and not a.registrar:
        ap.error('--dial needs --registrar')

    app = App(a)

    def on_signal(*_):
        app.stop = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    load_digests()
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.logConfig.level = a.log_level
    cfg.logConfig.consoleLevel = a.log_level
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = 'answerline-tests/pj_agent'
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    ep.libInit(cfg)
    tc = pj.TransportConfig()
    tc.port = a.local_port
    tc.boundAddress = a.bind
    tid = ep.transportCreate(pj.PJSIP_TRANSPORT_TCP if a.tcp else pj.PJSIP_TRANSPORT_UDP, tc)
    ep.libStart()
    ep.audDevManager().setNullDev()
    # Like a desk phone: both G.711 laws (--codec first) and RFC 4733 events, nothing else.
    for c in ep.codecEnum2():
        cid = c.codecId
        ep.codecSetPriority(cid, 255 if cid.startswith(a.codec + '/') else
                            200 if cid.startswith(('PCMA/', 'PCMU/')) else
                            128 if cid.startswith('telephone-event') else 0)
    local = ep.transportGetInfo(tid).localName
    print(f'pj_agent: listening on {local}', file=sys.stderr, flush=True)

    ac = pj.AccountConfig()
    transport = ';transport=tcp' if a.tcp else ''
    if a.registrar:
        domain = a.domain or a.registrar.rsplit(':', 1)[0]
        ac.idUri = f'sip:{a.user}@{domain}'
        ac.regConfig.registrarUri = f'sip:{a.registrar}{transport}'
        ac.regConfig.timeoutSec = a.expires
        ac.regConfig.retryIntervalSec = 0      # a failure is reported, not retried behind our back
        ac.regConfig.unregWaitMsec = 2000
        # Plain password: pjsip derives HA1 for the algorithm the challenge names
        # (MD5, SHA-256, SHA-512-256 in 2.15).
        ac.sipConfig.authCreds.append(
            pj.AuthCredInfo('digest', a.realm, a.user, 0, a.password))
    else:
        ac.idUri = f'sip:{a.user}@{local}'
    # Loopback tests: keep the Contact and Via we were given, no re-REGISTER on "received".
    ac.natConfig.contactRewriteUse = 0
    ac.natConfig.viaRewriteUse = 0
    ac.natConfig.sdpNatRewriteUse = 0
    ac.natConfig.udpKaIntervalSec = 0
    # No re-INVITE after an answer listing several codecs: the far end is a test script.
    ac.mediaConfig.lockCodecEnabled = False
    acc = AgentAccount(app)
    acc.create(ac)

    dials = list(a.dial)
    dialling = None
    deadline = time.time() + a.duration_s
    while not app.stop and time.time() < deadline:
        ep.libHandleEvents(10)
        now = time.time()
        for call in app.calls:
            if call.ended:
                continue
            if call.answer_at is not None and now >= call.answer_at:
                call.answer_at = None
                op = pj.CallOpParam()
                op.statusCode = 200
                call.answer(op)
            if call.xfers and not call.dialled and call.xfer_at is not None and now >= call.xfer_at:
                call.xfer_at = None
                target = call.xfers.pop(0)
                try:
                    call.xfer(f'sip:{target}@{a.registrar}{transport}', pj.CallOpParam(True))
                except pj.Error as e:
                    print(f'pj_agent: transfer: {e.info()}', file=sys.stderr, flush=True)
                    out('TRANSFER 0')
            if a.hold_after_ms > 0 and not call.dialled and call.hold_base is not None:
                t = now - call.hold_base
                try:
                    if call.hold_state is None and t >= a.hold_after_ms / 1000.0:
                        call.hold_state = 'held'
                        out(f'HELD rx={call.rx_packets()}')
                        call.setHold(pj.CallOpParam(True))
                    elif (call.hold_state == 'held'
                          and t >= (a.hold_after_ms + a.hold_for_ms) / 1000.0):
                        call.hold_state = 'resumed'
                        prm = pj.CallOpParam(True)
                        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
                        out(f'RESUMED rx={call.rx_packets()}')
                        call.reinvite(prm)
                except pj.Error as e:
                    print(f'pj_agent: hold: {e.info()}', file=sys.stderr, flush=True)
            if (a.hangup_after_ms > 0 and call.answered_at is not None
                    and now >= call.answered_at + a.hangup_after_ms / 1000.0):
                call.answered_at = float('inf')
                call.hangup(pj.CallOpParam(True))
        if dials and (dialling is None or dialling.ended) and acc.registered is not None:
            target = dials.pop(0)
            dialling = AgentCall(app, acc, dialled=True)
            app.calls.append(dialling)
            try:
                dialling.makeCall(f'sip:{target}@{a.registrar}{transport}', pj.CallOpParam(True))
            except pj.Error as e:
                print(f'pj_agent: dial {target}: {e.info()}', file=sys.stderr, flush=True)
                dialling.ended = True
                out('DIAL_RESULT 0')

    ep.hangupAllCalls()
    end = time.time() + 1
    while time.time() < end:
        ep.libHandleEvents(10)
    if a.registrar and acc.registered:
        app.unregistering = True
        try:
            acc.setRegistration(False)
        except pj.Error:
            pass
        end = time.time() + 2
        while time.time() < end and app.unregistering:
            ep.libHandleEvents(10)
            if not acc.getInfo().regIsActive:
                break
        end = time.time() + 0.3
        while time.time() < end:
            ep.libHandleEvents(10)
    for c in app.calls:
        c.rec = None
        c.player = None
    # Every Call object must be gone before libDestroy: its destructor calls
    # pjsua_call_set_user_data, which asserts once pjsua is torn down (2.15.1).
    app.calls = []
    dialling = call = c = None
    acc.shutdown()
    del acc
    ep.libDestroy()


if __name__ == '__main__':
    main()
