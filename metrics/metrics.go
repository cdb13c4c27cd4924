package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotguard/iotguard/internal/coapedge"
)

// Crypto operations timed by iotguard_crypto_duration_seconds{op}.
const (
	OpSign         = "sign"
	OpVerify       = "verify"
	OpECDH         = "ecdh"
	OpHKDF         = "hkdf"
	OpAEADSeal     = "aead_seal"
	OpAEADOpen     = "aead_open"
	OpLedgerAppend = "ledger_append"
)

// Metrics is the cluster head's metric set. It implements coapsrv.Observer
// and cluster.Observer, and its Crypto method is the keysvc timer.
type Metrics struct {
	crypto            *prometheus.HistogramVec
	cryptoOps         map[string]prometheus.Observer // crypto's child of each Op, resolved once
	requests          *prometheus.CounterVec
	requestSeconds    *prometheus.HistogramVec
	handshakeFailures *prometheus.CounterVec
	associations      prometheus.Gauge
	dropped           *prometheus.CounterVec
	joinRejections    *prometheus.CounterVec
	verifyWarnings    *prometheus.CounterVec
	sessions          prometheus.Counter
	eventsPerBlock    prometheus.Histogram
}

// New registers the metric set on reg, with the ledger gauges read from
// ledger at scrape time.
func New(reg prometheus.Registerer, ledger LedgerState) *Metrics {
	m := &Metrics{
		crypto: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "iotguard_crypto_duration_seconds",
			Help: "Time of one cryptographic operation (and of a durable ledger append) on the cluster head.",
			// 1 µs … ~0.5 s: AEAD is ~1 µs, signatures tens of µs, an fsync'd append ms.
			Buckets:                        prometheus.ExponentialBuckets(1e-6, 2.5, 15),
			NativeHistogramBucketFactor:    1.1,
			NativeHistogramMaxBucketNumber: 100,
		}, []string{"op"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotguard_coap_requests_total",
			Help: "CoAP requests answered, by transport (udp, dtls), resource and response code.",
		}, []string{"transport", "resource", "code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iotguard_coap_request_duration_seconds",
			Help:    "Time to handle a CoAP request, by transport and resource.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2.5, 14),
		}, []string{"transport", "resource"}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotguard_dtls_handshake_failures_total",
			Help: "coaps associations refused or failed, by reason (unknown_identity, bad_psk, timeout, capacity, other).",
		}, []string{"reason"}),
		associations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "iotguard_coap_associations",
			Help: "Source endpoints (address:port) the plain CoAP edge holds an association for.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotguard_coap_dropped_total",
			Help: "Datagrams the plain CoAP edge dropped unanswered, by reason: association_cap, association_rate, source_rate (a new source endpoint refused an association, or a ping, over its source's rate), not_a_request, association_busy (its association's queue of requests was full), stateless_busy, costly_busy (a join, 2,048 being served), malformed (not CoAP), bad_option (an unknown critical option: a NON request, or over its source's rate), group (sent to a multicast or broadcast address).",
		}, []string{"reason"}),
		joinRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotguard_join_rejections_total",
			Help: "Joins refused, by reason.",
		}, []string{"reason"}),
		verifyWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotguard_verify_warnings_total",
			Help: "Verify answers that were warnings, by reason.",
		}, []string{"reason"}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotguard_sessions_granted_total",
			Help: "Session keys granted.",
		}),
		eventsPerBlock: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "iotguard_ledger_events_per_block",
			Help:    "Events per committed block (group commit batch size).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
	}
	reg.MustRegister(m.crypto, m.requests, m.requestSeconds, m.handshakeFailures, m.associations, m.dropped,
		m.joinRejections, m.verifyWarnings, m.sessions, m.eventsPerBlock, newLedgerCollector(ledger))
	// Every op is exported from the start, at zero, and found without
	// WithLabelValues' hashing and locking: two of them time each request.
	m.cryptoOps = map[string]prometheus.Observer{}
	for _, op := range []string{OpSign, OpVerify, OpECDH, OpHKDF, OpAEADSeal, OpAEADOpen, OpLedgerAppend} {
		m.cryptoOps[op] = m.crypto.WithLabelValues(op)
	}
	for _, reason := range coapedge.DropReasons {
		m.dropped.WithLabelValues(reason) // likewise
	}
	return m
}

// Crypto records one timed operation.
func (m *Metrics) Crypto(op string, d time.Duration) {
	o, ok := m.cryptoOps[op]
	if !ok {
		o = m.crypto.WithLabelValues(op)
	}
	o.Observe(d.Seconds())
}

// Request records an answered CoAP request (coapsrv.Observer).
func (m *Metrics) Request(transport, resource, code string, d time.Duration) {
	m.requests.WithLabelValues(transport, resource, code).Inc()
	m.requestSeconds.WithLabelValues(transport, resource).Observe(d.Seconds())
}

// HandshakeFailed counts a refused or failed coaps association
// (coapedge.DTLSConfig.HandshakeFailed).
func (m *Metrics) HandshakeFailed(reason string) { m.handshakeFailures.WithLabelValues(reason).Inc() }

// Associations sets the number of plain CoAP associations (coapsrv.Observer).
func (m *Metrics) Associations(n int) { m.associations.Set(float64(n)) }

// Dropped counts a datagram dropped unanswered (coapsrv.Observer); reason is
// one of coapedge.DropReasons.
func (m *Metrics) Dropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }

// JoinRejected counts a refused join (cluster.Observer).
func (m *Metrics) JoinRejected(reason string) { m.joinRejections.WithLabelValues(reason).Inc() }

// VerifyWarning counts a warning verdict (cluster.Observer).
func (m *Metrics) VerifyWarning(reason string) { m.verifyWarnings.WithLabelValues(reason).Inc() }

// SessionGranted counts a granted session (cluster.Observer).
func (m *Metrics) SessionGranted() { m.sessions.Inc() }

// Committed records a durable block (ledger.Options.OnCommit).
func (m *Metrics) Committed(_ uint64, events int) { m.eventsPerBlock.Observe(float64(events)) }
