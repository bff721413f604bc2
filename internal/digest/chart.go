package digest

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// ChartWeeks is how many weeks the digest's chart shows, ending with the
// digest's own week.
const ChartWeeks = 12

// WeekPoint is one week of the chart: incidents opened by the worst
// severity they reached, and the median time to resolve of the incidents
// resolved in the week (the digest's definitions, week by week).
type WeekPoint struct {
	Week       Week
	Opened     map[incident.Severity]int
	Resolved   int
	MedianTTR  time.Duration // zero when Resolved is 0
	HasResolve bool
}

// History computes the weeks points of the ChartWeeks ISO weeks ending
// with the week that contains the end of p, in p's time zone.
func History(records []Record, p Period, weeks int) []WeekPoint {
	loc := p.From.Location()
	last := WeekOf(p.To.Add(-time.Nanosecond).In(loc))
	start := last.Start(loc).AddDate(0, 0, -7*(weeks-1))
	points := make([]WeekPoint, weeks)
	periods := make([]Period, weeks)
	for i := range points {
		w := WeekOf(start.AddDate(0, 0, 7*i))
		points[i] = WeekPoint{Week: w, Opened: map[incident.Severity]int{}}
		periods[i] = w.Period(loc)
	}
	ttr := make([][]time.Duration, weeks)
	for _, r := range records {
		f := factsOf(r)
		for i, wp := range periods {
			if wp.Contains(r.Incident.DeclaredAt) {
				points[i].Opened[f.worst]++
			}
			if d, ok := f.resolvedIn(wp); ok {
				ttr[i] = append(ttr[i], d)
			}
		}
	}
	for i := range points {
		points[i].Resolved = len(ttr[i])
		points[i].MedianTTR, points[i].HasResolve = Median(ttr[i])
	}
	return points
}

// LoadHistory reads every incident declared before p ends that was
// declared, or changed, within the ChartWeeks weeks before, with its
// timeline.
func LoadHistory(ctx context.Context, store incident.Store, p Period) ([]Record, error) {
	from := p.To.AddDate(0, 0, -7*(ChartWeeks+1))
	var out []Record
	err := store.View(ctx, func(tx incident.Tx) error {
		return tx.ForEachIncident(func(inc *incident.Incident) error {
			if !inc.DeclaredAt.Before(p.To) || (inc.DeclaredAt.Before(from) && inc.UpdatedAt.Before(from)) {
				return nil
			}
			events, err := tx.Timeline(inc.Number)
			if err != nil {
				return err
			}
			out = append(out, Record{Incident: inc, Timeline: events})
			return ctx.Err()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("loading %d weeks of incidents for the digest chart: %w", ChartWeeks, err)
	}
	return out, nil
}

// severityColors are the bar colours, worst first: red, orange, yellow,
// grey (colour-blind readers tell them apart by position and the legend).
var severityColors = []color.Color{
	color.RGBA{R: 0xc6, G: 0x28, B: 0x28, A: 0xff},
	color.RGBA{R: 0xef, G: 0x6c, B: 0x00, A: 0xff},
	color.RGBA{R: 0xf9, G: 0xa8, B: 0x25, A: 0xff},
	color.RGBA{R: 0x90, G: 0xa4, B: 0xae, A: 0xff},
}

// Chart draws the points as a PNG: incidents opened per week, stacked by
// severity, above the median time to resolve per week in hours. It uses
// gonum.org/v1/plot with its embedded fonts: no browser, no network.
func Chart(points []WeekPoint, zone string) ([]byte, error) {
	labels := make([]string, len(points))
	for i, p := range points {
		labels[i] = fmt.Sprintf("W%02d", p.Week.Week)
	}
	first, last := "", ""
	if len(points) > 0 {
		first, last = points[0].Week.String(), points[len(points)-1].Week.String()
	}

	bars := plot.New()
	bars.Title.Text = fmt.Sprintf("Incidents opened per week by worst severity, %s to %s", first, last)
	bars.Y.Label.Text = "incidents"
	bars.Y.Min = 0
	bars.Legend.Top = true
	bars.Legend.Left = true
	var below *plotter.BarChart
	maxTotal := 0
	for i, sev := range incident.Severities {
		vals := make(plotter.Values, len(points))
		for j, p := range points {
			vals[j] = float64(p.Opened[sev])
		}
		bc, err := plotter.NewBarChart(vals, vg.Points(18))
		if err != nil {
			return nil, fmt.Errorf("drawing the digest chart: %w", err)
		}
		bc.Color = severityColors[i]
		bc.LineStyle.Width = 0
		if below != nil {
			bc.StackOn(below)
		}
		bars.Add(bc)
		bars.Legend.Add(sev.String(), bc)
		below = bc
	}
	for _, p := range points {
		total := 0
		for _, n := range p.Opened {
			total += n
		}
		maxTotal = max(maxTotal, total)
	}
	bars.Y.Max = float64(max(maxTotal, 1)) * 1.25 // room for the legend
	bars.Y.Tick.Marker = integerTicks{}
	bars.NominalX(labels...)

	ttr := plot.New()
	scale := ttrScaleFor(points)
	ttr.Title.Text = "Median time to resolve per week (" + scale.unit + "; no point: nothing resolved)"
	ttr.Y.Label.Text = scale.unit
	ttr.X.Label.Text = "ISO week (" + zone + ")"
	ttr.Y.Min = 0
	// One line per run of weeks with resolutions: a week without any is a
	// gap, not a slope between its neighbours.
	var runs []plotter.XYs
	for i, p := range points {
		if !p.HasResolve {
			continue
		}
		if i == 0 || !points[i-1].HasResolve {
			runs = append(runs, nil)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], plotter.XY{X: float64(i), Y: float64(p.MedianTTR) / float64(scale.per)})
	}
	for _, xys := range runs {
		line, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("drawing the digest chart: %w", err)
		}
		line.Color = color.RGBA{R: 0x15, G: 0x65, B: 0xc0, A: 0xff}
		line.Width = vg.Points(2)
		pts.Color = line.Color
		pts.Shape = draw.CircleGlyph{}
		pts.Radius = vg.Points(3.5)
		ttr.Add(line, pts)
	}
	// An axis at least one unit tall: gonum would otherwise stretch a week
	// of near-zero medians into ticks like 1e-06.
	ttr.Y.Max = max(ttr.Y.Max, 1)
	ttr.NominalX(labels...)
	ttr.X.Min, ttr.X.Max = bars.X.Min, bars.X.Max

	const width, height = 900, 640
	img := vgimg.New(vg.Points(width), vg.Points(height))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(16), PadY: vg.Points(18)}
	canvases := plot.Align([][]*plot.Plot{{bars}, {ttr}}, tiles, dc)
	bars.Draw(canvases[0][0])
	ttr.Draw(canvases[1][0])
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encoding the digest chart: %w", err)
	}
	return buf.Bytes(), nil
}

// ttrScale is the unit the time-to-resolve axis is drawn in.
type ttrScale struct {
	unit string
	per  time.Duration
}

// ttrScaleFor draws in hours, or in minutes when no week's median reaches an
// hour: a week of quick fixes reads "12 minutes", not "0.2 hours".
func ttrScaleFor(points []WeekPoint) ttrScale {
	for _, p := range points {
		if p.HasResolve && p.MedianTTR >= time.Hour {
			return ttrScale{unit: "hours", per: time.Hour}
		}
	}
	return ttrScale{unit: "minutes", per: time.Minute}
}

// integerTicks marks whole numbers only: incidents come in ones.
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	step := 1.0
	for (max-min)/step > 10 {
		step *= 2
	}
	var out []plot.Tick
	for v := 0.0; v <= max; v += step {
		if v >= min {
			out = append(out, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
		}
	}
	return out
}
