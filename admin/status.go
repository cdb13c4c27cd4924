package admin

import "time"

// Status is a running cluster head's state as 'iotguard status' shows it.
// It holds no secret: the key appears only as its public thumbprint.
type Status struct {
	Cluster    string         `json:"cluster"`
	Height     uint64         `json:"height"`    // of the newest block
	HeadHash   string         `json:"head_hash"` // hex
	LastBlock  time.Time      `json:"last_block"`
	Members    map[string]int `json:"members"`    // by status: member, left, revoked
	Admission  string         `json:"admission"`  // who may join (cluster.Core.Admission)
	Thumbprint string         `json:"thumbprint"` // RFC 9679, hex, of the CH key in use
	CoAP       string         `json:"coap"`       // listen address
	Metrics    string         `json:"metrics,omitempty"`
	Started    time.Time      `json:"started"`
	Now        time.Time      `json:"now"` // the server's clock when it answered
}

// Uptime is how long the server had run when it answered.
func (s Status) Uptime() time.Duration { return s.Now.Sub(s.Started) }

// Rotation is the outcome of a key rotation: the old and new key
// thumbprints (hex) and the height of the block recording it.
type Rotation struct {
	Old    string `json:"old"`
	New    string `json:"new"`
	Height uint64 `json:"height"`
}
