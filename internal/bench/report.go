package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes r as one JSON object and a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	return enc.Encode(r)
}

// WriteTable writes r for people: the numbers, the baseline and the ratio,
// errors by code, and the scale table if any.
func (r *Result) WriteTable(w io.Writer) error {
	if r.Scenario == ScenarioRatios {
		return r.writeRatios(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("scenario", "%s", r.Scenario)
	row("server", "%s", r.Server)
	if r.Admission != "" { // the echo admits nobody
		row("admission", "%s", admissionText(r.Admission))
	}
	row("machine", "%s, %d CPUs, GOMAXPROCS %d, %s", r.Machine.CPU, r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.Go)
	if r.Scenario != ScenarioScale {
		row("devices", "%d (one UDP association each)", r.Concurrency)
		if r.Rate > 0 {
			row("offered rate", "%.0f ops/s", r.Rate)
		}
		row("ops", "%d in %.1f s", r.Ops, r.Seconds)
		row("throughput", "%.0f ops/s", r.Throughput)
		row("latency ms", "p50 %.2f  p95 %.2f  p99 %.2f  max %.2f", r.P50, r.P95, r.P99, r.Max)
		row("CPU per op", "%.0f µs (whole process)", r.CPUMicros)
		if r.ServerCPUMicros > 0 {
			row("server CPU per op", "%.0f µs (the cluster head's process)", r.ServerCPUMicros)
		}
	}
	if r.Baseline != "" {
		row("baseline", "%s", r.Baseline)
		row("baseline throughput", "%.0f ops/s", r.BaselineThroughput)
		if r.BaselineP50 > 0 {
			row("baseline latency ms", "p50 %.2f  p99 %.2f (payload %d/%d bytes)", r.BaselineP50, r.BaselineP99, r.PayloadBytes[0], r.PayloadBytes[1])
			row("baseline CPU per op", "%.0f µs: CPU ratio %.2f", r.BaselineCPUMicros, r.CPURatio)
		}
		if r.BaselineServerCPUMicros > 0 {
			row("baseline server CPU", "%.0f µs per echo (the echo's process)", r.BaselineServerCPUMicros)
			if r.ServerCPURatio > 0 {
				row("server CPU ratio", "%.2f (the echo's CPU µs per op / the cluster head's)", r.ServerCPURatio)
			}
		}
		goal := ""
		if v := r.goalVerdict(); v != "" {
			goal = " (goal " + v + ")"
		}
		if r.Crypto != nil {
			row("crypto per core", "%.0f ops/s (%.0f µs per verify+sign+ECDH), %d cores", r.Crypto.PerCore, r.Crypto.OpMicros, r.Crypto.Cores)
			if r.ServerCPURatio > 0 { // the join's goal is judged here
				row("server CPU ratio", "%.2f (crypto µs per op / the cluster head's CPU µs per join)%s", r.ServerCPURatio, goal)
				goal = ""
			}
		}
		row("ratio", "%.2f%s", r.Ratio, goal)
	}
	for _, a := range r.Admissions {
		row("join, admission "+a.Admission, "%.0f ops/s (%.2f× open): p50 %.2f ms, p99 %.2f ms, CPU %.0f µs per op",
			a.Throughput, a.VsOpen, a.P50, a.P99, a.CPUMicros)
	}
	if r.VsSeed > 0 {
		row("vs seed", "%.0f× the seed's %.1f joins/s", r.VsSeed, SeedJoinsPerSecond)
	}
	if h := r.HalfLoad; h != nil {
		row("half load", "%.0f ops/s offered, %.0f done: p50 %.2f ms, p99 %.2f ms, p99/p50 %.2f (goal ≤ 2)", h.Rate, h.Throughput, h.P50, h.P99, h.P99OverP50)
		if h.BaselineP50 > 0 {
			row("half load baseline", "echo at the same rate: p50 %.2f ms, p99 %.2f ms, p99/p50 %.2f", h.BaselineP50, h.BaselineP99, h.BaselineP99OverP50)
		}
		row("half load runtime", "%s", h.Runtime)
		if b := h.BaselineRuntime; b != nil {
			row("half load runtime, echo", "%s", *b)
		}
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.Errors[k]))
		}
		row("errors", "%s", strings.Join(parts, ", "))
	} else {
		row("errors", "none")
	}
	if r.Plot != "" {
		row("plot", "%s", r.Plot)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Scale) > 0 {
		fmt.Fprintln(w)
		return writeScale(w, r.Scale)
	}
	return nil
}

// admissionText says what an admission means for the numbers.
func admissionText(a string) string {
	switch a {
	case AdmitOpen:
		return "open: devices join unenrolled (not the default of 'iotguard serve')"
	case AdmitEnrolled:
		return "enrolled: each joining device enrolled individually (the default of 'iotguard serve')"
	case AdmitFleet:
		return "enrolled: devices join with fleet credentials (one more ES256 verify per join)"
	}
	return a
}

// goalVerdict says whether r reached its goal (docs/PERFORMANCE.md), or ""
// when its scenario has none. A join's goal is on the cluster head's own CPU
// (the server CPU ratio), known only with the CH in its own process
// (--server-pid); with the CH in this process, the ratio of join to crypto
// throughput counts the devices' crypto too, and is not judged.
func (r *Result) goalVerdict() string {
	got := r.Ratio
	switch {
	case r.Goal <= 0:
		return ""
	case r.Crypto != nil && r.ServerCPURatio <= 0:
		return fmt.Sprintf("≥ %.1f: judged on the server CPU ratio (--server-pid)", r.Goal)
	case r.Crypto != nil:
		got = r.ServerCPURatio
	}
	if got < r.Goal {
		return fmt.Sprintf("≥ %.1f: NOT met", r.Goal)
	}
	return fmt.Sprintf("≥ %.1f: met", r.Goal)
}

// writeRatios writes the ratios scenario: one row per part, each against
// its own baseline of the same run.
func (r *Result) writeRatios(w io.Writer) error {
	fmt.Fprintf(w, "ratios of one run: %s; %s, %d CPUs, GOMAXPROCS %d, %s; %d devices\n\n",
		r.Server, r.Machine.CPU, r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.Go, r.Concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tops/s\tp50 / p99 ms\tbaseline ops/s\tratio\tCPU µs/op (scenario / baseline)\tCPU ratio\tserver CPU µs/op\tserver CPU ratio\tgoal")
	for _, p := range r.Parts {
		base, cpu, serverRatio := fmt.Sprintf("echo %.0f", p.BaselineThroughput), fmt.Sprintf("%.0f / %.0f", p.CPUMicros, p.BaselineCPUMicros), "-"
		cpuRatio := fmt.Sprintf("%.2f", p.CPURatio)
		if p.Crypto != nil {
			base, cpu, cpuRatio = fmt.Sprintf("crypto %.0f", p.BaselineThroughput), fmt.Sprintf("%.0f / %.0f per core", p.CPUMicros, p.Crypto.OpMicros), "-"
		}
		serverCPU := "-"
		if p.ServerCPUMicros > 0 {
			serverCPU = fmt.Sprintf("%.0f", p.ServerCPUMicros)
		}
		if p.BaselineServerCPUMicros > 0 {
			serverCPU += fmt.Sprintf(" / %.0f", p.BaselineServerCPUMicros)
		}
		if p.ServerCPURatio > 0 {
			serverRatio = fmt.Sprintf("%.2f", p.ServerCPURatio)
		}
		goal := "-"
		if v := p.goalVerdict(); v != "" {
			goal = v
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f / %.2f\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\n",
			p.Scenario, p.Throughput, p.P50, p.P99, base, p.Ratio, cpu, cpuRatio, serverCPU, serverRatio, goal)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Parts {
		if h := p.HalfLoad; h != nil {
			fmt.Fprintf(w, "%s at half load (%.0f ops/s): p50 %.2f ms, p99 %.2f ms, p99/p50 %.2f", p.Scenario, h.Rate, h.P50, h.P99, h.P99OverP50)
			if h.BaselineP50 > 0 {
				fmt.Fprintf(w, "; echo at the same rate: p50 %.2f ms, p99 %.2f ms, p99/p50 %.2f", h.BaselineP50, h.BaselineP99, h.BaselineP99OverP50)
			}
			fmt.Fprintln(w)
		}
	}
	switch {
	case len(r.Parts) > 0 && r.Parts[0].BaselineServerCPUMicros > 0:
		fmt.Fprintln(w, "note: the cluster head and the echo each run in a process of their own: the ratios set server against server;")
		fmt.Fprintln(w, "      server CPU µs/op is the cluster head's / the echo's")
	case len(r.Parts) > 0 && r.Parts[0].ServerCPUMicros > 0:
		fmt.Fprintln(w, "note: the cluster head runs in its own process, the echo in this one: read the server CPU columns;")
		fmt.Fprintln(w, "      the verify and session ratios of the same run are those with the cluster head in this process (no --server)")
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors: %v\n", r.Errors)
	} else {
		fmt.Fprintln(w, "errors: none")
	}
	return nil
}
