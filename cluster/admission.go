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

// screened is what admission decided of a join before its signature was
// checked (screen), for admit to finish.
type screened struct {
	cred       *wire.SignedCredential // the join's credential, its fields checked; nil: none
	fleet      *ecdsa.PublicKey       // the trusted fleet key cred names
	enrollment *ledger.Enrollment     // without a credential: the ID's enrollment here, with the join's key
}

// screen applies what the admission policy can decide of a join before its
// signature is checked, so that a join no fleet key or enrollment could admit
// costs neither a signature check nor a place in Config.JoinRate: a
// credential's shape, fleet key, validity, ID and key; without a credential,
// an enrollment of the ID here with the join's key. req is the join's payload,
// pub its key (not yet known to have signed it). It reads the ledger but
// never writes it; admit finishes once the signature verified.
//
// What each answer reveals matters, because anyone can send a join (with a
// fresh echo, one per source address and round trip, and under the
// per-source rate limit): a join without a valid credential whose key is not
// the enrolled one gets ErrNotEnrolled whether or not the ID is enrolled
// (ErrEnrolledOtherKey is only its metric reason), so an outsider learns no
// enrolled ID. So the enrollment is looked up here only for a join without a
// credential, whose two refusals answer alike; a join with a credential is
// screened on the credential alone (answering "not enrolled" here to a
// forged credential for an ID enrolled with another key, and "bad credential
// signature" later to one for an ID not enrolled, would tell them apart).
// Everything else that depends on an enrollment (expired, removed, outside
// the enrolled position) is answered only to the enrolled key, whose
// signature the join carries (admit).
func (c *Core) screen(req *wire.JoinRequest, pub *ecdsa.PublicKey, now time.Time) (screened, error) {
	if c.cfg.Admission == AdmissionOpen {
		return screened{}, nil
	}
	if req.Credential != nil {
		cred, fleet, err := c.credentialFields(req, pub, now)
		return screened{cred: cred, fleet: fleet}, err
	}
	e, here, err := c.enrollment(req.ID)
	switch {
	case err != nil:
		return screened{}, err
	case !here:
		return screened{}, ErrNotEnrolled
	case !bytes.Equal(e.Key, req.Key):
		return screened{}, ErrEnrolledOtherKey
	}
	return screened{enrollment: &e}, nil
}

// admit finishes the admission policy for a join that screen passed and
// whose signature, by pub, verified. An individual enrollment of the ID in
// this cluster takes precedence over a fleet credential (as in Azure DPS):
// its key and terms decide. A credential costs one ES256 verification, after
// every cheaper check (screen). It reads the ledger but never writes it.
func (c *Core) admit(req *wire.JoinRequest, s screened, now time.Time) error {
	if c.cfg.Admission == AdmissionOpen {
		return nil
	}
	e := s.enrollment
	if s.cred != nil {
		start := time.Now()
		err := s.cred.Verify(s.fleet)
		c.obs.Crypto("verify", time.Since(start))
		if err != nil {
			return ErrCredentialSignature
		}
		en, here, err := c.enrollment(req.ID)
		switch {
		case err != nil:
			return err
		case !here:
			return nil // the credential admits it
		case !bytes.Equal(en.Key, req.Key):
			return ErrEnrolledOtherKey
		}
		e = &en
	}
	if err := e.ActiveAt(now); err != nil {
		return err // ErrEnrollmentRemoved, ErrEnrollmentExpired
	}
	if e.HasPosition() && Distance(Position{e.Lat, e.Lon}, Position{req.Lat, req.Lon}) > float64(e.Tolerance) {
		return ErrOutsideEnrolledPosition
	}
	return nil
}

// enrollment returns id's enrollment and whether it is one of this cluster
// (another cluster's, on a shared ledger, does not admit here).
func (c *Core) enrollment(id string) (ledger.Enrollment, bool, error) {
	e, err := c.ledger.Enrollment(id)
	if errors.Is(err, ledger.ErrNotEnrolled) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("failed to look up enrollment of %s: %w", id, err)
	}
	return e, e.Cluster == "" || e.Cluster == c.cfg.ID, nil
}

// credentialFields checks the fleet credential a join carries, all but its
// signature: well formed, from a trusted fleet key, valid now, naming the
// join's ID and key. It returns the credential and its fleet key.
func (c *Core) credentialFields(req *wire.JoinRequest, pub *ecdsa.PublicKey, now time.Time) (*wire.SignedCredential, *ecdsa.PublicKey, error) {
	cred, err := wire.ParseCredential(req.Credential)
	if err != nil {
		return nil, nil, ErrCredentialMalformed
	}
	fleet, ok := c.fleet[string(cred.KID)]
	if !ok {
		return nil, nil, ErrCredentialUntrusted
	}
	t := uint64(max(now.Unix(), 0))
	if t < cred.NotBefore {
		return nil, nil, ErrCredentialNotYetValid
	}
	if t >= cred.NotAfter {
		return nil, nil, ErrCredentialExpired
	}
	if cred.ID != req.ID {
		return nil, nil, ErrCredentialOtherID
	}
	thumb := wire.Thumbprint(pub)
	if !bytes.Equal(cred.Key, thumb[:]) {
		return nil, nil, ErrCredentialOtherKey
	}
	return cred, fleet, nil
}
