package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/pemkey"
	"github.com/iotguard/iotguard/wire"
)

const deviceUsage = `Usage: iotguard device <keygen|pubkey|join|verify|session|listen|send|leave|rekey|psk> [flags]

Plays a device. The device file (--key, mode 0600) holds the device's ID and
private key, its fleet credential if it has one ('iotguard fleet issue'), and
after a join its membership, request sequence number and the thumbprint of the
cluster head key it trusts: the key of its first join (or --pin), or the key a
rotation signed by it led to. A later join to a CH with any other key is
refused; if the CH key really changed without a rotation, check the new
thumbprint out of band (the server's start-up log, or
'coap-client-notls -m get -A 0 coap://127.0.0.1:5683/cluster' on the CH's own
host) and re-pin: 'device join --repin HEX …'. pubkey prints the device's
public key (PEM): what an operator enrolls ('iotguard enroll add'). A join
carries the credential of the device file, or of --credential FILE.

Examples:
  iotguard device keygen --id sensor-a --out a.json
  iotguard device pubkey --key a.json > a.pub
  iotguard device join    --server coap://127.0.0.1:5683 --key a.json --position 48.857,2.352
  iotguard device join    --server coap://127.0.0.1:5683 --key a.json --position 48.857,2.352 --credential a.cred
  iotguard device join    --server coap://127.0.0.1:5683 --key a.json --position 48.857,2.352 \
      --repin 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
  iotguard device verify  --server coap://127.0.0.1:5683 --key b.json --peer sensor-a
  iotguard device session --server coap://127.0.0.1:5683 --key b.json --peer sensor-a
  iotguard device listen  --server coap://127.0.0.1:5683 --key b.json --listen 127.0.0.1:5700
  iotguard device send    --server coap://127.0.0.1:5683 --key a.json --peer sensor-b \
      --peer-addr 127.0.0.1:5700 --message "temperature 21.5"
  iotguard device leave   --server coap://127.0.0.1:5683 --key a.json
  iotguard device rekey   --server coap://127.0.0.1:5683 --key a.json   # after a CH key rotation
  iotguard device psk     --key a.json      # coaps identity and PSK, as coap-client flags:
  coap-client-openssl $(iotguard device psk --key a.json) -m post -t 60 -f verify.cbor \
      coaps://127.0.0.1:5684/verify
`

func deviceCmd(args []string) error {
	return dispatch("device", deviceUsage, args, map[string]func([]string) error{
		"keygen": deviceKeygen, "pubkey": devicePubkey, "join": deviceJoin, "verify": deviceVerify, "session": deviceSession,
		"listen": deviceListen, "send": deviceSend, "leave": deviceLeave, "rekey": deviceRekey, "psk": devicePSK,
	})
}

func deviceKeygen(args []string) error {
	fs := flag.NewFlagSet("device keygen", flag.ContinueOnError)
	id := fs.String("id", "", "device `ID` ([A-Za-z0-9._-], 1-64 bytes)")
	out := fs.String("out", "", "device `file` to create (mode 0600)")
	if err := Parse(fs, deviceUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "id", "out"); err != nil {
		return err
	}
	st, err := device.NewState(*id)
	if err != nil {
		return err
	}
	if err := st.Create(*out); errors.Is(err, iofs.ErrExist) {
		return fmt.Errorf("%s exists; refusing to overwrite a device key (remove it first)", *out)
	} else if err != nil {
		return err
	}
	fmt.Printf("created %s for device %s\n", *out, *id)
	return nil
}

// loadDeviceFile parses a command whose only flag is --key (described by
// usage) and reads that device file.
func loadDeviceFile(name, usage string, args []string) (*device.State, string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	key := fs.String("key", "", usage)
	if err := Parse(fs, deviceUsage, args); err != nil {
		return nil, "", err
	}
	if err := Required(fs, "key"); err != nil {
		return nil, "", err
	}
	st, err := device.LoadState(*key)
	return st, *key, err
}

func devicePubkey(args []string) error {
	st, _, err := loadDeviceFile("device pubkey", "device `file` (from 'device keygen')", args)
	if err != nil {
		return err
	}
	pub, err := pemkey.EncodePublic(&st.Key.PublicKey)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(pub)
	return err
}

// deviceFlags are the flags every device subcommand that talks to a CH takes.
type deviceFlags struct {
	fs      *flag.FlagSet
	server  *string
	key     *string
	pin     *string
	repin   *string // join only
	timeout *time.Duration
	// credential is a credential file to join with (join only; nil otherwise).
	credential *string
}

func newDeviceFlags(name string) deviceFlags {
	fs := flag.NewFlagSet("device "+name, flag.ContinueOnError)
	return deviceFlags{
		fs:      fs,
		server:  fs.String("server", "coap://127.0.0.1:5683", "cluster head `URL`"),
		key:     fs.String("key", "", "device `file` (from 'device keygen')"),
		pin:     fs.String("pin", "", "expected CH key thumbprint (`hex`, from the server log or GET /cluster)"),
		timeout: fs.Duration("timeout", 30*time.Second, "give up after this long"),
	}
}

// open parses args and dials the CH with the device file.
func (f deviceFlags) open(args []string, need ...string) (*device.Device, context.Context, func(), error) {
	if err := Parse(f.fs, deviceUsage, args); err != nil {
		return nil, nil, nil, err
	}
	if err := Required(f.fs, append([]string{"key"}, need...)...); err != nil {
		return nil, nil, nil, err
	}
	st, err := device.LoadState(*f.key)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := []device.Option{device.WithStateFile(*f.key)}
	if f.credential != nil && *f.credential != "" {
		cred, err := readCredential(*f.credential)
		if err != nil {
			return nil, nil, nil, err
		}
		opts = append(opts, device.WithCredential(cred))
	}
	if *f.pin != "" {
		pin, err := thumbprintFlag("pin", *f.pin)
		if err != nil {
			return nil, nil, nil, err
		}
		opts = append(opts, device.WithPin(pin))
	}
	if f.repin != nil && *f.repin != "" {
		if *f.pin != "" {
			return nil, nil, nil, usageError{msg: "--pin and --repin exclude each other"}
		}
		repin, err := thumbprintFlag("repin", *f.repin)
		if err != nil {
			return nil, nil, nil, err
		}
		opts = append(opts, device.WithRepin(repin))
	}
	d, err := device.Dial(*f.server, st, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *f.timeout)
	return d, ctx, func() { cancel(); d.Close() }, nil
}

// thumbprintFlag decodes the value of a thumbprint flag (64 hex digits).
func thumbprintFlag(name, v string) ([]byte, error) {
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != 32 {
		return nil, usageError{msg: "--" + name + " must be 64 hex digits"}
	}
	return b, nil
}

func deviceJoin(args []string) error {
	f := newDeviceFlags("join")
	pos := f.fs.String("position", "", "device position `LAT,LON` in degrees")
	f.credential = f.fs.String("credential", "", "fleet credential `file` ('iotguard fleet issue --out') to send instead of the device file's")
	f.repin = f.fs.String("repin", "", "trust the CH key with this thumbprint (`hex`, checked out of band) instead of the one the device trusts")
	d, ctx, done, err := f.open(args, "position")
	if err != nil {
		return err
	}
	defer done()
	p, err := cluster.ParsePosition(*pos)
	if err != nil {
		return usageError{msg: err.Error()}
	}
	resp, err := d.Join(ctx, p.Lat, p.Lon)
	if errors.Is(err, device.ErrOutcomeUnknown) {
		return fmt.Errorf("%w: the join may still be recorded; run this command again to resend the same join (%s keeps its nonce)", err, *f.key)
	}
	var untrusted *device.UntrustedCHError
	if errors.As(err, &untrusted) && !untrusted.Pinned {
		return fmt.Errorf("join refused: %w\n"+
			"iotguard: hint: compare %x with the thumbprint in the cluster head's start-up log (or GET /cluster on its own host);\n"+
			"iotguard: hint: if they match, re-pin: iotguard device join --server %s --key %s --position %s --repin %x",
			err, untrusted.Got, *f.server, *f.key, *pos, untrusted.Got)
	}
	if err != nil && resp != nil { // Join proves an admitted join in the CH's log
		return fmt.Errorf("the cluster head admitted the join (block %d), but the device's check of it in the CH's transparency log failed: %w", resp.Height, err)
	}
	if err != nil {
		return fmt.Errorf("join refused: %w", err)
	}
	fmt.Printf("joined cluster %s as %s: block %d (%x), member until %s\n",
		resp.Cluster, resp.ID, resp.Height, resp.BlockHash[:8], time.Unix(int64(resp.Expires), 0).UTC().Format(time.RFC3339))
	return nil
}

func deviceVerify(args []string) error {
	f := newDeviceFlags("verify")
	peer := f.fs.String("peer", "", "device `ID` to verify")
	d, ctx, done, err := f.open(args, "peer")
	if err != nil {
		return err
	}
	defer done()
	v, err := d.Verify(ctx, *peer)
	if errors.Is(err, device.ErrWarning) {
		fmt.Printf("warning: %s is %s\n", *peer, v.Status)
		return exitError(1)
	} else if err != nil {
		return err
	}
	fmt.Printf("%s is a member: joined in block %d (%x)\n", *peer, v.Height, v.BlockHash[:8])
	return nil
}

func deviceSession(args []string) error {
	f := newDeviceFlags("session")
	peer := f.fs.String("peer", "", "device `ID` of the peer (the initiator)")
	d, ctx, done, err := f.open(args, "peer")
	if err != nil {
		return err
	}
	defer done()
	s, ticket, err := d.Session(ctx, *peer)
	if err != nil {
		return fmt.Errorf("session refused: %w", err)
	}
	fmt.Printf("session %x with %s until %s (ticket for %s: %d bytes sealed)\n",
		s.SID, *peer, s.Expires.UTC().Format(time.RFC3339), ticket.Recipient, len(ticket.Box.Ciphertext))
	return nil
}

func deviceListen(args []string) error {
	f := newDeviceFlags("listen")
	addr := f.fs.String("listen", "127.0.0.1:5700", "UDP `address` for this device's /talk and /m2m")
	reply := f.fs.String("reply", "ok", "reply `text` sent back (encrypted) for each message")
	*f.timeout = 24 * time.Hour
	d, _, done, err := f.open(args)
	if err != nil {
		return err
	}
	defer done()
	l, err := d.Listen(*addr, func(from string, msg []byte) []byte {
		fmt.Printf("%s: %s\n", from, msg)
		return []byte(*reply)
	}, func(err error) { fmt.Fprintf(os.Stderr, "iotguard: %v\n", err) })
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintf(os.Stderr, "device %s listening on %s\n", d.ID(), l.Addr())
	WaitSignal(nil)
	return nil
}

func deviceSend(args []string) error {
	f := newDeviceFlags("send")
	peer := f.fs.String("peer", "", "device `ID` of the peer")
	peerAddr := f.fs.String("peer-addr", "", "UDP `address` the peer listens on")
	msg := f.fs.String("message", "", "message `text` to send encrypted")
	d, ctx, done, err := f.open(args, "peer", "peer-addr", "message")
	if err != nil {
		return err
	}
	defer done()
	t, err := d.Talk(ctx, *peerAddr, *peer)
	if err != nil {
		return err
	}
	defer t.Close()
	reply, err := t.Send(ctx, []byte(*msg))
	if err != nil {
		return err
	}
	fmt.Printf("sent to %s (session %x); reply: %s\n", *peer, t.Session.SID, reply)
	return nil
}

func deviceRekey(args []string) error {
	f := newDeviceFlags("rekey")
	d, ctx, done, err := f.open(args)
	if err != nil {
		return err
	}
	defer done()
	changed, err := d.Rekey(ctx)
	if err != nil {
		return fmt.Errorf("rekey: %w", err)
	}
	m := d.Membership()
	pub, err := wire.ParsePublicKey(m.CHKey)
	if err != nil {
		return err
	}
	if !changed {
		fmt.Printf("%s is keyed to the CH key in force (%x)\n", d.ID(), wire.Thumbprint(pub))
		return nil
	}
	fmt.Printf("%s re-keyed to CH key %x\n", d.ID(), wire.Thumbprint(pub))
	return nil
}

func deviceLeave(args []string) error {
	f := newDeviceFlags("leave")
	d, ctx, done, err := f.open(args)
	if err != nil {
		return err
	}
	defer done()
	resp, err := d.Leave(ctx)
	if err != nil {
		return fmt.Errorf("leave refused: %w", err)
	}
	fmt.Printf("%s left: block %d (%x)\n", d.ID(), resp.Height, resp.BlockHash[:8])
	return nil
}

// devicePSK prints the device's coaps identity and PSK as coap-client's
// flags (-u ID -k PSK). The PSK is a secret derived from the member key:
// it changes with every join and dies with the membership.
func devicePSK(args []string) error {
	st, key, err := loadDeviceFile("device psk", "device `file` (from 'device keygen', after a join)", args)
	if err != nil {
		return err
	}
	id, psk, err := st.PSK()
	if errors.Is(err, device.ErrNotJoined) {
		return fmt.Errorf("%s has no membership: its PSK comes from the member key of a join; run 'iotguard device join --key %s' first", st.ID, key)
	} else if err != nil {
		return err
	}
	fmt.Printf("-u %s -k %s\n", id, psk)
	return nil
}
