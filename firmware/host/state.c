/*
 * Host device file: key=value text, atomic replace, mode 0600.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"

int iog_state_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    return (int)(n / 2);
}

static void put_hex(FILE *f, const char *k, const uint8_t *p, size_t n)
{
    fprintf(f, "%s=", k);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%02x", p[i]);
    }
    fprintf(f, "\n");
}

int iog_state_save(const char *path, const iog_device_t *d)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return -errno;
    }
    FILE *f = fdopen(fd, "w");
    fprintf(f, "id=%s\n", d->me.id.s);
    put_hex(f, "priv", d->me.priv, 32);
    if (d->has_pin) { /* the CH key it trusts: kept after a leave */
        put_hex(f, "pin", d->pin, 32);
    }
    if (d->log.size) { /* the CH's log as last checked, kept across joins */
        fprintf(f, "log_size=%llu\n", (unsigned long long)d->log.size);
        put_hex(f, "log_root", d->log.root, 32);
    }
    if (d->joined) {
        const iog_member_t *m = &d->mem;
        fprintf(f, "cluster=%s\n", m->ch.cluster.s);
        put_hex(f, "ch_pub", m->ch.pub, 65);
        put_hex(f, "nd", m->nd, 16);
        put_hex(f, "nch", m->nch, 16);
        fprintf(f, "height=%llu\n", (unsigned long long)m->height);
        put_hex(f, "block", m->block, 32);
        fprintf(f, "expires=%llu\n", (unsigned long long)m->expires);
        fprintf(f, "seq=%llu\n", (unsigned long long)m->seq);
    }
    int bad = fflush(f) != 0 || fsync(fd) != 0;
    fclose(f);
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return -EIO;
    }
    return 0;
}

/* Reads every key=value line into a small table. */
typedef struct {
    char k[16];
    char v[160];
} kv_t;

static int load(const char *path, kv_t *kv, int cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return -errno;
    }
    char line[256];
    int n = 0;
    while (n < cap && fgets(line, sizeof(line), f)) {
        char *eq = strchr(line, '=');
        if (!eq) {
            continue;
        }
        *eq = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        eq[1 + strcspn(eq + 1, "\r\n")] = '\0';
        if (strlen(line) >= sizeof(kv[n].k) || strlen(eq + 1) >= sizeof(kv[n].v)) {
            continue;
        }
        strcpy(kv[n].k, line);
        strcpy(kv[n].v, eq + 1);
        n++;
    }
    fclose(f);
    return n;
}

static const char *get(const kv_t *kv, int n, const char *k)
{
    for (int i = 0; i < n; i++) {
        if (!strcmp(kv[i].k, k)) {
            return kv[i].v;
        }
    }
    return NULL;
}

int iog_state_load_identity(const char *path, iog_identity_t *me)
{
    kv_t kv[16];
    int n = load(path, kv, 16);
    if (n < 0) {
        return n;
    }
    const char *id = get(kv, n, "id"), *priv = get(kv, n, "priv");
    if (!id || !priv || iog_id_set(&me->id, id, strlen(id)) ||
        iog_state_hex(priv, me->priv, 32) != 32 || iog_p256_public(me->priv, me->pub)) {
        return -EINVAL;
    }
    return 0;
}

int iog_state_load_member(const char *path, iog_device_t *d)
{
    kv_t kv[24];
    int n = load(path, kv, 24);
    if (n < 0) {
        return n;
    }
    const char *pin = get(kv, n, "pin"), *cl = get(kv, n, "cluster");
    if (pin) {
        if (iog_state_hex(pin, d->pin, 32) != 32) {
            return -EINVAL;
        }
        d->has_pin = 1;
    }
    const char *ls = get(kv, n, "log_size"), *lr = get(kv, n, "log_root");
    if (ls && (!lr || iog_state_hex(lr, d->log.root, 32) != 32 || !(d->log.size = strtoull(ls, NULL, 10)))) {
        return -EINVAL;
    }
    if (!cl) {
        return 0; /* not joined */
    }
    iog_member_t *m = &d->mem;
    const char *pub = get(kv, n, "ch_pub"), *nd = get(kv, n, "nd"), *nch = get(kv, n, "nch");
    const char *h = get(kv, n, "height"), *b = get(kv, n, "block"), *x = get(kv, n, "expires");
    const char *s = get(kv, n, "seq");
    if (!pub || !nd || !nch || !h || !b || !x || !s || iog_id_set(&m->ch.cluster, cl, strlen(cl)) ||
        iog_state_hex(pub, m->ch.pub, 65) != 65 || iog_state_hex(nd, m->nd, 16) != 16 ||
        iog_state_hex(nch, m->nch, 16) != 16 || iog_state_hex(b, m->block, 32) != 32 ||
        iog_p256_check(m->ch.pub)) {
        return -EINVAL;
    }
    m->height = strtoull(h, NULL, 10);
    m->expires = strtoull(x, NULL, 10);
    m->seq = strtoull(s, NULL, 10);
    iog_thumbprint(m->ch.pub, m->ch.thumb);
    if (!d->has_pin) { /* a file from before devices kept the key: the one it joined */
        memcpy(d->pin, m->ch.thumb, 32);
        d->has_pin = 1;
    }
    if (iog_member_derive(&d->me, m)) {
        return -EINVAL;
    }
    d->joined = 1;
    return 0;
}
