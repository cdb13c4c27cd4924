package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/device"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// How the devices of a run are admitted (docs/SECURITY.md, "Admission").
// The join scenario against a cluster head of its own measures all three in
// the same run, interleaved; its headline numbers are AdmitEnrolled's, the
// default of 'iotguard serve'.
const (
	AdmitOpen     = "open"     // --admission open: no enrollment
	AdmitEnrolled = "enrolled" // each device enrolled individually (the import of enroll events is setup, not measured)
	AdmitFleet    = "fleet"    // --admission enrolled, each join carrying a fleet credential (one more ES256 verify)
)

// AdmissionRun is the join scenario measured under one admission.
type AdmissionRun struct {
	Admission  string  `json:"admission"`
	Ops        int64   `json:"ops"`
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	CPUMicros  float64 `json:"cpu_us_per_op"`
	VsOpen     float64 `json:"vs_open"` // throughput over open's in the same run
}

// newFleet returns the fleet key of a run's own cluster heads.
func newFleet() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to make the bench's fleet key: %w", err)
	}
	return k, nil
}

// credentialLife is how long a bench credential is valid.
const credentialLife = 24 * time.Hour

// credential gives st a credential of fleet.
func credential(fleet *ecdsa.PrivateKey, st *device.State) error {
	now := time.Now()
	th := wire.Thumbprint(&st.Key.PublicKey)
	c, err := wire.IssueCredential(fleet, wire.Credential{ID: st.ID, Key: th[:],
		NotBefore: uint64(now.Add(-time.Minute).Unix()), NotAfter: uint64(now.Add(credentialLife).Unix())})
	if err != nil {
		return err
	}
	st.Credential = c
	return nil
}

// enrollAll enrolls the identities of p on the started cluster head of t,
// through the ledger's bulk import: setup, so that the enrolled joins are
// measured, not the enrollments.
func enrollAll(ctx context.Context, t *target, p *keyPool) error {
	imp, ok := any(t.ch.Ledger).(importer)
	if !ok {
		return fmt.Errorf("%w: the ledger backend %T has no bulk import", ErrBounds, t.ch.Ledger)
	}
	now := time.Now()
	events := make([]ledger.Event, 0, len(p.states))
	for _, st := range p.states {
		key, err := wire.EncodePublicKey(&st.Key.PublicKey)
		if err != nil {
			return err
		}
		ev, err := cluster.EnrollEvent(cluster.Enrollment{ID: st.ID, Key: key, Reason: "bench"}, now)
		if err != nil {
			return err
		}
		events = append(events, ev)
	}
	_, err := imp.Import(ctx, events)
	return err
}

// admissionRuns turns the outcomes of the interleaved join runs into rows,
// in the order open, enrolled, fleet.
func admissionRuns(outcomes map[string]outcome) []AdmissionRun {
	var rows []AdmissionRun
	for _, a := range []string{AdmitOpen, AdmitEnrolled, AdmitFleet} {
		o, ok := outcomes[a]
		if !ok {
			continue
		}
		r := AdmissionRun{Admission: a, Ops: o.ok, Throughput: float64(o.ok) / o.elapsed.Seconds()}
		lat := latencies(o.samples)
		r.P50, r.P99 = quantile(lat, 0.5), quantile(lat, 0.99)
		if o.ok > 0 {
			r.CPUMicros = float64(o.cpu.Microseconds()) / float64(o.ok)
		}
		rows = append(rows, r)
	}
	for i := range rows {
		if rows[0].Admission == AdmitOpen && rows[0].Throughput > 0 {
			rows[i].VsOpen = rows[i].Throughput / rows[0].Throughput
		}
	}
	return rows
}
