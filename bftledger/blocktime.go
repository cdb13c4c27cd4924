package bftledger

import (
	"bytes"
	"time"

	"github.com/iotguard/iotguard/wire"
)

// Block time.
//
// CometBFT 0.38 stamps a block with the median time of the votes that
// committed the block before it ("BFT time"). With create_empty_blocks =
// false the block before may be hours old: the first block after a quiet
// spell would carry a time from before it, its events would be judged (and
// refused) against that time, and the ledger would record it. Proposer-based
// timestamps, which fix this in the engine, arrive only in CometBFT 1.0.
//
// So the application stamps its own blocks, the way proposer-based
// timestamps do: a proposer opens every block that carries transactions with
// a proposal-time transaction holding its clock (PrepareProposal). A
// validator refuses a proposal without one, or whose time is more than
// MaxProposalAhead ahead of its own clock (ProcessProposal: the time is the
// proposer's claim, and it may not run ahead of the validators'). The block
// time (decidedTime) is then that time, but never earlier than the BFT time
// (a lower bound of the real time that no minority can move) nor than the
// previous ledger block. An honest proposer's block is stamped with the time
// it was proposed; a faulty one can at worst backdate to the BFT time, as
// every block was before. Only the forward check depends on a local clock,
// and it only ever gets easier as time passes, so a block that was once
// acceptable never becomes unacceptable (a re-proposed block of an earlier
// round stays valid): liveness needs the validators' clocks to agree within
// MaxProposalAhead.

// MaxProposalAhead is how far ahead of a validator's clock a proposal's time
// may be for the validator to accept the proposal.
const MaxProposalAhead = 5 * time.Second

// timeDomain tags the proposal-time transaction; it is never a Tx (a Tx is
// a CBOR map, this a CBOR array).
const timeDomain = "iotguard-bft-time-v1"

// proposalTime is the first transaction of a block that carries others: the
// proposer's clock, in unix milliseconds.
type proposalTime struct {
	_      struct{} `cbor:",toarray"`
	Domain string
	MS     int64
}

// encodeProposalTime returns the proposal-time transaction for ms.
func encodeProposalTime(ms int64) ([]byte, error) {
	return wire.Marshal(&proposalTime{Domain: timeDomain, MS: ms})
}

// decodeProposalTime returns the time of a proposal-time transaction, in the
// exact encoding encodeProposalTime makes, and whether raw is one.
func decodeProposalTime(raw []byte) (int64, bool) {
	if len(raw) == 0 || raw[0]>>5 != 4 { // not a CBOR array: not a proposal time (a Tx is a map)
		return 0, false
	}
	var p proposalTime
	if err := wire.Unmarshal(raw, &p); err != nil || p.Domain != timeDomain {
		return 0, false
	}
	again, err := encodeProposalTime(p.MS)
	if err != nil || !bytes.Equal(again, raw) {
		return 0, false
	}
	return p.MS, true
}

// decidedTime is the time, in unix milliseconds, at which a decided block's
// events are judged and its ledger blocks stamped: its proposal time if its
// first transaction is one, but never before the block's BFT time
// (consensusMS) nor before the previous ledger block (prevMS). It is
// deterministic: every validator, and Verify, compute the same.
func decidedTime(txs [][]byte, consensusMS, prevMS int64) int64 {
	t := max(consensusMS, prevMS)
	if len(txs) > 0 {
		if p, ok := decodeProposalTime(txs[0]); ok {
			t = max(t, p)
		}
	}
	return t
}

// execBlock runs the transactions of a decided block on e, the proposal time
// (first, if there) with an empty result of its own. It returns an error
// only when the state cannot be read (see executor.exec).
func execBlock(e *executor, txs [][]byte) error {
	for i, tx := range txs {
		if i == 0 {
			if _, ok := decodeProposalTime(tx); ok {
				e.results = append(e.results, txResult{})
				continue
			}
		}
		if err := e.exec(tx); err != nil {
			return err
		}
	}
	return nil
}
