package config

import (
	"testing"
	"time"
)

func TestAlertStormSetting(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want AlertStorm
		ok   bool
	}{
		{"off", AlertStorm{}, true},
		{"", AlertStorm{}, true},
		{"20/10m", AlertStorm{Threshold: 20, Window: 10 * time.Minute}, true},
		{"5", AlertStorm{Threshold: 5, Window: 10 * time.Minute}, true},
		{"0/10m", AlertStorm{}, false},
		{"ten/10m", AlertStorm{}, false},
		{"20/soon", AlertStorm{}, false},
		{"20x", AlertStorm{}, false},
	} {
		var got AlertStorm
		err := got.UnmarshalText([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("%q: %+v, %v", tc.in, got, err)
		}
	}
}
