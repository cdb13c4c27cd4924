#!/bin/sh
# Host harness: the real Go cluster head (iotguard serve on 127.0.0.1, a free
# port, a temporary data dir) and host-built C devices (iotguard-dev), plus Go
# devices talking to C devices. Prints "N passed, N failed"; exits non-zero on
# any failure. Every step is bounded by `timeout`.
#
# usage: harness.sh path/to/iotguard-dev
set -u
DEV=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
FW=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$FW/.." && pwd)
pass=0
fail=0

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     | /' "$2"; }

# The Go CLI: build it into firmware/build (never touching the repo's bin/).
GO_CLI="$FW/build/go/iotguard"
if command -v go >/dev/null 2>&1 && [ -d "$ROOT/cmd/iotguard" ]; then
    mkdir -p "$FW/build/go"
    if ! (cd "$ROOT" && timeout 300 go build -o "$GO_CLI" ./cmd/iotguard) >"$FW/build/go/build.log" 2>&1; then
        # the Go side is checked by the root `make test`; here it is a prerequisite
        echo "harness: SKIPPED: the Go CLI does not build here:"; sed 's/^/  | /' "$FW/build/go/build.log"
        exit 0
    fi
elif [ -x "$ROOT/bin/iotguard" ]; then
    GO_CLI="$ROOT/bin/iotguard"
else
    echo "harness: skipped, no Go toolchain and no bin/iotguard"
    exit 0
fi

T=$(mktemp -d /tmp/iotguard-harness.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_ch PORT DATA LOG [FLAGS...]: a cluster head of lab-1 on 127.0.0.1:PORT
# in the background (its pid in CH_PID); returns once it answers GET /cluster
# and its control socket is there, non-zero if that never happens.
start_ch() {
    port=$1; data=$2; log=$3; shift 3
    "$GO_CLI" serve --listen "127.0.0.1:$port" --data "$data" --cluster-id lab-1 \
        --position 48.8566,2.3522 --radius 1000 "$@" >"$log" 2>&1 &
    CH_PID=$!
    PIDS="$PIDS $CH_PID"
    i=0
    until timeout 2 coap-client-notls -B 1 -m get "coap://127.0.0.1:$port/cluster" -A 0 >/dev/null 2>&1 &&
        [ -S "$data/admin.sock" ]; do
        i=$((i + 1))
        [ $i -ge 50 ] && return 1
        sleep 0.1
    done
}

CHPORT=$(free_port)
METRICS=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
S="coap://127.0.0.1:$CHPORT"
# Admission (PROTOCOL.md §3.5): the CH admits enrolled devices only (the
# default), and devices with a credential of the fleet key it is given.
"$GO_CLI" fleet keygen --out "$T/fleet.pem" >"$T/fleet.pub" 2>/dev/null
if ! start_ch "$CHPORT" "$T/ch" "$T/ch.log" --metrics "$METRICS" --fleet-key "$T/fleet.pub"; then
    echo "FAIL harness: cluster head did not start"; cat "$T/ch.log"; echo "0 passed, 1 failed"; exit 1
fi
CHPID=$CH_PID
echo "cluster head on $S (data $T/ch)"
# issue KEY ID: a fleet credential for the C device key file KEY (ID), in
# KEY's name with .cred for .key: for devices whose tests are not about
# admission
issue() {
    "$DEV" pubkey --key "$1" >"${1%.key}.pub" &&
        "$GO_CLI" fleet issue --fleet "$T/fleet.pem" --key "${1%.key}.pub" --id "$2" --out "${1%.key}.cred" >/dev/null
}

run() { # run NAME EXPECTED_RC OUTFILE cmd...
    name=$1; want=$2; out=$3; shift 3
    timeout 120 "$@" >"$out" 2>&1
    rc=$?
    if [ "$rc" = "$want" ]; then ok "$name"; else echo "     (exit $rc, want $want)" >>"$out"; bad "$name" "$out"; fi
}
has() { # has NAME FILE PATTERN
    if grep -q -- "$3" "$2"; then ok "$1"; else bad "$1 (no '$3')" "$2"; fi
}
head_now() { # head_now FILE: the CH's signed ledger head, as text
    timeout 10 coap-client-notls -B 5 -m get -A 0 "$S/ledger/head" >"$1" 2>&1
}
head_settled() { # head_settled FILE: the head once the audit records of earlier steps are written
    # (they follow their answers: a warning by a group commit, a session grant in
    # the batch the CH commits within a second, PROTOCOL.md §4.4, §7.1): the
    # same twice, 1.2 s apart
    head_now "$1"
    i=0
    while [ $i -lt 10 ]; do
        sleep 1.2
        head_now "$1.again"
        if cmp -s "$1" "$1.again"; then return; fi
        mv "$1.again" "$1"
        i=$((i + 1))
    done
}
unchanged() { # unchanged NAME BEFORE: the ledger head is still what BEFORE holds
    head_settled "$2.after"
    if cmp -s "$2" "$2.after"; then ok "$1"; else bad "$1" "$2.after"; fi
}
talk_post() { # talk_post OUT PORT FILE: one POST /talk of FILE's bytes, with libcoap
    timeout 20 coap-client-notls -B 5 -m post -t 60 -f "$3" "coap://127.0.0.1:$2/talk" >"$1" 2>&1
}

before_join() { # before_join FILE: a device's GETs and their answers before its first POST, from
    # its IOG_UDP_TRACE lines: "GET 128, 2.05 290," (sizes in bytes)
    sed -n '/ tx type=0 code=0.02 /q; s/.* tx type=0 code=0.01 .* len=\([0-9]*\)$/GET \1,/p
        s/.* rx type=2 code=\([0-9.]*\) .* len=\([0-9]*\)$/ \1 \2,/p' "$1" | tr -d '\n'
}
scrape() { # scrape FILE: the CH's metrics
    python3 -c 'import sys, urllib.request; print(urllib.request.urlopen("http://" + sys.argv[1] + "/metrics").read().decode())' \
        "$METRICS" >"$1" 2>&1
}
metric() { # metric FILE SERIES: its value, 0 when absent
    awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' "$1"
}
answered() { # answered NAME BEFORE AFTER RESOURCE CODE WANT: the CH answered RESOURCE
    # with CODE WANT times between its metrics BEFORE and AFTER
    series="iotguard_coap_requests_total{code=\"$5\",resource=\"$4\",transport=\"udp\"}"
    n=$(( $(metric "$3" "$series") - $(metric "$2" "$series") ))
    if [ "$n" = "$6" ]; then ok "$1: $4 answered $5 $n times"; else bad "$1: $4 answered $5 $n times, want $6" "$3"; fi
}
after_join() { # after_join FILE: a device's GETs and their answers after its last POST (its log
    # check), from its IOG_UDP_TRACE lines: "GET 47, 2.05 590," (retransmissions too)
    awk '/ tx type=0 code=0.02 /{ s = ""; on = 0; next }
        / tx type=0 code=0.01 /{ on = 1; l = $0; sub(/.*len=/, "", l); s = s "GET " l ","; next }
        on && / rx type=2 /{ c = $0; sub(/.* code=/, "", c); sub(/ .*/, "", c); l = $0; sub(/.*len=/, "", l)
            s = s " " c " " l "," }
        END { print s }' "$1"
}

cd "$T"
scrape m0.out
"$DEV" keygen --id c-one --out a.key >/dev/null
"$DEV" keygen --id c-two --out b.key >/dev/null
"$DEV" keygen --id c-impostor --out i.key >/dev/null

# The operator enrolls c-one by its public key (through the running CH's
# control socket); c-two gets a fleet credential for its public key, as at
# flashing time. c-impostor gets neither.
"$DEV" pubkey --key a.key >a.pub
run "operator enrolls c-one's public key" 0 e1.out "$GO_CLI" enroll add --data "$T/ch" --id c-one --key a.pub
"$DEV" pubkey --key b.key >b.pub
run "fleet credential issued for c-two" 0 c2.out "$GO_CLI" fleet issue --fleet "$T/fleet.pem" --key b.pub --id c-two --out b.cred

run "C device c-one joins (enrolled)" 0 j1.out env IOG_UDP_TRACE=1 "$DEV" join --server "$S" --key a.key --position 48.8570,2.3530
has "join answered with a block" j1.out "joined cluster lab-1 as c-one: block"
has "c-one's join proven in the CH's log" j1.out "log: block [0-9]* proven in the CH's log of [0-9]* blocks$"
run "C device c-two joins (fleet credential)" 0 j2.out \
    env IOG_UDP_TRACE=1 "$DEV" join --server "$S" --key b.key --position 48.8560,2.3510 --credential b.cred
# The size the credential adds to a join datagram (the POST /join, code 0.02;
# both IDs have 5 bytes).
J1=$(grep -m1 'tx type=0 code=0.02' j1.out | sed 's/.* len=//')
J2=$(grep -m1 'tx type=0 code=0.02' j2.out | sed 's/.* len=//')
CL=$(($(tr -d '\n' <b.cred | wc -c) * 3 / 4 - $(grep -o '=' b.cred | wc -l)))
if [ -n "$J1" ] && [ -n "$J2" ] && [ "$J2" -gt "$((J1 + CL))" ]; then
    ok "join datagram: $J1 bytes; with a $CL-byte credential $J2 (+$((J2 - J1)))"
else
    bad "join datagram sizes ($J1, $J2, credential $CL)" j2.out
fi
# Each GET /cluster was padded to 128 bytes (the Padding option, PROTOCOL.md
# §2) and answered at once, 2.05 with an Echo: no 4.01 + Echo and repeat (the
# address verification of §6 an unpadded GET meets), one round trip less per
# join. Both devices signed over that echo (§3.1): two joins created, none
# challenged with 4.01 — one ES256 signature each.
scrape m1.out
has "C joins answered at once" m1.out 'iotguard_coap_requests_total{code="2.01",resource="/join",transport="udp"} 2$'
answered "C devices' 2 padded GET /cluster" m0.out m1.out /cluster 4.01 0
answered "C devices' 2 padded GET /cluster" m0.out m1.out /cluster 2.05 2
# Each join's log check (GET /ledger/proof, PROTOCOL.md §9.2) carried the Echo
# its join signed, which the CH made for the device's address: answered 2.05
# at once, no 4.01 + Echo and repeat (a join and its check: three round trips)
answered "C devices' 2 log checks" m0.out m1.out /ledger/proof 4.01 0
answered "C devices' 2 log checks" m0.out m1.out /ledger/proof 2.05 2
# ... seen from c-one: before its join (POST, 0.02), one GET (0.01) of 128 bytes
# (4 of header, 4 of token, 8 of Uri-Path, the Padding option's 4 and 108
# zeros) answered 2.05
G1=$(before_join j1.out)
if echo "$G1" | grep -Eqx 'GET 128, 2\.05 [0-9]+,'; then
    ok "c-one's join: one GET /cluster of 128 bytes, answered 2.05 ($G1)"
else
    bad "c-one's join: one GET /cluster of 128 bytes, answered 2.05 ($G1)" j1.out
fi
if grep -q 'code="4.01",resource="/join",transport="udp"' m1.out; then bad "C joins met no echo challenge" m1.out; else ok "C joins met no echo challenge"; fi
# ... seen from c-one: after its join, one GET /ledger/proof answered 2.05
G1=$(after_join j1.out)
if echo "$G1" | grep -Eqx 'GET [0-9]+, 2\.05 [0-9]+,'; then
    ok "c-one's log check: one GET /ledger/proof, answered 2.05 ($G1)"
else
    bad "c-one's log check: one GET /ledger/proof, answered 2.05 ($G1)" j1.out
fi
run "far device refused (outside radius)" 1 jfar.out "$DEV" join --server "$S" --key i.key --position 48.9566,2.3522
has "outside radius diagnostic" jfar.out "4.03 outside radius"
run "impostor inside the radius refused (neither enrolled nor credentialed)" 1 jimp.out \
    "$DEV" join --server "$S" --key i.key --position 48.8570,2.3530
has "not enrolled diagnostic" jimp.out "4.03 not enrolled"
run "impostor with c-two's credential refused" 1 jimp2.out \
    "$DEV" join --server "$S" --key i.key --position 48.8570,2.3530 --credential b.cred
has "credential for another id diagnostic" jimp2.out "4.01 credential for another id"
run "c-two verifies c-one" 0 v1.out "$DEV" verify --server "$S" --key b.key --peer c-one
has "c-one is a member" v1.out "c-one is a member"
run "c-two verifies an unknown ID" 1 v2.out "$DEV" verify --server "$S" --key b.key --peer c-impostor
has "warning for the unknown ID" v2.out "warning: c-impostor is unknown"
run "c-two gets a session with c-one" 0 s1.out "$DEV" session --server "$S" --key b.key --peer c-one

LPORT=$(free_port)
"$DEV" listen --server "$S" --key b.key --listen "127.0.0.1:$LPORT" --reply "ack from c-two" \
    --timeout 100 >l.out 2>l.err &
LPID=$!
PIDS="$PIDS $LPID"
sleep 0.3
run "c-one talks to c-two, 3 messages, then a replay" 0 t1.out \
    env IOG_UDP_TRACE=1 "$DEV" send --server "$S" --key a.key --peer c-two --peer-addr "127.0.0.1:$LPORT" \
    --message "hello from c-one" --count 3 --replay
has "encrypted reply c-two -> c-one" t1.out "reply: ack from c-two"
has "replay rejected by c-two" t1.out "replay answered 4.01 replay"
# c-two verified c-one's address before anything else (PROTOCOL.md §2, §5.1):
# the hello drew 4.01 + Echo, no larger than three times it, and the same
# hello with that Echo the ticket (2.05); then the messages (2.04)
TP=$(sed -n 's/.* tx type=0 code=0.02 .* len=\([0-9]*\)$/POST \1,/p
    s/.* rx type=2 code=\([0-9.]*\) .* len=\([0-9]*\)$/ \1 \2,/p' t1.out | tr -d '\n')
if echo "$TP" | grep -Eq '^POST [0-9]+, 4\.01 [0-9]+,POST [0-9]+, 2\.05 [0-9]+,POST [0-9]+, 2\.04 ' &&
    [ "$(echo "$TP" | awk -F'[ ,]+' '{ print ($4 <= 3 * $2) }')" = 1 ]; then
    ok "c-one's hello challenged (4.01 + Echo, at most 3x), repeated with the Echo, answered ($TP)"
else
    bad "c-one's hello challenged (4.01 + Echo, at most 3x), repeated with the Echo, answered ($TP)" t1.out
fi
run "impostor (never joined) cannot ask c-two to talk: no member key" 3 t2.out \
    "$DEV" send --server "$S" --key i.key --peer c-two --peer-addr "127.0.0.1:$LPORT" --message "let me in"
has "impostor: not joined" t2.out "not joined"

# Hellos that prove nothing (PROTOCOL.md §5.1), sent with libcoap by a sender
# with no key: refused 4.01 by c-two or by its CH, and nothing is written.
head_settled h0.out
printf '\241\001\145c-one' >forged0.cbor # {1: "c-one"}: no talk proof
talk_post f0.out "$LPORT" forged0.cbor
has "hello without a proof refused by c-two" f0.out "4.01 bad talk proof: missing"
python3 -c 'import os, sys, time; sys.stdout.buffer.write(bytes.fromhex("a30165632d6f6e650265632d74776f03834c") +
    os.urandom(12) + b"\x1a" + int(time.time()).to_bytes(4, "big") + b"\x50" + os.urandom(16))' >forged1.cbor
talk_post f1.out "$LPORT" forged1.cbor # {1: "c-one", 2: "c-two", 3: a made-up proof}
has "hello with a made-up proof refused by the CH, passed on by c-two" f1.out "4.01 bad talk proof$"
unchanged "forged hellos wrote nothing on the ledger" h0.out
# a flood of such hellos from a source that proved its address (one Echo
# challenge, then every hello carries that Echo): c-two forwards at most 4 at
# once and 4 a second, and answers the rest 4.29 without asking its CH
timeout 120 python3 "$FW/tests/talk_flood.py" "$LPORT" c-one c-two 20 >fl.out 2>&1
if python3 -c 'import sys
c = dict(kv.split("=") for kv in open(sys.argv[1]).read().split())
served = int(c.get("4.01", 0))
sys.exit(0 if int(c.get("4.29", 0)) > 0 and served + int(c.get("4.29", 0)) == 20 and
         served <= 4 + 4 * float(c["seconds"]) + 1 else 1)' fl.out; then
    ok "a flood of forged hellos: c-two forwards its budget, answers the rest 4.29 ($(cat fl.out))"
else
    bad "a flood of forged hellos: c-two forwards its budget, answers the rest 4.29" fl.out
fi
sleep 1 # c-two's budget refills (4 a second) for the genuine talks below

# An on-path recorder captures c-one's hello; copies of it are refused, by
# c-two (it forwarded that proof already) and by the CH (it spent the proof).
RECPORT=$(free_port)
python3 "$FW/tests/coap_recorder.py" "$RECPORT" "127.0.0.1:$LPORT" "$T/rec" 60 &
PIDS="$PIDS $!"
sleep 0.3
run "c-one talks to c-two through the recorder" 0 tr.out \
    "$DEV" send --server "$S" --key a.key --peer c-two --peer-addr "127.0.0.1:$RECPORT" --message "recorded"
head_settled h1.out
talk_post r1.out "$LPORT" "$T/rec/1.bin"
has "replayed hello refused by c-two" r1.out "4.01 bad talk proof: replay"
# c-two restarts (one process per device file: they share its sequence
# numbers) and has forgotten the hellos it saw; the CH has not
kill $LPID 2>/dev/null
wait $LPID 2>/dev/null
"$DEV" listen --server "$S" --key b.key --listen "127.0.0.1:$LPORT" --reply "ack from c-two" \
    --timeout 100 >>l.out 2>>l.err &
LPID=$!
PIDS="$PIDS $LPID"
sleep 0.3
talk_post r2.out "$LPORT" "$T/rec/1.bin"
has "replayed hello refused by the CH after c-two restarted" r2.out "4.01 bad talk proof: replay"
unchanged "the replayed hellos wrote nothing" h1.out

# Go devices and C devices talk to each other
GO_OK=1
"$GO_CLI" device keygen --id go-one --out g.json >/dev/null 2>&1 || GO_OK=0
"$GO_CLI" fleet issue --fleet "$T/fleet.pem" --key g.json >/dev/null 2>&1 || GO_OK=0
if [ $GO_OK = 1 ]; then
    run "Go device go-one joins" 0 gj.out "$GO_CLI" device join --server "$S" --key g.json --position 48.8566,2.3522
    run "Go device -> C device (c-two listening)" 0 gt.out \
        "$GO_CLI" device send --server "$S" --key g.json --peer c-two --peer-addr "127.0.0.1:$LPORT" --message "hello from Go"
    has "C device's encrypted reply to Go" gt.out "reply: ack from c-two"
    GPORT=$(free_port)
    "$GO_CLI" device listen --server "$S" --key g.json --listen "127.0.0.1:$GPORT" --reply "ack from Go" >gl.out 2>gl.err &
    PIDS="$PIDS $!"
    sleep 0.5
    run "C device -> Go device (go-one listening)" 0 ct.out \
        "$DEV" send --server "$S" --key a.key --peer go-one --peer-addr "127.0.0.1:$GPORT" --message "hello from C"
    has "Go device's encrypted reply to C" ct.out "reply: ack from Go"
    sleep 0.2
    has "Go device printed the C message" gl.out "c-one: hello from C"
fi

sleep 0.2
has "c-two received c-one's messages" l.out "c-one: hello from c-one 3"
has "c-two logged the hello without a proof" l.out "warning: refused c-one: bad talk proof: missing"
has "c-two logged the CH's refusal of a made-up proof" l.out "warning: refused c-one: bad talk proof$"
if grep -q "c-impostor" l.out; then bad "the impostor never reached c-two" l.out; else ok "the impostor never reached c-two"; fi
[ $GO_OK = 1 ] && has "c-two received go-one's message" l.out "go-one: hello from Go"
kill $LPID 2>/dev/null

# 20 % loss (bounded, seeded) on one end of each link, both directions: the
# exchange completes through CoAP retransmission. Run A: the initiator is
# lossy (its /talk, its M2M messages and its replies); run B: the responder is
# (its /verify and /session at the CH, and its answers).
"$DEV" keygen --id lossy-one --out la.key >/dev/null
"$DEV" keygen --id lossy-two --out lb.key >/dev/null
issue la.key lossy-one
issue lb.key lossy-two
LOSS="--loss 20 --ack-timeout 300"
FAST="--ack-timeout 300"
run "lossy-one joins at 20 % loss" 0 lj1.out "$DEV" join --server "$S" --key la.key --position 48.8566,2.3522 $LOSS --seed 1 --credential la.cred
run "lossy-two joins at 20 % loss" 0 lj2.out "$DEV" join --server "$S" --key lb.key --position 48.8566,2.3522 $LOSS --seed 2 --credential lb.cred
for mode in A B; do
    if [ $mode = A ]; then LL="$FAST"; LS="$LOSS --seed 4"; else LL="$LOSS --seed 5"; LS="$FAST"; fi
    LPORT2=$(free_port)
    "$DEV" listen --server "$S" --key lb.key --listen "127.0.0.1:$LPORT2" $LL --timeout 100 >ll$mode.out 2>&1 &
    LPID2=$!
    PIDS="$PIDS $LPID2"
    sleep 0.3
    run "lossy run $mode: talk and 10 messages" 0 lt$mode.out \
        env IOG_UDP_TRACE=1 "$DEV" send --server "$S" --key la.key --peer lossy-two --peer-addr "127.0.0.1:$LPORT2" \
        --message "lossy $mode" --count 10 $LS
    if [ "$(grep -c 'reply: ok' lt$mode.out)" = 10 ]; then ok "lossy run $mode: 10 encrypted replies"; else bad "lossy run $mode: 10 encrypted replies" lt$mode.out; fi
    kill $LPID2 2>/dev/null
    wait $LPID2 2>/dev/null
    [ $mode = A ] && f=lt$mode.out || f=ll$mode.out
    # run B: what lossy-two drops of lossy-one's requests or of its own answers,
    # lossy-one retransmits (a CON sent again: the same trace line twice)
    RTX=$(awk '/ tx type=0 /{ if (seen[$0]++) r++ } END { print r + 0 }' lt$mode.out)
    if grep -q 'loss: dropped [1-9]' $f && { ! grep -q ' 0 CoAP retransmissions' $f || { [ $mode = B ] && [ "$RTX" -gt 0 ]; }; }; then
        ok "lossy run $mode: datagrams dropped and retransmitted ($(grep -o 'dropped.*' $f); lossy-one's retransmissions: $RTX)"
    else
        bad "lossy run $mode: datagrams dropped and retransmitted" $f
    fi
    if [ "$(grep -c 'lossy-one: lossy' ll$mode.out)" = 10 ]; then ok "lossy run $mode: 10 messages delivered once each"; else bad "lossy run $mode: 10 messages delivered once each" ll$mode.out; fi
done

# A CH whose shared ledger has not decided answers 5.03 "outcome not known
# yet" with a Max-Age (PROTOCOL.md §3.3): the relay turns the CH's answer to
# c-retry's first join into one (the CH did record that join). The device
# sends the very same signed join again after Max-Age, and the CH answers it
# from the ledger (2.04, the recorded join): one join of c-retry on the
# ledger (checked at the end). c-retry joins with a fleet credential.
"$DEV" keygen --id c-retry --out r.key >/dev/null
issue r.key c-retry
# (A join's retransmission is answered 2.04 too — a join from an endpoint
# without an association is served again, PROTOCOL.md §2 — so count this one's.)
scrape retry0.out
RPORT=$(free_port)
"$DEV" relay --listen "127.0.0.1:$RPORT" --to "127.0.0.1:$CHPORT" --undecided 1 --timeout 100 >relay.out 2>&1 &
RLPID=$!
PIDS="$PIDS $RLPID"
sleep 0.3
run "c-retry joins through an undecided answer" 0 jr.out \
    "$DEV" join --server "coap://127.0.0.1:$RPORT" --key r.key --position 48.8566,2.3522 --credential r.cred
has "c-retry joined" jr.out "joined cluster lab-1 as c-retry"
kill $RLPID 2>/dev/null
wait $RLPID 2>/dev/null
has "c-retry sent the same join again after the 5.03" relay.out "relay: /join: 2 sent, 0 unlike the first; 1 answered 5.03"
python3 -c 'import sys, urllib.request; print(urllib.request.urlopen("http://" + sys.argv[1] + "/metrics").read().decode())' \
    "$METRICS" >m2.out 2>&1
answered "the CH answered the retry from the ledger" retry0.out m2.out /join 2.04 1

# CH key rotation between joins (PROTOCOL.md §6.1, §6.2): a C device pinned to
# the old key follows the signed rotation, a member of the old key re-keys
# without a join and verifies a peer, one pinned to an unrelated key refuses.
OLD=$("$GO_CLI" status --data "$T/ch" 2>/dev/null | sed -n 's/^ch key  *//p')
run "iotguard rotate-key on the running CH" 0 rot.out "$GO_CLI" rotate-key --data "$T/ch"
NEW=$(sed -n 's/^rotated CH key: [0-9a-f]* -> \([0-9a-f]*\) in block.*/\1/p' rot.out)
if [ -n "$OLD" ] && [ -n "$NEW" ] && [ "$OLD" != "$NEW" ]; then ok "the CH key changed ($OLD -> $NEW)"; else bad "the CH key changed" rot.out; fi
"$DEV" keygen --id c-rot --out rot.key >/dev/null
issue rot.key c-rot
"$DEV" keygen --id c-unrelated --out x.key >/dev/null
run "c-rot, pinned to the old key, joins through the rotation" 0 jrot.out \
    env IOG_UDP_TRACE=1 "$DEV" join --server "$S" --key rot.key --position 48.8566,2.3522 --pin "$OLD" --credential rot.cred
# The /cluster answer with the rotation is over three times a 128-byte GET:
# the padded GET is challenged (4.01 + Echo, PROTOCOL.md §2) and repeated with
# the Echo, unpadded.
GR=$(before_join jrot.out)
if echo "$GR" | grep -Eqx 'GET 128, 4\.01 [0-9]+,GET [0-9]{2}, 2\.05 [0-9]+,'; then
    ok "c-rot's padded GET /cluster challenged, repeated unpadded ($GR)"
else
    bad "c-rot's padded GET /cluster challenged, repeated unpadded ($GR)" jrot.out
fi
has "c-rot's pin followed the rotation" jrot.out "the pin followed a CH key rotation to $NEW"
has "c-rot's join proven in the log" jrot.out "log: block [0-9]* proven"
run "a device pinned to an unrelated key refuses the new key" 1 jx.out \
    "$DEV" join --server "$S" --key x.key --position 48.8566,2.3522 \
    --pin 0707070707070707070707070707070707070707070707070707070707070707
has "refused: untrusted CH key (no rotation from the pin)" jx.out "untrusted CH key: re-pin if it changed"
run "c-one, still keyed to the old key, verifies c-rot" 0 vrot1.out "$DEV" verify --server "$S" --key a.key --peer c-rot
run "c-two re-keys to the new key (no join)" 0 rk.out "$DEV" rekey --server "$S" --key b.key --pin "$OLD"
has "c-two re-keyed" rk.out "c-two re-keyed to CH key $NEW"
run "c-two, re-keyed, verifies c-rot" 0 vrot2.out "$DEV" verify --server "$S" --key b.key --peer c-rot
has "c-rot is a member" vrot2.out "c-rot is a member"
run "c-rot verifies c-two" 0 vrot3.out "$DEV" verify --server "$S" --key rot.key --peer c-two
run "c-two re-keys again: nothing to do" 0 rk2.out "$DEV" rekey --server "$S" --key b.key
has "keyed to the key in force" rk2.out "c-two is keyed to the CH key in force $NEW"
run "c-one joins again after the rotation" 0 jre.out "$DEV" join --server "$S" --key a.key --position 48.8570,2.3530
has "its log is an extension of the one it kept before the rotation" jre.out "an extension of the one of [0-9]* blocks kept"

# leave, then the peer is warned; c-one keeps a copy of its file from before
# the leave, whose member key still proves who it is: c-two refuses it with a
# warning
cp a.key a-kept.key
run "c-one leaves" 0 lv.out "$DEV" leave --server "$S" --key a.key
run "c-two verifies c-one after its leave" 1 v3.out "$DEV" verify --server "$S" --key b.key --peer c-one
has "warning: left" v3.out "warning: c-one is left"
LPORT4=$(free_port)
"$DEV" listen --server "$S" --key b.key --listen "127.0.0.1:$LPORT4" --timeout 60 >l4.out 2>&1 &
LPID4=$!
PIDS="$PIDS $LPID4"
sleep 0.3
run "c-one, left, asks c-two to talk under its last member key" 1 t3.out \
    "$DEV" send --server "$S" --key a-kept.key --peer c-two --peer-addr "127.0.0.1:$LPORT4" --message "still here?"
has "c-two answers a warning: left" t3.out "warning: left"
kill $LPID4 2>/dev/null
wait $LPID4 2>/dev/null
has "c-two logged it" l4.out "warning: refused c-one: left"

# A stale join (PROTOCOL.md §3.1): the same device in two processes. The
# second fetches /cluster (with the rotation above in it, the answer is over
# three times the padded GET: its address checked first, GET, 4.01 + Echo,
# GET, 2.05), then its join is lost (seeded loss: four passes, then a drop) and
# waits to be retransmitted; meanwhile the first process joins. The
# retransmitted join signed an echo from before that join: the CH answers
# 4.01 "stale join" with a fresh Echo, and the device signs it and is in.
"$DEV" keygen --id c-twice --out w1.key >/dev/null
issue w1.key c-twice
cp w1.key w2.key
IOG_UDP_TRACE=1 timeout 60 "$DEV" join --server "$S" --key w2.key --position 48.8570,2.3530 \
    --loss 30 --seed 218 --ack-timeout 5000 --credential w1.cred >stale2.out 2>&1 &
W2PID=$!
PIDS="$PIDS $W2PID"
i=0
until grep -q 'drop-tx' stale2.out || [ $i -ge 100 ]; do i=$((i + 1)); sleep 0.1; done
run "c-twice joins from its first process" 0 stale1.out "$DEV" join --server "$S" --key w1.key --position 48.8570,2.3530 \
    --credential w1.cred
wait $W2PID
if [ $? = 0 ]; then ok "c-twice's second process joins after a stale join"; else bad "c-twice's second process joins after a stale join" stale2.out; fi
has "... it was answered 4.01 with an Echo" stale2.out "rx type=2 code=4.01"
python3 -c 'import sys, urllib.request; print(urllib.request.urlopen("http://" + sys.argv[1] + "/metrics").read().decode())' \
    "$METRICS" >m2.out 2>&1
has "... counted as a stale join by the CH" m2.out 'iotguard_join_rejections_total{reason="stale"} 1$'
# its log check carried the Echo of the stale join's challenge, the one its
# join signed in the end: answered 2.05, never 4.01 (loss may repeat the GET)
GW=$(after_join stale2.out)
if echo "$GW" | grep -q ' 2\.05 ' && ! echo "$GW" | grep -q ' 4\.01 '; then
    ok "... its log check, with the Echo of the stale join's challenge, answered at once ($GW)"
else
    bad "... its log check, with the Echo of the stale join's challenge, answered at once ($GW)" stale2.out
fi
# so were the checks of every join on this CH: through loss, the relay's 5.03,
# a rotation's challenged /cluster, a stale join
answered "every log check of the run" m0.out m2.out /ledger/proof 4.01 0
run "... and the second process's member key works" 0 stale3.out "$DEV" verify --server "$S" --key w2.key --peer c-twice

# Trust on first use (PROTOCOL.md §3.3): a C device keeps the CH key of its
# first join in its key file (pin=) and refuses a CH with another key (same
# cluster ID) -- as a member and after it left -- sending it no join; the
# operator's --repin (with the thumbprint from that CH's own log) moves it.
# The other CH admits any device (--admission open): this is about the key.
CHBPORT=$(free_port)
SB="coap://127.0.0.1:$CHBPORT"
start_ch "$CHBPORT" "$T/chb" "$T/chb.log" --admission open
CHBPID=$CH_PID
has "c-two's key file keeps the CH key" b.key "^pin="
cp b.key b.key.before
run "c-two (member of the first CH) refuses another CH key" 1 tofu1.out \
    "$DEV" join --server "$SB" --key b.key --position 48.8560,2.3510
has "... with a clear error" tofu1.out "untrusted CH key: re-pin if it changed"
if cmp -s b.key b.key.before; then ok "... its key file unchanged"; else bad "... its key file unchanged" b.key; fi
run "c-one (left) still refuses it" 1 tofu2.out "$DEV" join --server "$SB" --key a.key --position 48.8570,2.3530
has "... untrusted CH key" tofu2.out "untrusted CH key"
timeout 5 coap-client-notls -B 2 -m get -A 0 "$SB/ledger/head" >tofu3.out 2>&1
has "the other CH's ledger got no join" tofu3.out "^height 0"
THB=$(grep -o 'ch_key_thumbprint=[0-9a-f]*' "$T/chb.log" | head -1 | cut -d= -f2)
run "--pin cannot override the kept key" 1 tofu4.out \
    "$DEV" join --server "$SB" --key a.key --position 48.8570,2.3530 --pin "$THB"
has "... it says to re-pin" tofu4.out "to move it to that key: --repin HEX"
run "c-one re-pinned to the other CH joins it" 0 tofu5.out \
    "$DEV" join --server "$SB" --key a.key --position 48.8570,2.3530 --repin "$THB"
has "... joined" tofu5.out "joined cluster lab-1 as c-one"
has "... and keeps its key" a.key "^pin=$THB"
run "... then refuses the first CH" 1 tofu6.out "$DEV" join --server "$S" --key a.key --position 48.8570,2.3530
"$DEV" keygen --id c-pinned --out p.key >/dev/null
run "a device pinned to the other CH refuses this one" 1 tofu7.out \
    "$DEV" join --server "$S" --key p.key --position 48.8570,2.3530 --pin "$THB"
if grep -q '^cluster=' p.key; then bad "... and stays unjoined" p.key; else ok "... and stays unjoined"; fi
kill "$CHBPID" 2>/dev/null
wait "$CHBPID" 2>/dev/null

# A CH over its join rate (PROTOCOL.md §3.3, "Too many joins") answers 5.03
# "busy: too many joins" with Max-Age 1 before checking the join; the C device
# sends the same join again after Max-Age, and is in once the rate allows.
# 0.3 joins a second: the join after the first waits ~3.3 s, within the
# device's four resends.
CHRPORT=$(free_port)
start_ch "$CHRPORT" "$T/chr" "$T/chr.log" --admission open --join-rate 0.3
CHRPID=$CH_PID
"$DEV" keygen --id c-rate-1 --out r1.key >/dev/null
"$DEV" keygen --id c-rate-2 --out r2.key >/dev/null
run "c-rate-1 joins a CH that checks 0.3 joins a second" 0 jr1.out \
    "$DEV" join --server "coap://127.0.0.1:$CHRPORT" --key r1.key --position 48.8570,2.3530
run "c-rate-2 joins right after it" 0 jr2.out \
    env IOG_UDP_TRACE=1 "$DEV" join --server "coap://127.0.0.1:$CHRPORT" --key r2.key --position 48.8570,2.3530
has "... answered 5.03 at first (over the join rate)" jr2.out "rx type=2 code=5.03"
has "... then joined" jr2.out "joined cluster lab-1 as c-rate-2"
kill "$CHRPID" 2>/dev/null
wait "$CHRPID" 2>/dev/null

# a CH restart: replay windows are gone, the first protected request gets an
# Echo challenge (PROTOCOL.md §4.2) that the C device answers transparently;
# c-two's re-keyed K_m' still opens (the CH tries it after the old K_m)
kill "$CHPID" 2>/dev/null
wait "$CHPID" 2>/dev/null
start_ch "$CHPORT" "$T/ch" "$T/ch2.log" --fleet-key "$T/fleet.pub"
CHPID=$CH_PID
IOG_UDP_TRACE=1 run "c-two verifies lossy-one after a CH restart" 0 rs.out \
    "$DEV" verify --server "$S" --key b.key --peer lossy-one
has "the restart echo challenge was answered" rs.out "rx type=2 code=4.01"
has "then the verify succeeded" rs.out "lossy-one is a member"

# the ledger is intact
kill "$CHPID" 2>/dev/null
wait "$CHPID" 2>/dev/null
run "ledger verify after the run" 0 lg.out "$GO_CLI" ledger verify --data "$T/ch"
run "ledger list after the run" 0 ll.out "$GO_CLI" ledger list --data "$T/ch" --format json
if [ "$(grep -c '"type":"join","device":"c-retry"' ll.out)" = 1 ]; then ok "c-retry's join recorded once"; else bad "c-retry's join recorded once" ll.out; fi

echo "harness: $pass passed, $fail failed"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
