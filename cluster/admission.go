package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// Admission is the cluster's policy for who may join (docs/SECURITY.md,
// "Admission"). The zero value is AdmissionEnrolled: a CH configured without
// a word about admission admits only what the operator let in.
type Admission uint8

const (
	// AdmissionEnrolled admits a join only if its ID is enrolled in this
	// cluster with the join's key (within the enrollment's terms), or the
	// join carries a valid credential of a trusted fleet key for its ID and
	// key.
	AdmissionEnrolled Admission = iota
	// AdmissionOpen admits every join that passes the other checks: anyone
	// who makes a key and claims a position inside the radius joins. For
	// demos and the seed scenario only.
	AdmissionOpen
)

// String returns "enrolled", "open" or "Admission(n)".
func (a Admission) String() string {
	switch a {
	case AdmissionEnrolled:
		return "enrolled"
	case AdmissionOpen:
		return "open"
	}
	return fmt.Sprintf("Admission(%d)", uint8(a))
}

// ParseAdmission parses "enrolled" or "open".
func ParseAdmission(s string) (Admission, error) {
	for _, a := range []Admission{AdmissionEnrolled, AdmissionOpen} {
		if s == a.String() {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown admission %q: want enrolled or open", s)
}

// fleetKeys are the trusted fleet public keys by their kid (wire.FleetKID).
type fleetKeys map[string]*ecdsa.PublicKey

// newFleetKeys indexes keys by kid; two keys with one kid cannot both be
// trusted (a credential would not say which one signed it).
func newFleetKeys(keys []*ecdsa.PublicKey) (fleetKeys, error) {
	m := fleetKeys{}
	for _, k := range keys {
		kid := string(wire.FleetKID(k))
		if old, ok := m[kid]; ok && !old.Equal(k) {
			return nil, fmt.Errorf("two fleet keys share the kid %x", kid)
		}
		m[kid] = k
	}
	return m, nil
}

// admit applies the admission policy to a join whose shape, echo, signature
// and radius have passed: req is its payload, pub the device key that signed
// it. It reads the ledger but never writes it.
//
// What each answer reveals matters, because anyone can send a join (with a
// fresh echo, one per source address and round trip, and under the
// per-source rate limit): a join without a valid credential whose key is not
// the enrolled one gets ErrNotEnrolled whether or not the ID is enrolled
// (ErrEnrolledOtherKey is only its metric reason), so an outsider learns no
// enrolled ID. Everything else that depends on an enrollment (expired,
// removed, outside the enrolled position) is answered only to the enrolled
// key, whose signature the join carries. Credential checks come first and
// depend on the credential alone.
//
// An individual enrollment of the ID in this cluster takes precedence over a
// fleet credential (as in Azure DPS): its key and terms decide. A credential
// costs at most one ES256 verification, after every cheaper check.
func (c *Core) admit(req *wire.JoinRequest, pub *ecdsa.PublicKey, now time.Time) error {
	if c.cfg.Admission == AdmissionOpen {
		return nil
	}
	credentialOK := false
	if req.Credential != nil {
		if err := c.checkCredential(req, pub, now); err != nil {
			return err
		}
		credentialOK = true
	}
	e, err := c.ledger.Enrollment(req.ID)
	if errors.Is(err, ledger.ErrNotEnrolled) || err == nil && e.Cluster != "" && e.Cluster != c.cfg.ID {
		// No enrollment here (another cluster's does not admit here).
		if credentialOK {
			return nil
		}
		return ErrNotEnrolled
	}
	if err != nil {
		return fmt.Errorf("failed to look up enrollment of %s: %w", req.ID, err)
	}
	if !bytes.Equal(e.Key, req.Key) {
		return ErrEnrolledOtherKey
	}
	if err := e.ActiveAt(now); err != nil {
		return err // ErrEnrollmentRemoved, ErrEnrollmentExpired
	}
	if e.HasPosition() && Distance(Position{e.Lat, e.Lon}, Position{req.Lat, req.Lon}) > float64(e.Tolerance) {
		return ErrOutsideEnrolledPosition
	}
	return nil
}

// checkCredential checks the fleet credential a join carries: well formed,
// from a trusted fleet key, valid now, naming the join's ID and key, then
// (the one expensive step) signed by that fleet key.
func (c *Core) checkCredential(req *wire.JoinRequest, pub *ecdsa.PublicKey, now time.Time) error {
	cred, err := wire.ParseCredential(req.Credential)
	if err != nil {
		return ErrCredentialMalformed
	}
	fleet, ok := c.fleet[string(cred.KID)]
	if !ok {
		return ErrCredentialUntrusted
	}
	t := uint64(max(now.Unix(), 0))
	if t < cred.NotBefore {
		return ErrCredentialNotYetValid
	}
	if t >= cred.NotAfter {
		return ErrCredentialExpired
	}
	if cred.ID != req.ID {
		return ErrCredentialOtherID
	}
	thumb := wire.Thumbprint(pub)
	if !bytes.Equal(cred.Key, thumb[:]) {
		return ErrCredentialOtherKey
	}
	start := time.Now()
	err = cred.Verify(fleet)
	c.obs.Crypto("verify", time.Since(start))
	if err != nil {
		return ErrCredentialSignature
	}
	return nil
}
