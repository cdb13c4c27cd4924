package keysvc_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/wire"
)

const cluster = "cluster-1"

var now = time.Unix(1767225600, 0)

func newService(t testing.TB) *keysvc.Service {
	t.Helper()
	s, err := keysvc.Open(t.TempDir(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// vector reads testdata/vectors/<name>.json as a map of raw fields.
func vector(t testing.TB, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "vectors", name+".json"))
	if err != nil {
		t.Fatalf("%v (generate with: go test ./protect -run TestVectors -update)", err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func hexField(t testing.TB, v map[string]any, name string) []byte {
	t.Helper()
	s, ok := v[name].(string)
	if !ok {
		t.Fatalf("vector has no field %q", name)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("field %q: %v", name, err)
	}
	return b
}

// serviceWithKey opens a Service on a data directory holding the P-256 key d.
func serviceWithKey(t testing.TB, d []byte) *keysvc.Service {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, keysvc.KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := keysvc.Open(dir, cluster)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerify(t *testing.T) {
	s, other := newService(t), newService(t)
	msg := []byte("block header")
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 64 {
		t.Fatalf("signature of %d bytes, ES256 is r ‖ s = 64", len(sig))
	}
	if err := s.Verify(msg, sig); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// It is plain ES256 over SHA-256(msg), checkable with crypto/ecdsa alone.
	h := sha256.Sum256(msg)
	if !ecdsa.Verify(s.PublicKey(), h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("crypto/ecdsa does not verify the signature as r ‖ s over SHA-256")
	}
	bad := bytes.Clone(sig)
	bad[10] ^= 1
	for name, err := range map[string]error{
		"another message": s.Verify([]byte("block headeR"), sig),
		"tampered":        s.Verify(msg, bad),
		"truncated":       s.Verify(msg, sig[:63]),
		"empty":           s.Verify(msg, nil),
		"another CH":      other.Verify(msg, sig),
	} {
		if !errors.Is(err, wire.ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestSign1(t *testing.T) {
	s := newService(t)
	b, err := s.Sign1(wire.AADHead, []byte{0xa0})
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.ParseSign1(b)
	if err != nil {
		t.Fatal(err)
	}
	th := s.Thumbprint()
	if !bytes.Equal(m.KID, th[:]) {
		t.Errorf("kid %x, want the CH thumbprint %x", m.KID, th)
	}
	if err := m.Verify(s.PublicKey(), wire.AADHead); err != nil {
		t.Errorf("Verify: %v", err)
	}
	pub, err := wire.ParsePublicKey(s.COSEKey())
	if err != nil || !pub.Equal(s.PublicKey()) || wire.Thumbprint(pub) != th {
		t.Errorf("COSEKey does not parse to the CH key (%v)", err)
	}
}

func TestNonce(t *testing.T) {
	s := newService(t)
	a, err := s.Nonce()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Nonce()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != wire.NonceLen || bytes.Equal(a, b) {
		t.Errorf("Nonce = %x then %x", a, b)
	}
}

// device is a member as seen from both sides: its private key, and the
// keysvc.Member the CH has from the ledger.
type device struct {
	priv   *ecdh.PrivateKey
	member keysvc.Member
}

func newDevice(t testing.TB, id string, nonceByte byte) device {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := wire.EncodePublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return device{priv, keysvc.Member{ID: id, Key: key,
		DeviceNonce: bytes.Repeat([]byte{nonceByte}, 16), CHNonce: bytes.Repeat([]byte{nonceByte + 1}, 16)}}
}

// keys derives the device-side member keys (§3.4) with protect alone.
func (d device) keys(t testing.TB, s *keysvc.Service) protect.MemberKeys {
	t.Helper()
	chPub, err := s.PublicKey().ECDH()
	if err != nil {
		t.Fatal(err)
	}
	z, err := d.priv.ECDH(chPub)
	if err != nil {
		t.Fatal(err)
	}
	km, err := protect.MemberKey(z, d.member.DeviceNonce, d.member.CHNonce, cluster, d.member.ID, wire.Thumbprint(s.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	return protect.DeriveMemberKeys(km)
}

func TestIssueSession(t *testing.T) {
	s := newService(t)
	m1, m2 := newDevice(t, "sensor-01", 0x10), newDevice(t, "sensor-02", 0x20)
	expires := now.Add(10 * time.Minute)
	sess, err := s.IssueSession(m1.member, m2.member, expires)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.SID) != wire.NonceLen || !sess.Expires.Equal(expires) {
		t.Errorf("session sid %x expires %v", sess.SID, sess.Expires)
	}
	for name, tk := range map[string]wire.Ticket{"grant": sess.Grant, "ticket": sess.Ticket} {
		if !bytes.Equal(tk.SID, sess.SID) || tk.Expires != uint64(expires.Unix()) ||
			tk.Initiator != "sensor-01" || tk.Responder != "sensor-02" {
			t.Errorf("%s: sid %x expires %d initiator %q responder %q", name, tk.SID, tk.Expires, tk.Initiator, tk.Responder)
		}
		if err := tk.Validate(); err != nil {
			t.Errorf("%s does not validate: %v", name, err)
		}
	}
	if sess.Grant.Recipient != "sensor-02" || sess.Ticket.Recipient != "sensor-01" {
		t.Errorf("recipients: grant %q, ticket %q; want sensor-02, sensor-01", sess.Grant.Recipient, sess.Ticket.Recipient)
	}

	// Each device opens its own ticket with keys it derives itself; both get the same Sk.
	k1, k2 := m1.keys(t, s), m2.keys(t, s)
	sk1, err := protect.OpenTicket(k1.Ticket, cluster, "sensor-01", &sess.Ticket, now)
	if err != nil {
		t.Fatalf("M1 opens its ticket: %v", err)
	}
	sk2, err := protect.OpenTicket(k2.Ticket, cluster, "sensor-02", &sess.Grant, now)
	if err != nil {
		t.Fatalf("M2 opens its grant: %v", err)
	}
	if sk1 != sk2 || sk1 == [wire.KeySize]byte{} {
		t.Errorf("Sk differs or is zero: %x, %x", sk1, sk2)
	}
	// Neither can open the other's.
	if _, err := protect.OpenTicket(k1.Ticket, cluster, "sensor-01", &sess.Grant, now); !errors.Is(err, protect.ErrWrongRecipient) {
		t.Errorf("M1 opens the grant: %v", err)
	}
	if _, err := protect.OpenTicket(k1.Ticket, cluster, "sensor-02", &sess.Grant, now); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("M1 posing as M2 opens the grant: %v", err)
	}
	if _, err := protect.OpenTicket(k2.Ticket, cluster, "sensor-01", &sess.Ticket, now); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("M2 posing as M1 opens the ticket: %v", err)
	}
	if _, err := protect.OpenTicket(k1.Ticket, cluster, "sensor-01", &sess.Ticket, expires); !errors.Is(err, protect.ErrExpired) {
		t.Errorf("ticket opened at its expiry: %v", err)
	}

	// A second session has fresh sid and Sk.
	sess2, err := s.IssueSession(m1.member, m2.member, expires)
	if err != nil {
		t.Fatal(err)
	}
	sk3, err := protect.OpenTicket(k1.Ticket, cluster, "sensor-01", &sess2.Ticket, now)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sess2.SID, sess.SID) || sk3 == sk1 {
		t.Error("two sessions share a sid or Sk")
	}
}

func TestIssueSessionBadMember(t *testing.T) {
	s := newService(t)
	good := newDevice(t, "sensor-01", 1)
	bad := good.member
	bad.ID, bad.Key = "sensor-02", []byte{0xa0}
	if _, err := s.IssueSession(good.member, bad, now); !errors.Is(err, keysvc.ErrBadMemberKey) {
		t.Errorf("IssueSession with an unusable key = %v, want ErrBadMemberKey", err)
	}
	if _, err := s.IssueSession(bad, good.member, now); !errors.Is(err, keysvc.ErrBadMemberKey) {
		t.Errorf("IssueSession with an unusable key = %v, want ErrBadMemberKey", err)
	}
}

func TestOpenRequestSealResponse(t *testing.T) {
	s := newService(t)
	d := newDevice(t, "sensor-01", 0x30)
	k := d.keys(t, s)
	b, err := protect.SealRequest(&k, cluster, "sensor-01", 3, protect.PathSession, []byte("req"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := protect.ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := s.OpenRequest(d.member, req, protect.PathSession)
	if err != nil || string(pt) != "req" {
		t.Fatalf("OpenRequest = %q, %v", pt, err)
	}
	if _, err := s.OpenRequest(d.member, req, protect.PathVerify); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenRequest at another path = %v, want ErrDecrypt", err)
	}
	resp, err := s.SealResponse(d.member, req, protect.PathSession, []byte("resp"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := protect.OpenResponse(&k, cluster, "sensor-01", 3, protect.PathSession, resp); err != nil || string(got) != "resp" {
		t.Errorf("device opens the response: %q, %v", got, err)
	}

	// A rejoin (new nonces) is a new K_m: the old keys no longer open, even
	// though the old ones are cached.
	rejoined := d.member
	rejoined.DeviceNonce = bytes.Repeat([]byte{0x99}, 16)
	if _, err := s.OpenRequest(rejoined, req, protect.PathSession); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenRequest after a rejoin = %v, want ErrDecrypt", err)
	}
	// Same ID and nonces but another key (a different device): not the cached keys.
	impostor := newDevice(t, "sensor-01", 0x30)
	if _, err := s.OpenRequest(impostor.member, req, protect.PathSession); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenRequest for another key with the same nonces = %v, want ErrDecrypt", err)
	}
	if _, err := s.OpenRequest(d.member, req, protect.PathSession); err != nil {
		t.Errorf("OpenRequest for the original member after the others: %v", err)
	}
}

// TestVectorsAtTheCH replays protected-request.json at a CH holding the
// vectors' fixed key: keysvc derives the member keys from kdf.json's public
// inputs alone and must reproduce the response bytes exactly.
func TestVectorsAtTheCH(t *testing.T) {
	kdf, pr := vector(t, "kdf"), vector(t, "protected-request")
	s := serviceWithKey(t, hexField(t, kdf, "ch_priv"))
	if th := s.Thumbprint(); !bytes.Equal(th[:], hexField(t, kdf, "ch_thumbprint")) {
		t.Fatalf("thumbprint %x, kdf.json says %x", th, hexField(t, kdf, "ch_thumbprint"))
	}
	if !bytes.Equal(s.COSEKey(), hexField(t, kdf, "ch_cose_key")) {
		t.Errorf("COSEKey %x, kdf.json says %x", s.COSEKey(), hexField(t, kdf, "ch_cose_key"))
	}
	m := keysvc.Member{ID: kdf["id"].(string), Key: hexField(t, kdf, "device_cose_key"),
		DeviceNonce: hexField(t, kdf, "device_nonce"), CHNonce: hexField(t, kdf, "ch_nonce")}
	req, err := protect.ParseRequest(hexField(t, pr, "request"))
	if err != nil {
		t.Fatal(err)
	}
	path := pr["path"].(string)
	pt, err := s.OpenRequest(m, req, path)
	if err != nil {
		t.Fatalf("OpenRequest: %v", err)
	}
	if !bytes.Equal(pt, hexField(t, pr, "plaintext")) {
		t.Errorf("plaintext %x, want %x", pt, hexField(t, pr, "plaintext"))
	}
	resp, err := s.SealResponse(m, req, path, hexField(t, pr, "response_plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	if want := hexField(t, pr, "response"); !bytes.Equal(resp, want) {
		t.Errorf("SealResponse =\n%x, want\n%x", resp, want)
	}
	tampered, err := protect.ParseRequest(hexField(t, vector(t, "protected-request-tampered"), "request"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenRequest(m, tampered, path); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenRequest(tampered) = %v, want ErrDecrypt", err)
	}
}

// TestConcurrentUse: the Service is documented safe for concurrent use (run with -race).
func TestConcurrentUse(t *testing.T) {
	s := newService(t)
	devs := []device{newDevice(t, "a", 1), newDevice(t, "b", 2), newDevice(t, "c", 3)}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := devs[i%len(devs)]
			k := d.keys(t, s)
			for seq := range uint64(20) {
				b, err := protect.SealRequest(&k, cluster, d.member.ID, seq, protect.PathVerify, []byte("x"))
				if err != nil {
					t.Error(err)
					return
				}
				req, err := protect.ParseRequest(b)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.OpenRequest(d.member, req, protect.PathVerify); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.IssueSession(d.member, devs[(i+1)%len(devs)].member, now); err != nil {
					t.Error(err)
					return
				}
				s.EchoFresh(s.Echo("addr", now, 1), "addr", now)
				if _, err := s.Sign([]byte("m")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
