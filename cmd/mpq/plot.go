package main

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/mpq-go/mpq/cmd/mpq/internal/bench"
)

// The size of the chart: two panels side by side under a title, three
// with the pool Map row. A PNG has plotDPI pixels to the inch.
const (
	plotWidth  = 12 * vg.Inch
	plotHeight = 5.5 * vg.Inch
	plotDPI    = 100
)

// plotFormat returns the format a chart file's name asks for, "png" or
// "svg", or a usage error.
func plotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png", ".svg":
		return ext[1:], nil
	}
	return "", usage("--plot %q: want a file name ending in .png or .svg", path)
}

// writePlot draws rep into the file path, as PNG or SVG by its extension.
func writePlot(path string, rep *bench.Report) error {
	format, err := plotFormat(path)
	if err != nil {
		return err
	}
	c, err := drawPlot(rep, format)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = c.WriteTo(f)
	if err := errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// drawPlot draws rep on a new canvas of format ("png" or "svg"): a title
// with the machine, the throughput of the 1->1 rows against message size,
// the histograms of the round-trip rows (the pool's Submit+Wait among
// them), the pool Map's throughput if it was measured, and a legend of the
// contenders for all.
func drawPlot(rep *bench.Report, format string) (vg.CanvasWriterTo, error) {
	var c vg.CanvasWriterTo
	switch format {
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))}
	case "svg":
		c = vgsvg.New(plotWidth, plotHeight)
	default:
		return nil, fmt.Errorf("plot: unknown format %q", format)
	}
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	title := text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 13),
		XAlign:  draw.XCenter,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}
	head := plotTitle(rep)
	pad := vg.Points(8)
	dc.FillText(title, vg.Point{X: dc.Center().X, Y: dc.Max.Y - pad}, head)
	body := draw.Crop(dc, pad, -pad, pad, -(title.Rectangle(head).Size().Y + 2*pad))

	looks := plotLooks()
	drawn := map[string]bool{}
	panels := []*plot.Plot{plotThroughput(rep, looks, drawn), plotLatency(rep, looks, drawn)}
	if p := plotPoolMap(rep, looks, drawn); p != nil {
		panels = append(panels, p)
	}

	legend := plot.NewLegend()
	legend.Top = true
	legend.Left = true
	legend.TextStyle.Font.Size = vg.Points(10)
	labels := map[string]string{}
	for _, r := range rep.Results {
		labels[r.Backend] = r.Label
	}
	for _, id := range bench.BackendIDs() {
		if drawn[id] {
			legend.Add(labels[id], looks[id].thumbnail())
		}
	}
	legendW := legend.Rectangle(body).Size().X
	if legendW > 0 {
		legendW += 2 * pad
	}
	lc := draw.Crop(body, body.Size().X-legendW+2*pad, 0, 0, -2*pad)
	legend.Draw(lc)

	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Points(24)}
	pc := draw.Crop(body, 0, -legendW, 0, 0)
	for i, p := range panels {
		p.Draw(tiles.At(pc, i, 0))
	}
	return c, nil
}

// plotTitle is the chart's title: when and where the figures were taken.
func plotTitle(rep *bench.Report) string {
	m := rep.Machine
	runs := fmt.Sprintf("median of %d runs", rep.Settings.Reps)
	if rep.Settings.Quick {
		runs = "quick, " + runs
	}
	return fmt.Sprintf("mpq cross-process benchmark, %s (%s)\n%s; nproc %d; %s; %s; Python %s",
		rep.Time.UTC().Format("2006-01-02 15:04 UTC"), runs, m.CPU, m.NumCPU, m.Kernel, m.Go, plotPython(m.Python))
}

// plotPython is the Python version, or "unavailable" without the reason.
func plotPython(v string) string {
	if before, _, ok := strings.Cut(v, ":"); ok {
		return before
	}
	return v
}

// A plotLook is how one contender is drawn, the same in both panels.
type plotLook struct {
	color  color.Color
	shape  draw.GlyphDrawer
	dashes []vg.Length
}

// lineStyle is the style of the contender's lines.
func (l plotLook) lineStyle() draw.LineStyle {
	return draw.LineStyle{Color: l.color, Width: vg.Points(1.5), Dashes: l.dashes}
}

// glyphStyle is the style of the contender's points.
func (l plotLook) glyphStyle() draw.GlyphStyle {
	return draw.GlyphStyle{Color: l.color, Radius: vg.Points(3), Shape: l.shape}
}

// thumbnail draws the contender's line and point in the legend.
func (l plotLook) thumbnail() plot.Thumbnailer {
	line := &plotter.Line{LineStyle: l.lineStyle()}
	points := &plotter.Scatter{GlyphStyle: l.glyphStyle()}
	return plotThumbs{line, points}
}

// plotThumbs draws thumbnails on top of each other.
type plotThumbs []plot.Thumbnailer

func (ts plotThumbs) Thumbnail(c *draw.Canvas) {
	for _, t := range ts {
		t.Thumbnail(c)
	}
}

// plotPalette colours the contenders, in the order of the table.
var plotPalette = []color.RGBA{
	{0xd6, 0x27, 0x28, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xbc, 0xbd, 0x22, 0xff},
	{0x7f, 0x7f, 0x7f, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
	{0x2c, 0xa0, 0x2c, 0xff}, {0x1f, 0x77, 0xb4, 0xff}, {0x00, 0x00, 0x00, 0xff}, {0x39, 0x3b, 0x79, 0xff},
	{0x8b, 0x00, 0x00, 0xff}, {0x6b, 0x8e, 0x23, 0xff}, {0x00, 0x80, 0x80, 0xff},
}

// plotLooks gives every contender a plotLook by its place in the table,
// the same in every chart: mpq's contenders are drawn with solid lines,
// the baselines with dashed ones.
func plotLooks() map[string]plotLook {
	looks := map[string]plotLook{}
	for i, id := range bench.BackendIDs() {
		l := plotLook{color: plotPalette[i%len(plotPalette)], shape: plotutil.Shape(i)}
		if !strings.HasPrefix(id, "mpq") {
			l.dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		looks[id] = l
	}
	return looks
}

// plotThroughput plots the median msgs/s of every contender on the 1->1
// throughput rows against message size, on log scales.
// It marks the contenders it draws in drawn.
func plotThroughput(rep *bench.Report, looks map[string]plotLook, drawn map[string]bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = "Throughput, 1 producer -> 1 consumer\n(median of runs)"
	p.X.Label.Text = "message size"
	p.Y.Label.Text = "messages per second"

	series := map[string]plotter.XYs{}
	var order []string
	var sizes []float64
	for _, r := range rep.Results {
		if r.Kind != bench.KindThroughput || r.Producers != 1 || r.Consumers != 1 || r.Error != "" || r.Value <= 0 || r.Size <= 0 {
			continue
		}
		if _, ok := series[r.Backend]; !ok {
			order = append(order, r.Backend)
		}
		series[r.Backend] = append(series[r.Backend], plotter.XY{X: float64(r.Size), Y: r.Value})
		sizes = append(sizes, float64(r.Size))
	}
	if len(order) == 0 {
		return plotEmpty(p, "no 1->1 throughput rows measured")
	}
	var ys []float64
	for _, id := range order {
		xys := series[id]
		slices.SortFunc(xys, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			continue // a NaN or an infinity: not drawn
		}
		line.LineStyle, points.GlyphStyle = looks[id].lineStyle(), looks[id].glyphStyle()
		p.Add(line, points)
		drawn[id] = true
		for _, xy := range xys {
			ys = append(ys, xy.Y)
		}
	}

	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	p.X.Scale = plot.LogScale{}
	p.X.Min, p.X.Max = sizes[0]/2, sizes[len(sizes)-1]*2
	var ticks plot.ConstantTicks
	for _, s := range sizes {
		ticks = append(ticks, plot.Tick{Value: s, Label: plotSize(s)})
	}
	p.X.Tick.Marker = ticks
	plotLogAxis(&p.Y, slices.Min(ys), slices.Max(ys), plotSI)
	return p
}

// plotLatency plots, for every contender with a round-trip histogram, the
// fraction of its round trips in each bucket against the round-trip time,
// on a log scale that ends past the slowest contender's 99.9th percentile.
// It marks the contenders it draws in drawn.
func plotLatency(rep *bench.Report, looks map[string]plotLook, drawn map[string]bool) *plot.Plot {
	p := plot.New()
	// Short: on a log axis gonum pads the plot for the label as if it
	// were centred on a linear one.
	p.X.Label.Text = "round-trip time (µs)"
	p.Y.Label.Text = "fraction of round trips"

	var rs []bench.Result
	sizes := map[int]bool{}
	pool := false // a pool's Submit+Wait, which has no message size
	for _, r := range rep.Results {
		if r.Kind == bench.KindRoundTrip && r.Error == "" && r.Hist != nil && r.Hist.Total() > 0 {
			rs = append(rs, r)
			if r.Workers > 0 {
				pool = true
			} else {
				sizes[r.Size] = true
			}
		}
	}
	what := "Round trips"
	if len(sizes) == 1 {
		for size := range sizes {
			what = "Round trips of " + plotSize(float64(size))
		}
	}
	switch {
	case pool && len(sizes) == 0:
		what = "Pool Submit+Wait"
	case pool:
		what += " and pool Submit+Wait"
	}
	p.Title.Text = what + "\nall runs, up to the slowest p99.9"
	if len(rs) == 0 {
		return plotEmpty(p, "no round-trip histograms measured")
	}

	// The axis spans the buckets from the fastest round trip to the
	// slowest contender's 99.9th percentile.
	lo, hi := math.Inf(1), math.Inf(-1)
	type span struct{ first, last int }
	spans := make([]span, len(rs))
	for k, r := range rs {
		h := r.Hist
		total := float64(h.Total())
		first, last, cut := -1, 0, -1
		var sum int64
		for i, n := range h.Counts {
			if n == 0 {
				continue
			}
			if first < 0 {
				first = i
			}
			last = i
			if sum += n; cut < 0 && float64(sum) >= 0.999*total {
				cut = i
			}
		}
		spans[k] = span{first, last}
		b0, _ := h.Bounds(first)
		_, bc := h.Bounds(cut)
		lo, hi = min(lo, b0/1e3), max(hi, bc/1e3)
	}
	plotLogAxis(&p.X, lo, hi, func(v float64) string { return fmt.Sprintf("%g", v) })

	for k, r := range rs {
		line, err := plotter.NewLine(histOutline(r.Hist, spans[k].first, spans[k].last, p.X.Max))
		if err != nil {
			continue // a NaN or an infinity: not drawn
		}
		line.StepStyle = plotter.PostStep
		line.LineStyle = looks[r.Backend].lineStyle()
		p.Add(line)
		drawn[r.Backend] = true
	}
	p.Y.Min, p.Y.Max = 0, p.Y.Max*1.05
	return p
}

// plotPoolMap plots the median tasks/s of every contender on the pool Map
// row, a point each, labelled with its figure, on a log scale; it returns
// nil if the row has no figures. It marks the contenders it draws in drawn.
func plotPoolMap(rep *bench.Report, looks map[string]plotLook, drawn map[string]bool) *plot.Plot {
	var rs []bench.Result
	for _, r := range rep.Results {
		if r.Kind == bench.KindThroughput && r.Workers > 0 && r.Error == "" && r.Value > 0 && !math.IsInf(r.Value, 0) {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = rs[0].Case + "\n(median of runs)"
	p.X.Label.Text = "contender (see the legend)"
	p.Y.Label.Text = "tasks per second"
	var ys []float64
	var labels plotter.XYLabels
	for i, r := range rs {
		xy := plotter.XY{X: float64(i), Y: r.Value}
		points, err := plotter.NewScatter(plotter.XYs{xy})
		if err != nil {
			continue
		}
		points.GlyphStyle = looks[r.Backend].glyphStyle()
		points.GlyphStyle.Radius = vg.Points(5)
		p.Add(points)
		drawn[r.Backend] = true
		ys = append(ys, r.Value)
		labels.XYs = append(labels.XYs, xy)
		labels.Labels = append(labels.Labels, plotSI3(r.Value))
	}
	if l, err := plotter.NewLabels(labels); err == nil {
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = draw.XCenter
			l.TextStyle[i].YAlign = draw.YBottom
		}
		l.Offset = vg.Point{Y: vg.Points(8)}
		p.Add(l)
	}
	p.X.Min, p.X.Max = -0.5, float64(len(rs))-0.5
	p.X.Tick.Marker = plot.ConstantTicks{}
	plotLogAxis(&p.Y, slices.Min(ys), slices.Max(ys)*2, plotSI) // room for the labels
	return p
}

// plotSI3 formats a figure with three significant digits and a k, M or G
// suffix: 4.21M.
func plotSI3(v float64) string {
	for _, u := range []struct {
		f float64
		s string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.f {
			return fmt.Sprintf("%.3g%s", v/u.f, u.s)
		}
	}
	return fmt.Sprintf("%.3g", v)
}

// histOutline is the outline of h's buckets first to last, in µs, on an
// axis that ends at xMax: up at the first bucket's lower bound, along the
// top of each bucket, down at the last one's upper bound, or cut at the end
// of the axis.
func histOutline(h *bench.Histogram, first, last int, xMax float64) plotter.XYs {
	total := float64(h.Total())
	b0, _ := h.Bounds(first)
	xys := plotter.XYs{{X: b0 / 1e3, Y: 0}}
	for i := first; i <= last; i++ {
		b, bn := h.Bounds(i)
		if b/1e3 >= xMax {
			break
		}
		y := float64(h.Counts[i]) / total
		xys = append(xys, plotter.XY{X: b / 1e3, Y: y})
		if i == last || bn/1e3 >= xMax {
			xys = append(xys, plotter.XY{X: min(bn/1e3, xMax), Y: y})
		}
		if i == last && bn/1e3 <= xMax {
			xys = append(xys, plotter.XY{X: bn / 1e3, Y: 0})
		}
	}
	return xys
}

// plotEmpty makes p say why it has nothing to show.
func plotEmpty(p *plot.Plot, why string) *plot.Plot {
	p.Title.Text += "\n(" + why + ")"
	p.X.Label.Text, p.Y.Label.Text = "", ""
	p.HideAxes()
	return p
}

// plotLogAxis sets a log scale from the decade at or below lo to the one at
// or above hi, with a labelled tick at each decade.
func plotLogAxis(a *plot.Axis, lo, hi float64, label func(float64) string) {
	a.Scale = plot.LogScale{}
	a.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	a.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if a.Max <= a.Min {
		a.Max = a.Min * 10
	}
	a.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		var ts []plot.Tick
		for k := int(math.Round(math.Log10(lo))); math.Pow10(k) <= hi*(1+1e-9); k++ {
			d := math.Pow10(k)
			ts = append(ts, plot.Tick{Value: d, Label: label(d)})
			for k := 2.0; k < 10 && d*k < hi; k++ {
				ts = append(ts, plot.Tick{Value: d * k})
			}
		}
		return ts
	})
}

// plotSize formats a message size in bytes: 64 B, 1 KiB, 64 KiB.
func plotSize(b float64) string {
	switch {
	case b >= 1<<20 && math.Mod(b, 1<<20) == 0:
		return fmt.Sprintf("%g MiB", b/(1<<20))
	case b >= 1<<10 && math.Mod(b, 1<<10) == 0:
		return fmt.Sprintf("%g KiB", b/(1<<10))
	}
	return fmt.Sprintf("%g B", b)
}

// plotSI formats a count with a k, M or G suffix: 100k, 1M, 10M.
func plotSI(v float64) string {
	for _, u := range []struct {
		f float64
		s string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.f {
			return fmt.Sprintf("%g%s", v/u.f, u.s)
		}
	}
	return fmt.Sprintf("%g", v)
}

// plotNS formats nanoseconds in a readable unit.
func plotNS(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
