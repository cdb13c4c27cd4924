/*
 * Interop with libcoap on real UDP sockets (host build only):
 *  - coap-client-notls sends CON and NON requests to our server, and must print
 *    the payload our handler answers;
 *  - our client talks to coap-server-notls;
 *  - both ways with the Padding option (PROTOCOL.md §2): libcoap's encoding
 *    of it parses, and libcoap's server ignores it (elective).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iog_coap.h"
#include "iog_udp.h"
#include "unit.h"

/* The Padding option's length in the last request to our server, or -1 without one. */
static int seen_padding = -1;

static void talk_handler(void *ctx, const iog_addr_t *from, const iog_coap_msg_t *req,
                         iog_coap_resp_t *resp)
{
    (void)from;
    (*(int *)ctx)++;
    const iog_coap_opt_t *pad = iog_coap_opt(req, IOG_COAP_OPT_PADDING);
    seen_padding = pad ? pad->len : -1;
    uint32_t cf = 0;
    if (!iog_coap_path_is(req, "/talk") || req->code != IOG_COAP_POST ||
        iog_coap_opt_uint(req, IOG_COAP_OPT_CONTENT_FORMAT, &cf) || cf != IOG_CF_CBOR) {
        resp->code = IOG_COAP_BAD_REQUEST;
        return;
    }
    resp->code = IOG_COAP_CONTENT;
    resp->content_format = IOG_CF_TEXT;
    resp->len = (size_t)snprintf((char *)resp->payload, resp->cap, "got %.*s",
                                 (int)req->payload_len, (const char *)req->payload);
}

/* Runs coap-client-notls with args, serving our endpoint meanwhile; returns its stdout. */
static int run_client(iog_coap_ep_t *ep, char *const argv[], char *out, size_t cap)
{
    int pfd[2];
    if (pipe(pfd)) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    for (int i = 0; i < 20; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = 0;
            break;
        }
        iog_coap_serve(ep, 100);
    }
    if (pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    ssize_t n = read(pfd[0], out, cap - 1);
    close(pfd[0]);
    out[n > 0 ? n : 0] = '\0';
    return 0;
}

static int have(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static void client_to_our_server(void)
{
    static iog_udp_t u;
    static iog_platform_t plat;
    static iog_coap_ep_t ep;
    int calls = 0;
    char uri[64], port[8], out[256];
    CHECK_EQ(iog_udp_open(&u, "127.0.0.1:0"), 0);
    iog_udp_platform(&u, &plat);
    iog_coap_ep_init(&ep, &plat);
    ep.handler = talk_handler;
    ep.handler_ctx = &calls;
    snprintf(port, sizeof(port), "%u", iog_udp_port(&u));
    snprintf(uri, sizeof(uri), "coap://127.0.0.1:%s/talk", port);

    char *con[] = { "coap-client-notls", "-m", "post", "-t", "60", "-e", "hello", "-B", "2",
                    uri, NULL };
    run_client(&ep, con, out, sizeof(out));
    CHECK(strstr(out, "got hello") != NULL);
    if (!strstr(out, "got hello")) {
        printf("  coap-client printed: %s\n", out);
    }
    CHECK_EQ(calls, 1);

    char *non[] = { "coap-client-notls", "-N", "-m", "post", "-t", "60", "-e", "non", "-B", "2",
                    uri, NULL };
    run_client(&ep, non, out, sizeof(out));
    CHECK(strstr(out, "got non") != NULL);

    /* wrong Content-Format reaches the handler, which refuses it */
    char *bad[] = { "coap-client-notls", "-m", "post", "-t", "0", "-e", "x", "-B", "2", uri,
                    NULL };
    run_client(&ep, bad, out, sizeof(out));
    CHECK(strstr(out, "got") == NULL);
    CHECK_EQ(calls, 3);
    CHECK_EQ(seen_padding, -1);

    /* padded by libcoap: 100 zeros of option 65020, the payload after them */
    char zeros[2 + 200 + 1] = "0x", padding[8 + sizeof(zeros)];
    memset(zeros + 2, '0', 200);
    zeros[202] = '\0';
    snprintf(padding, sizeof(padding), "%u,%s", IOG_COAP_OPT_PADDING, zeros);
    char *padded[] = { "coap-client-notls", "-m", "post", "-t", "60", "-e", "padded", "-O", padding,
                       "-B", "2", uri, NULL };
    run_client(&ep, padded, out, sizeof(out));
    CHECK(strstr(out, "got padded") != NULL);
    CHECK_EQ(seen_padding, 100);
    iog_udp_close(&u);
}

static void our_client_to_libcoap_server(void)
{
    static iog_udp_t u, probe;
    static iog_platform_t plat;
    static iog_coap_ep_t ep;
    static uint8_t buf[IOG_COAP_MAX_PDU];
    char port[8];
    /* find a free port, then let coap-server-notls take it */
    iog_udp_open(&probe, "127.0.0.1:0");
    snprintf(port, sizeof(port), "%u", iog_udp_port(&probe));
    iog_udp_close(&probe);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("coap-server-notls", "coap-server-notls", "-A", "127.0.0.1", "-p", port,
               (char *)NULL);
        _exit(127);
    }
    usleep(300000);
    CHECK_EQ(iog_udp_open(&u, "127.0.0.1:0"), 0);
    iog_udp_platform(&u, &plat);
    iog_coap_ep_init(&ep, &plat);
    ep.ack_timeout_ms = 500;
    iog_addr_t srv;
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%s", port);
    iog_udp_resolve(host, &srv);
    iog_coap_msg_t resp;
    iog_coap_req_t req = { IOG_COAP_GET, 1, "/", IOG_CF_NONE, IOG_CF_NONE, NULL, 0, NULL, 0, NULL, 0 };
    CHECK_EQ(iog_coap_request(&ep, &srv, &req, &resp, buf, sizeof(buf)), 0);
    CHECK_EQ(resp.code, IOG_COAP_CONTENT);
    CHECK(resp.payload_len > 0);
    req.path = "/.well-known/core";
    CHECK_EQ(iog_coap_request(&ep, &srv, &req, &resp, buf, sizeof(buf)), 0);
    CHECK_EQ(resp.code, IOG_COAP_CONTENT);
    uint32_t cf = 99;
    CHECK_EQ(iog_coap_opt_uint(&resp, IOG_COAP_OPT_CONTENT_FORMAT, &cf), 0);
    CHECK_EQ(cf, IOG_CF_LINK_FORMAT);
    /* padded: libcoap's server ignores the elective Padding option it does not know */
    req.path = "/";
    req.pad_to = IOG_PADDED_REQUEST;
    CHECK_EQ(iog_coap_request(&ep, &srv, &req, &resp, buf, sizeof(buf)), 0);
    CHECK_EQ(resp.code, IOG_COAP_CONTENT);
    CHECK(resp.payload_len > 0);
    req.pad_to = 0;
    req.path = "/no/such";
    req.confirmable = 0;
    CHECK_EQ(iog_coap_request(&ep, &srv, &req, &resp, buf, sizeof(buf)), 0);
    CHECK_EQ(resp.code, IOG_COAP_NOT_FOUND);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    iog_udp_close(&u);
}

void test_libcoap(void)
{
    if (!have("coap-client-notls") || !have("coap-server-notls")) {
        printf("FAIL libcoap-bin is not installed (make deps)\n");
        unit_fail++;
        return;
    }
    client_to_our_server();
    our_client_to_libcoap_server();
}
