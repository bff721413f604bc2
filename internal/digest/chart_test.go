package digest

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
)

var chartOut = flag.String("chart", "", "also write the test chart to this PNG file, to look at it")

// TestChart draws twelve weeks of incidents and checks the picture is a
// real PNG of the promised size with something drawn on it; History puts
// each incident in its week by worst severity with the week's median time
// to resolve.
func TestChart(t *testing.T) {
	end := w47()
	var records []Record
	n := int64(0)
	for week := 0; week < ChartWeeks; week++ {
		monday := end.From.AddDate(0, 0, -7*(ChartWeeks-1-week))
		for i := 0; i < week%4+1; i++ {
			n++
			at := monday.Add(time.Duration(24*i+10) * time.Hour)
			sev := incident.Severities[(int(n)+i)%4]
			b := paged(t, n, "page", sev, at, at, "api").ack(at.Add(5 * time.Minute))
			if week != 3 { // a week where nothing is resolved
				b.resolve(at.Add(time.Duration(week+1) * 30 * time.Minute))
			}
			records = append(records, b.record())
		}
	}
	points := History(records, end, ChartWeeks)
	if len(points) != ChartWeeks || points[ChartWeeks-1].Week != (Week{2026, 47}) || points[0].Week != (Week{2026, 36}) {
		t.Fatalf("weeks %v to %v", points[0].Week, points[len(points)-1].Week)
	}
	if p := points[1]; sum(p.Opened) != 2 || !p.HasResolve || p.MedianTTR != time.Hour {
		t.Errorf("week 2: %+v", p)
	}
	if p := points[3]; sum(p.Opened) != 4 || p.HasResolve {
		t.Errorf("week 4 (nothing resolved): %+v", p)
	}

	img, err := Chart(points, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if *chartOut != "" {
		if err := os.WriteFile(*chartOut, img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(img) < 10_000 || len(img) > 1<<20 {
		t.Fatalf("chart is %d bytes", len(img))
	}
	decoded, err := png.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := decoded.Bounds(); b.Dx() != 1200 || b.Dy() < 800 {
		t.Errorf("chart is %dx%d", b.Dx(), b.Dy())
	}
	// Non-empty: the severity colours are on it, not just axes and text.
	found := map[int]bool{}
	bnd := decoded.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y += 2 {
		for x := bnd.Min.X; x < bnd.Max.X; x += 2 {
			r, g, bb, _ := decoded.At(x, y).RGBA()
			for i, c := range severityColors {
				cr, cg, cb, _ := c.RGBA()
				if r == cr && g == cg && bb == cb {
					found[i] = true
				}
			}
		}
	}
	if len(found) != 4 {
		t.Errorf("the chart shows %d of the 4 severity colours", len(found))
	}

	// An empty quarter still draws, with axes and no bars.
	if img, err := Chart(History(nil, end, ChartWeeks), "UTC"); err != nil || len(img) < 5_000 {
		t.Errorf("empty chart: %d bytes, %v", len(img), err)
	}
}

func sum(m map[incident.Severity]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestChartTTRUnit: a quarter of quick fixes is drawn in minutes, so the
// axis reads "12" rather than "0.2" or gonum's "1e-06"; one slow week
// switches the whole axis to hours.
func TestChartTTRUnit(t *testing.T) {
	quick := []WeekPoint{{HasResolve: true, MedianTTR: 12 * time.Minute}, {}, {HasResolve: true, MedianTTR: 2 * time.Second}}
	if s := ttrScaleFor(quick); s.unit != "minutes" || s.per != time.Minute {
		t.Errorf("quick fixes drawn in %+v", s)
	}
	slow := append(quick, WeekPoint{HasResolve: true, MedianTTR: 3 * time.Hour})
	if s := ttrScaleFor(slow); s.unit != "hours" || s.per != time.Hour {
		t.Errorf("a slow week drawn in %+v", s)
	}
	// An unresolved week's zero median does not count.
	if s := ttrScaleFor([]WeekPoint{{MedianTTR: 5 * time.Hour}}); s.unit != "minutes" {
		t.Errorf("unresolved week decided the unit: %+v", s)
	}
	if _, err := Chart(quick, "UTC"); err != nil {
		t.Fatal(err)
	}
}
