package protect_test

// TestVectors replays every shared protocol vector in testdata/vectors/ (the
// files the C firmware replays too) and checks that the files are what the
// generator below makes from its fixed inputs. With -update it rewrites them:
//
//	go test ./protect -run TestVectors -update
//
// Every input is fixed (P-256 private scalars, nonces, IVs, Sk) and signatures
// are RFC 6979 deterministic, so regenerating is byte-for-byte idempotent.

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/iotguard/iotguard/internal/testutil"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/replay"
	"github.com/iotguard/iotguard/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors/*.json from the fixed inputs")

const vectorDir = "../testdata/vectors"

// Fixed inputs. The device key and the CH key are the P-256 example keys of
// RFC 9052 Appendix C.7.2 ("meriadoc.brandybuck@buckland.example" and "11"),
// so the thumbprint vector equals the published RFC 9679 §6 example.
const (
	deviceScalar = "aff907c99f9ad3aae6c4cdf21122bce2bd68b5283e6907154ad911840fa208cf"
	chScalar     = "57c92077664146e876760c9520d054aa93c3afb04e306705db6090308507b4d3"
	// fleetScalar is the fleet key of join-request-credential.json: bytes
	// e0 e1 … ff, below the P-256 group order.
	fleetScalar = "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"

	// rfc9679Thumbprint is RFC 9679 §6's thumbprint of the meriadoc key.
	rfc9679Thumbprint = "496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec"

	vecCluster  = "cluster-1"
	vecM1       = "sensor-01" // the joining device, initiator of the M2M session
	vecM2       = "sensor-02" // the responder
	vecOtherID  = "sensor-99"
	vecLat      = 48858370 // microdegrees
	vecLon      = 2294481
	vecExpires  = 1767225600 // 2026-01-01T00:00:00Z
	vecNotAfter = 1924992000 // 2031-01-01T00:00:00Z: a credential's validity ends
	vecHeight   = 7
	vecReqSeq   = 258 // two-byte partial IV
	vecM2MSeq   = 7
	vecM2MReply = 0
	vecPath     = protect.PathVerify
	vecM2MText  = "hello from sensor-01"
	vecTalkTime = 1767225000 // the talk proof's time: 10 minutes before vecExpires
)

var (
	vecDeviceNonce = seqBytes(0x00, 16)
	vecCHNonce     = seqBytes(0x10, 16)
	vecEcho        = seqBytes(0x60, 12)
	vecBlockHash   = seqBytes(0x80, 32)
	vecSID         = seqBytes(0xa0, 16)
	vecTicketIV    = seqBytes(0xb0, 12)
	vecRefusalIV   = seqBytes(0xc0, 12)
	vecSk          = seqBytes(0xc0, 16)
	vecTalkNonce   = seqBytes(0xd0, 12)
)

// seqBytes returns n bytes counting up from start: fixed, recognisable in a hex dump.
func seqBytes(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// hexBytes is a byte field of a vector: lowercase hex in JSON (PROTOCOL.md §8).
type hexBytes []byte

func (h hexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if strings.ToLower(s) != s {
		return fmt.Errorf("hex %q is not lowercase", s)
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// Expected outcomes. "ok" or the rejection, named like the CH's diagnostic
// (PROTOCOL.md §2.1) or the Go sentinel's text.
const (
	expOK            = "ok"
	expMalformed     = "malformed"
	expBadSignature  = "bad signature"
	expDecrypt       = "decryption failed"
	expReplay        = "replay"
	expExpired       = "ticket expired"
	expWrongRecipent = "ticket for another recipient"
	expStale         = "talk proof stale"
)

// outcome maps an error of wire or protect to a vector's expect value.
func outcome(err error) string {
	switch {
	case err == nil:
		return expOK
	case errors.Is(err, wire.ErrMalformed):
		return expMalformed
	case errors.Is(err, wire.ErrBadSignature):
		return expBadSignature
	case errors.Is(err, wire.ErrDecrypt):
		return expDecrypt
	case errors.Is(err, protect.ErrExpired):
		return expExpired
	case errors.Is(err, protect.ErrWrongRecipient):
		return expWrongRecipent
	case errors.Is(err, protect.ErrStale):
		return expStale
	}
	return "unexpected error: " + err.Error()
}

// ---- vector types (field order is file order) ----

type thumbprintVector struct {
	Description     string   `json:"description"`
	Expect          string   `json:"expect"`
	Priv            hexBytes `json:"priv"`
	X               hexBytes `json:"x"`
	Y               hexBytes `json:"y"`
	COSEKey         hexBytes `json:"cose_key"`
	ThumbprintInput hexBytes `json:"thumbprint_input"`
	Thumbprint      hexBytes `json:"thumbprint"`
}

type kdfVector struct {
	Description   string   `json:"description"`
	Expect        string   `json:"expect"`
	Cluster       string   `json:"cluster"`
	ID            string   `json:"id"`
	DevicePriv    hexBytes `json:"device_priv"`
	DeviceCOSEKey hexBytes `json:"device_cose_key"`
	CHPriv        hexBytes `json:"ch_priv"`
	CHCOSEKey     hexBytes `json:"ch_cose_key"`
	CHThumbprint  hexBytes `json:"ch_thumbprint"`
	Z             hexBytes `json:"z"`
	DeviceNonce   hexBytes `json:"device_nonce"`
	CHNonce       hexBytes `json:"ch_nonce"`
	KMSalt        hexBytes `json:"km_salt"`
	KMInfo        hexBytes `json:"km_info"`
	KM            hexBytes `json:"km"`
	ReqKey        hexBytes `json:"req_key"`
	RespKey       hexBytes `json:"resp_key"`
	TicketKey     hexBytes `json:"ticket_key"`
	TalkKey       hexBytes `json:"talk_key"`
	CommonIV      hexBytes `json:"common_iv"`
}

type joinRequestVector struct {
	Description string   `json:"description"`
	Expect      string   `json:"expect"`
	DevicePriv  hexBytes `json:"device_priv"`
	COSEKey     hexBytes `json:"cose_key"`
	Cluster     string   `json:"cluster"`
	ID          string   `json:"id"`
	Lat         int64    `json:"lat"`
	Lon         int64    `json:"lon"`
	Nonce       hexBytes `json:"nonce"`
	Echo        hexBytes `json:"echo"`
	KID         hexBytes `json:"kid"`
	Protected   hexBytes `json:"protected"`
	ExternalAAD hexBytes `json:"external_aad"`
	Payload     hexBytes `json:"payload"`
	ToBeSigned  hexBytes `json:"to_be_signed"`
	Signature   hexBytes `json:"signature"`
	Sign1       hexBytes `json:"sign1"`
	// join-request-credential.json only (section 3.5): the fleet credential
	// the join carries as key 8, how it was made and what it says.
	Credential           hexBytes `json:"credential,omitempty"`
	FleetPriv            hexBytes `json:"fleet_priv,omitempty"`
	FleetCOSEKey         hexBytes `json:"fleet_cose_key,omitempty"`
	FleetKID             hexBytes `json:"fleet_kid,omitempty"`
	CredentialAAD        hexBytes `json:"credential_external_aad,omitempty"`
	CredentialPayload    hexBytes `json:"credential_payload,omitempty"`
	CredentialToBeSigned hexBytes `json:"credential_to_be_signed,omitempty"`
	CredentialKey        hexBytes `json:"credential_key_thumbprint,omitempty"`
	NotBefore            uint64   `json:"not_before,omitempty"`
	NotAfter             uint64   `json:"not_after,omitempty"`
}

type joinResponseVector struct {
	Description string   `json:"description"`
	Expect      string   `json:"expect"`
	CHPriv      hexBytes `json:"ch_priv"`
	CHCOSEKey   hexBytes `json:"ch_cose_key"`
	Thumbprint  hexBytes `json:"thumbprint"`
	Cluster     string   `json:"cluster"`
	ID          string   `json:"id"`
	DeviceNonce hexBytes `json:"device_nonce"`
	CHNonce     hexBytes `json:"ch_nonce"`
	Height      uint64   `json:"height"`
	BlockHash   hexBytes `json:"block_hash"`
	Expires     uint64   `json:"expires"`
	Protected   hexBytes `json:"protected"`
	ExternalAAD hexBytes `json:"external_aad"`
	Payload     hexBytes `json:"payload"`
	ToBeSigned  hexBytes `json:"to_be_signed"`
	Signature   hexBytes `json:"signature"`
	Sign1       hexBytes `json:"sign1"`
}

type protectedRequestVector struct {
	Description       string   `json:"description"`
	Expect            string   `json:"expect"`
	Cluster           string   `json:"cluster"`
	ID                string   `json:"id"`
	Path              string   `json:"path"`
	Seq               uint64   `json:"seq"`
	ReqKey            hexBytes `json:"req_key"`
	RespKey           hexBytes `json:"resp_key"`
	CommonIV          hexBytes `json:"common_iv"`
	PartialIV         hexBytes `json:"partial_iv"`
	Nonce             hexBytes `json:"nonce"`
	ExternalAAD       hexBytes `json:"external_aad"`
	AAD               hexBytes `json:"aad"`
	Plaintext         hexBytes `json:"plaintext"`
	Request           hexBytes `json:"request"`
	ResponsePlaintext hexBytes `json:"response_plaintext,omitempty"`
	Response          hexBytes `json:"response,omitempty"`
}

type protectedRefusalVector struct {
	Description string   `json:"description"`
	Expect      string   `json:"expect"`
	Cluster     string   `json:"cluster"`
	ID          string   `json:"id"`
	Path        string   `json:"path"`
	Seq         uint64   `json:"seq"`
	RespKey     hexBytes `json:"resp_key"`
	IV          hexBytes `json:"iv"`
	ExternalAAD hexBytes `json:"external_aad"`
	AAD         hexBytes `json:"aad"`
	Diagnostic  string   `json:"diagnostic"`
	Plaintext   hexBytes `json:"plaintext"`
	Refusal     hexBytes `json:"refusal"`
}

type ticketVector struct {
	Description string   `json:"description"`
	Expect      string   `json:"expect"`
	Cluster     string   `json:"cluster"`
	TicketKey   hexBytes `json:"ticket_key"`
	Sk          hexBytes `json:"sk"`
	SID         hexBytes `json:"sid"`
	Expires     uint64   `json:"expires"`
	Initiator   string   `json:"initiator"`
	Responder   string   `json:"responder"`
	Recipient   string   `json:"recipient"`
	IV          hexBytes `json:"iv"`
	ExternalAAD hexBytes `json:"external_aad"`
	AAD         hexBytes `json:"aad"`
	Box         hexBytes `json:"box"`
	Ticket      hexBytes `json:"ticket"`
	Me          string   `json:"me"`
	Now         uint64   `json:"now"`
}

type talkProofVector struct {
	Description    string   `json:"description"`
	Expect         string   `json:"expect"`
	Cluster        string   `json:"cluster"`
	TalkKey        hexBytes `json:"talk_key"`
	Initiator      string   `json:"initiator"`
	Responder      string   `json:"responder"`
	Nonce          hexBytes `json:"nonce"`
	Time           uint64   `json:"time"`
	ExternalAAD    hexBytes `json:"external_aad"`
	AAD            hexBytes `json:"aad"`
	Tag            hexBytes `json:"tag"`
	Proof          hexBytes `json:"proof"`
	Hello          hexBytes `json:"hello"`
	SessionRequest hexBytes `json:"session_req"`
	CheckedAs      string   `json:"checked_as"`
	Now            uint64   `json:"now"`
}

type m2mVector struct {
	Description      string   `json:"description"`
	Expect           string   `json:"expect"`
	Sk               hexBytes `json:"sk"`
	SID              hexBytes `json:"sid"`
	Sender           string   `json:"sender"`
	Receiver         string   `json:"receiver"`
	SenderKeyInfo    hexBytes `json:"sender_key_info"`
	SenderIVInfo     hexBytes `json:"sender_iv_info"`
	SenderKey        hexBytes `json:"sender_key"`
	SenderIV         hexBytes `json:"sender_iv"`
	ReceiverKey      hexBytes `json:"receiver_key"`
	ReceiverIV       hexBytes `json:"receiver_iv"`
	Seq              uint64   `json:"seq"`
	PartialIV        hexBytes `json:"partial_iv"`
	Nonce            hexBytes `json:"nonce"`
	ExternalAAD      hexBytes `json:"external_aad"`
	Plaintext        hexBytes `json:"plaintext"`
	Message          hexBytes `json:"message"`
	ReplySeq         uint64   `json:"reply_seq"`
	ReplyNonce       hexBytes `json:"reply_nonce"`
	ReplyExternalAAD hexBytes `json:"reply_external_aad"`
	ReplyPlaintext   hexBytes `json:"reply_plaintext"`
	Reply            hexBytes `json:"reply"`
}

type partialIVCase struct {
	Seq      *uint64  `json:"seq,omitempty"`
	Encoding hexBytes `json:"encoding"`
	Expect   string   `json:"expect"`
	Note     string   `json:"note"`
}

type partialIVVector struct {
	Description string          `json:"description"`
	Expect      string          `json:"expect"`
	Cases       []partialIVCase `json:"cases"`
}

type replayCase struct {
	Seq    uint64 `json:"seq"`
	Expect string `json:"expect"`
	Note   string `json:"note"`
}

type replayWindowVector struct {
	Description string       `json:"description"`
	Expect      string       `json:"expect"`
	WindowSize  int          `json:"window_size"`
	Cases       []replayCase `json:"cases"`
}

type decodeCase struct {
	Type   string   `json:"type"`
	Bytes  hexBytes `json:"bytes"`
	Expect string   `json:"expect"`
	Note   string   `json:"note"`
}

type decodeStrictVector struct {
	Description string       `json:"description"`
	Expect      string       `json:"expect"`
	Cases       []decodeCase `json:"cases"`
}

// messageTypes maps the CDDL rule names of PROTOCOL.md to wire's types.
var messageTypes = map[string]func() wire.Validator{
	"join-req":     func() wire.Validator { return new(wire.JoinRequest) },
	"join-resp":    func() wire.Validator { return new(wire.JoinResponse) },
	"verify-req":   func() wire.Validator { return new(wire.VerifyRequest) },
	"verify-resp":  func() wire.Validator { return new(wire.VerifyResponse) },
	"session-req":  func() wire.Validator { return new(wire.SessionRequest) },
	"session-resp": func() wire.Validator { return new(wire.SessionResponse) },
	"leave-req":    func() wire.Validator { return new(wire.LeaveRequest) },
	"leave-resp":   func() wire.Validator { return new(wire.LeaveResponse) },
	"ticket":       func() wire.Validator { return new(wire.Ticket) },
	"hello":        func() wire.Validator { return new(wire.Hello) },
	"talk-resp":    func() wire.Validator { return new(wire.TalkResponse) },
	"cluster-info": func() wire.Validator { return new(wire.ClusterInfo) },
	"ledger-head":  func() wire.Validator { return new(wire.LedgerHead) },
}

// ---- the registry: one entry per file ----

type vectorSpec struct {
	file  string
	gen   func(t *testing.T) any
	check func(t *testing.T, raw []byte)
}

func vectorSpecs() []vectorSpec {
	return append([]vectorSpec{
		{"thumbprint.json", func(t *testing.T) any { return genThumbprint(t) }, checkThumbprint},
		{"kdf.json", func(t *testing.T) any { return genKDF(t) }, checkKDF},
		{"join-request-ok.json", func(t *testing.T) any { return genJoinRequests(t)[0] }, checkJoinRequest},
		{"join-request-bad-signature.json", func(t *testing.T) any { return genJoinRequests(t)[1] }, checkJoinRequest},
		{"join-request-kid-mismatch.json", func(t *testing.T) any { return genJoinRequests(t)[2] }, checkJoinRequest},
		{"join-request-wrong-aad.json", func(t *testing.T) any { return genJoinRequests(t)[3] }, checkJoinRequest},
		{"join-request-credential.json", func(t *testing.T) any { return genJoinRequestCredential(t) }, checkJoinRequest},
		{"join-response.json", func(t *testing.T) any { return genJoinResponse(t) }, checkJoinResponse},
		{"protected-request.json", func(t *testing.T) any { return genProtectedRequests(t)[0] }, checkProtectedRequest},
		{"protected-request-tampered.json", func(t *testing.T) any { return genProtectedRequests(t)[1] }, checkProtectedRequest},
		{"protected-refusal.json", func(t *testing.T) any { return genProtectedRefusal(t) }, checkProtectedRefusal},
		{"ticket.json", func(t *testing.T) any { return genTickets(t)[0] }, checkTicket},
		{"ticket-expired.json", func(t *testing.T) any { return genTickets(t)[1] }, checkTicket},
		{"ticket-wrong-recipient.json", func(t *testing.T) any { return genTickets(t)[2] }, checkTicket},
		{"talk-proof.json", func(t *testing.T) any { return genTalkProofs(t)[0] }, checkTalkProof},
		{"talk-proof-stale.json", func(t *testing.T) any { return genTalkProofs(t)[1] }, checkTalkProof},
		{"talk-proof-wrong-responder.json", func(t *testing.T) any { return genTalkProofs(t)[2] }, checkTalkProof},
		{"m2m.json", func(t *testing.T) any { return genM2M(t) }, checkM2M},
		{"partial-iv.json", func(t *testing.T) any { return genPartialIV() }, checkPartialIV},
		{"replay-window.json", func(t *testing.T) any { return genReplayWindow() }, checkReplayWindow},
		{"decode-strict.json", func(t *testing.T) any { return genDecodeStrict(t) }, checkDecodeStrict},
		{"dtls-psk.json", func(t *testing.T) any { return genDTLSPSK(t) }, checkDTLSPSK},
		{"kdf-rekey.json", func(t *testing.T) any { return genRekeyKDF(t) }, checkKDF},
		{"rotation.json", func(t *testing.T) any { return genRotations(t)[0] }, checkRotation},
		{"rotation-bad-signature.json", func(t *testing.T) any { return genRotations(t)[1] }, checkRotation},
	}, tlogSpecs()...)
}

// encodeVector is the file form of v: indented JSON, no HTML escaping, one
// trailing newline.
func encodeVector(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVectors(t *testing.T) {
	specs := vectorSpecs()
	if *update {
		for _, s := range specs {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(vectorDir, s.file)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(vectorDir, s.file), encodeVector(t, s.gen(t)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Every file is known here, so a new file cannot go unreplayed.
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := filepath.Glob(filepath.Join(vectorDir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, sub...)
	var known []string
	for _, s := range specs {
		known = append(known, s.file)
	}
	for _, f := range files {
		if rel, _ := filepath.Rel(vectorDir, f); !slices.Contains(known, filepath.ToSlash(rel)) {
			t.Errorf("%s has no replay in TestVectors", f)
		}
	}

	for _, s := range specs {
		t.Run(strings.TrimSuffix(s.file, ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(vectorDir, s.file))
			if err != nil {
				t.Fatalf("%v (generate with: go test ./protect -run TestVectors -update)", err)
			}
			var head struct {
				Description string `json:"description"`
				Expect      string `json:"expect"`
			}
			if err := json.Unmarshal(raw, &head); err != nil || head.Description == "" || head.Expect == "" {
				t.Fatalf("file must be one object with description and expect (err %v)", err)
			}
			s.check(t, raw)
			if want := encodeVector(t, s.gen(t)); !bytes.Equal(raw, want) {
				t.Errorf("file differs from the generator's output; regenerate with: go test ./protect -run TestVectors -update")
			}
		})
	}
}

// decodeVector decodes raw into v, refusing unknown fields and trailing data.
func decodeVector(t *testing.T, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode vector: %v", err)
	}
	if dec.More() {
		t.Fatal("decode vector: trailing data")
	}
}

func eqHex(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

// flipLast returns b with its last byte (a tag or signature byte) changed.
func flipLast(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 0x01
	return c
}

// privKey returns the P-256 private key with scalar d.
func privKey(t testing.TB, d []byte) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rfc6979 signs deterministically (RFC 6979), so vectors regenerate identically.
type rfc6979 struct{ *ecdsa.PrivateKey }

func (s rfc6979) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return s.PrivateKey.Sign(nil, digest, crypto.SHA256)
}

func coseKey(t testing.TB, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	b, err := wire.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ecdhZ(t testing.TB, priv *ecdsa.PrivateKey, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	a, err := priv.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	b, err := pub.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	z, err := a.ECDH(b)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// gcmSeal is AES-GCM straight from the standard library: the replays use it
// to check protect's output independently of wire.Seal.
func gcmSeal(t *testing.T, key, nonce, plaintext, aad []byte) []byte {
	t.Helper()
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(nil, nonce, plaintext, aad)
}

func encStructure(t testing.TB, externalAAD []byte) []byte {
	return testutil.MustMarshal(t, []any{"Encrypt0", []byte{0xa1, 0x01, 0x01}, externalAAD})
}

func sigStructure(t testing.TB, protected, externalAAD, payload []byte) []byte {
	return testutil.MustMarshal(t, []any{"Signature1", protected, externalAAD, payload})
}

// verifyES256 checks an r ‖ s signature over tbs with the standard library only.
func verifyES256(pub *ecdsa.PublicKey, tbs, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	h := sha256.Sum256(tbs)
	return ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

// memberKeys is the device side of §3.4 from the fixed inputs.
func memberKeys(t testing.TB) protect.MemberKeys {
	t.Helper()
	dev, ch := privKey(t, testutil.MustHex(t, deviceScalar)), privKey(t, testutil.MustHex(t, chScalar))
	km, err := protect.MemberKey(ecdhZ(t, dev, &ch.PublicKey), vecDeviceNonce, vecCHNonce, vecCluster, vecM1,
		wire.Thumbprint(&ch.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return protect.DeriveMemberKeys(km)
}

// ---- thumbprint ----

func genThumbprint(t *testing.T) thumbprintVector {
	k := privKey(t, testutil.MustHex(t, deviceScalar))
	pt, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	x, y := pt[1:33], pt[33:]
	th := wire.Thumbprint(&k.PublicKey)
	return thumbprintVector{
		Description: "RFC 9679 thumbprint of a P-256 COSE_Key. The key is RFC 9052 C.7.2's meriadoc.brandybuck key; " +
			"cose_key is the form IoT-Guard sends ({1: 2, 3: -7, -1: 1, -2: x, -3: y}), thumbprint_input the " +
			"deterministic CBOR of {1: 2, -1: 1, -2: x, -3: y}, thumbprint its SHA-256 (equal to RFC 9679 section 6).",
		Expect:          expOK,
		Priv:            testutil.MustHex(t, deviceScalar),
		X:               x,
		Y:               y,
		COSEKey:         coseKey(t, &k.PublicKey),
		ThumbprintInput: testutil.MustMarshal(t, map[int]any{1: 2, -1: 1, -2: x, -3: y}),
		Thumbprint:      th[:],
	}
}

func checkThumbprint(t *testing.T, raw []byte) {
	var v thumbprintVector
	decodeVector(t, raw, &v)
	k := privKey(t, v.Priv)
	pt, _ := k.PublicKey.Bytes()
	eqHex(t, "x", pt[1:33], v.X)
	eqHex(t, "y", pt[33:], v.Y)
	eqHex(t, "EncodePublicKey", coseKey(t, &k.PublicKey), v.COSEKey)
	for _, in := range [][]byte{v.COSEKey, v.ThumbprintInput} { // with and without alg
		pub, err := wire.ParsePublicKey(in)
		if err != nil {
			t.Fatalf("ParsePublicKey(%x): %v", in, err)
		}
		if !pub.Equal(&k.PublicKey) {
			t.Errorf("ParsePublicKey(%x) is not the key of priv", in)
		}
		th := wire.Thumbprint(pub)
		eqHex(t, "Thumbprint", th[:], v.Thumbprint)
	}
	sum := sha256.Sum256(v.ThumbprintInput)
	eqHex(t, "SHA-256(thumbprint_input)", sum[:], v.Thumbprint)
	eqHex(t, "thumbprint vs RFC 9679 section 6", v.Thumbprint, testutil.MustHex(t, rfc9679Thumbprint))
}

// ---- kdf ----

func genKDF(t *testing.T) kdfVector {
	return genKDFWith(t, chScalar, "Member key schedule (section 3.4): z = ECDH(device_priv, CH public) = ECDH(ch_priv, device public); "+
		"km = HKDF-SHA-256(salt = device_nonce || ch_nonce, IKM = z, info = km_info, L = 32) with "+
		"km_info = CBOR [\"iotguard K_m\", cluster, id, ch_thumbprint]; req/resp/ticket/talk keys and common_iv = "+
		"HKDF-SHA-256(salt = empty, IKM = km, info = label, L = 16/16/16/16/12).")
}

// genKDFWith is the member key schedule of sensor-01 with the CH key of
// scalar chHex.
func genKDFWith(t *testing.T, chHex, description string) kdfVector {
	dev, ch := privKey(t, testutil.MustHex(t, deviceScalar)), privKey(t, testutil.MustHex(t, chHex))
	z := ecdhZ(t, dev, &ch.PublicKey)
	th := wire.Thumbprint(&ch.PublicKey)
	km, err := protect.MemberKey(z, vecDeviceNonce, vecCHNonce, vecCluster, vecM1, th)
	if err != nil {
		t.Fatal(err)
	}
	k := protect.DeriveMemberKeys(km)
	return kdfVector{
		Description:   description,
		Expect:        expOK,
		Cluster:       vecCluster,
		ID:            vecM1,
		DevicePriv:    testutil.MustHex(t, deviceScalar),
		DeviceCOSEKey: coseKey(t, &dev.PublicKey),
		CHPriv:        testutil.MustHex(t, chHex),
		CHCOSEKey:     coseKey(t, &ch.PublicKey),
		CHThumbprint:  th[:],
		Z:             z,
		DeviceNonce:   vecDeviceNonce,
		CHNonce:       vecCHNonce,
		KMSalt:        append(bytes.Clone(vecDeviceNonce), vecCHNonce...),
		KMInfo:        testutil.MustMarshal(t, []any{"iotguard K_m", vecCluster, vecM1, th[:]}),
		KM:            km[:],
		ReqKey:        k.Req.Bytes(),
		RespKey:       k.Resp.Bytes(),
		TicketKey:     k.Ticket.Bytes(),
		TalkKey:       k.Talk.Bytes(),
		CommonIV:      k.IV[:],
	}
}

func checkKDF(t *testing.T, raw []byte) {
	var v kdfVector
	decodeVector(t, raw, &v)
	dev, ch := privKey(t, v.DevicePriv), privKey(t, v.CHPriv)
	eqHex(t, "device_cose_key", coseKey(t, &dev.PublicKey), v.DeviceCOSEKey)
	eqHex(t, "ch_cose_key", coseKey(t, &ch.PublicKey), v.CHCOSEKey)
	chPub, err := wire.ParsePublicKey(v.CHCOSEKey)
	if err != nil {
		t.Fatal(err)
	}
	th := wire.Thumbprint(chPub)
	eqHex(t, "ch_thumbprint", th[:], v.CHThumbprint)
	eqHex(t, "z (device side)", ecdhZ(t, dev, &ch.PublicKey), v.Z)
	eqHex(t, "z (CH side)", ecdhZ(t, ch, &dev.PublicKey), v.Z)
	eqHex(t, "km_salt", append(bytes.Clone(v.DeviceNonce), v.CHNonce...), v.KMSalt)
	eqHex(t, "km_info", testutil.MustMarshal(t, []any{"iotguard K_m", v.Cluster, v.ID, []byte(v.CHThumbprint)}), v.KMInfo)

	km, err := protect.MemberKey(v.Z, v.DeviceNonce, v.CHNonce, v.Cluster, v.ID, th)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "protect.MemberKey", km[:], v.KM)
	// The same from the file's salt and info with crypto/hkdf alone.
	direct, err := hkdf.Key(sha256.New, v.Z, v.KMSalt, string(v.KMInfo), 32)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "HKDF(z, km_salt, km_info)", direct, v.KM)

	k := protect.DeriveMemberKeys([32]byte(v.KM))
	eqHex(t, "req_key", k.Req.Bytes(), v.ReqKey)
	eqHex(t, "resp_key", k.Resp.Bytes(), v.RespKey)
	eqHex(t, "ticket_key", k.Ticket.Bytes(), v.TicketKey)
	eqHex(t, "talk_key", k.Talk.Bytes(), v.TalkKey)
	eqHex(t, "common_iv", k.IV[:], v.CommonIV)
	for label, want := range map[string][]byte{
		"iotguard req key": v.ReqKey, "iotguard resp key": v.RespKey,
		"iotguard ticket key": v.TicketKey, "iotguard talk key": v.TalkKey, "iotguard common iv": v.CommonIV,
	} {
		got, err := hkdf.Key(sha256.New, v.KM, nil, label, len(want))
		if err != nil {
			t.Fatal(err)
		}
		eqHex(t, "HKDF(km, "+label+")", got, want)
	}
}

// ---- DTLS PSK ----

type dtlsPSKVector struct {
	Description string   `json:"description"`
	Expect      string   `json:"expect"`
	ID          string   `json:"id"`
	KM          hexBytes `json:"km"`
	Info        string   `json:"info"`
	PSKBytes    hexBytes `json:"psk_bytes"`
	PSK         string   `json:"psk"`
}

func genDTLSPSK(t *testing.T) dtlsPSKVector {
	var kdf kdfVector
	decodeVector(t, encodeVector(t, genKDF(t)), &kdf)
	k := protect.DeriveMemberKeys([32]byte(kdf.KM))
	raw, err := hex.DecodeString(string(k.PSK[:]))
	if err != nil {
		t.Fatal(err)
	}
	return dtlsPSKVector{
		Description: "DTLS PSK of a member for coaps (section 4.5), from the km of kdf.json: psk_bytes = HKDF-SHA-256(salt = empty, " +
			"IKM = km, info = \"iotguard dtls psk\", L = 16); the PSK is psk, the 32 ASCII bytes of psk_bytes in lowercase hex; " +
			"the PSK identity is the device ID.",
		Expect:   expOK,
		ID:       vecM1,
		KM:       kdf.KM,
		Info:     "iotguard dtls psk",
		PSKBytes: raw,
		PSK:      string(k.PSK[:]),
	}
}

func checkDTLSPSK(t *testing.T, raw []byte) {
	var v dtlsPSKVector
	decodeVector(t, raw, &v)
	got, err := hkdf.Key(sha256.New, v.KM, nil, v.Info, protect.PSKSize)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "HKDF(km, info)", got, v.PSKBytes)
	if hex.EncodeToString(v.PSKBytes) != v.PSK {
		t.Errorf("psk %q is not the hex of psk_bytes", v.PSK)
	}
	if k := protect.DeriveMemberKeys([32]byte(v.KM)); string(k.PSK[:]) != v.PSK {
		t.Errorf("protect.DeriveMemberKeys PSK = %q, want %q", k.PSK[:], v.PSK)
	}
}

// ---- join request / response ----

func genJoinRequests(t *testing.T) []joinRequestVector {
	dev := privKey(t, testutil.MustHex(t, deviceScalar))
	key := coseKey(t, &dev.PublicKey)
	payload := testutil.MustMarshal(t, &wire.JoinRequest{
		Cluster: vecCluster, ID: vecM1, Key: key, Lat: vecLat, Lon: vecLon, Nonce: vecDeviceNonce, Echo: vecEcho,
	})
	protected := []byte{0xa1, 0x01, 0x26}
	sign := func(kid, aad []byte) ([]byte, []byte) {
		b, err := wire.Sign1(rfc6979{dev}, kid, aad, payload)
		if err != nil {
			t.Fatal(err)
		}
		return b, b[len(b)-64:] // the signature is the last item: a 64-byte bstr
	}
	base := joinRequestVector{
		Expect: expOK, DevicePriv: testutil.MustHex(t, deviceScalar), COSEKey: key, Cluster: vecCluster, ID: vecM1,
		Lat: vecLat, Lon: vecLon, Nonce: vecDeviceNonce, Echo: vecEcho, KID: []byte(vecM1),
		Protected: protected, ExternalAAD: wire.AADJoinRequest, Payload: payload,
		ToBeSigned: sigStructure(t, protected, wire.AADJoinRequest, payload),
	}

	ok := base
	ok.Description = "A join request (section 3.2): untagged COSE_Sign1 [protected {1: -7}, {4: kid}, payload join-req, " +
		"signature r || s], ES256 by the device key over to_be_signed = CBOR [\"Signature1\", protected, external_aad, payload]. " +
		"The signature is RFC 6979 deterministic; verifiers must verify it, not compare it."
	ok.Sign1, ok.Signature = sign(ok.KID, ok.ExternalAAD)

	bad := ok
	bad.Description = "The join request of join-request-ok.json with the last byte of the signature flipped: the CH " +
		"rejects it (4.01 bad signature)."
	bad.Expect = expBadSignature
	bad.Sign1 = flipLast(ok.Sign1)
	bad.Signature = bad.Sign1[len(bad.Sign1)-64:]

	kid := base
	kid.Description = "A join request whose kid (sensor-99) is not the id of its payload (sensor-01). The signature " +
		"itself verifies (kid is unprotected); the CH rejects kid != id as a bad signature (4.01, section 2.1)."
	kid.Expect = expBadSignature
	kid.KID = []byte(vecOtherID)
	kid.Sign1, kid.Signature = sign(kid.KID, kid.ExternalAAD)

	aad := base
	aad.Description = "The join payload signed with external_aad \"iotguard join-resp\" instead of \"iotguard join-req\": " +
		"the signature does not verify under the join-req AAD (4.01 bad signature). external_aad and to_be_signed " +
		"are what the CH verifies against; signature and sign1 are what was sent."
	aad.Expect = expBadSignature
	aad.Sign1, aad.Signature = sign(aad.KID, wire.AADJoinResponse)

	return []joinRequestVector{ok, bad, kid, aad}
}

// genJoinRequestCredential is join-request-ok.json carrying a fleet
// credential (section 3.5) as key 8.
func genJoinRequestCredential(t *testing.T) joinRequestVector {
	dev, fleet := privKey(t, testutil.MustHex(t, deviceScalar)), privKey(t, testutil.MustHex(t, fleetScalar))
	th := wire.Thumbprint(&dev.PublicKey)
	c := wire.Credential{ID: vecM1, Key: th[:], NotBefore: vecExpires, NotAfter: vecNotAfter}
	cred, err := wire.IssueCredential(rfc6979{fleet}, c)
	if err != nil {
		t.Fatal(err)
	}
	credPayload := testutil.MustMarshal(t, &c)
	key := coseKey(t, &dev.PublicKey)
	payload := testutil.MustMarshal(t, &wire.JoinRequest{
		Cluster: vecCluster, ID: vecM1, Key: key, Lat: vecLat, Lon: vecLon, Nonce: vecDeviceNonce, Echo: vecEcho, Credential: cred,
	})
	b, err := wire.Sign1(rfc6979{dev}, []byte(vecM1), wire.AADJoinRequest, payload)
	if err != nil {
		t.Fatal(err)
	}
	protected := []byte{0xa1, 0x01, 0x26}
	return joinRequestVector{
		Description: "join-request-ok.json carrying a fleet credential (section 3.5) as key 8: credential is an untagged " +
			"COSE_Sign1 [protected {1: -7}, {4: fleet_kid}, credential_payload, signature] by the fleet key (ES256, RFC 6979, " +
			"external_aad \"iotguard credential\"); fleet_kid is the first 8 bytes of the fleet key's RFC 9679 thumbprint; " +
			"credential_payload is {1: id, 2: the device key's thumbprint, 3: not_before, 4: not_after}. A device sends the " +
			"credential bytes as they are; the CH checks them.",
		Expect: expOK, DevicePriv: testutil.MustHex(t, deviceScalar), COSEKey: key, Cluster: vecCluster, ID: vecM1,
		Lat: vecLat, Lon: vecLon, Nonce: vecDeviceNonce, Echo: vecEcho, KID: []byte(vecM1),
		Protected: protected, ExternalAAD: wire.AADJoinRequest, Payload: payload,
		ToBeSigned: sigStructure(t, protected, wire.AADJoinRequest, payload), Signature: b[len(b)-64:], Sign1: b,
		Credential: cred, FleetPriv: testutil.MustHex(t, fleetScalar), FleetCOSEKey: coseKey(t, &fleet.PublicKey),
		FleetKID: wire.FleetKID(&fleet.PublicKey), CredentialAAD: wire.AADCredential, CredentialPayload: credPayload,
		CredentialToBeSigned: sigStructure(t, protected, wire.AADCredential, credPayload), CredentialKey: th[:],
		NotBefore: vecExpires, NotAfter: vecNotAfter,
	}
}

// checkCredential checks the credential of join-request-credential.json
// against its fixed inputs, with crypto/ecdsa as well as wire.
func checkCredential(t *testing.T, v joinRequestVector) {
	dev, fleet := privKey(t, v.DevicePriv), privKey(t, v.FleetPriv)
	eqHex(t, "fleet_cose_key", coseKey(t, &fleet.PublicKey), v.FleetCOSEKey)
	eqHex(t, "fleet_kid", wire.FleetKID(&fleet.PublicKey), v.FleetKID)
	th := wire.Thumbprint(&dev.PublicKey)
	eqHex(t, "credential_key_thumbprint", th[:], v.CredentialKey)
	eqHex(t, "credential_payload", testutil.MustMarshal(t, &wire.Credential{ID: v.ID, Key: v.CredentialKey,
		NotBefore: v.NotBefore, NotAfter: v.NotAfter}), v.CredentialPayload)
	eqHex(t, "credential_to_be_signed", sigStructure(t, v.Protected, v.CredentialAAD, v.CredentialPayload), v.CredentialToBeSigned)
	eqHex(t, "credential_external_aad", wire.AADCredential, v.CredentialAAD)
	sig := v.Credential[len(v.Credential)-64:]
	if !verifyES256(&fleet.PublicKey, v.CredentialToBeSigned, sig) {
		t.Error("the credential's signature does not verify with crypto/ecdsa")
	}
	c, err := wire.ParseCredential(v.Credential)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(&fleet.PublicKey); err != nil {
		t.Errorf("Verify under the fleet key: %v", err)
	}
	eqHex(t, "credential kid", c.KID, v.FleetKID)
	if c.ID != v.ID || c.NotBefore != v.NotBefore || c.NotAfter != v.NotAfter || !bytes.Equal(c.Key, v.CredentialKey) {
		t.Errorf("parsed credential %+v", c.Credential)
	}
}

// receiveJoin is a CH's checks of section 3.2 that need no state (no echo,
// radius or ledger): shape, kid = id, key, signature.
func receiveJoin(b []byte) (*wire.Signed, *wire.JoinRequest, error) {
	s, err := wire.ParseSign1(b)
	if err != nil {
		return nil, nil, err
	}
	var req wire.JoinRequest
	if err := wire.Decode(s.Payload, &req); err != nil {
		return s, nil, err
	}
	pub, err := wire.ParsePublicKey(req.Key)
	if err != nil {
		return s, &req, err
	}
	if string(s.KID) != req.ID {
		return s, &req, fmt.Errorf("%w: kid %q is not id %q", wire.ErrBadSignature, s.KID, req.ID)
	}
	return s, &req, s.Verify(pub, wire.AADJoinRequest)
}

func checkJoinRequest(t *testing.T, raw []byte) {
	var v joinRequestVector
	decodeVector(t, raw, &v)
	dev := privKey(t, v.DevicePriv)
	eqHex(t, "cose_key", coseKey(t, &dev.PublicKey), v.COSEKey)
	eqHex(t, "payload", testutil.MustMarshal(t, &wire.JoinRequest{
		Cluster: v.Cluster, ID: v.ID, Key: []byte(v.COSEKey), Lat: v.Lat, Lon: v.Lon, Nonce: v.Nonce, Echo: v.Echo,
		Credential: v.Credential,
	}), v.Payload)
	if v.Credential != nil {
		checkCredential(t, v)
	}
	eqHex(t, "to_be_signed", sigStructure(t, v.Protected, v.ExternalAAD, v.Payload), v.ToBeSigned)
	eqHex(t, "sign1 layout", testutil.MustMarshal(t, []any{[]byte(v.Protected), map[int][]byte{4: v.KID}, []byte(v.Payload),
		[]byte(v.Signature)}), v.Sign1)
	// Only a kid mismatch is rejected with a signature that verifies.
	wantValid := v.Expect == expOK || string(v.KID) != v.ID
	if got := verifyES256(&dev.PublicKey, v.ToBeSigned, v.Signature); got != wantValid {
		t.Errorf("ES256 over to_be_signed with crypto/ecdsa: %v, want %v", got, wantValid)
	}

	s, req, err := receiveJoin(v.Sign1)
	if got := outcome(err); got != v.Expect {
		t.Fatalf("receiving the join: %s (%v), want %s", got, err, v.Expect)
	}
	if s == nil || req == nil {
		return
	}
	eqHex(t, "kid", s.KID, v.KID)
	eqHex(t, "parsed payload", s.Payload, v.Payload)
	want := wire.JoinRequest{Cluster: v.Cluster, ID: v.ID, Key: []byte(v.COSEKey), Lat: v.Lat, Lon: v.Lon,
		Nonce: v.Nonce, Echo: v.Echo, Credential: v.Credential}
	if !reflect.DeepEqual(*req, want) {
		t.Errorf("decoded join-req %+v, want %+v", *req, want)
	}
}

func genJoinResponse(t *testing.T) joinResponseVector {
	ch := privKey(t, testutil.MustHex(t, chScalar))
	key := coseKey(t, &ch.PublicKey)
	th := wire.Thumbprint(&ch.PublicKey)
	payload := testutil.MustMarshal(t, &wire.JoinResponse{
		Cluster: vecCluster, CHKey: key, Thumbprint: th[:], ID: vecM1, DeviceNonce: vecDeviceNonce,
		CHNonce: vecCHNonce, Height: vecHeight, BlockHash: vecBlockHash, Expires: vecExpires,
	})
	b, err := wire.Sign1(rfc6979{ch}, th[:], wire.AADJoinResponse, payload)
	if err != nil {
		t.Fatal(err)
	}
	protected := []byte{0xa1, 0x01, 0x26}
	return joinResponseVector{
		Description: "The CH's answer to join-request-ok.json (section 3.3): untagged COSE_Sign1 by the CH key " +
			"(kid = its thumbprint, external_aad \"iotguard join-resp\") over join-resp. A device verifies it under " +
			"key 2 of the payload and checks that key's thumbprint. RFC 6979 deterministic signature.",
		Expect: expOK, CHPriv: testutil.MustHex(t, chScalar), CHCOSEKey: key, Thumbprint: th[:], Cluster: vecCluster,
		ID: vecM1, DeviceNonce: vecDeviceNonce, CHNonce: vecCHNonce, Height: vecHeight, BlockHash: vecBlockHash,
		Expires: vecExpires, Protected: protected, ExternalAAD: wire.AADJoinResponse, Payload: payload,
		ToBeSigned: sigStructure(t, protected, wire.AADJoinResponse, payload), Signature: b[len(b)-64:], Sign1: b,
	}
}

func checkJoinResponse(t *testing.T, raw []byte) {
	var v joinResponseVector
	decodeVector(t, raw, &v)
	ch := privKey(t, v.CHPriv)
	eqHex(t, "ch_cose_key", coseKey(t, &ch.PublicKey), v.CHCOSEKey)
	eqHex(t, "to_be_signed", sigStructure(t, v.Protected, v.ExternalAAD, v.Payload), v.ToBeSigned)
	eqHex(t, "sign1 layout", testutil.MustMarshal(t, []any{[]byte(v.Protected), map[int][]byte{4: v.Thumbprint},
		[]byte(v.Payload), []byte(v.Signature)}), v.Sign1)
	if !verifyES256(&ch.PublicKey, v.ToBeSigned, v.Signature) {
		t.Error("ES256 over to_be_signed does not verify with crypto/ecdsa")
	}

	s, err := wire.ParseSign1(v.Sign1)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "kid", s.KID, v.Thumbprint)
	var resp wire.JoinResponse
	if err := wire.Decode(s.Payload, &resp); err != nil {
		t.Fatal(err)
	}
	want := wire.JoinResponse{Cluster: v.Cluster, CHKey: []byte(v.CHCOSEKey), Thumbprint: v.Thumbprint, ID: v.ID,
		DeviceNonce: v.DeviceNonce, CHNonce: v.CHNonce, Height: v.Height, BlockHash: v.BlockHash, Expires: v.Expires}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("decoded join-resp %+v, want %+v", resp, want)
	}
	pub, err := wire.ParsePublicKey(resp.CHKey)
	if err != nil {
		t.Fatal(err)
	}
	th := wire.Thumbprint(pub)
	eqHex(t, "thumbprint of key 2", th[:], resp.Thumbprint)
	if got := outcome(s.Verify(pub, wire.AADJoinResponse)); got != v.Expect {
		t.Errorf("Verify: %s, want %s", got, v.Expect)
	}
	if err := s.Verify(pub, wire.AADJoinRequest); !errors.Is(err, wire.ErrBadSignature) {
		t.Errorf("Verify under the join-req AAD: %v, want ErrBadSignature", err)
	}
}

// ---- protected request ----

func genProtectedRequests(t *testing.T) []protectedRequestVector {
	k := memberKeys(t)
	pt := testutil.MustMarshal(t, &wire.VerifyRequest{Peer: vecM2})
	rpt := testutil.MustMarshal(t, &wire.VerifyResponse{Peer: vecM2, Status: wire.VerdictOf(membership.Member), Height: vecHeight,
		BlockHash: vecBlockHash, Expires: vecExpires})
	req, err := protect.SealRequest(&k, vecCluster, vecM1, vecReqSeq, vecPath, pt)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := protect.SealResponse(&k, vecCluster, vecM1, vecReqSeq, vecPath, rpt)
	if err != nil {
		t.Fatal(err)
	}
	piv := protect.EncodePartialIV(vecReqSeq)
	nonce := protect.Nonce(k.IV, vecReqSeq)
	ext := testutil.MustMarshal(t, []any{"iotguard", vecCluster, []byte(vecM1), piv, vecPath})
	ok := protectedRequestVector{
		Description: "A protected /verify request (section 4.1) with the member keys of kdf.json: untagged " +
			"COSE_Encrypt0 [h'a10101', {4: kid, 6: partial_iv}, ciphertext || tag] under req_key, nonce = common_iv " +
			"XOR seq, aad = CBOR [\"Encrypt0\", h'a10101', external_aad], external_aad = CBOR [\"iotguard\", cluster, " +
			"kid, partial_iv, path]. The response is [h'a10101', {}, ciphertext || tag] under resp_key with the same " +
			"nonce and aad.",
		Expect: expOK, Cluster: vecCluster, ID: vecM1, Path: vecPath, Seq: vecReqSeq,
		ReqKey: k.Req.Bytes(), RespKey: k.Resp.Bytes(), CommonIV: k.IV[:], PartialIV: piv, Nonce: nonce[:],
		ExternalAAD: ext, AAD: encStructure(t, ext), Plaintext: pt, Request: req,
		ResponsePlaintext: rpt, Response: resp,
	}
	bad := ok
	bad.Description = "The request of protected-request.json with the last byte (of the tag) flipped: it parses, " +
		"but decryption fails (the CH answers 4.01 unauthorized)."
	bad.Expect = expDecrypt
	bad.Request = flipLast(req)
	bad.ResponsePlaintext, bad.Response = nil, nil
	return []protectedRequestVector{ok, bad}
}

func checkProtectedRequest(t *testing.T, raw []byte) {
	var v protectedRequestVector
	decodeVector(t, raw, &v)
	k := protect.MemberKeys{Req: wire.NewKey([16]byte(v.ReqKey)), Resp: wire.NewKey([16]byte(v.RespKey)), IV: [12]byte(v.CommonIV)}
	eqHex(t, "partial_iv", protect.EncodePartialIV(v.Seq), v.PartialIV)
	nonce := protect.Nonce(k.IV, v.Seq)
	eqHex(t, "nonce", nonce[:], v.Nonce)
	eqHex(t, "external_aad", testutil.MustMarshal(t, []any{"iotguard", v.Cluster, []byte(v.ID), []byte(v.PartialIV), v.Path}),
		v.ExternalAAD)
	eqHex(t, "aad", encStructure(t, v.ExternalAAD), v.AAD)

	req, err := protect.ParseRequest(v.Request)
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	if req.KID != v.ID || req.Seq != v.Seq {
		t.Errorf("ParseRequest: kid %q seq %d, want %q %d", req.KID, req.Seq, v.ID, v.Seq)
	}
	pt, err := req.Open(&k, v.Cluster, v.Path)
	if got := outcome(err); got != v.Expect {
		t.Fatalf("Open: %s (%v), want %s", got, err, v.Expect)
	}
	if v.Expect != expOK {
		return
	}
	eqHex(t, "opened plaintext", pt, v.Plaintext)
	var vr wire.VerifyRequest
	if err := wire.Decode(pt, &vr); err != nil {
		t.Errorf("plaintext is not a verify-req: %v", err)
	}
	sealed, err := protect.SealRequest(&k, v.Cluster, v.ID, v.Seq, v.Path, v.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "SealRequest", sealed, v.Request)
	eqHex(t, "request layout (crypto/cipher)", testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x01},
		map[int][]byte{4: []byte(v.ID), 6: v.PartialIV}, gcmSeal(t, v.ReqKey, v.Nonce, v.Plaintext, v.AAD)}), v.Request)

	rpt, err := protect.OpenResponse(&k, v.Cluster, v.ID, v.Seq, v.Path, v.Response)
	if err != nil {
		t.Fatalf("OpenResponse: %v", err)
	}
	eqHex(t, "opened response", rpt, v.ResponsePlaintext)
	var vresp wire.VerifyResponse
	if err := wire.Decode(rpt, &vresp); err != nil {
		t.Errorf("response plaintext is not a verify-resp: %v", err)
	}
	resp, err := protect.SealResponse(&k, v.Cluster, v.ID, v.Seq, v.Path, v.ResponsePlaintext)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "SealResponse", resp, v.Response)
	eqHex(t, "response layout (crypto/cipher)", testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x01}, map[int][]byte{},
		gcmSeal(t, v.RespKey, v.Nonce, v.ResponsePlaintext, v.AAD)}), v.Response)
}

// ---- tickets ----

func genProtectedRefusal(t *testing.T) protectedRefusalVector {
	k := memberKeys(t)
	ext := testutil.MustMarshal(t, []any{"iotguard", vecCluster, []byte(vecM1), protect.EncodePartialIV(vecReqSeq), vecPath})
	const diag = "not a member: left"
	pt := testutil.MustMarshal(t, wire.Refusal(diag))
	// Request.SealRefusal draws a random IV: seal with wire.Seal and a fixed one.
	refusal, err := wire.Seal(k.Resp, [12]byte(vecRefusalIV), wire.Encrypt0Header{IV: vecRefusalIV}, ext, pt)
	if err != nil {
		t.Fatal(err)
	}
	return protectedRefusalVector{
		Description: "The CH's sealed refusal (section 4.1) of the request of protected-request.json, with the " +
			"member keys of kdf.json: untagged COSE_Encrypt0 [h'a10101', {5: iv}, ciphertext || tag] under resp_key, " +
			"nonce = iv (random, not the request's nonce), aad = the request's aad, plaintext = the diagnostic as a " +
			"CBOR text string. The device opens it as the refusal of its request (id, seq, path).",
		Expect: expOK, Cluster: vecCluster, ID: vecM1, Path: vecPath, Seq: vecReqSeq, RespKey: k.Resp.Bytes(),
		IV: vecRefusalIV, ExternalAAD: ext, AAD: encStructure(t, ext), Diagnostic: diag, Plaintext: pt, Refusal: refusal,
	}
}

func checkProtectedRefusal(t *testing.T, raw []byte) {
	var v protectedRefusalVector
	decodeVector(t, raw, &v)
	k := protect.MemberKeys{Resp: wire.NewKey([16]byte(v.RespKey))}
	eqHex(t, "external_aad", testutil.MustMarshal(t, []any{"iotguard", v.Cluster, []byte(v.ID),
		protect.EncodePartialIV(v.Seq), v.Path}), v.ExternalAAD)
	eqHex(t, "aad", encStructure(t, v.ExternalAAD), v.AAD)
	eqHex(t, "plaintext", testutil.MustMarshal(t, wire.Refusal(v.Diagnostic)), v.Plaintext)
	diag, err := protect.OpenRefusal(&k, v.Cluster, v.ID, v.Seq, v.Path, v.Refusal)
	if err != nil || diag != v.Diagnostic {
		t.Fatalf("OpenRefusal = %q, %v; want %q", diag, err, v.Diagnostic)
	}
	// the refusal of another request, or of this one at another path, does not open
	if _, err := protect.OpenRefusal(&k, v.Cluster, v.ID, v.Seq+1, v.Path, v.Refusal); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenRefusal(seq+1) = %v, want ErrDecrypt", err)
	}
	if _, err := protect.OpenRefusal(&k, v.Cluster, v.ID, v.Seq, protect.PathSession, v.Refusal); !errors.Is(err, wire.ErrDecrypt) {
		t.Errorf("OpenRefusal(session) = %v, want ErrDecrypt", err)
	}
}

func genTickets(t *testing.T) []ticketVector {
	k := memberKeys(t) // sensor-01's ticket key
	tk := wire.Ticket{SID: vecSID, Expires: vecExpires, Initiator: vecM1, Responder: vecM2, Recipient: vecM1}
	ext := testutil.MustMarshal(t, []any{"iotguard ticket", vecCluster, tk.SID, tk.Expires, tk.Initiator, tk.Responder,
		tk.Recipient})
	// protect.SealTicket draws a random IV: seal with wire.Seal and a fixed one.
	box, err := wire.Seal(k.Ticket, [12]byte(vecTicketIV), wire.Encrypt0Header{IV: vecTicketIV}, ext, vecSk)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Unmarshal(box, &tk.Box); err != nil {
		t.Fatal(err)
	}
	ok := ticketVector{
		Description: "A session ticket (section 4.4) sealing sk to sensor-01 under the ticket_key of kdf.json: " +
			"COSE_Encrypt0 box [h'a10101', {5: iv}, ciphertext || tag] with nonce = iv, aad = CBOR [\"Encrypt0\", " +
			"h'a10101', external_aad], external_aad = CBOR [\"iotguard ticket\", cluster, sid, expires, initiator, " +
			"responder, recipient]; ticket is the whole ticket map. `me` opens it at unix time `now`.",
		Expect: expOK, Cluster: vecCluster, TicketKey: k.Ticket.Bytes(), Sk: vecSk, SID: vecSID, Expires: vecExpires,
		Initiator: vecM1, Responder: vecM2, Recipient: vecM1, IV: vecTicketIV, ExternalAAD: ext,
		AAD: encStructure(t, ext), Box: box, Ticket: testutil.MustMarshal(t, &tk), Me: vecM1, Now: vecExpires - 1,
	}
	expired := ok
	expired.Description = "The ticket of ticket.json opened at now = expires: expired (a recipient needs now < expires)."
	expired.Expect = expExpired
	expired.Now = vecExpires
	wrong := ok
	wrong.Description = "The ticket of ticket.json presented to sensor-02: it names another recipient."
	wrong.Expect = expWrongRecipent
	wrong.Me = vecM2
	return []ticketVector{ok, expired, wrong}
}

func checkTicket(t *testing.T, raw []byte) {
	var v ticketVector
	decodeVector(t, raw, &v)
	eqHex(t, "external_aad", testutil.MustMarshal(t, []any{"iotguard ticket", v.Cluster, []byte(v.SID), v.Expires, v.Initiator,
		v.Responder, v.Recipient}), v.ExternalAAD)
	eqHex(t, "aad", encStructure(t, v.ExternalAAD), v.AAD)
	eqHex(t, "box layout (crypto/cipher)", testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x01}, map[int][]byte{5: v.IV},
		gcmSeal(t, v.TicketKey, v.IV, v.Sk, v.AAD)}), v.Box)
	box, err := wire.Seal(wire.NewKey([16]byte(v.TicketKey)), [12]byte(v.IV), wire.Encrypt0Header{IV: v.IV}, v.ExternalAAD, v.Sk)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "wire.Seal", box, v.Box)

	var tk wire.Ticket
	if err := wire.Decode(v.Ticket, &tk); err != nil {
		t.Fatalf("Decode ticket: %v", err)
	}
	if !bytes.Equal(tk.SID, v.SID) || tk.Expires != v.Expires || tk.Initiator != v.Initiator ||
		tk.Responder != v.Responder || tk.Recipient != v.Recipient {
		t.Errorf("decoded ticket %+v does not match the fields", tk)
	}
	eqHex(t, "ticket box", testutil.MustMarshal(t, &tk.Box), v.Box)
	sk, err := protect.OpenTicket(wire.NewKey([16]byte(v.TicketKey)), v.Cluster, v.Me, &tk, time.Unix(int64(v.Now), 0))
	if got := outcome(err); got != v.Expect {
		t.Fatalf("OpenTicket: %s (%v), want %s", got, err, v.Expect)
	}
	if v.Expect == expOK {
		eqHex(t, "sk", sk[:], v.Sk)
	}
}

// ---- talk proof ----

func genTalkProofs(t *testing.T) []talkProofVector {
	k := memberKeys(t)
	p, err := protect.SealTalkProof(k.Talk, vecCluster, vecM1, vecM2, [12]byte(vecTalkNonce), vecTalkTime)
	if err != nil {
		t.Fatal(err)
	}
	ext := testutil.MustMarshal(t, []any{"iotguard talk", vecCluster, vecM1, vecM2, vecTalkNonce, uint64(vecTalkTime)})
	life := uint64(protect.TalkProofLifetime / time.Second)
	ok := talkProofVector{
		Description: "A talk proof (section 5.1) of sensor-01 asking sensor-02 to talk, under the talk_key of kdf.json: " +
			"tag = the AES-128-GCM tag of an empty plaintext (the ciphertext of a COSE_Encrypt0 that seals nothing) " +
			"with nonce = nonce, aad = CBOR [\"Encrypt0\", h'a10101', external_aad], external_aad = CBOR " +
			"[\"iotguard talk\", cluster, initiator, responder, nonce, time]. proof is the talk-proof [nonce, time, " +
			"tag], hello the hello {1: initiator, 2: responder, 3: proof} sensor-01 sends to sensor-02's /talk, " +
			"session_req the plaintext of sensor-02's /session forwarding it {1: initiator, 2: proof}. The CH checks " +
			"it as from initiator to the requester checked_as at unix time now: ok up to time + 60 s (and from " +
			"time - 60 s).",
		Expect: expOK, Cluster: vecCluster, TalkKey: k.Talk.Bytes(), Initiator: vecM1, Responder: vecM2,
		Nonce: vecTalkNonce, Time: vecTalkTime, ExternalAAD: ext, AAD: encStructure(t, ext), Tag: p.Tag,
		Proof: testutil.MustMarshal(t, p), Hello: testutil.MustMarshal(t, &wire.Hello{ID: vecM1, Responder: vecM2, Proof: p}),
		SessionRequest: testutil.MustMarshal(t, &wire.SessionRequest{Peer: vecM1, Proof: p}),
		CheckedAs:      vecM2, Now: vecTalkTime + life,
	}
	stale := ok
	stale.Description = "The proof of talk-proof.json checked one second after its last fresh second " +
		"(now = time + 61): stale (the CH answers 4.01 bad talk proof: stale; a listener with a clock refuses it itself)."
	stale.Expect, stale.Now = expStale, vecTalkTime+life+1
	wrong := ok
	wrong.Description = "The proof of talk-proof.json forwarded by sensor-99 instead of sensor-02: the tag does not " +
		"verify for that responder (the CH answers 4.01 bad talk proof)."
	wrong.Expect, wrong.CheckedAs, wrong.Now = expDecrypt, vecOtherID, vecTalkTime
	return []talkProofVector{ok, stale, wrong}
}

func checkTalkProof(t *testing.T, raw []byte) {
	var v talkProofVector
	decodeVector(t, raw, &v)
	ext := testutil.MustMarshal(t, []any{"iotguard talk", v.Cluster, v.Initiator, v.Responder, []byte(v.Nonce), v.Time})
	eqHex(t, "external_aad", ext, v.ExternalAAD)
	eqHex(t, "aad", encStructure(t, v.ExternalAAD), v.AAD)
	eqHex(t, "tag (crypto/cipher)", gcmSeal(t, v.TalkKey, v.Nonce, nil, v.AAD), v.Tag)
	eqHex(t, "proof layout", testutil.MustMarshal(t, []any{[]byte(v.Nonce), v.Time, []byte(v.Tag)}), v.Proof)
	eqHex(t, "hello layout", testutil.MustMarshal(t, map[int]any{1: v.Initiator, 2: v.Responder, 3: cbor.RawMessage(v.Proof)}), v.Hello)
	eqHex(t, "session_req layout", testutil.MustMarshal(t, map[int]any{1: v.Initiator, 2: cbor.RawMessage(v.Proof)}), v.SessionRequest)
	key := wire.NewKey([16]byte(v.TalkKey))
	p, err := protect.SealTalkProof(key, v.Cluster, v.Initiator, v.Responder, [12]byte(v.Nonce), v.Time)
	if err != nil {
		t.Fatal(err)
	}
	eqHex(t, "SealTalkProof", testutil.MustMarshal(t, p), v.Proof)

	var hello wire.Hello
	if err := wire.Decode(v.Hello, &hello); err != nil {
		t.Fatalf("Decode hello: %v", err)
	}
	var req wire.SessionRequest
	if err := wire.Decode(v.SessionRequest, &req); err != nil {
		t.Fatalf("Decode session_req: %v", err)
	}
	if hello.ID != v.Initiator || hello.Responder != v.Responder || req.Peer != v.Initiator || !reflect.DeepEqual(hello.Proof, req.Proof) {
		t.Fatalf("hello %+v and session_req %+v do not carry the proof of %s to %s", hello, req, v.Initiator, v.Responder)
	}
	err = protect.VerifyTalkProof(key, v.Cluster, v.Initiator, v.CheckedAs, req.Proof, time.Unix(int64(v.Now), 0))
	if got := outcome(err); got != v.Expect {
		t.Fatalf("VerifyTalkProof: %s (%v), want %s", got, err, v.Expect)
	}
}

// ---- m2m ----

func genM2M(t *testing.T) m2mVector {
	sk := [16]byte(vecSk)
	s, r := protect.DeriveM2M(sk, vecSID, vecM1, vecM2)
	msg, err := protect.SealM2M(s, vecSID, vecM1, vecM2, vecM2MSeq, []byte(vecM2MText))
	if err != nil {
		t.Fatal(err)
	}
	reply, err := protect.SealM2M(r, vecSID, vecM2, vecM1, vecM2MReply, []byte{})
	if err != nil {
		t.Fatal(err)
	}
	n, rn := protect.Nonce(s.IV, vecM2MSeq), protect.Nonce(r.IV, vecM2MReply)
	return m2mVector{
		Description: "Device-to-device messages (section 5.2) in the session of ticket.json. key_X = HKDF-SHA-256(salt " +
			"= sid, IKM = sk, info = CBOR [\"iotguard m2m key\", X], L = 16), iv_X likewise with \"iotguard m2m iv\" " +
			"and L = 12. message: sender -> receiver, [h'a10101', {4: sender, 6: partial_iv, 10: sid}, ciphertext || " +
			"tag], nonce = sender_iv XOR seq, external_aad = CBOR [\"iotguard m2m\", sid, sender, receiver]. reply: " +
			"receiver -> sender with its own key, iv and seq and an empty plaintext.",
		Expect: expOK, Sk: vecSk, SID: vecSID, Sender: vecM1, Receiver: vecM2,
		SenderKeyInfo: testutil.MustMarshal(t, []string{"iotguard m2m key", vecM1}),
		SenderIVInfo:  testutil.MustMarshal(t, []string{"iotguard m2m iv", vecM1}),
		SenderKey:     s.Key.Bytes(), SenderIV: s.IV[:], ReceiverKey: r.Key.Bytes(), ReceiverIV: r.IV[:],
		Seq: vecM2MSeq, PartialIV: protect.EncodePartialIV(vecM2MSeq), Nonce: n[:],
		ExternalAAD: testutil.MustMarshal(t, []any{"iotguard m2m", vecSID, vecM1, vecM2}),
		Plaintext:   []byte(vecM2MText), Message: msg,
		ReplySeq: vecM2MReply, ReplyNonce: rn[:],
		ReplyExternalAAD: testutil.MustMarshal(t, []any{"iotguard m2m", vecSID, vecM2, vecM1}),
		ReplyPlaintext:   []byte{}, Reply: reply,
	}
}

func checkM2M(t *testing.T, raw []byte) {
	var v m2mVector
	decodeVector(t, raw, &v)
	sk := [16]byte(v.Sk)
	s, r := protect.DeriveM2M(sk, v.SID, v.Sender, v.Receiver)
	eqHex(t, "sender_key_info", testutil.MustMarshal(t, []string{"iotguard m2m key", v.Sender}), v.SenderKeyInfo)
	eqHex(t, "sender_iv_info", testutil.MustMarshal(t, []string{"iotguard m2m iv", v.Sender}), v.SenderIVInfo)
	eqHex(t, "sender_key", s.Key.Bytes(), v.SenderKey)
	eqHex(t, "sender_iv", s.IV[:], v.SenderIV)
	eqHex(t, "receiver_key", r.Key.Bytes(), v.ReceiverKey)
	eqHex(t, "receiver_iv", r.IV[:], v.ReceiverIV)
	for _, d := range []struct {
		what       string
		info, want []byte
	}{{"sender_key", v.SenderKeyInfo, v.SenderKey}, {"sender_iv", v.SenderIVInfo, v.SenderIV}} {
		got, err := hkdf.Key(sha256.New, v.Sk, v.SID, string(d.info), len(d.want))
		if err != nil {
			t.Fatal(err)
		}
		eqHex(t, d.what+" (crypto/hkdf)", got, d.want)
	}

	type leg struct {
		name                string
		keys                protect.M2MKeys
		from, to            string
		seq                 uint64
		nonce, ext, pt, msg []byte
	}
	for _, l := range []leg{
		{"message", s, v.Sender, v.Receiver, v.Seq, v.Nonce, v.ExternalAAD, v.Plaintext, v.Message},
		{"reply", r, v.Receiver, v.Sender, v.ReplySeq, v.ReplyNonce, v.ReplyExternalAAD, v.ReplyPlaintext, v.Reply},
	} {
		n := protect.Nonce(l.keys.IV, l.seq)
		eqHex(t, l.name+" nonce", n[:], l.nonce)
		eqHex(t, l.name+" external_aad", testutil.MustMarshal(t, []any{"iotguard m2m", []byte(v.SID), l.from, l.to}), l.ext)
		eqHex(t, l.name+" layout (crypto/cipher)", testutil.MustMarshal(t, []any{[]byte{0xa1, 0x01, 0x01},
			map[int][]byte{4: []byte(l.from), 6: protect.EncodePartialIV(l.seq), 10: v.SID},
			gcmSeal(t, l.keys.Key.Bytes(), l.nonce, l.pt, encStructure(t, l.ext))}), l.msg)
		sealed, err := protect.SealM2M(l.keys, v.SID, l.from, l.to, l.seq, l.pt)
		if err != nil {
			t.Fatal(err)
		}
		eqHex(t, "SealM2M "+l.name, sealed, l.msg)
		m, err := protect.ParseM2M(l.msg)
		if err != nil {
			t.Fatalf("ParseM2M %s: %v", l.name, err)
		}
		if m.Sender != l.from || m.Seq != l.seq || !bytes.Equal(m.SID, v.SID) {
			t.Errorf("ParseM2M %s: sender %q seq %d sid %x", l.name, m.Sender, m.Seq, m.SID)
		}
		pt, err := m.Open(l.keys, l.to)
		if got := outcome(err); got != v.Expect {
			t.Fatalf("Open %s: %s (%v), want %s", l.name, got, err, v.Expect)
		}
		eqHex(t, l.name+" plaintext", pt, l.pt)
	}
}

// ---- partial IV ----

func genPartialIV() partialIVVector {
	u := func(n uint64) *uint64 { return &n }
	return partialIVVector{
		Description: "Partial IV <-> sequence number (section 4.1): big-endian, no leading zero bytes (0 is h'00'), " +
			"1 to 5 bytes (seq <= 2^40 - 1). For each case: expect ok means decode(encoding) = seq and " +
			"encode(seq) = encoding; malformed means decode(encoding) is rejected.",
		Expect: expOK,
		Cases: []partialIVCase{
			{u(0), []byte{0x00}, expOK, "zero is one zero byte"},
			{u(1), []byte{0x01}, expOK, ""},
			{u(255), []byte{0xff}, expOK, "largest one-byte value"},
			{u(256), []byte{0x01, 0x00}, expOK, "smallest two-byte value"},
			{u(258), []byte{0x01, 0x02}, expOK, "the seq of protected-request.json"},
			{u(65535), []byte{0xff, 0xff}, expOK, ""},
			{u(1 << 32), []byte{0x01, 0x00, 0x00, 0x00, 0x00}, expOK, "2^32"},
			{u(protect.MaxSeq), []byte{0xff, 0xff, 0xff, 0xff, 0xff}, expOK, "2^40 - 1, the largest seq"},
			{nil, []byte{}, expMalformed, "empty"},
			{nil, []byte{0x00, 0x01}, expMalformed, "leading zero byte"},
			{nil, []byte{0x00, 0x00}, expMalformed, "zero with a leading zero byte"},
			{nil, []byte{0x00, 0xff, 0xff, 0xff, 0xff}, expMalformed, "leading zero byte, 5 bytes"},
			{nil, []byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x00}, expMalformed, "6 bytes: 2^40"},
			{nil, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, expMalformed, "6 bytes"},
			{nil, []byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, expMalformed, "9 bytes"},
		},
	}
}

func checkPartialIV(t *testing.T, raw []byte) {
	var v partialIVVector
	decodeVector(t, raw, &v)
	for _, c := range v.Cases {
		seq, err := protect.DecodePartialIV(c.Encoding)
		if got := outcome(err); got != c.Expect {
			t.Errorf("DecodePartialIV(%x) = %d, %s (%v); want %s", []byte(c.Encoding), seq, got, err, c.Expect)
			continue
		}
		if c.Expect != expOK {
			continue
		}
		if c.Seq == nil {
			t.Errorf("case %x: ok without seq", []byte(c.Encoding))
			continue
		}
		if seq != *c.Seq {
			t.Errorf("DecodePartialIV(%x) = %d, want %d", []byte(c.Encoding), seq, *c.Seq)
		}
		eqHex(t, fmt.Sprintf("EncodePartialIV(%d)", *c.Seq), protect.EncodePartialIV(*c.Seq), c.Encoding)
	}
}

// ---- replay window ----

func genReplayWindow() replayWindowVector {
	return replayWindowVector{
		Description: "Anti-replay window of 64 sequence numbers (sections 4.2, 5.2), starting empty. Feed the cases in " +
			"order: ok means the seq is accepted (and then recorded), replay means it is rejected (and not recorded). " +
			"The window accepts a seq above the highest accepted, or one at most 63 below it that was not accepted " +
			"before.",
		Expect:     expOK,
		WindowSize: replay.Size,
		Cases: []replayCase{
			{0, expOK, "an empty window accepts any first seq"},
			{0, expReplay, "duplicate"},
			{2, expOK, "a gap is fine"},
			{1, expOK, "out of order, inside the window"},
			{1, expReplay, "duplicate of an out-of-order seq"},
			{2, expReplay, "duplicate of the highest"},
			{65, expOK, "highest is now 65: 2..65 are inside the window, 1 and below are too old"},
			{2, expReplay, "63 below the highest, already accepted"},
			{3, expOK, "62 below the highest, never seen"},
			{1, expReplay, "64 below the highest: too old"},
			{64, expOK, "just below the highest"},
			{65, expReplay, "duplicate"},
			{300, expOK, "a jump of more than 64"},
			{237, expOK, "63 below the highest, never seen"},
			{236, expReplay, "64 below the highest: too old"},
			{65, expReplay, "far too old"},
			{299, expOK, ""},
			{301, expOK, "in order"},
			{300, expReplay, "duplicate, below the highest"},
			{protect.MaxSeq, expOK, "2^40 - 1, the largest seq"},
			{protect.MaxSeq - 1, expOK, "just below"},
			{protect.MaxSeq, expReplay, "duplicate"},
			{302, expReplay, "far too old"},
		},
	}
}

func checkReplayWindow(t *testing.T, raw []byte) {
	var v replayWindowVector
	decodeVector(t, raw, &v)
	if v.WindowSize != replay.Size {
		t.Errorf("window_size %d, replay.Size %d", v.WindowSize, replay.Size)
	}
	var w replay.Window
	for i, c := range v.Cases {
		got := expReplay
		if w.Fresh(c.Seq) {
			got = expOK
			w.Mark(c.Seq)
		}
		if got != c.Expect {
			t.Errorf("case %d (seq %d, %s): %s, want %s", i, c.Seq, c.Note, got, c.Expect)
		}
	}
}

// ---- strict decoding ----

func genDecodeStrict(t *testing.T) decodeStrictVector {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tstr := func(s string) []byte { return cat([]byte{0x60 + byte(len(s))}, []byte(s)) } // len < 24
	id1, id2 := tstr(vecM1), tstr(vecM2)
	hello := cat([]byte{0xa1, 0x01}, id1)
	deep := cat(bytes.Repeat([]byte{0x81}, 8), []byte{0x80}) // 9 nested arrays
	tickets := genTickets(t)
	var tk wire.Ticket
	if err := wire.Decode(tickets[0].Ticket, &tk); err != nil {
		t.Fatal(err)
	}
	short := tk
	short.SID = short.SID[:15]
	var c []decodeCase
	add := func(typ string, b []byte, expect, note string) {
		c = append(c, decodeCase{Type: typ, Bytes: b, Expect: expect, Note: note})
	}
	talk := genTalkProofs(t)[0]
	add("hello", talk.Hello, expOK, "the hello of talk-proof.json")
	add("hello", hello, expOK, "{1: \"sensor-01\"}: well-formed, without a proof (a listener refuses it: 4.01 "+
		"bad talk proof: missing)")
	add("session-req", talk.SessionRequest, expOK, "the session_req of talk-proof.json, forwarding a proof")
	add("verify-req", testutil.MustMarshal(t, &wire.VerifyRequest{Peer: vecM2, Echo: vecEcho}), expOK, "with an echo")
	add("leave-req", []byte{0xa0}, expOK, "{}: no echo")
	add("talk-resp", testutil.MustMarshal(t, &wire.TalkResponse{ID: vecM2, Ticket: tk}), expOK, "the ticket of ticket.json")
	add("verify-resp", testutil.MustMarshal(t, &wire.VerifyResponse{Peer: vecM2, Status: wire.VerdictOf(membership.Revoked)}), expOK,
		"a warning: status 3, no block")
	add("hello", nil, expMalformed, "empty input")
	add("hello", cat(hello, []byte{0x00}), expMalformed, "trailing byte")
	add("hello", cat([]byte{0xa2, 0x01}, id1, []byte{0x01}, id1), expMalformed, "duplicate map key")
	add("hello", cat([]byte{0xa2, 0x01}, id1, []byte{0x04}, id2), expMalformed, "unknown key 4")
	add("hello", cat([]byte{0xa2, 0x01}, id1, []byte{0x02}, id2), expMalformed, "a responder without a proof")
	add("hello", cat([]byte{0xa2, 0x01}, id1, []byte{0x03}, talk.Proof), expMalformed, "a proof without a responder")
	add("hello", testutil.MustMarshal(t, map[int]any{1: vecM1, 2: vecM2, 3: []any{seqBytes(0, 11), vecTalkTime, seqBytes(0, 16)}}),
		expMalformed, "proof nonce of 11 bytes")
	add("hello", testutil.MustMarshal(t, map[int]any{1: vecM1, 2: vecM2, 3: []any{seqBytes(0, 12), vecTalkTime, seqBytes(0, 17)}}),
		expMalformed, "proof tag of 17 bytes")
	add("hello", testutil.MustMarshal(t, map[int]any{1: vecM1, 2: vecM2, 3: []any{seqBytes(0, 12), vecTalkTime}}),
		expMalformed, "proof of 2 items")
	add("hello", testutil.MustMarshal(t, map[int]any{1: vecM1, 2: vecM2, 3: []any{seqBytes(0, 12), -1, seqBytes(0, 16)}}),
		expMalformed, "proof time negative")
	add("hello", cat([]byte{0xa1, 0x61, '1'}, id1), expMalformed, "text key \"1\" instead of 1")
	add("hello", cat([]byte{0xbf, 0x01}, id1, []byte{0xff}), expMalformed, "indefinite-length map")
	add("hello", cat([]byte{0xa1, 0x01, 0x7f}, tstr("sensor"), tstr("-01"), []byte{0xff}), expMalformed,
		"indefinite-length text string")
	add("hello", cat([]byte{0xd9, 0xd9, 0xf7}, hello), expMalformed, "tag 55799 (self-described CBOR)")
	add("hello", cat([]byte{0xa1, 0x01, 0x49}, []byte(vecM1)), expMalformed, "id as a byte string")
	add("hello", cat([]byte{0xa1, 0x01}, tstr("")), expMalformed, "empty id")
	add("hello", cat([]byte{0xa1, 0x01}, tstr("sensor 01")), expMalformed, "id with a space")
	add("hello", cat([]byte{0xa1, 0x01, 0x78, 0x41}, bytes.Repeat([]byte{'a'}, 65)), expMalformed, "id of 65 bytes")
	add("hello", cat([]byte{0xa1, 0x01, 0x62, 0xc3, 0x28}), expMalformed, "invalid UTF-8")
	add("hello", []byte{0x81, 0x01}, expMalformed, "an array, not a map")
	add("verify-req", cat([]byte{0xa2, 0x01}, id2, []byte{0x08}, deep), expMalformed, "nesting deeper than 8")
	add("verify-req", testutil.MustMarshal(t, &wire.VerifyRequest{Peer: vecM2, Echo: seqBytes(0, 41)}), expMalformed,
		"echo of 41 bytes")
	add("verify-resp", testutil.MustMarshal(t, map[int]any{1: vecM2, 2: 5}), expMalformed, "status 5")
	add("verify-resp", testutil.MustMarshal(t, &wire.VerifyResponse{Peer: vecM2, Status: wire.VerdictOf(membership.Member), Height: 1, BlockHash: seqBytes(0, 31)}),
		expMalformed, "block hash of 31 bytes")
	add("join-req", testutil.MustMarshal(t, &wire.JoinRequest{Cluster: vecCluster, ID: vecM1, Key: []byte{0xa0},
		Lat: wire.MaxMicroLat + 1, Nonce: vecDeviceNonce}), expMalformed, "latitude 90.000001 degrees")
	devKey := coseKey(t, &privKey(t, testutil.MustHex(t, deviceScalar)).PublicKey)
	join := func(cred any) []byte {
		return testutil.MustMarshal(t, map[int]any{1: vecCluster, 2: vecM1, 3: cbor.RawMessage(devKey), 4: vecLat, 5: vecLon,
			6: vecDeviceNonce, 8: cred})
	}
	// (Credentials of 256 and 257 bytes are bounds of wire's and the
	// firmware's unit tests: this file is compiled into the lx106 image.)
	add("join-req", join([]byte{0x01}), expOK, "a credential (key 8) of 1 byte: opaque to the decoder")
	add("join-req", join([]byte{}), expMalformed, "an empty credential")
	add("join-req", join("credential"), expMalformed, "a credential that is a text string")
	add("ticket", testutil.MustMarshal(t, &short), expMalformed, "session ID of 15 bytes")
	return decodeStrictVector{
		Description: "Strict decoding of messages (section 1): each case is a message of the named CDDL type; ok " +
			"means it decodes and its fields are valid, malformed means a receiver rejects it.",
		Expect: expOK,
		Cases:  c,
	}
}

func checkDecodeStrict(t *testing.T, raw []byte) {
	var v decodeStrictVector
	decodeVector(t, raw, &v)
	for i, c := range v.Cases {
		mk, ok := messageTypes[c.Type]
		if !ok {
			t.Errorf("case %d: unknown type %q", i, c.Type)
			continue
		}
		if got := outcome(wire.Decode(c.Bytes, mk())); got != c.Expect {
			t.Errorf("case %d (%s, %s): %s, want %s", i, c.Type, c.Note, got, c.Expect)
		}
	}
}

// ---- fuzz seeds ----
