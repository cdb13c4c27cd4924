/**
 * @file
 * @brief Sliding replay window of 64 sequence numbers (PROTOCOL.md §4.2, §5.2).
 *
 * A sequence number above the highest seen is accepted and moves the window;
 * one inside the window is accepted once; older ones are rejected.
 */
#ifndef IOG_REPLAY_H
#define IOG_REPLAY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Window state; zero-initialised means "nothing seen yet". */
typedef struct {
    uint64_t top;    /**< highest sequence number accepted */
    uint64_t bitmap; /**< bit i set: top - i was accepted */
    uint8_t init;    /**< 0 until the first accept */
} iog_replay_t;

/** Resets @p w to "nothing seen". */
void iog_replay_init(iog_replay_t *w);

/**
 * @brief Checks @p seq without changing the window.
 * @return 0 when fresh, -EALREADY when seen, -ESTALE when older than the window.
 */
int iog_replay_check(const iog_replay_t *w, uint64_t seq);

/**
 * @brief Marks @p seq as seen. Call only after the message authenticated.
 * @return what iog_replay_check() returned; the window changes only on 0.
 */
int iog_replay_update(iog_replay_t *w, uint64_t seq);

#ifdef __cplusplus
}
#endif

#endif /* IOG_REPLAY_H */
