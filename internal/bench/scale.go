package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/iotguard/iotguard/clusterhead"
	"github.com/iotguard/iotguard/ledger"
	"github.com/iotguard/iotguard/wire"
)

// importChunk is how many synthetic members one ledger Import writes: 256
// blocks in one transaction.
const importChunk = 64 * 256

// idleWait is how long the scale scenario waits before measuring memory
// after a load: go-coap closes an association idle for 16 s, checked every 4 s.
const idleWait = 21 * time.Second

// ScaleRow is one ledger size of the scale scenario.
type ScaleRow struct {
	Members      int     `json:"members"`
	ImportSecs   float64 `json:"import_s"` // enrolling the members added since the previous row
	ImportRate   float64 `json:"import_per_s"`
	LedgerMiB    float64 `json:"ledger_mib"` // size of ledger.db
	LookupMicros float64 `json:"lookup_us"`  // one index lookup, in-process, random member, pages in memory
	// LookupColdMicros is the same lookups the first time: with the file's
	// pages not yet mapped in, it measures the disk and page cache.
	LookupColdMicros float64 `json:"lookup_cold_us"`

	VerifyThroughput float64 `json:"verify_throughput"`
	VerifyP50        float64 `json:"verify_p50_ms"`
	VerifyP99        float64 `json:"verify_p99_ms"`
	JoinThroughput   float64 `json:"join_throughput"`
	JoinP50          float64 `json:"join_p50_ms"`
	JoinP99          float64 `json:"join_p99_ms"`

	RSSMiB     float64 `json:"rss_mib"`      // after the import, before the load
	RSSAnonMiB float64 `json:"rss_anon_mib"` // heap and stacks
	RSSFileMiB float64 `json:"rss_file_mib"` // mapped file pages: bbolt's file, the binary
	HeapMiB    float64 `json:"heap_mib"`     // Go heap in use after a GC
	// BytesPerMember is the growth of anonymous RSS per member since the
	// first row: what a member costs beyond bbolt's page cache.
	BytesPerMember float64          `json:"anon_bytes_per_member,omitempty"`
	Errors         map[string]int64 `json:"errors,omitempty"`
}

// memoryUse reads this process's resident memory from /proc/self/status.
func memoryUse() (rss, anon, file float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "RssAnon":
			anon = kb / 1024
		case "RssFile":
			file = kb / 1024
		}
	}
	return rss, anon, file
}

// SyntheticMember returns member i of a scale run: an ID under prefix, a
// P-256 key derived from seed and i (so any run can act as that member
// again), and its join event with a signed join request as evidence, like
// the events the cluster head writes.
func SyntheticMember(seed []byte, prefix, cluster string, i int, lat, lon int64, now time.Time) (ledger.Event, *ecdsa.PrivateKey, error) {
	id := fmt.Sprintf("%s-s-%07d", prefix, i)
	h := sha256.New()
	h.Write(seed)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(i)))
	scalar := h.Sum(nil)
	scalar[0] &= 0x7f // below the P-256 group order
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		return ledger.Event{}, nil, fmt.Errorf("failed to derive key of %s: %w", id, err)
	}
	key, err := wire.EncodePublicKey(&priv.PublicKey)
	if err != nil {
		return ledger.Event{}, nil, err
	}
	nonces := sha256.Sum256(scalar)
	req := wire.JoinRequest{Cluster: cluster, ID: id, Key: key, Lat: lat, Lon: lon, Nonce: nonces[:16]}
	payload, err := wire.Marshal(&req)
	if err != nil {
		return ledger.Event{}, nil, err
	}
	signed, err := wire.Sign1(priv, []byte(id), wire.AADJoinRequest, payload)
	if err != nil {
		return ledger.Event{}, nil, err
	}
	return ledger.Event{
		Type: ledger.EventJoin, Device: id, Time: now.UnixMilli(), Key: key,
		DeviceNonce: nonces[:16], CHNonce: nonces[16:], Lat: lat, Lon: lon,
		Expires: now.Add(365 * 24 * time.Hour).Unix(), Request: signed,
	}, priv, nil
}

// importer is a ledger with a bulk import path (ledger.Bolt).
type importer interface {
	Import(ctx context.Context, events []ledger.Event) (ledger.BlockRef, error)
}

// enroll imports synthetic members from..to-1 into l, generating them on
// all cores while the previous chunk is written.
func enroll(ctx context.Context, l importer, seed []byte, prefix, cluster string, from, to int, lat, lon int64, progress Progress) error {
	progress.Start(fmt.Sprintf("enrolling members %d..%d", from, to), int64(to-from))
	defer progress.Finish()
	chunks := make(chan []ledger.Event, 1)
	errc := make(chan error, 1)
	go func() {
		defer close(chunks)
		now := time.Now()
		for start := from; start < to; start += importChunk {
			n := min(importChunk, to-start)
			evs := make([]ledger.Event, n)
			var wg sync.WaitGroup
			var once sync.Once
			var firstErr error
			workers := runtime.GOMAXPROCS(0)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := w; j < n; j += workers {
						ev, _, err := SyntheticMember(seed, prefix, cluster, start+j, lat, lon, now)
						if err != nil {
							once.Do(func() { firstErr = err })
							return
						}
						evs[j] = ev
					}
				}()
			}
			wg.Wait()
			if firstErr != nil {
				errc <- firstErr
				return
			}
			select {
			case chunks <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()
	done := 0
	for evs := range chunks {
		if _, err := l.Import(ctx, evs); err != nil {
			return err
		}
		done += len(evs)
		progress.Set(int64(done))
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	return ctx.Err()
}

// runScale enrolls members up to each of cfg.Members in turn and measures
// at each size: index lookup, /verify of random members, /join of new
// devices, and memory.
func runScale(ctx context.Context, cfg Config) (*Result, error) {
	res := &Result{Scenario: ScenarioScale, Concurrency: cfg.Concurrency, Machine: machine(), Errors: map[string]int64{}}
	t, err := openTarget(cfg, AdmitFleet) // its joins use fresh keys, made on the spot with credentials

	if err != nil {
		return nil, err
	}
	defer t.close()
	res.Server, res.Admission = t.describe(), t.admission
	cfg.logf("setup: %d askers join", cfg.Concurrency)
	askers, err := joinMembers(ctx, cfg, t, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	sc := &scenario{t: t, members: askers}
	defer sc.close()
	seed := []byte(t.prefix)
	sizes := slices.Clone(cfg.Members)
	slices.Sort(sizes)
	synthetic := 0
	for _, n := range sizes {
		target := n - len(askers)
		row := ScaleRow{Members: n, Errors: map[string]int64{}}
		if target > synthetic {
			start := time.Now()
			imp, ok := any(t.ch.Ledger).(importer)
			if !ok {
				return nil, fmt.Errorf("%w: the ledger backend %T has no bulk import", ErrBounds, t.ch.Ledger)
			}
			if err := enroll(ctx, imp, seed, t.prefix, t.cluster, synthetic, target, t.lat, t.lon, cfg.progress()); err != nil {
				return nil, err
			}
			row.ImportSecs = time.Since(start).Seconds()
			row.ImportRate = float64(target-synthetic) / row.ImportSecs
			cfg.logf("enrolled %d members in %.1f s (%.0f/s)", target-synthetic, row.ImportSecs, row.ImportRate)
			synthetic = target
		}
		if fi, err := os.Stat(ledgerPath(t)); err == nil {
			row.LedgerMiB = float64(fi.Size()) / (1 << 20)
		}
		nSynth := max(synthetic, 1)
		pick := func(r *mrand.Rand) string {
			if synthetic == 0 {
				return askers[r.IntN(len(askers))].st.ID
			}
			return fmt.Sprintf("%s-s-%07d", t.prefix, r.IntN(nSynth))
		}
		row.LookupColdMicros, row.LookupMicros = lookupMicros(t.ch.Ledger, pick)

		if len(res.Scale) > 0 {
			// Let the previous size's load go: the CoAP server forgets an
			// idle association after 16 s (its response cache with it).
			cfg.logf("waiting %v for idle associations to close", idleWait)
			time.Sleep(idleWait)
		}
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		row.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
		row.RSSMiB, row.RSSAnonMiB, row.RSSFileMiB = memoryUse()

		sc.peers = pick
		v := sc.run(cfg, ScenarioVerify, fmt.Sprintf("verify at %d members", n), 0)
		lat := latencies(v.samples)
		row.VerifyThroughput, row.VerifyP50, row.VerifyP99 = float64(v.ok)/v.elapsed.Seconds(), quantile(lat, 0.5), quantile(lat, 0.99)
		sc.keys = &keyPool{prefix: fmt.Sprintf("%s-j%d", t.prefix, n), fleet: t.fleet}
		j := sc.run(cfg, ScenarioJoin, fmt.Sprintf("join at %d members", n), 0)
		lat = latencies(j.samples)
		row.JoinThroughput, row.JoinP50, row.JoinP99 = float64(j.ok)/j.elapsed.Seconds(), quantile(lat, 0.5), quantile(lat, 0.99)
		for k, c := range v.errors {
			row.Errors["verify "+k] += c
		}
		for k, c := range j.errors {
			row.Errors["join "+k] += c
		}
		if len(res.Scale) > 0 {
			first := res.Scale[0]
			row.BytesPerMember = (row.RSSAnonMiB - first.RSSAnonMiB) * (1 << 20) / float64(n-first.Members)
		}
		res.Scale = append(res.Scale, row)
		cfg.logf("%d members: verify p50 %.2f ms, join p50 %.2f ms, RSS %.0f MiB (anon %.0f, file %.0f)", n, row.VerifyP50, row.JoinP50, row.RSSMiB, row.RSSAnonMiB, row.RSSFileMiB)
	}
	return res, nil
}

func ledgerPath(t *target) string {
	return filepath.Join(t.dir, clusterhead.LedgerFile)
}

// lookupMicros times index lookups of 4,096 random members, in-process:
// once cold (their pages may not be in memory yet) and once more warm. Both
// passes time the bbolt index itself, not the ledger's cache of decoded
// records in front of it.
func lookupMicros(l ledger.Ledger, pick func(*mrand.Rand) string) (cold, warm float64) {
	if c, ok := l.(interface{ DropCache() }); ok {
		c.DropCache()
		defer c.DropCache()
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = pick(r)
	}
	pass := func() float64 {
		start := time.Now()
		for _, id := range ids {
			if _, err := l.Lookup(id); err != nil {
				return -1
			}
		}
		return float64(time.Since(start).Nanoseconds()) / 1000 / float64(len(ids))
	}
	cold = pass()
	if c, ok := l.(interface{ DropCache() }); ok {
		c.DropCache()
	}
	return cold, pass()
}

func writeScale(w io.Writer, rows []ScaleRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "members\tledger MiB\tlookup µs (cold)\tverify/s\tverify p50 ms\tverify p99 ms\tjoin/s\tjoin p50 ms\tjoin p99 ms\tRSS MiB\tanon MiB\tfile MiB\theap MiB\tanon B/member\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.0f\t%.1f (%.0f)\t%.0f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n",
			r.Members, r.LedgerMiB, r.LookupMicros, r.LookupColdMicros, r.VerifyThroughput, r.VerifyP50, r.VerifyP99,
			r.JoinThroughput, r.JoinP50, r.JoinP99, r.RSSMiB, r.RSSAnonMiB, r.RSSFileMiB, r.HeapMiB, r.BytesPerMember)
	}
	return tw.Flush()
}
