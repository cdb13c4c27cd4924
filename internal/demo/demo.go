// Package demo runs the seed scenario end to end in one process — a cluster
// head on 127.0.0.1 with its ledger in a temporary directory and four
// devices — printing each step so a newcomer sees what happens and why.
package demo

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/membership"
	"github.com/iotguard/iotguard/wire"
)

// Run plays the scenario, writing the story to out. It returns an error if
// any step does not turn out as the protocol says it must.
func Run(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "iotguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	step := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	center := cluster.Position{Lat: 48_856_600, Lon: 2_352_200}
	fleet, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // the operator's, kept away from the CH
	if err != nil {
		return err
	}
	ch, err := clusterhead.Start(clusterhead.Config{
		Listen: "127.0.0.1:0", DataDir: dir, NoAdmin: true,
		Cluster: cluster.Config{ID: "demo-cluster", Position: center, Radius: 1000,
			Admission: cluster.AdmissionEnrolled, FleetKeys: []*ecdsa.PublicKey{&fleet.PublicKey}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	defer ch.Close()
	thumb := ch.Keys.Thumbprint()
	step("1. Cluster head up on coap://%s: cluster demo-cluster at %s, radius 1000 m, key thumbprint %x…;", ch.Addr(), center, thumb[:8])
	step("   admission enrolled: it admits devices the operator enrolled, and devices with a credential of fleet key %x…", wire.FleetKID(&fleet.PublicKey))

	mk := func(id string) (*device.Device, *device.State, error) {
		st, err := device.NewState(id)
		if err != nil {
			return nil, nil, err
		}
		d, err := device.Dial(ch.Addr(), st, device.WithPin(thumb[:]))
		return d, st, err
	}
	a, ast, err := mk("sensor-a")
	if err != nil {
		return err
	}
	defer a.Close()
	b, bst, err := mk("sensor-b")
	if err != nil {
		return err
	}
	defer b.Close()
	akey, err := wire.EncodePublicKey(&ast.Key.PublicKey)
	if err != nil {
		return err
	}
	ref, err := ch.Core.Enroll(ctx, cluster.Enrollment{ID: "sensor-a", Key: akey, Reason: "installed by the operator"})
	if err != nil {
		return err
	}
	bthumb := wire.Thumbprint(&bst.Key.PublicKey)
	now := time.Now()
	if bst.Credential, err = wire.IssueCredential(fleet, wire.Credential{ID: "sensor-b", Key: bthumb[:],
		NotBefore: uint64(now.Unix()), NotAfter: uint64(now.AddDate(1, 0, 0).Unix())}); err != nil {
		return err
	}
	step("2. The operator enrolls sensor-a's public key (block %d, a CH-signed enroll event); sensor-b was flashed", ref.Height)
	step("   with a %d-byte fleet credential binding its ID and key (nothing about it on the CH yet)", len(bst.Credential))

	for _, d := range []struct {
		dev *device.Device
		pos cluster.Position
	}{{a, cluster.Position{Lat: 48_858_400, Lon: 2_349_500}}, {b, cluster.Position{Lat: 48_853_000, Lon: 2_349_900}}} {
		r, err := d.dev.Join(ctx, d.pos.Lat, d.pos.Lon)
		if err != nil {
			return fmt.Errorf("join of %s: %w", d.dev.ID(), err)
		}
		step("3. %s joins from %s (%.0f m away): signed join over the /cluster echo, admitted, block %d on the ledger before the answer",
			d.dev.ID(), d.pos, cluster.Distance(center, d.pos), r.Height)
	}

	c, _, err := mk("sensor-c")
	if err != nil {
		return err
	}
	defer c.Close()
	far := cluster.Position{Lat: 48_956_600, Lon: 2_352_200}
	_, err = c.Join(ctx, far.Lat, far.Lon)
	var ce *device.CodeError
	if !errors.As(err, &ce) {
		return fmt.Errorf("sensor-c outside the radius was not refused: %v", err)
	}
	step("4. sensor-c tries from %s (%.0f m away): refused with %v; nothing written", far, cluster.Distance(center, far), err)
	_, err = c.Join(ctx, center.Lat, center.Lon)
	if !errors.As(err, &ce) {
		return fmt.Errorf("sensor-c, never enrolled, was not refused: %v", err)
	}
	step("   then from inside the radius: refused with %v (nobody enrolled it); nothing written", err)

	l, err := b.Listen("127.0.0.1:0", func(from string, msg []byte) []byte {
		step("   sensor-b decrypted from %s: %q", from, msg)
		return []byte("ack from sensor-b: " + string(msg))
	}, nil)
	if err != nil {
		return err
	}
	defer l.Close()
	step("5. sensor-b listens for peers on %s", l.Addr())

	talk, err := a.Talk(ctx, l.Addr().String(), "sensor-b")
	if err != nil {
		return fmt.Errorf("sensor-a asking sensor-b to talk: %w", err)
	}
	defer talk.Close()
	step("6. sensor-a asks sensor-b to talk, with a talk proof under its member key; sensor-b forwards it in its /session;")
	step("   the CH checked the proof (sensor-a, a member, to sensor-b, fresh, first use) and granted session %x…:", talk.Session.SID[:4])
	step("   it drew Sk, sealed it for each of them, recorded the session (IDs only) and forgot Sk")
	for _, msg := range []string{"temperature 21.5 C", "humidity 40 %"} {
		reply, err := talk.Send(ctx, []byte(msg))
		if err != nil {
			return fmt.Errorf("sending %q: %w", msg, err)
		}
		step("7. sensor-a sent %q (AES-128-GCM under Sk); encrypted reply: %q", msg, reply)
	}

	x, _, err := mk("impostor-x")
	if err != nil {
		return err
	}
	defer x.Close()
	_, err = x.Talk(ctx, l.Addr().String(), "sensor-b")
	if !errors.Is(err, device.ErrNotJoined) {
		return fmt.Errorf("impostor-x asked to talk without a member key: %v", err)
	}
	v, err := b.Verify(ctx, "impostor-x")
	if !errors.Is(err, device.ErrWarning) || v.Status.Membership() != membership.Unknown {
		return fmt.Errorf("verify of impostor-x: %v %v", v, err)
	}
	step("8. impostor-x (never joined) has no member key to prove itself with, so it cannot ask sensor-b to talk;")
	code, diag, written, err := forgedHello(ctx, ch, l.Addr().String())
	if err != nil {
		return err
	}
	if code != codes.Unauthorized || written {
		return fmt.Errorf("forged hello: %v %q, ledger written: %v", code, diag, written)
	}
	step("   a hello it forges in sensor-a's name, without a proof, gets 4.01 %q; nothing is written", diag)
	step("   sensor-b verifies impostor-x with the CH: WARNING (%s)", v.Status)

	if _, err := a.Leave(ctx); err != nil {
		return fmt.Errorf("sensor-a leaving: %w", err)
	}
	v, err = b.Verify(ctx, "sensor-a")
	if !errors.Is(err, device.ErrWarning) || v.Status.Membership() != membership.Left {
		return fmt.Errorf("verify after leave: %v %v", v, err)
	}
	step("9. sensor-a leaves; sensor-b verifies it again: WARNING (%s)", v.Status)

	ch.Core.Flush() // the session grant's batch onto the ledger
	if err := ch.Ledger.Verify(ctx, nil); err != nil {
		return fmt.Errorf("ledger verify: %w", err)
	}
	head, _, _ := ch.Ledger.Head()
	step("10. ledger verify: every hash and signature checks out; height %d, head %x…", head.Height, head.Hash[:8])
	step("   the chain:")
	return ch.Ledger.Blocks(1, func(blk ledger.Block) error {
		for _, e := range blk.Events {
			step("   block %d  %s", blk.Header.Height, eventLine(e))
			if e.Type != ledger.EventSessionBatch {
				continue
			}
			recs, err := ch.Grants.Events(e.Batch)
			if err != nil {
				return err
			}
			for _, r := range recs {
				step("             %s", eventLine(r))
			}
		}
		return nil
	})
}

// eventLine describes a ledger event or an audit record in one line.
func eventLine(e ledger.Event) string {
	line := fmt.Sprintf("%-14s %s", e.Type, e.Device)
	if e.Peer != "" {
		line += " → " + e.Peer
	}
	if e.Reason != "" {
		line += " (" + e.Reason + ")"
	}
	if e.Type == ledger.EventSessionBatch {
		line += fmt.Sprintf(" (batch %d: %d audit record(s) by Merkle root %x…)", e.Batch, e.Count, e.Root[:8])
	}
	return line
}

// forgedHello posts the hello of a sender with no key — {1: "sensor-a"},
// no talk proof — to the listener at addr, and reports the answer and
// whether the CH's ledger grew meanwhile.
func forgedHello(ctx context.Context, ch *clusterhead.CH, addr string) (codes.Code, string, bool, error) {
	ch.Core.Flush()
	before, _, err := ch.Ledger.Head()
	if err != nil {
		return 0, "", false, err
	}
	hello, err := wire.Marshal(map[int]string{1: "sensor-a"})
	if err != nil {
		return 0, "", false, err
	}
	conn, err := udp.Dial(addr)
	if err != nil {
		return 0, "", false, err
	}
	defer conn.Close()
	resp, err := conn.Post(ctx, "/talk", message.AppCBOR, bytes.NewReader(hello))
	if err == nil && resp.Code() == codes.Unauthorized {
		if echo, e := resp.Echo(); e == nil {
			// the forger proves its address, as anyone can (§5.1); the hello is then judged
			resp, err = conn.Post(ctx, "/talk", message.AppCBOR, bytes.NewReader(hello), message.Option{ID: message.Echo, Value: echo})
		}
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("forged hello: %w", err)
	}
	diag, _ := resp.ReadBody()
	ch.Core.Flush()
	after, _, err := ch.Ledger.Head()
	return resp.Code(), string(diag), after.Height != before.Height, err
}
