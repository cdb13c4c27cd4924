/**
 * @file
 * @brief The cluster head's transparency log as a device checks it
 *        (docs/PROTOCOL.md §9): signed checkpoints, inclusion and
 *        consistency proofs (RFC 9162 §2.1, SHA-256). No I/O.
 *
 * The ledger's blocks are the leaves of an RFC 9162 Merkle tree: leaf i is
 * SHA-256(0x00 || hash of block i), a node SHA-256(0x01 || left || right).
 * After a join the device asks GET /ledger/proof?id=ID (&from=M once it keeps
 * a checkpoint of size M) and checks the answer with iog_tlog_check_join():
 * one ES256 verify (the checkpoint) and a few hashes per tree level.
 *
 * Proof paths are used in place: a path of n hashes is the content of the
 * CBOR array that carried it, n byte strings of 32 bytes each in deterministic
 * encoding (head 58 20), so hash i is at path + 34 i + 2.
 */
#ifndef IOG_TLOG_H
#define IOG_TLOG_H

#include <stddef.h>
#include <stdint.h>

#include "iog_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/** External AAD of a checkpoint (PROTOCOL.md §9.1). */
#define IOG_AAD_CHECKPOINT "iotguard checkpoint"
/** Bytes of one path hash in the answer: bstr head 58 20, 32 bytes. */
#define IOG_TLOG_STRIDE 34
/** Most hashes in one proof path (PROTOCOL.md §9.2). */
#define IOG_TLOG_MAX_PATH 63
/** Largest tree checked: 2^32 - 1 blocks (a CH appends at most a few blocks a second). */
#define IOG_TLOG_MAX_SIZE 0xFFFFFFFFu

/** A checkpoint a device verified and keeps: the first @p size blocks have root @p root. */
typedef struct {
    uint64_t size;              /**< tree size, 0: none kept */
    uint8_t root[IOG_HASH_LEN]; /**< root hash of that tree */
} iog_tlog_cp_t;

/**
 * @brief Verifies a signed checkpoint (PROTOCOL.md §9.1) of the CH @p ch: its
 *        kid is @p ch's thumbprint, its signature verifies under @p ch's key
 *        and it is of @p ch's cluster.
 * @param[out] time_ms the time of the newest block it covers, or NULL
 * @return 0, -EBADMSG when malformed, -EACCES when signed by another key,
 *         not verifying or of another cluster.
 */
int iog_checkpoint_verify(const uint8_t *buf, size_t len, const iog_cluster_t *ch,
                          iog_tlog_cp_t *cp, uint64_t *time_ms);

/** A decoded GET /ledger/proof answer (PROTOCOL.md §9.2): views into it. */
typedef struct {
    iog_view_t cp;     /**< key 1: the signed checkpoint */
    uint64_t index;    /**< key 2: leaf index = block height */
    iog_view_t block;  /**< key 3: the block hash, 32 bytes */
    iog_view_t path;   /**< key 4: the audit path, leaf to root: its first hash and their count */
    uint64_t old_size; /**< key 5: the tree size asked with from=, 0 when absent */
    iog_view_t cons;   /**< key 6: the consistency path from old_size, as @p path; p NULL when absent */
} iog_proof_t;

/**
 * @brief Decodes an inclusion-proof answer (Content-Format 60). The
 *        checkpoint inside is not verified here.
 * @return 0 or -EBADMSG.
 */
int iog_proof_decode(const uint8_t *buf, size_t len, iog_proof_t *p);

/**
 * @brief Checks that @p path (@p n hashes) proves the leaf hash @p leaf
 *        (SHA-256(0x00 || block hash)) to be leaf @p index of the tree @p cp
 *        states (RFC 9162 §2.1.3.2).
 * @return 0 or -EILSEQ.
 */
int iog_tlog_inclusion(uint64_t index, const uint8_t leaf[IOG_HASH_LEN], const iog_tlog_cp_t *cp,
                       const uint8_t *path, size_t n);

/**
 * @brief Checks that @p path (@p n hashes) proves the tree @p old a prefix of
 *        the tree @p cp (RFC 9162 §2.1.4.2). Equal sizes need an empty path
 *        and equal roots; trees of more than IOG_TLOG_MAX_SIZE blocks are
 *        refused.
 * @return 0 or -EILSEQ.
 */
int iog_tlog_consistency(const iog_tlog_cp_t *old, const iog_tlog_cp_t *cp, const uint8_t *path,
                         size_t n);

/**
 * @brief The device's check of its join (PROTOCOL.md §9.2) on the answer to
 *        GET /ledger/proof?id=ID[&from=kept->size].
 *
 * Checks that the checkpoint names the CH key of the membership @p m and its
 * cluster, that the block proven is the join block @p m names (height and
 * hash), the audit path, and, when @p kept holds a checkpoint, that the
 * answer proves consistency from exactly that tree size: the new tree is not
 * smaller, an equal size has the same root, the consistency path verifies
 * from the kept root; last, the checkpoint's signature. Then @p kept becomes
 * the new checkpoint; on failure it is unchanged. The kept checkpoint is
 * only a size and a root, verified when it was kept: the log stays checked
 * across a CH key rotation the device followed.
 *
 * @param[out] time_ms the checkpoint's time (a lower bound of now), or NULL
 * @return 0; -EBADMSG malformed; -EACCES checkpoint not by the CH key (or of
 *         another cluster); -ENOENT the log proves another block than the
 *         join answer named; -EILSEQ the audit path does not lead to the
 *         root; -EXDEV the log is not an extension of the kept checkpoint.
 */
int iog_tlog_check_join(const uint8_t *buf, size_t len, const iog_member_t *m,
                        iog_tlog_cp_t *kept, uint64_t *time_ms);

#ifdef __cplusplus
}
#endif

#endif /* IOG_TLOG_H */
