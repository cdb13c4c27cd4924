// Package audit is the auditor of a cluster head's log: it holds a CH to the
// checkpoints it has seen (a watch state, advanced only along consistency
// proofs, so a rewritten history is caught even when re-signed with the same
// key), and it writes and checks ledger exports — every block, a signed
// checkpoint over them and the session-grant records the CH still holds, in
// one file — that an auditor verifies offline, without the CH. The rules it
// applies are package transparency's; the block checks are the ledger's own
// (ledger.Replay), and so are the grant checks (ledger.CheckGrantBatch).
package audit
