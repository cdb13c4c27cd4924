package bench

import (
	"bytes"
	"strings"
	"testing"
)

// TestGoalVerdict: /verify and /session are judged on their ratio to the
// echo; a join only on the cluster head's own CPU (the server CPU ratio),
// never on the ratio of its throughput to the crypto bound, which counts the
// devices' crypto too; scenarios without a goal get no verdict. The table
// and the ratios table say the same.
func TestGoalVerdict(t *testing.T) {
	crypto := &CryptoBound{}
	cases := []struct {
		name string
		r    Result
		want string
	}{
		{"verify below", Result{Scenario: ScenarioVerify, Goal: GoalProtected, Ratio: 0.79}, "≥ 0.8: NOT met"},
		{"verify at", Result{Scenario: ScenarioVerify, Goal: GoalProtected, Ratio: 0.8}, "≥ 0.8: met"},
		{"join in process", Result{Scenario: ScenarioJoin, Goal: GoalJoin, Ratio: 0.24, Crypto: crypto}, "≥ 0.5: judged on the server CPU ratio (--server-pid)"},
		{"join server met", Result{Scenario: ScenarioJoin, Goal: GoalJoin, Ratio: 0.24, Crypto: crypto, ServerCPURatio: 0.52}, "≥ 0.5: met"},
		{"join server below", Result{Scenario: ScenarioJoin, Goal: GoalJoin, Ratio: 0.9, Crypto: crypto, ServerCPURatio: 0.45}, "≥ 0.5: NOT met"},
		{"m2m", Result{Scenario: ScenarioM2M, Ratio: 0.7}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.goalVerdict(); got != tc.want {
				t.Fatalf("goalVerdict = %q, want %q", got, tc.want)
			}
			if tc.want == "" {
				return
			}
			var table, ratios bytes.Buffer
			r := tc.r
			r.Baseline = "b"
			if err := r.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			if err := (&Result{Scenario: ScenarioRatios, Parts: []*Result{&r}}).WriteTable(&ratios); err != nil {
				t.Fatal(err)
			}
			for name, out := range map[string]string{"table": table.String(), "ratios": ratios.String()} {
				if !strings.Contains(out, tc.want) {
					t.Errorf("%s does not say %q:\n%s", name, tc.want, out)
				}
			}
		})
	}
}
