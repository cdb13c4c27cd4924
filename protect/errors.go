package protect

import "errors"

// ErrWrongRecipient is returned when a ticket names another recipient.
var ErrWrongRecipient = errors.New("ticket for another recipient")

// ErrExpired is returned when a ticket's expiry has passed.
var ErrExpired = errors.New("ticket expired")

// ErrStale is returned when a talk proof's time lies more than
// TalkProofLifetime from the checker's clock.
var ErrStale = errors.New("talk proof stale")
