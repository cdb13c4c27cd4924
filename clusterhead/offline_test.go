package clusterhead_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/chtest"
	"github.com/iotguard/iotguard/keysvc"
	"github.com/iotguard/iotguard/wire"
)

// unfinishRotation turns the key files of the stopped CH in dir, after one
// rotation, back into what a crash between the rotation's block and
// keysvc.FinishRotation leaves: the old key in ch-key.pem, the new one (no
// From-Height yet) in ch-key-next.pem, no retired keys.
func unfinishRotation(t *testing.T, dir string) {
	t.Helper()
	read := func(name string) *pem.Block {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM block", name)
		}
		return blk
	}
	cur, old := read(keysvc.KeyFile), read(keysvc.RetiredFile)
	delete(cur.Headers, "From-Height")
	for name, blk := range map[string]*pem.Block{keysvc.NextFile: cur, keysvc.KeyFile: old} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, keysvc.RetiredFile)); err != nil {
		t.Fatal(err)
	}
}

// TestOfflineAfterInterruptedRotation: on the data directory of a CH that
// crashed after its rotation's block and before the key files were moved,
// the offline commands finish the rotation as the CH's start would: the
// ledger verifies (not "BROKEN at the rotation"), an offline enrollment is
// signed by the key in force, and an offline backup restores.
func TestOfflineAfterInterruptedRotation(t *testing.T) {
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	chtest.Joined(t, ch, "sensor-a")
	rot, err := ch.RotateKey(chtest.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	chtest.Joined(t, ch, "sensor-b")
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	unfinishRotation(t, dir)

	l, err := clusterhead.OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Verify(context.Background(), nil)
	if cerr := l.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("verify after an interrupted rotation: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, keysvc.NextFile)); !os.IsNotExist(err) {
		t.Fatalf("%s after an offline open: %v", keysvc.NextFile, err)
	}

	unfinishRotation(t, dir)
	st, err := device.NewState("sensor-c")
	if err != nil {
		t.Fatal(err)
	}
	key, err := wire.EncodePublicKey(&st.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := clusterhead.Enroll(chtest.Ctx(t), dir, cluster.Enrollment{ID: st.ID, Key: key, Reason: "test"})
	if err != nil {
		t.Fatalf("offline enroll after an interrupted rotation: %v", err)
	}
	if ref.Height <= rot.Height {
		t.Fatalf("enrollment at height %d, not after the rotation's %d", ref.Height, rot.Height)
	}

	unfinishRotation(t, dir)
	var archive bytes.Buffer
	if err := clusterhead.BackupStopped(dir, &archive); err != nil {
		t.Fatal(err)
	}
	if _, err := clusterhead.Restore(&archive, filepath.Join(t.TempDir(), "restored"), nil); err != nil {
		t.Fatalf("restore of an offline backup taken after an interrupted rotation: %v", err)
	}
}

// TestRotationFinishedAtStart kills (in effect) a rotation at each step of
// keysvc.CompleteRotation after its block is on the ledger: the next start
// finishes it, with the new key in force, the old one retired, no next key
// file, and a ledger that verifies under the key files.
func TestRotationFinishedAtStart(t *testing.T) {
	for _, step := range []string{"nothing moved", "old key retired", "new key in place"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			ch := chtest.Start(t, dir)
			chtest.Joined(t, ch, "sensor-a")
			if _, err := ch.RotateKey(chtest.Ctx(t)); err != nil {
				t.Fatal(err)
			}
			want := ch.Keys.Thumbprint()
			if err := ch.Close(); err != nil {
				t.Fatal(err)
			}
			cur, err := os.ReadFile(filepath.Join(dir, keysvc.KeyFile))
			if err != nil {
				t.Fatal(err)
			}
			retired, err := os.ReadFile(filepath.Join(dir, keysvc.RetiredFile))
			if err != nil {
				t.Fatal(err)
			}
			unfinishRotation(t, dir) // nothing moved
			switch step {
			case "old key retired":
				err = os.WriteFile(filepath.Join(dir, keysvc.RetiredFile), retired, 0o600)
			case "new key in place":
				err = os.WriteFile(filepath.Join(dir, keysvc.RetiredFile), retired, 0o600)
				if err == nil {
					err = os.WriteFile(filepath.Join(dir, keysvc.KeyFile), cur, 0o600)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			ch = chtest.Start(t, dir)
			if ch.Keys.Thumbprint() != want {
				t.Fatal("after the restart the new key is not in force")
			}
			if err := ch.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, keysvc.NextFile)); !os.IsNotExist(err) {
				t.Fatalf("%s after the restart: %v", keysvc.NextFile, err)
			}
			l, err := clusterhead.OpenLedger(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.Verify(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOfflineRotationRecoveryOnlyByOwner: an offline command run by another
// user than the data directory's owner (root on a systemd DynamicUser's
// directory) does not rewrite the key files, which would then be root's and
// stop the service's next start: it says to start the server, and leaves
// the files as they were. It needs root to give the directory away.
func TestOfflineRotationRecoveryOnlyByOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the data directory")
	}
	dir := t.TempDir()
	ch := chtest.Start(t, dir)
	if _, err := ch.RotateKey(chtest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	unfinishRotation(t, dir)
	before := keyFiles(t, dir)
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := clusterhead.OpenLedger(dir)
	if err == nil || !strings.Contains(err.Error(), "start the server once to finish it") {
		t.Fatalf("offline open by another user than the owner: %v, want a refusal", err)
	}
	if after := keyFiles(t, dir); !maps.Equal(before, after) {
		t.Fatalf("key files changed: %v, was %v", after, before)
	}
}

// keyFiles returns the key files of dir and their content.
func keyFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, name := range []string{keysvc.KeyFile, keysvc.RetiredFile, keysvc.NextFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			files[name] = string(b)
		} else if !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return files
}
