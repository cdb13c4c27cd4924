#!/usr/bin/env python3
"""End-to-end tests of the board (console, state store, sleepy mode) against
the real cluster head on 127.0.0.1, with the same script for two programs:

  --kind host  firmware/build/host/iotguard-board (the board on POSIX)
  --kind emu   firmware/build/emu/IoTGuard (the Arduino sketch compiled with
               the ESP8266 core's host emulator)

Each board is driven through a pseudo-terminal as a person would through the
serial monitor: it types commands and reads event lines. A reboot is a clean
stop (SIGTERM: the emulator saves its flash then) and a new start in the same
directory. Two boards and a Go device join, verify, get sessions and talk both
ways, a forged hello is refused, a reboot restores instead of rejoining, a lost
RTC memory resumes at the sequence high-water mark, one board runs behind the
lossy relay, a sleepy board wakes three times (and, on the host, its clock
after a reset during a deep sleep is not ahead), a /talk answer recorded on the
path and replayed to a board's later hello is refused (a ticket is used
once), and a board leaves. Prints
"ok"/"FAIL" per check and ends with "N passed, N failed". Every wait is
bounded; all traffic is on 127.0.0.1.

usage: board_e2e.py --kind host|emu --board PATH --dev PATH --go PATH [--out DIR]
"""
import argparse
import base64
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import tty
import time
import urllib.request

passed = failed = 0
T0 = time.time()


def ok(name):
    global passed
    passed += 1
    print(f"ok   {name}", flush=True)


def bad(name, detail=""):
    global failed
    failed += 1
    print(f"FAIL {name}", flush=True)
    for line in str(detail).splitlines()[-25:]:
        print(f"     | {line}", flush=True)


def check(name, cond, detail=""):
    (ok if cond else lambda n: bad(n, detail))(name)
    return cond


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Board:
    """One board program on a pseudo-terminal, with its flash in a directory."""

    running = []  # every board whose terminal is open: all are read while any is waited for

    def __init__(self, name, args, kind, binary, root):
        self.name, self.kind, self.binary = name, kind, binary
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.args = args
        self.proc = None
        self.master = None
        self.lines = []   # every line printed, all runs
        self.pos = 0      # first line not yet consumed by expect()
        self.buf = b""
        self.log = open(os.path.join(root, name + ".log"), "a")

    def cmd(self, extra=()):
        if self.kind == "emu":
            # -s 0: no port shift; -S 0: no SPIFFS; -L 256: LittleFS of 256 KB in -P DIR
            return [self.binary, "-s", "0", "-S", "0", "-L", "256", "-P", self.dir]
        return [self.binary, "--state", self.dir] + list(self.args) + list(extra)

    def start(self, extra=()):
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes as a UART gets them
        self.master = master
        self.proc = subprocess.Popen(self.cmd(extra), stdin=slave, stdout=slave,
                                     stderr=self.log, cwd=self.dir, start_new_session=True)
        os.close(slave)
        Board.running.append(self)
        self.log.write(f"--- start {' '.join(self.cmd(extra))}\n")
        self.log.flush()

    def _pump(self, timeout):
        """Reads what the board printed within @timeout s, and whatever the other
        boards printed meanwhile (a board whose output is not read stops when
        its terminal's buffer is full). @return False at this board's end."""
        if self.master is None:
            return False
        others = [b for b in Board.running if b is not self and b.master is not None]
        r, _, _ = select.select([self.master] + [b.master for b in others], [], [], timeout)
        for b in others:
            if b.master in r:
                b._read()
        return self._read() if self.master in r else True

    def _read(self):
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the program closed its terminal
            data = b""
        if not data:
            return False
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            text = line.decode(errors="replace").strip("\r")
            self.lines.append(text)
            self.log.write(text + "\n")
        self.log.flush()
        return True

    def _drain(self):
        """Reads the rest of what an ended program printed, then closes its terminal."""
        for _ in range(1000):
            if not self._pump(0.01):
                break
        if self.master is not None:
            os.close(self.master)
            self.master = None
        if self in Board.running:
            Board.running.remove(self)

    def skip(self, wait=0.3):
        """Reads for @wait seconds and forgets everything printed so far."""
        end = time.time() + wait
        while time.time() < end:
            self._pump(0.05)
        self.pos = len(self.lines)

    def send(self, line):
        data = line.encode() + b"\n"
        end = time.time() + 10
        while data and time.time() < end and self.proc.poll() is None and self.master is not None:
            _, w, _ = select.select([], [self.master], [], 0.05)
            if w:
                data = data[os.write(self.master, data):]
            self._pump(0)  # never let its output fill up while we type

    def expect(self, pattern, timeout=20.0):
        """Waits for a line matching pattern (a regex); returns the match or None."""
        rx = re.compile(pattern)
        end = time.time() + timeout
        while True:
            for i in range(self.pos, len(self.lines)):
                m = rx.search(self.lines[i])
                if m:
                    self.pos = i + 1
                    return m
            if time.time() > end:
                return None
            if not self._pump(0.05):
                if all(not rx.search(l) for l in self.lines[self.pos:]):
                    return None


    def run(self, line, pattern, timeout=20.0):
        """Types a command and waits for its answer: what was printed before does not count."""
        self._pump(0)
        self.pos = len(self.lines)
        self.send(line)
        return self.expect(pattern, timeout)

    def tail(self, n=15):
        return "\n".join(self.lines[-n:])

    def wait_exit(self, timeout=30.0):
        end = time.time() + timeout
        while self.proc.poll() is None and time.time() < end:
            self._pump(0.05)
        if self.proc.poll() is None:
            self.stop()
            return None
        self._drain()
        return self.proc.returncode

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # a clean stop: the emulator saves its flash
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._drain()

    def reboot(self, extra=()):
        self.stop()
        self.start(extra)

    def rtc_path(self):
        return os.path.join(self.dir, "rtcmem" if self.kind == "emu" else "rec-3")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["host", "emu"], required=True)
    ap.add_argument("--board", required=True)
    ap.add_argument("--dev", required=True, help="iotguard-dev (the lossy relay)")
    ap.add_argument("--go", required=True, help="the Go CLI")
    ap.add_argument("--out", help="where to keep the logs (default: a temporary directory)")
    a = ap.parse_args()
    a.board, a.dev, a.go = (os.path.abspath(x) for x in (a.board, a.dev, a.go))
    root = os.path.abspath(a.out) if a.out else tempfile.mkdtemp(prefix="iotguard-e2e.")
    if a.out:
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
    procs, boards = [], []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))  # `timeout`: stop the boards and servers too
    try:
        scenario(a, root, procs, boards)
    finally:
        for b in boards:
            b.stop()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    print(f"board-e2e ({a.kind}): {passed} passed, {failed} failed in {time.time() - T0:.0f} s "
          f"(logs in {root})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def go(a, root, *args, timeout=60):
    r = subprocess.run([a.go, *args], capture_output=True, text=True, timeout=timeout, cwd=root)
    return r.returncode, r.stdout + r.stderr


def metric(metrics, name):
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode()
    m = re.search("^" + re.escape(name) + r" (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def serve(a, root, procs, name, port, extra=()):
    metrics = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    log = open(os.path.join(root, name + ".log"), "w")
    p = subprocess.Popen([a.go, "serve", "--listen", f"127.0.0.1:{port}", "--data",
                          os.path.join(root, name), "--cluster-id", "lab-1", "--position",
                          "48.8566,2.3522", "--radius", "1000", "--metrics", metrics, *extra],
                         stdout=log, stderr=log)
    procs.append(p)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{metrics}/metrics", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return p, metrics


def configure(b, ch_port, bid, port, pos="48.8570,2.3530", more=(), admit=None):
    """First boot of a board: its key, then the settings a person types, then
    what admits it (PROTOCOL.md §3.5): admit(bid, pem_path) gets the board's
    public key, as its console prints it, and returns more lines to type (a
    'credential' line) after it enrolled or issued what it needs."""
    b.start()
    check(f"{b.name}: first boot makes its device key", b.expect(r"^ok new device key made and stored"),
          b.tail())
    b.expect(r"^ok iotguard board ", 10)
    b.skip()
    for line in ["set wifi.ssid lab", "set wifi.pass emulated-lan", f"set server 127.0.0.1:{ch_port}",
                 f"set position {pos}", f"set id {bid}", f"set port {port}", *more]:
        if not b.run(line, r"^(ok|error)"):
            bad(f"{b.name}: {line}", b.tail())
            return False
        if b.lines[b.pos - 1].startswith("error"):
            bad(f"{b.name}: {line}", b.tail())
            return False
    ok(f"{b.name}: settings typed on the console")
    if admit:
        m = b.run("pubkey", r"^pubkey (\S+)$")
        if not m:
            bad(f"{b.name}: pubkey", b.tail())
            return False
        pem = os.path.join(b.dir, bid + ".pub")
        with open(pem, "w") as f:
            body = m.group(1)
            f.write("-----BEGIN PUBLIC KEY-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) +
                    "\n-----END PUBLIC KEY-----\n")
        for line in admit(bid, pem):
            if not b.run(line, r"^(ok|error)") or b.lines[b.pos - 1].startswith("error"):
                bad(f"{b.name}: {line[:40]}", b.tail())
                return False
    b.stop()  # they take effect at the next boot
    return True


def admission(a, root):
    """The operator's two ways in (PROTOCOL.md §3.5): a fleet key whose
    public key the CH is given, and enrollment of a board's public key.
    Returns the CH's --fleet-key flag, an admit function enrolling on the CH
    whose data directory is named, and one giving a fleet credential."""
    rc, out = go(a, root, "fleet", "keygen", "--out", "fleet.pem")
    check("operator: fleet key made", rc == 0, out)
    with open(os.path.join(root, "fleet.pub"), "w") as f:
        f.write(out[out.index("-----BEGIN PUBLIC KEY-----"):])

    def enroll(data):
        def admit(bid, pem):
            rc, out = go(a, root, "enroll", "add", "--data", os.path.join(root, data), "--id", bid, "--key", pem)
            check(f"operator: {bid} enrolled by its public key", rc == 0, out)
            return []
        return admit

    def credential(bid, pem):
        cred = os.path.join(root, bid + ".cred")
        rc, out = go(a, root, "fleet", "issue", "--fleet", "fleet.pem", "--key", pem, "--id", bid, "--out", cred)
        check(f"operator: fleet credential issued for {bid}", rc == 0, out)
        with open(cred) as f:
            return ["credential " + f.read().strip()]
    return ["--fleet-key", os.path.join(root, "fleet.pub")], enroll, credential


JOIN = "iotguard_coap_requests_total{code=\"2.01\",resource=\"/join\",transport=\"udp\"}"
CLUSTER = "iotguard_coap_requests_total{code=\"%s\",resource=\"/cluster\",transport=\"udp\"}"
PROOF = "iotguard_coap_requests_total{code=\"%s\",resource=\"/ledger/proof\",transport=\"udp\"}"


def scenario(a, root, procs, boards):
    ch_port = free_port()
    fleet_flag, enroll, credential = admission(a, root)
    ch, metrics = serve(a, root, procs, "ch", ch_port, fleet_flag)
    pa, pb, pc, pg = free_port(), free_port(), free_port(), free_port()

    # board-a is enrolled by its public key, board-b carries a fleet credential
    A = Board("board-a", [], a.kind, a.board, root)
    B = Board("board-b", [], a.kind, a.board, root)
    boards += [A, B]
    if not configure(A, ch_port, "board-a", pa, admit=enroll("ch")) or \
            not configure(B, ch_port, "board-b", pb, admit=credential):
        return

    # the settings take effect at the next boot: it joins once
    A.start()
    m = A.expect(r"^joined cluster=lab-1 id=board-a block=(\d+) expires=\d+ log=(\d+)", 30)
    check("board-a: boots, joins, its join proven in the CH's log", m and int(m.group(2)) > int(m.group(1)),
          A.tail())
    m = A.run("pubkey", r"^pubkey (\S+)$")
    der = base64.b64decode(m.group(1)) if m else b""
    check("pubkey: the PEM body of a P-256 SubjectPublicKeyInfo on one line",
          len(der) == 91 and der.startswith(bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")),
          A.tail())
    for line in ["set port 0", "set position 91,0", "set server 1.2.3:4", "frob", "x" * 500]:
        check(f"console refuses {line[:24]!r} with an error line", A.run(line, r"^error"), A.tail())
    check("console: a malformed line changes nothing", A.run("show", r"^show port (\d+)$") and
          A.lines[A.pos - 1] == f"show port {pa}", A.tail())
    B.start()
    check("board-b: boots, joins with its fleet credential", B.expect(r"^joined cluster=lab-1 id=board-b block=\d+", 30),
          B.tail())
    check("board-b: its credential goes in every join", B.run("show", r"^show credential \S+ \(sent in every join\)$"),
          B.tail())
    # each join's GET /cluster is padded to 128 bytes and answered at once, with
    # the Echo the join signs (PROTOCOL.md §2): no 4.01 + Echo and repeat
    n401, n205 = metric(metrics, CLUSTER % "4.01"), metric(metrics, CLUSTER % "2.05")
    check(f"the boards' padded GET /cluster answered at once ({n205} 2.05, {n401} 4.01)", n401 == 0 and n205 >= 2)
    # ... and each join's log check carries the Echo the join signed, made for
    # the board's address (PROTOCOL.md §9.2): answered at once too
    n401, n205 = metric(metrics, PROOF % "4.01"), metric(metrics, PROOF % "2.05")
    check(f"the boards' log checks answered at once ({n205} 2.05, {n401} 4.01)", n401 == 0 and n205 == 2)
    check("verify: board-a verifies board-b", A.run("verify board-b", r"^verified board-b block=\d+"), A.tail())
    check("verify: an unknown ID is a warning", A.run("verify ghost", r"^warning ghost unknown"), A.tail())

    # messages both ways between the two boards
    check("talk: board-b -> board-a, a new session", B.run(f"talk board-a 127.0.0.1:{pa} hello from b",
          r"^sent board-a reply=ok session=new", 30), B.tail())
    check("board-a: the CH accepted board-b's talk proof", A.expect(r"^verified board-b$", 10), A.tail())
    check("board-a received the message", A.expect(r"^received board-b hello from b$", 10), A.tail())
    check("talk: board-a -> board-b", A.run(f"talk board-b 127.0.0.1:{pb} hi from a",
          r"^sent board-b reply=ok session=new", 30), A.tail())
    check("board-b received board-a's message", B.expect(r"^received board-a hi from a$", 10), B.tail())
    check("talk: the session is kept for the next message", B.run(f"talk board-a 127.0.0.1:{pa} again",
          r"^sent board-a reply=ok session=kept", 30), B.tail())

    # a Go device both ways, and an impostor
    go(a, root, "device", "keygen", "--id", "go-one", "--out", "go.json")
    go(a, root, "fleet", "issue", "--fleet", "fleet.pem", "--key", "go.json")
    rc, out = go(a, root, "device", "join", "--server", f"coap://127.0.0.1:{ch_port}", "--key", "go.json",
                 "--position", "48.8566,2.3522")
    check("Go device joins", rc == 0, out)
    rc, out = go(a, root, "device", "send", "--server", f"coap://127.0.0.1:{ch_port}", "--key", "go.json",
                 "--peer", "board-a", "--peer-addr", f"127.0.0.1:{pa}", "--message", "hello from Go")
    check("Go device -> board-a: encrypted reply", rc == 0 and "reply: ok" in out, out)
    check("board-a received the Go device's message", A.expect(r"^received go-one hello from Go$", 10), A.tail())
    glog = open(os.path.join(root, "go-listen.log"), "w")
    gl = subprocess.Popen([a.go, "device", "listen", "--server", f"coap://127.0.0.1:{ch_port}", "--key",
                           os.path.join(root, "go.json"), "--listen", f"127.0.0.1:{pg}", "--reply",
                           "ack from Go"], stdout=glog, stderr=glog)
    procs.append(gl)
    time.sleep(0.5)
    check("board-a -> Go device: encrypted reply", A.run(f"talk go-one 127.0.0.1:{pg} hello Go",
          r"^sent go-one reply=ack from Go", 30), A.tail())
    go(a, root, "device", "keygen", "--id", "impostor", "--out", "imp.json")
    rc, out = go(a, root, "device", "send", "--server", f"coap://127.0.0.1:{ch_port}", "--key", "imp.json",
                 "--peer", "board-a", "--peer-addr", f"127.0.0.1:{pa}", "--message", "let me in")
    check("impostor (never joined) cannot ask: no member key for a talk proof", rc != 0 and "not joined" in out, out)
    # the hello it could forge, {1: "impostor"}, sent with libcoap
    forged = os.path.join(root, "forged.cbor")
    with open(forged, "wb") as f:
        f.write(bytes.fromhex("a10168") + b"impostor")
    r = subprocess.run(["coap-client-notls", "-B", "5", "-m", "post", "-t", "60", "-f", forged,
                        f"coap://127.0.0.1:{pa}/talk"], capture_output=True, text=True, timeout=30)
    check("a forged hello gets 4.01 bad talk proof: missing", "4.01 bad talk proof: missing" in r.stdout + r.stderr,
          r.stdout + r.stderr)
    check("board-a printed the refusal", A.expect(r"^warning impostor bad talk proof: missing$", 10), A.tail())

    # reboots keep the membership: restored, no new join
    joins = metric(metrics, JOIN)
    A.reboot()
    m = A.expect(r"^restored cluster=lab-1 id=board-a block=\d+ expires=\d+ seq=(\d+)", 20)
    check("reboot: board-a restored its membership, no rejoin", m and joins > 0 and metric(metrics, JOIN) == joins,
          A.tail())
    check("after the reboot the CH accepts its next request", A.run("verify board-b", r"^verified board-b"),
          A.tail())
    check("no join for the reboot", metric(metrics, JOIN) == joins)
    # power loss: RTC memory gone, and with it the tickets board-a used as M1 and its clock: a rejoin
    # (a new K_m, under which no ticket it used opens, and the CH's time), never a resume under the old K_m
    A.stop()
    if os.path.exists(A.rtc_path()):
        os.unlink(A.rtc_path())
    A.start()
    check("power loss: board-a rejoins", A.expect(r"^error RTC memory lost \(a power loss\): rejoining", 20) and
          A.expect(r"^joined cluster=lab-1 id=board-a", 30), A.tail())
    check("... one join for it", metric(metrics, JOIN) == joins + 1)
    check("... and the CH accepts its next request", A.run("verify board-b", r"^verified board-b"), A.tail())

    if a.kind == "host":
        host_only(a, root, A, B, pa, pb, ch_port, metrics, procs, fleet_flag, credential)

    # board-b behind the lossy relay: its /verify and /session on board-a's talk
    relay_port = free_port()
    rlog = open(os.path.join(root, "relay.log"), "w")
    relay = subprocess.Popen([a.dev, "relay", "--listen", f"127.0.0.1:{relay_port}", "--to",
                              f"127.0.0.1:{ch_port}", "--loss", "20", "--seed", "7", "--timeout", "300"],
                             stdout=rlog, stderr=rlog)
    procs.append(relay)
    B.run(f"set server 127.0.0.1:{relay_port}", r"^ok")
    B.reboot()
    check("board-b restored behind the relay", B.expect(r"^restored cluster=lab-1 id=board-b", 20), B.tail())
    good = 0
    for i in range(6):
        if A.run(f"talk board-b 127.0.0.1:{pb} lossy {i}", r"^(sent board-b reply=ok|error|warning)", 120) and \
                A.lines[A.pos - 1].startswith("sent"):
            good += 1
    check("lossy: 6 messages to board-b, whose CH traffic loses 20 %", good == 6, A.tail() + "\n" + B.tail())
    good = sum(bool(B.run("verify board-a", r"^verified board-a", 120)) for _ in range(10))
    check("lossy: board-b verified board-a 10 times through the relay", good == 10, B.tail())
    relay.send_signal(signal.SIGTERM)
    relay.wait(timeout=10)
    rl = open(os.path.join(root, "relay.log")).read()
    m = re.search(r"dropped (\d+) of (\d+)", rl)
    check(f"lossy: the relay dropped datagrams ({m.group(0) if m else rl.strip()})", m and int(m.group(1)) > 0, rl)
    B.run(f"set server 127.0.0.1:{ch_port}", r"^ok")

    sleepy(a, root, boards, ch_port, pa, pc, A, credential)
    if a.kind == "host":
        clock_after_sleep(a, root, boards, ch_port, pa, credential)

    replay_ticket(root, procs, A, B, pa)

    # leave: then a warning for it
    check("board-b leaves", B.run("leave", r"^left block=\d+"), B.tail())
    check("verify after the leave: warning", A.run("verify board-b", r"^warning board-b left"), A.tail())

    # a CH key rotation (PROTOCOL.md §6.1, §6.2): board-a re-keys at its next boot, without a join
    rc, out = go(a, root, "rotate-key", "--data", os.path.join(root, "ch"))
    m = re.search(r" -> ([0-9a-f]{64}) in block", out)
    check("rotate-key on the running CH", rc == 0 and m, out)
    joins = metric(metrics, JOIN)
    A.reboot()
    check("board-a re-keys to the new CH key at its boot", A.expect(r"^rekeyed ch_key=" + (m.group(1)[:16] if m
          else "-"), 30), A.tail())
    check("... its protected requests go on under K_m'", A.run("verify board-b", r"^warning board-b left", 20),
          A.tail())
    check("... with no join", metric(metrics, JOIN) == joins)
    B.reboot()
    check("after its leave board-b does not restore", not B.expect(r"^restored", 3))

    n401, n205 = metric(metrics, PROOF % "4.01"), metric(metrics, PROOF % "2.05")
    check(f"every log check of the run answered at once, the sleepy board's too ({n205} 2.05, {n401} 4.01)",
          n401 == 0 and n205 >= 4)
    for b in boards:
        b.stop()
    ch.send_signal(signal.SIGTERM)
    ch.wait(timeout=20)
    rc, out = go(a, root, "ledger", "verify", "--data", os.path.join(root, "ch"))
    check("ledger verify after the run", rc == 0, out)


def replay_ticket(root, procs, A, B, pa):
    """An on-path replayer (tests/coap_replayer.py) between board-b and board-a
    records board-a's answer to board-b's /talk and answers board-b's later
    /talk with it, its ticket unexpired. A ticket is used once (PROTOCOL.md
    §4.4): board-b refuses it and sends nothing in its session (which would
    reuse the nonces of its first message), also after a reboot, as the
    tickets it used are in RTC memory."""
    rport = free_port()
    rlog = open(os.path.join(root, "replayer.log"), "w")
    rp = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "coap_replayer.py"), str(rport), f"127.0.0.1:{pa}", "300"], stdout=rlog, stderr=rlog)
    procs.append(rp)
    via = f"talk board-a 127.0.0.1:{rport}"
    check("replay: board-b -> board-a through an on-path recorder, a new session",
          B.run(f"{via} recorded", r"^sent board-a reply=ok session=new", 30) and
          A.expect(r"^received board-b recorded$", 10), B.tail() + "\n" + A.tail())
    check("... then directly, another new session", B.run(f"talk board-a 127.0.0.1:{pa} direct",
          r"^sent board-a reply=ok session=new", 30) and A.expect(r"^received board-b direct$", 10), B.tail())
    for when in ("", " after a reboot"):
        if when:
            B.reboot()
            B.expect(r"^restored", 20)
            B.skip(1)
        check(f"... the recorded /talk answer to its next hello{when}: refused, ticket already used",
              B.run(f"{via} replayed", r"^error talk: refused \(ticket already used\)$", 30), B.tail())
    check("... its kept session goes on", B.run(f"talk board-a 127.0.0.1:{pa} still",
          r"^sent board-a reply=ok session=kept", 30) and A.expect(r"^received board-b still$", 10), B.tail())
    rp.send_signal(signal.SIGTERM)
    rp.wait(timeout=10)
    rl = open(os.path.join(root, "replayer.log")).read()
    check(f"... the replayer answered both, and board-b sent nothing in their session ({rl.strip()})",
          re.search(r"replayed [2-9]\d* answers to /talk; relayed 0 /m2m", rl), rl)


def sleepy(a, root, boards, ch_port, pa, pc, A, admit):
    """A sleepy sensor: wake, one sealed message to board-a, deep sleep; three times."""
    C = Board("sleepy-c", [], a.kind, a.board, root)
    boards.append(C)
    if not configure(C, ch_port, "sleepy-c", pc, more=[f"set peer board-a 127.0.0.1:{pa}", "set sleep 1",
                                                         "set mode sleepy"], admit=admit):
        return
    wakes = []
    for i in range(3):
        C.start()
        m = C.expect(r"^sent board-a reply=ok session=(\w+) wake=(\d+) tx_bytes=(\d+) rx_bytes=(\d+) "
                     r"datagrams=(\d+) flash_writes=(\d+) ms=(\d+)(?: sign=(\d+) verify=(\d+) ecdh=(\d+) aead=(\d+))?", 60)
        slept = C.expect(r"^sleep 1$", 10)
        rc = C.wait_exit(20)
        if not check(f"sleepy wake {i + 1}: one sealed message, then deep sleep", m and slept and rc == 0,
                     C.tail()):
            return
        wakes.append(m.groups())
        check(f"board-a received the sleepy reading {i + 1}", A.expect(r"^received sleepy-c ", 10), A.tail())
    first, later = wakes[0], wakes[1:]
    check("sleepy: the first wake joins and asks for a session", "joined" in "\n".join(C.lines) and first[0] == "new")
    check("sleepy: later wakes reuse the session, write no flash, sign nothing",
          all(w[0] == "kept" and w[5] == "0" and (w[7] in (None, "0")) for w in later), wakes)
    names = ["session", "wake", "tx_bytes", "rx_bytes", "datagrams", "flash_writes", "ms", "sign", "verify",
             "ecdh", "aead"]
    for i, w in enumerate(wakes):
        print("sleepy wake %d: %s" % (i + 1, json.dumps(dict(zip(names, w)))), flush=True)


def clock_after_sleep(a, root, boards, ch_port, pa, admit):
    """A sleepy board's clock across a deep sleep of 2 h, which the test does
    not wait for. The board leaves the file deep-sleep as it goes to sleep; a
    start that finds it is the sleep timer's wake-up, one that does not a reset
    (the reset reason of the ESP8266). Reset during the sleep, it restarts
    from the clock it kept: behind, not ahead (before, it kept now plus the
    sleep, and was 2 h ahead). Woken by the timer, it adds the 2 h planned
    (here ahead: the sleep did not last), and its next join sets it to the
    CH's time again."""
    E = Board("sleepy-e", [], a.kind, a.board, root)
    boards.append(E)
    mark = os.path.join(E.dir, "deep-sleep")
    if not configure(E, ch_port, "sleepy-e", free_port(), more=[f"set peer board-a 127.0.0.1:{pa}", "set sleep 7200",
                                                               "set mode sleepy"], admit=admit):
        return
    E.start()
    if not check("sleepy-e: one wake, then a deep sleep of 2 h", E.expect(r"^sleep 7200$", 60) and
                 E.wait_exit(20) == 0 and os.path.exists(mark), E.tail()):
        return
    os.remove(mark)  # a reset during the sleep: the reset pin, or power on with RTC memory kept
    E.start()
    E.send("show")  # within the grace: a person at the console
    m = E.expect(r"^show clock (\d+)", 10)
    ahead = int(m.group(1)) - time.time() if m else None
    check(f"sleepy-e reset during its deep sleep: its clock is not ahead ({ahead if ahead is None else round(ahead)} s)",
          m and ahead <= 1, E.tail())
    E.stop()
    E.start()  # a reset again: a wake cycle, and the next deep sleep
    if not check("sleepy-e: a wake after the reset, then a deep sleep of 2 h", E.expect(r"^sleep 7200$", 60) and
                 E.wait_exit(20) == 0 and os.path.exists(mark), E.tail()):
        return
    E.start()  # the timer's wake-up
    E.send("show")
    m = E.expect(r"^show clock (\d+)", 10)
    ahead = int(m.group(1)) - time.time() if m else None
    check(f"... woken by its timer, it adds the 2 h planned ({ahead if ahead is None else round(ahead)} s ahead: "
          "the test did not sleep)", m and 7000 < ahead <= 7201, E.tail())
    joined = E.run("join", r"^joined ", 30)
    m = E.run("show", r"^show clock (\d+)")
    off = int(m.group(1)) - time.time() if m else None
    check(f"... its next join sets it to the CH's time ({off if off is None else round(off)} s off)",
          joined and m and abs(off) < 30, E.tail())
    E.stop()


def host_only(a, root, A, B, pa, pb, ch_port, metrics, procs, fleet_flag, credential):
    """Checks the emulator cannot make quickly: 1,000 requests and messages, a corrupt record, expiry."""
    w0 = int(A.run("show", r"^show stats flash_writes=(\d+)").group(1))
    n = 0
    for i in range(1000):
        n += bool(A.run("verify board-b", r"^verified board-b", 10))
    w1 = int(A.run("show", r"^show stats flash_writes=(\d+)").group(1))
    check(f"1,000 protected requests ({n} answered): {w1 - w0} flash writes (sequence numbers reserved 100 at a time)",
          n == 1000 and w1 - w0 == 10, A.tail())
    n = 0
    for i in range(1000):
        n += bool(A.run(f"talk board-b 127.0.0.1:{pb} m{i}", r"^sent board-b reply=ok", 10))
    w2 = int(A.run("show", r"^show stats flash_writes=(\d+)").group(1))
    check(f"1,000 M2M messages: {w2 - w1} flash writes (their numbers live in RTC memory)", n == 1000 and w2 == w1,
          A.tail())
    print(f"measured: flash writes per 1,000 protected requests {w1 - w0}, per 1,000 M2M messages {w2 - w1}",
          flush=True)

    # a corrupt member record: detected, a clean rejoin, requests accepted
    A.stop()
    path = os.path.join(A.dir, "rec-2")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x20
    open(path, "wb").write(bytes(data))
    A.start()
    check("corrupt membership: detected (checksum), a clean rejoin",
          A.expect(r"^error stored membership is corrupt: rejoining", 20) and A.expect(r"^joined ", 30), A.tail())
    check("... and the CH accepts its requests", A.run("verify board-b", r"^verified board-b"), A.tail())

    # a full flash: an error line, nothing changed
    A.reboot(["--flash-limit", "100"])
    A.expect(r"^restored", 20)
    check("full flash: settings refused with an error", A.run("set sleep 99", r"^error settings not stored: flash full"),
          A.tail())
    A.reboot()
    A.expect(r"^restored", 20)

    # an on-path forger answers board-a's /verify 4.03 "not a member" in plain
    # text: only a refusal the CH sealed counts (PROTOCOL.md §4.1), so the
    # board reports it and keeps its membership: no join, nothing written
    fport = free_port()
    flog = open(os.path.join(root, "forger.log"), "w")
    forger = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "coap_forger.py"), str(fport), f"127.0.0.1:{ch_port}", "verify", "120"],
                              stdout=flog, stderr=flog)
    procs.append(forger)
    A.run(f"set server 127.0.0.1:{fport}", r"^ok")
    A.reboot()
    A.expect(r"^restored", 20)
    A.skip(1)
    joins, since = metric(metrics, JOIN), A.pos
    check("a forged plain-text 4.03 'not a member' to a verify: reported and ignored",
          A.run("verify board-b", r'^error the cluster head\'s "not a member" is not sealed: ignored$', 30)
          and A.expect(r"^error verify: refused \(4\.03 not a member: forged\)$", 10), A.tail())
    A.skip(2)
    check("... no rejoin: the membership kept, no join at the CH",
          not any("rejoin" in l or l.startswith("joined") for l in A.lines[since:]) and
          metric(metrics, JOIN) == joins, A.tail())
    forger.send_signal(signal.SIGTERM)
    forger.wait(timeout=10)
    fl = open(os.path.join(root, "forger.log")).read()
    check(f"... the forger answered the verify ({fl.strip()})", re.search(r"forged [1-9]\d* answers", fl), fl)
    A.run(f"set server 127.0.0.1:{ch_port}", r"^ok")
    A.reboot()
    check("... the membership still works at the CH", A.expect(r"^restored", 20) and
          A.run("verify board-b", r"^verified board-b", 20) and metric(metrics, JOIN) == joins, A.tail())

    # membership expiry at a cluster head with a 3 s membership: the CH says
    # "not a member" and the board rejoins; after a reboot its own clock knows
    port2 = free_port()
    ch2, _ = serve(a, root, procs, "ch-short", port2, ["--member-ttl", "3s", *fleet_flag])
    D = Board("board-d", [], a.kind, a.board, root)
    if configure(D, port2, "board-d", free_port(), admit=credential):
        D.start()
        D.expect(r"^joined", 20)
        time.sleep(4)
        check("expired: the CH's 'not a member' leads to a rejoin",
              D.run("verify board-d", r"^error the cluster head says this board is not a member: rejoining", 20)
              and D.expect(r"^joined", 20) and D.expect(r"^verified board-d", 20), D.tail())
        # a reboot does not tell how long the board was off: it restores, and
        # the CH's answer to its first request makes it rejoin
        time.sleep(4)
        D.reboot()
        check("expired during a reboot: restored, then the CH's answer makes it rejoin",
              D.expect(r"^restored", 20) and D.run("verify board-d", r"^error the cluster head says", 20)
              and D.expect(r"^joined", 20), D.tail())
        # a pin that no longer matches the CH's key: membership dropped, join refused
        D.run("set pin " + "ab" * 32, r"^ok stored; the membership belonged to the old id or CH key")
        check("a pin that does not match: the join is refused",
              D.run("join", r"^error join: refused .*untrusted CH key", 20), D.tail())
        # trust on first use: without a pin the next join pins the CH key it
        # meets, and a CH with another key is refused until the operator
        # re-pins (the thumbprint from that CH's own log)
        D.run("set pin none", r"^ok")
        D.run("join", r"^joined", 20)
        short = re.search(r"ch_key_thumbprint=([0-9a-f]{64})", open(os.path.join(root, "ch-short.log")).read())
        check("trust on first use: the join pinned the CH key",
              short and D.run("show", r"^show pin " + short.group(1)), D.tail())
        D.run(f"set server 127.0.0.1:{ch_port}", r"^ok")
        check("... and a CH with another key is refused",
              D.run("join", r"^error join: refused .*untrusted CH key", 20), D.tail())
        main_key = re.search(r"ch_key_thumbprint=([0-9a-f]{64})", open(os.path.join(root, "ch.log")).read())
        D.run("set pin " + main_key.group(1), r"^ok")
        check("... until the operator re-pins it", D.run("join", r"^joined", 20), D.tail())
    D.stop()
    ch2.send_signal(signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
