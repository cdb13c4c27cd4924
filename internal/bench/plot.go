package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// WritePlot draws r to path (.svg or .png): throughput per second over the
// run, the baseline's beside it, and p50/p99 latency per second below. A
// decaying server shows as a falling throughput line.
func (r *Result) WritePlot(path string) error {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if format != "svg" && format != "png" {
		return fmt.Errorf("failed to plot to %s: want a .svg or .png file", path)
	}
	if r.Scenario == ScenarioRatios {
		return fmt.Errorf("failed to plot to %s: the ratios scenario has no plot of its own; plot each scenario", path)
	}
	var plots [][]*plot.Plot
	if len(r.Scale) > 0 {
		plots = scalePlots(r.Scale)
	} else {
		plots = runPlots(r)
	}
	const width, height = 8 * vg.Inch, 3 * vg.Inch
	c, err := draw.NewFormattedCanvas(width, height*vg.Length(len(plots)), format)
	if err != nil {
		return fmt.Errorf("failed to plot to %s: %w", path, err)
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align(plots, tiles, draw.New(c))
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("failed to plot: %w", err)
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("failed to write plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write plot %s: %w", path, err)
	}
	r.Plot = path
	return nil
}

func runPlots(r *Result) [][]*plot.Plot {
	tp := plot.New()
	tp.Title.Text = fmt.Sprintf("%s: throughput per second (%d devices)", r.Scenario, r.Concurrency)
	tp.X.Label.Text = "time (s)"
	tp.Y.Label.Text = "ops/s"
	tp.Legend.Top = true
	addLine(tp, r.Scenario, r.Windows, func(w Window) float64 { return w.Throughput }, 0)
	if len(r.BaselineWindows) > 0 {
		addLine(tp, "go-coap echo baseline", r.BaselineWindows, func(w Window) float64 { return w.Throughput }, 1)
	} else if r.BaselineThroughput > 0 {
		addConst(tp, "crypto bound", r.BaselineThroughput, len(r.Windows), 1)
	}
	tp.Y.Min = 0

	lp := plot.New()
	lp.Title.Text = fmt.Sprintf("%s: latency per second", r.Scenario)
	lp.X.Label.Text = "time (s)"
	lp.Y.Label.Text = "ms"
	lp.Legend.Top = true
	addLine(lp, "p50", r.Windows, func(w Window) float64 { return w.P50 }, 0)
	addLine(lp, "p99", r.Windows, func(w Window) float64 { return w.P99 }, 2)
	lp.Y.Min = 0
	return [][]*plot.Plot{{tp}, {lp}}
}

func scalePlots(rows []ScaleRow) [][]*plot.Plot {
	lp := scalePlot(rows, "latency by ledger size", "ms", []scaleSeries{
		{"join p50", func(s ScaleRow) float64 { return s.JoinP50 }},
		{"join p99", func(s ScaleRow) float64 { return s.JoinP99 }},
		{"verify p50", func(s ScaleRow) float64 { return s.VerifyP50 }},
		{"verify p99", func(s ScaleRow) float64 { return s.VerifyP99 }},
	})
	mp := scalePlot(rows, "memory by ledger size", "MiB", []scaleSeries{
		{"RSS anonymous (heap)", func(s ScaleRow) float64 { return s.RSSAnonMiB }},
		{"RSS file (bbolt mmap)", func(s ScaleRow) float64 { return s.RSSFileMiB }},
	})
	return [][]*plot.Plot{{lp}, {mp}}
}

// scaleSeries is one line of a scale plot: a value per ledger size.
type scaleSeries struct {
	name string
	v    func(ScaleRow) float64
}

// scalePlot draws series over the members of rows on a log scale.
func scalePlot(rows []ScaleRow, title, unit string, series []scaleSeries) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "members"
	p.Y.Label.Text = unit
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{}
	p.Legend.Top = true
	for i, s := range series {
		xys := make(plotter.XYs, len(rows))
		for j, r := range rows {
			xys[j] = plotter.XY{X: float64(r.Members), Y: s.v(r)}
		}
		addXYs(p, s.name, xys, i)
	}
	return p
}

func addLine(p *plot.Plot, name string, ws []Window, v func(Window) float64, color int) {
	xys := make(plotter.XYs, len(ws))
	for i, w := range ws {
		xys[i] = plotter.XY{X: float64(w.Second), Y: v(w)}
	}
	addXYs(p, name, xys, color)
}

func addConst(p *plot.Plot, name string, y float64, n, color int) {
	addXYs(p, name, plotter.XYs{{X: 0, Y: y}, {X: float64(max(n-1, 1)), Y: y}}, color)
}

func addXYs(p *plot.Plot, name string, xys plotter.XYs, color int) {
	if len(xys) == 0 {
		return
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return // NaN or Inf: nothing sensible to draw
	}
	l.Color = plotutil.Color(color)
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
}
