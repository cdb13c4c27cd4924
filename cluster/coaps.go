package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// Over coaps (docs/PROTOCOL.md §4.5) DTLS authenticates the requester: its PSK
// identity is its device ID, and only the member's PSK (derived from its
// K_m, keysvc) completes a handshake. The requests are the plaintext CBOR
// that the COSE_Encrypt0 of §4 would carry, served by the same rules: only
// how the requester is authenticated differs.

// PSK returns the DTLS pre-shared key of identity, a device ID that must be
// a current member of this cluster now; ErrUnauthorized otherwise, whatever
// the reason (a handshake reveals nothing about other devices).
func (c *Core) PSK(identity string) ([]byte, error) {
	d, err := c.ledger.Lookup(identity)
	switch {
	case errors.Is(err, ledger.ErrUnknownDevice):
		return nil, ErrUnauthorized
	case err != nil:
		return nil, fmt.Errorf("failed to look up %s: %w", identity, err)
	case c.current(d, c.cfg.Now()) != nil:
		return nil, ErrUnauthorized
	}
	return c.keys.PSK(member(d))
}

// VerifyPlain is Verify for a requester authenticated by DTLS.
func (c *Core) VerifyPlain(ctx context.Context, identity string, body []byte) ([]byte, error) {
	return c.plain(ctx, identity, body, c.verify)
}

// SessionPlain is Session for a requester authenticated by DTLS. The grant
// and the peer's ticket stay sealed, each under its member's ticket key.
func (c *Core) SessionPlain(ctx context.Context, identity string, body []byte) ([]byte, error) {
	return c.plain(ctx, identity, body, c.session)
}

// LeavePlain is Leave for a requester authenticated by DTLS.
func (c *Core) LeavePlain(ctx context.Context, identity string, body []byte) ([]byte, error) {
	return c.plain(ctx, identity, body, c.leave)
}

// plain serves a plaintext request of identity: it must still be a current
// member (its membership may have ended since its handshake), then serve
// runs exactly as for a protected request.
func (c *Core) plain(ctx context.Context, identity string, body []byte, serve serveFunc) ([]byte, error) {
	d, err := c.ledger.Lookup(identity)
	if errors.Is(err, ledger.ErrUnknownDevice) {
		return nil, ErrUnauthorized
	} else if err != nil {
		return nil, fmt.Errorf("failed to look up %s: %w", identity, err)
	}
	if err := c.current(d, c.cfg.Now()); err != nil {
		return nil, err
	}
	resp, err := serve(ctx, d, body)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(resp)
}
