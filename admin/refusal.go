package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/ledger"
)

// reasonHeader names, in a refusal's answer, the sentinel it was refused
// for, so that the client's error matches it (errors.Is) as the server's did.
const reasonHeader = "X-Iotguard-Reason"

// sentinels are the refusals an operator's request can meet, by the word
// that names them on the socket.
var sentinels = []struct {
	word string
	err  error
}{
	{"malformed", cluster.ErrMalformed},
	{"unknown-device", ledger.ErrUnknownDevice},
	{"conflict", ledger.ErrConflict},
	{"revoked", ledger.ErrRevoked},
	{"enrolled", ledger.ErrEnrolled},
	{"not-enrolled", ledger.ErrNotEnrolled},
	{"enrollment-removed", ledger.ErrEnrollmentRemoved},
	{"invalid-event", ledger.ErrInvalidEvent},
}

// refuse answers 409 with err's text and the word of its sentinel, if any.
func refuse(w http.ResponseWriter, err error) {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			w.Header().Set(reasonHeader, s.word)
			break
		}
	}
	http.Error(w, err.Error(), http.StatusConflict)
}

// refusal is the client's error for a refused request: the server's text,
// wrapping the sentinel word names.
func refusal(word, text string) error {
	for _, s := range sentinels {
		if s.word == word {
			return fmt.Errorf("%w: %s", s.err, text)
		}
	}
	return errors.New(text)
}
