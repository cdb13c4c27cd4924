package wire_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/iotguard/iotguard/wire"
)

func TestCheckID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"sensor-01", true},
		{"a", true},
		{"A.b_c-9", true},
		{"-", true},
		{"..", true},
		{strings.Repeat("x", wire.MaxIDLen), true},
		{"", false},
		{strings.Repeat("x", wire.MaxIDLen+1), false},
		{"sensor 01", false},
		{"sensor/01", false},
		{"sensor:01", false},
		{"sensor\n", false},
		{"sensor\x00", false},
		{"capteur-é", false},
		{"\xff", false},
		{"a+b", false},
		{"a@b", false},
	}
	for _, tc := range tests {
		err := wire.CheckID(tc.id)
		if tc.ok && err != nil {
			t.Errorf("CheckID(%q) = %v, want nil", tc.id, err)
		}
		if !tc.ok && !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("CheckID(%q) = %v, want ErrMalformed", tc.id, err)
		}
	}
}
