/*
 * Sliding replay window (RFC 6479 style, one 64-bit word).
 */
#include <errno.h>

#include "iog_config.h"
#include "iog_replay.h"

void iog_replay_init(iog_replay_t *w)
{
    w->top = 0;
    w->bitmap = 0;
    w->init = 0;
}

int iog_replay_check(const iog_replay_t *w, uint64_t seq)
{
    if (!w->init || seq > w->top) {
        return 0;
    }
    uint64_t off = w->top - seq;
    if (off >= IOG_REPLAY_WINDOW) {
        return -ESTALE;
    }
    return (w->bitmap >> off) & 1 ? -EALREADY : 0;
}

int iog_replay_update(iog_replay_t *w, uint64_t seq)
{
    int r = iog_replay_check(w, seq);
    if (r) {
        return r;
    }
    if (!w->init) {
        w->init = 1;
        w->top = seq;
        w->bitmap = 1;
    }
    else if (seq > w->top) {
        uint64_t shift = seq - w->top;
        w->bitmap = shift >= IOG_REPLAY_WINDOW ? 0 : w->bitmap << shift;
        w->bitmap |= 1;
        w->top = seq;
    }
    else {
        w->bitmap |= (uint64_t)1 << (w->top - seq);
    }
    return 0;
}
