package device

import (
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// ErrNotJoined is returned by requests that need a membership the device
// does not have (never joined, or left).
var ErrNotJoined = errors.New("device has not joined a cluster")

// ErrBadResponse is returned when a response fails its checks: bad signature,
// wrong cluster, device or nonce, undecryptable.
var ErrBadResponse = errors.New("bad response")

// ErrWarning is returned (wrapped) when the CH answers /verify with a warning
// or a peer refuses to talk because of one.
var ErrWarning = errors.New("warning")

// ErrReplay is returned when an M2M message repeats or is too old.
var ErrReplay = errors.New("replayed message")

// CodeError is a CoAP error response: its code and diagnostic payload.
type CodeError struct {
	Code       codes.Code
	Diagnostic string
}

func (e *CodeError) Error() string {
	return fmt.Sprintf("%s %s", codeString(e.Code), e.Diagnostic)
}

// codeString renders a code as CoAP writes it, e.g. "4.03".
func codeString(c codes.Code) string { return fmt.Sprintf("%d.%02d", c>>5, c&0x1f) }
