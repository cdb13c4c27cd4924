/**
 * @file
 * @brief The host device file: identity, pinned CH key, membership,
 *        sequence number and the CH's log as last checked (tree size and root).
 *
 * A text file of key=value lines, written atomically with mode 0600.
 * IMPORTANT: it holds the private key.
 */
#ifndef IOG_STATE_H
#define IOG_STATE_H

#include "iog_device.h"

/** Writes @p d's identity and membership to @p path. @return 0 or -errno. */
int iog_state_save(const char *path, const iog_device_t *d);
/** Reads the identity. @return 0 or -errno. */
int iog_state_load_identity(const char *path, iog_identity_t *me);
/**
 * Reads the pinned CH key (the one of the first join, or a re-pin), the
 * membership, if any, and derives its keys, and the kept log checkpoint.
 * @return 0 or -errno.
 */
int iog_state_load_member(const char *path, iog_device_t *d);
/** Parses hex into at most @p cap bytes. @return the byte count or -1. */
int iog_state_hex(const char *s, uint8_t *out, size_t cap);

#endif
