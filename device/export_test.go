package device

import "github.com/iotguard/iotguard/protect"

// MaxSessions is how many M2M sessions a Listener keeps.
const MaxSessions = maxSessions

// MemberKeys returns the device's current member keys.
func (d *Device) MemberKeys() (*protect.MemberKeys, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.memberKeys()
}

// ForwardPause is a listener's first pause in asking a silent CH.
const ForwardPause = forwardPause

// Seq returns the device's next sequence number.
func (d *Device) Seq() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Seq
}

// SpendTicket records the ticket of session sid as used, opened under the
// member keys opened (Talk's last step).
func (d *Device) SpendTicket(sid []byte, expires uint64, opened *protect.MemberKeys) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.spendTicket(sid, expires, opened)
}
