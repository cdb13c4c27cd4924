package device

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestUpdateTakesEveryField: update starts from the device file, every
// field of it but the identity, so that a field added to State is not
// silently left behind (a process would then write its stale copy back).
func TestUpdateTakesEveryField(t *testing.T) {
	st, err := NewState("m1")
	if err != nil {
		t.Fatal(err)
	}
	join := &Membership{Cluster: "c", CHKey: []byte{1}, DeviceNonce: []byte{2}, CHNonce: []byte{3}, Height: 4, BlockHash: []byte{5}, Expires: 6}
	disk := *st
	disk.Membership = join
	disk.Seq = 7
	disk.Credential = []byte{8}
	disk.Trusted = []byte{9}
	disk.Checkpoint = []byte{10}
	disk.PendingJoin = &PendingJoin{Cluster: "c", Nonce: []byte{11}}
	disk.SpentTickets = SpentTickets{Floor: 12, SIDs: []SpentTicket{{SID: []byte{13}, Expires: 1 << 40}}}
	path := filepath.Join(t.TempDir(), "m1.json")
	if err := disk.Save(path); err != nil {
		t.Fatal(err)
	}
	mine := *st
	mine.Membership = &Membership{DeviceNonce: []byte{2}} // the same join
	d := &Device{st: &mine, path: path, now: time.Now}
	if err := d.update(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	v, want := reflect.ValueOf(mine), reflect.ValueOf(disk)
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if name == "KeyPKCS8" {
			continue // only in the file's encoding
		}
		if !reflect.DeepEqual(v.Field(i).Interface(), want.Field(i).Interface()) {
			t.Errorf("State.%s after update: %v, want the file's %v", name, v.Field(i).Interface(), want.Field(i).Interface())
		}
	}
}
