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
