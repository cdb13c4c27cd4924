package device_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
)

// Several processes of one device share its device file (a 'device listen'
// and the operator's commands). Each protected request's sequence number is
// its AES-GCM nonce under the member key: the file's counter must never go
// back, whatever one process saves.

// seqOf returns the sequence number the device file at path holds.
func seqOf(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := device.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Seq
}

// TestSavesKeepOtherProcessesSeq: a process that loaded the device file
// before another one sent requests, and then saves for another reason — the
// checkpoint of a log check (CheckJoin), the nonce of a join it sends, a
// re-key after a rotation — keeps
// the other's sequence number: the next process to start uses a new number.
// Before this was fixed the file's counter went back to what the first
// process had loaded, and the next process sealed its requests under
// nonces already used (the CH refused them as replays).
func TestSavesKeepOtherProcessesSeq(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	ctx := chtest.Ctx(t)
	chtest.Joined(t, ch, "m2")
	path := newFile(t, "m1")
	if err := joinNear(t, ch, path); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name string
		save func(*device.Device) error
	}{
		{"CheckJoin", func(d *device.Device) error { _, err := d.CheckJoin(ctx); return err }},
		{"a refused Join", func(d *device.Device) error { // it keeps the join's nonce pending
			_, err := d.Join(ctx, chtest.Far.Lat, chtest.Far.Lon)
			if ce := (*device.CodeError)(nil); !errors.As(err, &ce) || ce.Code != codes.Forbidden {
				return fmt.Errorf("join from far away: %v, want 4.03", err)
			}
			return nil
		}},
		{"Rekey", func(d *device.Device) error {
			rotate(t, ch)
			_, err := d.Rekey(ctx)
			return err
		}},
	} {
		t.Run(step.name, func(t *testing.T) {
			early := dialFile(t, ch, path) // loads the file now
			other := dialFile(t, ch, path)
			for range 3 {
				if _, err := other.Verify(ctx, "m2"); err != nil {
					t.Fatal(err)
				}
			}
			used := seqOf(t, path)
			if err := step.save(early); err != nil {
				t.Fatal(err)
			}
			if got := seqOf(t, path); got < used {
				t.Errorf("after %s the device file's seq is %d, another process had used up to %d", step.name, got, used-1)
			}
			if _, err := dialFile(t, ch, path).Verify(ctx, "m2"); err != nil {
				t.Errorf("the next process's request: %v", err)
			}
		})
	}
}

// TestProcessFollowsAnotherProcessRekey: a process that loaded the device
// file (a 'device listen') before another one re-keyed it after a CH key
// rotation uses the new member key from its next request on, and its saves
// keep the re-key: the file goes on trusting the new CH key. Before this was
// fixed the first process went on sealing under the old member key (the CH
// refused it once the re-key was recorded) and each of its requests wrote
// the old key back into the file, trusted again — the key a rotation after
// a compromise is meant to leave behind.
func TestProcessFollowsAnotherProcessRekey(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	ctx := chtest.Ctx(t)
	chtest.Joined(t, ch, "m2")
	path := newFile(t, "m1")
	if err := joinNear(t, ch, path); err != nil {
		t.Fatal(err)
	}
	listener := dialFile(t, ch, path)
	if _, err := listener.Verify(ctx, "m2"); err != nil {
		t.Fatal(err)
	}
	rotate(t, ch)
	operator := dialFile(t, ch, path)
	if changed, err := operator.Rekey(ctx); err != nil || !changed {
		t.Fatalf("rekey: %v, %v", changed, err)
	}
	if _, err := operator.Verify(ctx, "m2"); err != nil { // the CH records the re-key
		t.Fatal(err)
	}
	newKey := thumb(ch)
	if _, err := listener.Verify(ctx, "m2"); err != nil {
		t.Errorf("the process that loaded the file before the re-key: %v", err)
	}
	st, err := device.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Trusted, newKey) {
		t.Errorf("device file trusts %x after the first process's request, want the re-keyed %x", st.Trusted, newKey)
	}
	if _, err := dialFile(t, ch, path).Verify(ctx, "m2"); err != nil {
		t.Errorf("the next process: %v", err)
	}
}

// TestListenerWithDeviceFile: a listener whose device keeps a file serves
// hellos from several peers at once (each /session it makes saves the file)
// and their messages; run with -race.
func TestListenerWithDeviceFile(t *testing.T) {
	ch := chtest.Start(t, "", chtest.Open)
	ctx := chtest.Ctx(t)
	path := newFile(t, "m2")
	if err := joinNear(t, ch, path); err != nil {
		t.Fatal(err)
	}
	l, err := dialFile(t, ch, path).Listen("127.0.0.1:0", func(_ string, msg []byte) []byte { return msg }, nil, device.WithListenRateLimit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peers := []*device.Device{chtest.Joined(t, ch, "m1"), chtest.Joined(t, ch, "m3"), chtest.Joined(t, ch, "m4")}
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(peers))
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				talk, err := p.Talk(ctx, l.Addr().String(), "m2")
				if err != nil {
					errs <- err
					return
				}
				if reply, err := talk.Send(ctx, []byte("hi")); err != nil || string(reply) != "hi" {
					errs <- fmt.Errorf("reply %q, %v", reply, err)
				}
				talk.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := seqOf(t, path); got != 3*uint64(len(peers)) {
		t.Errorf("device file's seq %d after %d sessions, want %d", got, 3*len(peers), 3*len(peers))
	}
}
