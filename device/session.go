package device

import (
	"fmt"
	"sync"
	"time"

	"github.com/iotguard/iotguard/protect"
	"github.com/iotguard/iotguard/replay"
	"github.com/iotguard/iotguard/wire"
)

// Session is one side of an M2M session: keys derived from Sk for each
// direction, this side's sequence number, and a replay window for the
// peer's messages. It is safe for concurrent use.
type Session struct {
	SID     []byte
	Expires time.Time
	Me      string
	Peer    string
	now     func() time.Time

	send, recv protect.M2MKeys

	mu     sync.Mutex
	seq    uint64
	window replay.Window
}

func newSession(sk [wire.KeySize]byte, t *wire.Ticket, me, peer string, now func() time.Time) *Session {
	send, recv := protect.DeriveM2M(sk, t.SID, me, peer)
	return &Session{SID: t.SID, Expires: time.Unix(int64(t.Expires), 0), Me: me, Peer: peer, now: now, send: send, recv: recv}
}

// Seal encrypts plaintext as this side's next message to the peer.
func (s *Session) Seal(plaintext []byte) ([]byte, error) {
	if !s.now().Before(s.Expires) {
		return nil, fmt.Errorf("session with %s expired", s.Peer)
	}
	s.mu.Lock()
	seq := s.seq
	s.seq++
	s.mu.Unlock()
	return protect.SealM2M(s.send, s.SID, s.Me, s.Peer, seq, plaintext)
}

// Open decrypts a message from the peer, rejecting replays and messages of
// other sessions or senders.
func (s *Session) Open(b []byte) ([]byte, error) {
	m, err := protect.ParseM2M(b)
	if err != nil {
		return nil, err
	}
	return s.open(m)
}

func (s *Session) open(m *protect.M2MMessage) ([]byte, error) {
	if m.Sender != s.Peer || string(m.SID) != string(s.SID) {
		return nil, fmt.Errorf("%w: message from %s is not of this session", ErrBadResponse, m.Sender)
	}
	if !s.now().Before(s.Expires) {
		return nil, fmt.Errorf("session with %s expired", s.Peer)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.window.Fresh(m.Seq) {
		return nil, ErrReplay
	}
	pt, err := m.Open(s.recv, s.Me)
	if err != nil {
		return nil, err
	}
	s.window.Mark(m.Seq)
	return pt, nil
}
