package bench

import "errors"

// ErrScenario is returned for an unknown scenario name.
var ErrScenario = errors.New("unknown scenario")

// ErrBounds is returned when a run is not bounded in count and time, or a
// flag is out of range.
var ErrBounds = errors.New("bench bounds")

// ErrNotLoopback is returned for a --server that is not on a loopback
// address: load goes to this machine only.
var ErrNotLoopback = errors.New("bench loads loopback addresses only")

// errCrypto is returned when the crypto bound's own operations fail.
var errCrypto = errors.New("crypto bound: an operation failed")

// ErrAdmission is returned when the bench's devices cannot be admitted by a
// --server: it admits enrolled devices only and no fleet key was given.
var ErrAdmission = errors.New("the server will not admit the bench's devices")
