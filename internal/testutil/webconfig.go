package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// WebConfig writes to dir a Prometheus web configuration file (the format
// of exporter-toolkit, metrics.WithWebConfig) that requires basic
// authentication as user with password, and with tls serves HTTPS under a
// new self-signed certificate for 127.0.0.1, written to dir/ca.pem for
// clients to trust. It returns the file's path.
func WebConfig(tb testing.TB, dir, user, password string, tls bool) string {
	tb.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := fmt.Sprintf("basic_auth_users:\n  %s: %s\n", user, hash)
	if tls {
		cert, key := selfSigned(tb)
		write(tb, filepath.Join(dir, "ca.pem"), cert)
		write(tb, filepath.Join(dir, "tls.key"), key)
		cfg += fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tls.key"))
	}
	path := filepath.Join(dir, "web.yml")
	write(tb, path, []byte(cfg))
	return path
}

// selfSigned returns a new P-256 certificate for 127.0.0.1, valid for a
// day, and its key, both PEM.
func selfSigned(tb testing.TB) (cert, key []byte) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "iotguard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func write(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
