package cli

import (
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"strings"
	"time"

	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/internal/atomicfile"
	"github.com/iotguard/iotguard/internal/pemkey"
	"github.com/iotguard/iotguard/wire"
)

const fleetUsage = `Usage: iotguard fleet <keygen|pubkey|issue> [flags]

Fleet credentials admit devices without enrolling each one (zero-touch
manufacturing, like an enrollment group): an operator-held fleet key signs
a credential for each device at flashing time, binding its ID, its public
key and a validity period. A cluster head started with
'--fleet-key fleet.pub' admits a join that carries a valid credential of
that key; it never holds the fleet's private key. Give it two keys while
one is rotated.

keygen writes a fleet private key (PEM, mode 0600; keep it off the cluster
head) and prints its public key. pubkey prints the public key of a fleet
key. issue signs a credential for the device in --key and stores it in the
device file (its joins then carry it), or writes it, base64 on one line, to
--out (what the firmware's 'credential BASE64' console command takes); for a
board known by its public key (PEM, its console's 'pubkey'), give --id and
--out.

Examples:
  iotguard fleet keygen --out fleet.pem > fleet.pub
  iotguard fleet pubkey --fleet fleet.pem
  iotguard fleet issue --fleet fleet.pem --key a.json --expires 1825d
  iotguard fleet issue --fleet fleet.pem --key a.json --out a.cred
  iotguard fleet issue --fleet fleet.pem --key board.pub --id esp-01 --out esp-01.cred
  iotguard serve --admission enrolled --fleet-key fleet.pub
`

func fleetCmd(args []string) error {
	return dispatch("fleet", fleetUsage, args, map[string]func([]string) error{"keygen": fleetKeygen, "pubkey": fleetPubkey, "issue": fleetIssue})
}

func fleetKeygen(args []string) error {
	fs := flag.NewFlagSet("fleet keygen", flag.ContinueOnError)
	out := fs.String("out", "", "fleet private key `file` to create (PEM, mode 0600)")
	if err := Parse(fs, fleetUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "out"); err != nil {
		return err
	}
	k, err := pemkey.Generate()
	if err != nil {
		return err
	}
	if err := pemkey.CreatePrivate(*out, k); errors.Is(err, iofs.ErrExist) {
		return fmt.Errorf("%s exists; refusing to overwrite a fleet key (remove it first)", *out)
	} else if err != nil {
		return err
	}
	pub, err := pemkey.EncodePublic(&k.PublicKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "created %s (fleet key %x); its public key, for 'iotguard serve --fleet-key':\n", *out, wire.FleetKID(&k.PublicKey))
	_, err = os.Stdout.Write(pub)
	return err
}

func fleetPubkey(args []string) error {
	fs := flag.NewFlagSet("fleet pubkey", flag.ContinueOnError)
	fleet := fs.String("fleet", "", "fleet private key `file` (from 'iotguard fleet keygen')")
	if err := Parse(fs, fleetUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "fleet"); err != nil {
		return err
	}
	k, err := pemkey.ReadPrivate(*fleet)
	if err != nil {
		return err
	}
	pub, err := pemkey.EncodePublic(&k.PublicKey)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(pub)
	return err
}

func fleetIssue(args []string) error {
	fs := flag.NewFlagSet("fleet issue", flag.ContinueOnError)
	fleet := fs.String("fleet", "", "fleet private key `file`")
	keyFile := fs.String("key", "", "device `file` (from 'device keygen'), or a PEM public key with --id and --out (a board's 'pubkey')")
	id := fs.String("id", "", "with a PEM public key: the device `ID` to bind")
	expires := fs.String("expires", "1825d", "validity from now (`D`: 8760h, 1825d); the default is about a device's service life")
	out := fs.String("out", "", "write the credential (base64) to this `file` instead of into the device file")
	if err := Parse(fs, fleetUsage, args); err != nil {
		return err
	}
	if err := Required(fs, "fleet", "key"); err != nil {
		return err
	}
	life, err := parseLifetime(*expires)
	if err != nil {
		return usageError{msg: "--expires: " + err.Error()}
	}
	k, err := pemkey.ReadPrivate(*fleet)
	if err != nil {
		return err
	}
	// A device file gives the ID and the key, and keeps the credential; the
	// PEM public key of a board made elsewhere needs both named.
	var st *device.State
	var pub *ecdsa.PublicKey
	var devID string
	if b, err := os.ReadFile(*keyFile); err == nil && pemkey.IsPEM(b) {
		if *id == "" || *out == "" {
			return usageError{msg: "a PEM public key needs --id ID and --out FILE"}
		}
		if pub, err = readDevicePublicKey(*keyFile); err != nil {
			return err
		}
		devID = *id
	} else {
		if st, err = device.LoadState(*keyFile); err != nil {
			return err
		}
		if *id != "" && *id != st.ID {
			return usageError{msg: fmt.Sprintf("--id %s, but %s is the device file of %s", *id, *keyFile, st.ID)}
		}
		pub, devID = &st.Key.PublicKey, st.ID
	}
	now := time.Now()
	th := wire.Thumbprint(pub)
	c := wire.Credential{ID: devID, Key: th[:], NotBefore: uint64(now.Unix()), NotAfter: uint64(now.Add(life).Unix())}
	cred, err := wire.IssueCredential(k, c)
	if err != nil {
		return err
	}
	where := *keyFile
	if *out != "" {
		err = atomicfile.Write(*out, []byte(base64.StdEncoding.EncodeToString(cred)+"\n"), 0o644)
		where = *out
	} else {
		st.Credential = cred
		err = st.Save(*keyFile)
	}
	if err != nil {
		return err
	}
	fmt.Printf("issued a %d-byte credential of fleet key %x for %s, valid until %s, into %s\n",
		len(cred), wire.FleetKID(&k.PublicKey), devID, time.Unix(int64(c.NotAfter), 0).UTC().Format(time.RFC3339), where)
	return nil
}

// readCredential reads a credential file written by 'fleet issue --out':
// base64 on one line.
func readCredential(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read credential: %w", err)
	}
	cred, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(cred) == 0 || len(cred) > wire.MaxCredentialLen {
		return nil, fmt.Errorf("%s is not a credential ('iotguard fleet issue --out' writes one: base64, at most %d bytes)", path, wire.MaxCredentialLen)
	}
	return cred, nil
}
