package membership_test

import (
	"testing"

	"github.com/iotguard/iotguard/membership"
)

func TestStatus(t *testing.T) {
	for s, want := range map[membership.Status]string{
		membership.Unknown: "unknown", membership.Member: "member", membership.Left: "left",
		membership.Revoked: "revoked", membership.Expired: "expired", 9: "Status(9)",
	} {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", uint8(s), got, want)
		}
		if got := s.Current(); got != (s == membership.Member) {
			t.Errorf("%v.Current() = %v", s, got)
		}
	}
}
