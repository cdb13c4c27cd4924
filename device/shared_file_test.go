package device_test

import (
	"errors"
	"fmt"
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
