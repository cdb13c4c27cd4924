package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotguard/iotguard/membership"
)

// LedgerState reads what the ledger gauges show. Both are read at scrape
// time, so they are never stale; they must be cheap (the bbolt ledger keeps
// its devices counted by status).
type LedgerState struct {
	Height  func() (uint64, error)
	Members func() (map[membership.Status]int, error) // devices by stored status
}

// ledgerCollector exports iotguard_ledger_height and iotguard_members{status}.
type ledgerCollector struct {
	state   LedgerState
	height  *prometheus.Desc
	members *prometheus.Desc
}

func newLedgerCollector(s LedgerState) *ledgerCollector {
	return &ledgerCollector{
		state:   s,
		height:  prometheus.NewDesc("iotguard_ledger_height", "Height of the newest durable ledger block.", nil, nil),
		members: prometheus.NewDesc("iotguard_members", "Devices in the index, by status.", []string{"status"}, nil),
	}
}

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.height
	ch <- c.members
}

func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	if h, err := c.state.Height(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.height, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.height, prometheus.GaugeValue, float64(h))
	}
	byStatus, err := c.state.Members()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.members, err)
		return
	}
	for status, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(n), status.String())
	}
}
