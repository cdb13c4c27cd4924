package cli

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iotguard/iotguard/admin"
	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/pemkey"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

const enrollUsage = `Usage: iotguard enroll <add|list|remove> --data DIR [flags]

Enrollment says which device may join under which ID: with
'iotguard serve --admission enrolled' (the default outside demos) a join is
admitted only if its ID is enrolled with the key that signs it, or if it
carries a fleet credential ('iotguard fleet'). Each enrollment and removal
is a CH-signed event on the ledger: an auditor sees who was let in, and when.

add enrolls ID with the public key in --key: a device file (only its public
half is read) or a PEM public key ('iotguard device pubkey'). --position and
--tolerance fix a device's place: its joins must claim a position within
--tolerance metres of it (the cluster radius applies too). --expires bounds
how long the enrollment admits joins. --replace gives an ID to a new key (a
replaced board, or an ID a squatter took while joining was open): the old
key's membership ends in the same event.
remove ends the device's membership (its peers' /verify warns) and refuses
every later join of the ID.
list shows the enrollments: in force, expired or removed.

Each works while the server runs (through DIR/admin.sock, mode 0600) and on
a stopped data directory (writing its ledger with its CH key).

Examples:
  iotguard device pubkey --key a.json > a.pub
  iotguard enroll add --data iotguard-data --id sensor-a --key a.pub
  iotguard enroll add --data iotguard-data --id pump-3 --key pump-3.json \
      --position 48.8570,2.3530 --tolerance 25 --expires 8760h
  iotguard enroll add --data iotguard-data --id sensor-7 --key new-board.pub --replace --reason "board replaced"
  iotguard enroll list --data iotguard-data --format json
  iotguard enroll remove --data iotguard-data --id sensor-a --reason decommissioned
`

func enrollCmd(args []string) error {
	return dispatch("enroll", enrollUsage, args, map[string]func([]string) error{"add": enrollAdd, "list": enrollList, "remove": enrollRemove})
}

// operatorTimeout bounds an enroll command, a ledger commit included.
const operatorTimeout = 15 * time.Second

// onServer runs running against the server on dir's control socket, or
// stopped on the data directory when no server answers there, within
// operatorTimeout.
func onServer(dir string, running, stopped func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), operatorTimeout)
	defer cancel()
	return onServerCtx(ctx, dir, running, stopped)
}

// onServerCtx is onServer within ctx.
func onServerCtx(ctx context.Context, dir string, running, stopped func(ctx context.Context) error) error {
	err := running(ctx)
	if !errors.Is(err, admin.ErrNotRunning) {
		return err
	}
	err = stopped(ctx)
	if errors.Is(err, ledger.ErrLocked) {
		return fmt.Errorf("%w: a server holds %s but has no control socket; stop it, or restart it without disabling the socket", err, dir)
	}
	return err
}

func enrollAdd(args []string) error {
	fs := flag.NewFlagSet("enroll add", flag.ContinueOnError)
	dir := fs.String("data", "iotguard-data", "data `directory` of the cluster head (running or stopped)")
	id := fs.String("id", "", "device `ID` to enroll")
	keyFile := fs.String("key", "", "the device's public key: a device `file` or a PEM public key")
	pos := fs.String("position", "", "fixed installation: the device's position `LAT,LON` in degrees (needs --tolerance)")
	tolerance := fs.Uint64("tolerance", 0, "with --position: how far a join may claim to be from it, in `metres`")
	expires := fs.String("expires", "", "admit joins for this long (`D`: 720h, 90d); never expires when empty")
	replace := fs.Bool("replace", false, "give the ID to this key, ending the membership of the key it had")
	reason := fs.String("reason", "", "reason recorded on the ledger")
	if err := Parse(fs, enrollUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "id", "key"); err != nil {
		return err
	}
	r := cluster.Enrollment{ID: *id, Tolerance: *tolerance, Replace: *replace, Reason: *reason}
	switch {
	case *pos != "" && *tolerance == 0:
		return usageError{msg: "--position needs --tolerance METERS"}
	case *pos == "" && *tolerance != 0:
		return usageError{msg: "--tolerance needs --position LAT,LON"}
	case *pos != "":
		p, err := cluster.ParsePosition(*pos)
		if err != nil {
			return usageError{msg: err.Error()}
		}
		r.Position = &p
	}
	if *expires != "" {
		d, err := parseLifetime(*expires)
		if err != nil {
			return usageError{msg: "--expires: " + err.Error()}
		}
		r.Expires = time.Now().Add(d)
	}
	pub, err := readDevicePublicKey(*keyFile)
	if err != nil {
		return err
	}
	if r.Key, err = wire.EncodePublicKey(pub); err != nil {
		return err
	}
	var height uint64
	err = onServer(*dir,
		func(ctx context.Context) (err error) { height, err = admin.Enroll(ctx, *dir, r); return err },
		func(ctx context.Context) error {
			ref, err := clusterhead.Enroll(ctx, *dir, r)
			height = ref.Height
			return err
		})
	if err != nil {
		return enrollError(*id, err)
	}
	what := "enrolled"
	if *replace {
		what = "enrolled (replacing any other key)"
	}
	th := wire.Thumbprint(pub)
	fmt.Printf("%s %s with key %x: block %d\n", what, *id, th[:8], height)
	return nil
}

// enrollError says in one sentence why the state machine refused to enroll
// id, and what to do about it; any other error keeps its chain.
func enrollError(id string, err error) error {
	var msg string
	switch {
	case errors.Is(err, ledger.ErrEnrolled):
		msg = "%s is enrolled already (to give the ID another key or other terms: --replace)"
	case errors.Is(err, ledger.ErrConflict):
		msg = "%s is bound to another key (to give the ID to this key and end the other key's membership: --replace)"
	case errors.Is(err, ledger.ErrRevoked):
		msg = "%s is revoked (a revoked key stays revoked: enroll a new key with --replace)"
	default:
		return fmt.Errorf("enroll %s: %w", id, err)
	}
	return refusal{fmt.Sprintf(msg, id), err}
}

// refusal is an error with a message of its own that still wraps its cause
// for errors.Is.
type refusal struct {
	msg string
	err error
}

func (e refusal) Error() string { return e.msg }
func (e refusal) Unwrap() error { return e.err }

// readDevicePublicKey reads a PEM public key, or the public half of a
// device file. A PEM private key is refused.
func readDevicePublicKey(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	pub, err := pemkey.ParsePublic(b)
	switch {
	case err == nil:
		return pub, nil
	case errors.Is(err, pemkey.ErrPrivateKey):
		return nil, fmt.Errorf("--key %s is a private key: give the device's public key ('iotguard device pubkey') or its device file", path)
	}
	st, err := device.LoadState(path)
	if err != nil {
		return nil, fmt.Errorf("--key %s is neither a PEM public key nor a device file: %w", path, err)
	}
	return &st.Key.PublicKey, nil
}

// parseLifetime parses a Go duration or a number of days ("90d").
func parseLifetime(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("%q: want a positive number of days, like 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration, like 720h or 90d", s)
	}
	return d, nil
}

func enrollRemove(args []string) error {
	fs := flag.NewFlagSet("enroll remove", flag.ContinueOnError)
	dir := fs.String("data", "iotguard-data", "data `directory` of the cluster head (running or stopped)")
	id := fs.String("id", "", "device `ID` whose enrollment to remove")
	reason := fs.String("reason", "", "reason recorded on the ledger")
	if err := Parse(fs, enrollUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "id", "reason"); err != nil {
		return err
	}
	var height uint64
	err := onServer(*dir,
		func(ctx context.Context) (err error) {
			height, err = admin.Unenroll(ctx, *dir, *id, *reason)
			return err
		},
		func(ctx context.Context) error {
			ref, err := clusterhead.Unenroll(ctx, *dir, *id, *reason)
			height = ref.Height
			return err
		})
	if err != nil {
		return fmt.Errorf("remove the enrollment of %s: %w", *id, err)
	}
	fmt.Printf("removed the enrollment of %s: block %d\n", *id, height)
	return nil
}

// listedEnrollment is an enrollment as 'enroll list --format json' prints it.
type listedEnrollment struct {
	ID        string  `json:"id"`
	Key       string  `json:"key_thumbprint"`
	State     string  `json:"state"` // active, expired, removed
	Lat       float64 `json:"lat,omitempty"`
	Lon       float64 `json:"lon,omitempty"`
	Tolerance uint64  `json:"tolerance_m,omitempty"`
	Expires   string  `json:"expires,omitempty"`
	Enrolled  uint64  `json:"enrolled_block"`
	Updated   uint64  `json:"updated_block"`
}

func listed(e ledger.Enrollment, now time.Time) (listedEnrollment, error) {
	pub, err := wire.ParsePublicKey(e.Key)
	if err != nil {
		return listedEnrollment{}, fmt.Errorf("enrollment of %s: %w", e.ID, err)
	}
	th := wire.Thumbprint(pub)
	l := listedEnrollment{ID: e.ID, Key: hex.EncodeToString(th[:]), State: "active", Enrolled: e.Enrolled.Height, Updated: e.Updated.Height}
	switch err := e.ActiveAt(now); {
	case errors.Is(err, ledger.ErrEnrollmentRemoved):
		l.State = "removed"
	case errors.Is(err, ledger.ErrEnrollmentExpired):
		l.State = "expired"
	}
	if e.HasPosition() {
		l.Lat, l.Lon, l.Tolerance = float64(e.Lat)/1e6, float64(e.Lon)/1e6, e.Tolerance
	}
	if e.Expires != 0 {
		l.Expires = time.Unix(e.Expires, 0).UTC().Format(time.RFC3339)
	}
	return l, nil
}

func enrollList(args []string) error {
	fs := flag.NewFlagSet("enroll list", flag.ContinueOnError)
	dir := fs.String("data", "iotguard-data", "data `directory` of the cluster head (running or stopped)")
	format := fs.String("format", "text", "output `format`: text or json (one object per line)")
	if err := Parse(fs, enrollUsage, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageError{msg: "--format must be text or json"}
	}
	var list []ledger.Enrollment
	err := onServer(*dir,
		func(ctx context.Context) (err error) { list, err = admin.Enrollments(ctx, *dir); return err },
		func(context.Context) error {
			l, err := clusterhead.OpenLedger(*dir)
			if err != nil {
				return err
			}
			defer l.Close()
			return l.Enrollments(func(e ledger.Enrollment) error { list = append(list, e); return nil })
		})
	if err != nil {
		return fmt.Errorf("list enrollments: %w", err)
	}
	now := time.Now()
	enc := json.NewEncoder(os.Stdout)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	if *format == "text" {
		fmt.Fprintln(tw, "ID\tKEY\tSTATE\tPOSITION\tEXPIRES\tBLOCK")
	}
	for _, e := range list {
		l, err := listed(e, now)
		if err != nil {
			return err
		}
		if *format == "json" {
			if err := enc.Encode(l); err != nil {
				return err
			}
			continue
		}
		pos, exp := "-", "never"
		if l.Tolerance > 0 {
			pos = fmt.Sprintf("%.6f,%.6f ±%d m", l.Lat, l.Lon, l.Tolerance)
		}
		if l.Expires != "" {
			exp = l.Expires
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", l.ID, l.Key[:16], l.State, pos, exp, l.Enrolled)
	}
	return tw.Flush()
}
