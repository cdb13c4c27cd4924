/*
 * iotguard-dev: the firmware core on POSIX UDP, mirroring `iotguard device`.
 *
 *   iotguard-dev keygen  --id ID --out FILE
 *   iotguard-dev pubkey  --key FILE
 *   iotguard-dev join    --server URL --key FILE --position LAT,LON [--pin HEX | --repin HEX]
 *                        [--credential FILE]
 *   iotguard-dev verify  --server URL --key FILE --peer ID
 *   iotguard-dev session --server URL --key FILE --peer ID
 *   iotguard-dev listen  --server URL --key FILE --listen ADDR [--reply TEXT] [--count N]
 *   iotguard-dev send    --server URL --key FILE --peer ID --peer-addr ADDR --message TEXT
 *                        [--count N] [--replay]
 *   iotguard-dev leave   --server URL --key FILE
 *   iotguard-dev rekey   --server URL --key FILE [--pin HEX]
 *   iotguard-dev relay   --listen ADDR --to ADDR --loss PCT --seed N --timeout S [--undecided N]
 *
 * join then proves the join in the CH's transparency log (PROTOCOL.md §9.2)
 * and keeps the checkpoint in the key file; --pin accepts the pinned key or
 * one a signed rotation from it leads to (§6.1). rekey moves the membership
 * to the CH key in force after a rotation (§6.2).
 *
 * pubkey prints the device's public key as PEM: what an operator enrolls
 * ('iotguard enroll add') or issues a fleet credential for ('iotguard fleet
 * issue --key FILE --id ID --out CRED'). join --credential sends the fleet
 * credential in CRED (base64 on one line, as 'fleet issue --out' writes it).
 *
 * relay forwards datagrams between the clients of ADDR (the latest one gets
 * the answers) and --to, with the bounded, seeded loss of --loss on the
 * client side in both directions: it puts a lossy link in front of a device
 * that cannot drop datagrams itself (the emulated board). With --undecided
 * N it replaces the CH's answers to the first N /join requests by 5.03
 * "outcome not known yet" with Max-Age 1, as a CH whose shared ledger has
 * not decided answers (the join itself reached the CH and is recorded), and
 * reports whether the device sent the same join each time.
 *
 * Common flags: --loss PCT --seed N (bounded, seeded datagram loss both
 * ways), --ack-timeout MS (CoAP ACK_TIMEOUT), --timeout S (listen: exit after).
 * Exit codes: 0 success, 1 refused or warning, 2 usage, 3 other failure.
 *
 * The key file keeps the CH key thumbprint of the first join (pin=), and
 * every later join refuses another CH key (trust on first use). --pin HEX
 * must agree with it; --repin HEX (checked out of band: the server's
 * ch_key_thumbprint=) replaces it once a join under that key succeeds.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iog_b64.h"
#include "iog_cbor.h"
#include "iog_device.h"
#include "iog_udp.h"
#include "state.h"

static struct {
    const char *cmd, *id, *out, *server, *key, *peer, *peer_addr, *message, *listen, *pin, *repin;
    const char *reply, *to, *credential;
    double lat, lon;
    int have_pos, replay;
    unsigned loss, count, timeout_s, ack_ms, undecided;
    uint64_t seed;
} opt;

static void usage(void)
{
    fprintf(stderr, "usage: iotguard-dev <keygen|pubkey|join|verify|session|listen|send|leave|rekey|relay> [flags]\n"
                    "  (see the comment at the top of firmware/host/main.c)\n");
    exit(2);
}

static void fail(const char *what, int e, const iog_device_t *d)
{
    if (d && d->diag[0]) {
        fprintf(stderr, "iotguard-dev: error: %s: %s (%d.%02d %s)\n", what, strerror(-e),
                d->code >> 5, d->code & 31, d->diag);
    }
    else {
        fprintf(stderr, "iotguard-dev: error: %s: %s\n", what, strerror(-e));
    }
    exit(e == -EACCES ? 1 : 3);
}

static void parse(int argc, char **argv)
{
    if (argc < 2) {
        usage();
    }
    opt.cmd = argv[1];
    opt.server = "coap://127.0.0.1:5683";
    opt.reply = "ok";
    opt.count = 1;
    opt.ack_ms = IOG_COAP_ACK_TIMEOUT_MS;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (strncmp(f, "--", 2) == 0) {
            f += 2;
        }
        else if (f[0] == '-') {
            f += 1;
        }
        else {
            usage();
        }
        if (strcmp(f, "replay") == 0) {
            opt.replay = 1;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
        }
        const char *v = argv[++i];
        if (!strcmp(f, "id")) opt.id = v;
        else if (!strcmp(f, "out")) opt.out = v;
        else if (!strcmp(f, "server")) opt.server = v;
        else if (!strcmp(f, "key")) opt.key = v;
        else if (!strcmp(f, "peer")) opt.peer = v;
        else if (!strcmp(f, "peer-addr")) opt.peer_addr = v;
        else if (!strcmp(f, "message")) opt.message = v;
        else if (!strcmp(f, "listen")) opt.listen = v;
        else if (!strcmp(f, "pin")) opt.pin = v;
        else if (!strcmp(f, "repin")) opt.repin = v;
        else if (!strcmp(f, "reply")) opt.reply = v;
        else if (!strcmp(f, "to")) opt.to = v;
        else if (!strcmp(f, "credential")) opt.credential = v;
        else if (!strcmp(f, "loss")) opt.loss = (unsigned)atoi(v);
        else if (!strcmp(f, "seed")) opt.seed = strtoull(v, NULL, 10);
        else if (!strcmp(f, "count")) opt.count = (unsigned)atoi(v);
        else if (!strcmp(f, "timeout")) opt.timeout_s = (unsigned)atoi(v);
        else if (!strcmp(f, "ack-timeout")) opt.ack_ms = (unsigned)atoi(v);
        else if (!strcmp(f, "undecided")) opt.undecided = (unsigned)atoi(v);
        else if (!strcmp(f, "position")) {
            if (sscanf(v, "%lf,%lf", &opt.lat, &opt.lon) != 2) {
                usage();
            }
            opt.have_pos = 1;
        }
        else {
            fprintf(stderr, "iotguard-dev: error: unknown flag --%s\n", f);
            usage();
        }
    }
}

static void need(const char *v, const char *name)
{
    if (!v) {
        fprintf(stderr, "iotguard-dev: error: --%s is required for %s\n", name, opt.cmd);
        exit(2);
    }
}

static iog_udp_t udp;
static iog_platform_t plat;
static iog_device_t dev;
static volatile sig_atomic_t stop;

static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

static int persist(void *ctx, const iog_device_t *d)
{
    (void)ctx;
    return iog_state_save(opt.key, d);
}

static size_t on_message(void *ctx, const iog_id_t *peer, const uint8_t *msg, size_t len,
                         uint8_t *reply, size_t cap)
{
    (void)ctx;
    printf("%s: %.*s\n", peer->s, (int)len, (const char *)msg);
    fflush(stdout);
    size_t n = strlen(opt.reply);
    if (n > cap) {
        n = cap;
    }
    memcpy(reply, opt.reply, n);
    return n;
}

static void on_warning(void *ctx, const iog_id_t *peer, const char *why)
{
    (void)ctx;
    printf("warning: refused %s: %s\n", peer->s, why);
    fflush(stdout);
}

/* Opens the key file and the socket; a listener binds to --listen. */
static void open_device(const char *bind_to)
{
    iog_identity_t me;
    iog_addr_t ch;
    need(opt.key, "key");
    if (iog_udp_resolve(opt.server, &ch)) {
        fprintf(stderr, "iotguard-dev: error: bad --server %s\n", opt.server);
        exit(2);
    }
    if (iog_state_load_identity(opt.key, &me)) {
        fprintf(stderr, "iotguard-dev: error: cannot read key file %s\n", opt.key);
        exit(3);
    }
    int e = iog_udp_open(&udp, bind_to ? bind_to : (ch.family == 2 ? "0.0.0.0:0" : "[::]:0"));
    if (e) {
        fail("open UDP socket", e, NULL);
    }
    if (opt.loss) {
        iog_udp_set_loss(&udp, opt.loss, opt.seed);
    }
    iog_udp_platform(&udp, &plat);
    iog_device_init(&dev, &plat, &ch, &me);
    dev.ep.ack_timeout_ms = opt.ack_ms;
    dev.persist = persist;
    dev.on_message = on_message;
    dev.on_warning = on_warning;
    if (iog_state_load_member(opt.key, &dev)) {
        fprintf(stderr, "iotguard-dev: error: bad membership in %s\n", opt.key);
        exit(3);
    }
    const char *p = opt.repin ? opt.repin : opt.pin;
    uint8_t pin[32];
    if (p) {
        if (opt.pin && opt.repin) {
            fprintf(stderr, "iotguard-dev: error: --pin and --repin exclude each other\n");
            exit(2);
        }
        if (strlen(p) != 64 || iog_state_hex(p, pin, 32) != 32) {
            fprintf(stderr, "iotguard-dev: error: --%s wants 64 hex digits\n", opt.repin ? "repin" : "pin");
            exit(2);
        }
        if (opt.pin && dev.has_pin && memcmp(pin, dev.pin, 32) != 0) {
            fprintf(stderr, "iotguard-dev: error: --pin is not the CH key %s trusts since its first join; "
                            "to move it to that key: --repin HEX\n", opt.key);
            exit(1);
        }
        if (opt.repin && dev.has_pin && memcmp(pin, dev.pin, 32) != 0) {
            memset(&dev.log, 0, sizeof(dev.log)); /* another CH's log: the kept checkpoint is not of it */
        }
        memcpy(dev.pin, pin, 32);
        dev.has_pin = 1;
    }
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static void loss_report(void)
{
    if (opt.loss) {
        unsigned total = udp.dropped + udp.passed;
        fprintf(stderr, "loss: dropped %u of %u datagrams (%u %%), %u CoAP retransmissions\n",
                udp.dropped, total, total ? 100 * udp.dropped / total : 0,
                dev.ep.retransmissions);
    }
}

static int cmd_keygen(void)
{
    iog_identity_t me;
    need(opt.id, "id");
    need(opt.out, "out");
    if (iog_id_set(&me.id, opt.id, strlen(opt.id))) {
        fprintf(stderr, "iotguard-dev: error: an ID is 1-64 bytes of [A-Za-z0-9._-]\n");
        return 2;
    }
    iog_udp_platform(&udp, &plat);
    int e = iog_p256_keygen(&plat, me.priv, me.pub);
    if (e) {
        fail("keygen", e, NULL);
    }
    iog_device_init(&dev, &plat, &(iog_addr_t){ 0 }, &me);
    opt.key = opt.out;
    if ((e = iog_state_save(opt.out, &dev))) {
        fail("write key file", e, NULL);
    }
    printf("device %s: key written to %s\n", me.id.s, opt.out);
    return 0;
}

static int cmd_pubkey(void)
{
    iog_identity_t me;
    uint8_t der[IOG_P256_SPKI_LEN];
    char line[(IOG_P256_SPKI_LEN + 2) / 3 * 4 + 1];
    need(opt.key, "key");
    if (iog_state_load_identity(opt.key, &me)) {
        fprintf(stderr, "iotguard-dev: error: cannot read key file %s\n", opt.key);
        return 3;
    }
    iog_p256_spki(me.pub, der);
    int n = iog_b64_encode(der, sizeof(der), line, sizeof(line));
    printf("-----BEGIN PUBLIC KEY-----\n");
    for (int i = 0; i < n; i += 64) {
        printf("%.*s\n", n - i < 64 ? n - i : 64, line + i);
    }
    printf("-----END PUBLIC KEY-----\n");
    return 0;
}

/* Reads the credential file of --credential into @p out. @return its length. */
static size_t read_credential(uint8_t out[IOG_CRED_MAX])
{
    char line[(IOG_CRED_MAX + 2) / 3 * 4 + 3];
    FILE *f = fopen(opt.credential, "r");
    if (!f) {
        fprintf(stderr, "iotguard-dev: error: cannot read %s: %s\n", opt.credential, strerror(errno));
        exit(3);
    }
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = 0;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = 0;
    }
    int l = iog_b64_decode(line, out, IOG_CRED_MAX);
    if (l <= 0) {
        fprintf(stderr, "iotguard-dev: error: %s is not a credential (base64, at most %d bytes)\n",
                opt.credential, IOG_CRED_MAX);
        exit(2);
    }
    return (size_t)l;
}

static int peer_id(iog_id_t *p)
{
    need(opt.peer, "peer");
    if (iog_id_set(p, opt.peer, strlen(opt.peer))) {
        fprintf(stderr, "iotguard-dev: error: bad --peer\n");
        exit(2);
    }
    return 0;
}

/* What relay --undecided saw of the device's joins. */
static struct {
    uint8_t first[IOG_COAP_MAX_PDU]; /* the first join's payload */
    size_t first_len;
    unsigned joins, differ, answered; /* joins sent (new MIDs), unlike the first, answered 5.03 */
    int open;                         /* a join is waiting for the CH's answer */
    uint16_t mid;                     /* its message ID */
} rj;

/* A request from the device: notes a /join (not its retransmissions). */
static void relay_request(const uint8_t *buf, int n)
{
    iog_coap_msg_t m;
    if (iog_coap_parse(&m, buf, (size_t)n) || m.code != IOG_COAP_POST || !iog_coap_path_is(&m, "/join")) {
        return;
    }
    if (rj.open && m.mid == rj.mid) {
        return; /* a retransmission */
    }
    rj.joins++;
    rj.open = 1;
    rj.mid = m.mid;
    if (rj.joins == 1 && m.payload_len <= sizeof(rj.first)) {
        memcpy(rj.first, m.payload, m.payload_len);
        rj.first_len = m.payload_len;
    }
    else if (m.payload_len != rj.first_len || memcmp(m.payload, rj.first, rj.first_len)) {
        rj.differ++;
    }
}

/*
 * An answer of the CH: while --undecided lasts, the answer to the open join
 * becomes 5.03 "outcome not known yet" with Max-Age 1 in @p out. @return its
 * length, or 0 to forward the answer as it is.
 */
static int relay_answer(const uint8_t *buf, int n, uint8_t *out, size_t cap)
{
    static const char text[] = "outcome not known yet";
    iog_coap_msg_t m;
    if (rj.answered == opt.undecided || !rj.open || iog_coap_parse(&m, buf, (size_t)n) ||
        m.type != IOG_COAP_ACK || m.mid != rj.mid || IOG_COAP_CLASS(m.code) == 0) {
        return 0;
    }
    iog_coap_pkt_t p;
    iog_coap_build(&p, out, cap, IOG_COAP_ACK, IOG_COAP_UNAVAILABLE, m.mid, m.token, m.tkl);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_CONTENT_FORMAT, 0);
    iog_coap_add_opt_uint(&p, IOG_COAP_OPT_MAX_AGE, 1);
    iog_coap_add_payload(&p, text, sizeof(text) - 1);
    rj.open = 0;
    rj.answered++;
    int len = iog_coap_finish(&p);
    return len > 0 ? len : 0;
}

static int cmd_relay(void)
{
    static iog_udp_t up;
    static uint8_t buf[IOG_COAP_MAX_PDU], out[128];
    iog_platform_t pd, pu;
    iog_addr_t to, client, from;
    unsigned fwd = 0;
    need(opt.listen, "listen");
    need(opt.to, "to");
    if (iog_udp_resolve(opt.to, &to)) {
        fprintf(stderr, "iotguard-dev: error: bad --to %s\n", opt.to);
        return 2;
    }
    int e = iog_udp_open(&udp, opt.listen);
    if (!e) {
        e = iog_udp_open(&up, to.family == 2 ? "127.0.0.1:0" : "[::1]:0");
    }
    if (e) {
        fail("open UDP socket", e, NULL);
    }
    if (opt.loss) {
        iog_udp_set_loss(&udp, opt.loss, opt.seed);
    }
    iog_udp_platform(&udp, &pd);
    iog_udp_platform(&up, &pu);
    memset(&client, 0, sizeof(client));
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    uint32_t start = pd.now_ms(pd.ctx);
    while (!stop && (!opt.timeout_s || pd.now_ms(pd.ctx) - start < opt.timeout_s * 1000u)) {
        int n = pd.recv(pd.ctx, &from, buf, sizeof(buf), 5);
        if (n > 0) {
            client = from;
            if (opt.undecided) {
                relay_request(buf, n);
            }
            pu.send(pu.ctx, &to, buf, (size_t)n);
            fwd++;
        }
        n = pu.recv(pu.ctx, &from, buf, sizeof(buf), 5);
        if (n > 0 && client.family) {
            int m = opt.undecided ? relay_answer(buf, n, out, sizeof(out)) : 0;
            pd.send(pd.ctx, &client, m ? out : buf, (size_t)(m ? m : n));
            fwd++;
        }
    }
    fprintf(stderr, "relay: forwarded %u datagrams; loss: dropped %u of %u\n", fwd, udp.dropped,
            udp.dropped + udp.passed);
    if (opt.undecided) {
        fprintf(stderr, "relay: /join: %u sent, %u unlike the first; %u answered 5.03\n", rj.joins,
                rj.differ, rj.answered);
    }
    return 0;
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *c = opt.cmd;
    if (!strcmp(c, "keygen")) {
        return cmd_keygen();
    }
    if (!strcmp(c, "pubkey")) {
        return cmd_pubkey();
    }
    if (!strcmp(c, "relay")) {
        return cmd_relay();
    }
    if (!strcmp(c, "join")) {
        if (!opt.have_pos) {
            need(NULL, "position");
        }
        open_device(NULL);
        static uint8_t cred[IOG_CRED_MAX];
        if (opt.credential) {
            dev.cred_len = read_credential(cred);
            dev.cred = cred;
        }
        int64_t lat = (int64_t)(opt.lat * 1e6 + (opt.lat < 0 ? -0.5 : 0.5));
        int64_t lon = (int64_t)(opt.lon * 1e6 + (opt.lon < 0 ? -0.5 : 0.5));
        uint8_t pin[32];
        memcpy(pin, dev.pin, sizeof(pin));
        int e = iog_device_join(&dev, lat, lon);
        loss_report();
        if (e == -EAGAIN || e == -ETIMEDOUT) {
            fail("join outcome not known yet (it may be recorded)", e, &dev);
        }
        if (e) {
            fail("join refused", e, &dev);
        }
        printf("joined cluster %s as %s: block %llu, member until %llu\n", dev.mem.ch.cluster.s,
               dev.me.id.s, (unsigned long long)dev.mem.height,
               (unsigned long long)dev.mem.expires);
        if (dev.has_pin && memcmp(pin, dev.pin, sizeof(pin)) != 0) {
            printf("the pin followed a CH key rotation to ");
            print_hex(dev.pin, sizeof(dev.pin));
        }
        /* the join in the CH's log, consistent with the checkpoint kept from the last check */
        uint64_t from = dev.log.size;
        e = iog_device_check_join(&dev, NULL);
        if (e == -ENOTSUP) {
            printf("log: the cluster head keeps no transparency log: not checked\n");
            return 0;
        }
        if (e) {
            fprintf(stderr, "iotguard-dev: error: the join is not proven in the CH's log (the membership "
                            "is kept): %s (%d.%02d %s)\n",
                    strerror(-e), dev.code >> 5, dev.code & 31, dev.diag);
            return e == -EPROTO ? 1 : 3;
        }
        if ((e = iog_state_save(opt.key, &dev))) {
            fail("write key file", e, NULL);
        }
        printf("log: block %llu proven in the CH's log of %llu blocks", (unsigned long long)dev.mem.height,
               (unsigned long long)dev.log.size);
        if (from) {
            printf(", an extension of the one of %llu blocks kept", (unsigned long long)from);
        }
        printf("\n");
        return 0;
    }
    if (!strcmp(c, "rekey")) {
        open_device(NULL);
        int e = iog_device_rekey(&dev);
        if (e < 0) {
            fail("rekey refused", e, &dev);
        }
        int w = e == 1 ? iog_state_save(opt.key, &dev) : 0;
        if (w) {
            fail("write key file", w, NULL);
        }
        printf(e == 0 ? "%s is keyed to the CH key in force " : "%s re-keyed to CH key ", dev.me.id.s);
        print_hex(dev.mem.ch.thumb, sizeof(dev.mem.ch.thumb));
        return 0;
    }
    if (!strcmp(c, "verify")) {
        iog_id_t p;
        iog_verify_resp_t v;
        peer_id(&p);
        open_device(NULL);
        int e = iog_device_verify(&dev, &p, &v);
        loss_report();
        if (e) {
            fail("verify refused", e, &dev);
        }
        if (v.status != IOG_STATUS_MEMBER) {
            printf("warning: %s is %s\n", p.s, iog_status_name(v.status));
            return 1;
        }
        printf("%s is a member: joined in block %llu\n", p.s, (unsigned long long)v.height);
        return 0;
    }
    if (!strcmp(c, "session")) {
        iog_id_t p;
        uint8_t ticket[IOG_TICKET_MAX];
        size_t tl;
        peer_id(&p);
        open_device(NULL);
        int e = iog_device_session(&dev, &p, NULL, &dev.sessions[0], ticket, &tl, sizeof(ticket));
        loss_report();
        if (e) {
            fail("session refused", e, &dev);
        }
        printf("session %02x%02x%02x%02x with %s until %llu (ticket for %s: %u bytes)\n",
               dev.sessions[0].sid[0], dev.sessions[0].sid[1], dev.sessions[0].sid[2],
               dev.sessions[0].sid[3], p.s, (unsigned long long)dev.sessions[0].expires, p.s,
               (unsigned)tl);
        return 0;
    }
    if (!strcmp(c, "leave")) {
        uint64_t h;
        uint8_t hash[32];
        open_device(NULL);
        int e = iog_device_leave(&dev, &h, hash);
        if (e) {
            fail("leave refused", e, &dev);
        }
        printf("%s left: block %llu\n", dev.me.id.s, (unsigned long long)h);
        return 0;
    }
    if (!strcmp(c, "listen")) {
        need(opt.listen, "listen");
        open_device(opt.listen);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        fprintf(stderr, "device %s listening on %s\n", dev.me.id.s, opt.listen);
        uint32_t start = plat.now_ms(plat.ctx);
        while (!stop) {
            if (opt.timeout_s && plat.now_ms(plat.ctx) - start > opt.timeout_s * 1000u) {
                break;
            }
            int e = iog_device_serve(&dev, 200);
            if (e && e != -ETIMEDOUT && e != -EINTR) {
                fail("serve", e, NULL);
            }
        }
        loss_report();
        return 0;
    }
    if (!strcmp(c, "send")) {
        iog_id_t p;
        iog_addr_t pa;
        iog_m2m_t *s;
        uint8_t reply[IOG_M2M_MAX_MSG + 1];
        peer_id(&p);
        need(opt.peer_addr, "peer-addr");
        need(opt.message, "message");
        if (iog_udp_resolve(opt.peer_addr, &pa)) {
            fprintf(stderr, "iotguard-dev: error: bad --peer-addr\n");
            return 2;
        }
        open_device(NULL);
        int e = iog_device_talk(&dev, &pa, &p, &s);
        if (e) {
            loss_report();
            fail("talk refused", e, &dev);
        }
        for (unsigned i = 0; i < opt.count; i++) {
            char msg[IOG_M2M_MAX_MSG];
            int ml = opt.count > 1 ? snprintf(msg, sizeof(msg), "%s %u", opt.message, i + 1)
                                   : snprintf(msg, sizeof(msg), "%s", opt.message);
            if (ml < 0 || (size_t)ml >= sizeof(msg)) {
                ml = (int)sizeof(msg) - 1;
            }
            int n = iog_device_send(&dev, s, &pa, (const uint8_t *)msg, (size_t)ml, reply,
                                    sizeof(reply) - 1);
            if (n < 0) {
                loss_report();
                fail("send", n, &dev);
            }
            printf("sent to %s (session %02x%02x%02x%02x); reply: %.*s\n", p.s, s->sid[0],
                   s->sid[1], s->sid[2], s->sid[3], n, (const char *)reply);
        }
        if (opt.replay) {
            /* an attacker's replay: the last message's exact bytes once more */
            iog_coap_msg_t r;
            iog_cbor_dec_t dd;
            iog_cbor_dec_init(&dd, dev.work, sizeof(dev.work));
            iog_cbor_skip(&dd); /* the last sealed message is still in dev.work */
            int n = (int)(dd.p - dev.work);
            iog_coap_req_t rq = { IOG_COAP_POST, 1, "/m2m", IOG_CF_COSE_ENCRYPT0, IOG_CF_NONE,
                                  NULL, 0, dev.work, (size_t)n, NULL, 0 };
            e = iog_coap_request(&dev.ep, &pa, &rq, &r, dev.rx, sizeof(dev.rx));
            if (e) {
                fail("replay", e, NULL);
            }
            printf("replay answered %d.%02d %.*s\n", r.code >> 5, r.code & 31,
                   (int)r.payload_len, (const char *)r.payload);
            if (r.code == IOG_COAP_CHANGED) {
                return 3; /* accepted a replay: must never happen */
            }
        }
        loss_report();
        return 0;
    }
    usage();
    return 2;
}
