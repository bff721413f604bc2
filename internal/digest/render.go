package digest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/templates"
)

// Rendered is a rendered digest.
type Rendered struct {
	Body []byte
	// Warning is set when the operator's digest.md.tmpl failed and the
	// built-in template was used; a *templates.Error naming file and line.
	Warning error
	Digest  *Digest
	// Chart is the PNG of the ChartWeeks weeks ending with the period
	// (see Chart), when Options.Chart asked for it.
	Chart []byte
}

// Render renders d with the template in dir (the built-in one when dir has
// none).
func Render(d *Digest, dir string) (Rendered, error) {
	body, warn, err := templates.Render(dir, templates.Digest, templates.Funcs(), d)
	if err != nil {
		return Rendered{}, fmt.Errorf("rendering the digest of %s: %w", d.Label, err)
	}
	return Rendered{Body: body, Warning: warn, Digest: d}, nil
}

// FileName is the name of the digest when it is shared as a file.
func (r Rendered) FileName() string {
	return "incident-digest-" + strings.ReplaceAll(r.Digest.Label, " ", "_") + ".md"
}

// ChartName is the name of the chart when it is shared as a file.
func (r Rendered) ChartName() string {
	return "incident-digest-" + strings.ReplaceAll(r.Digest.Label, " ", "_") + "-chart.png"
}

// Summary is the short message that goes with a posted digest.
func (r Rendered) Summary() string {
	d := r.Digest
	var b strings.Builder
	fmt.Fprintf(&b, "*Incident digest %s* (%s): %d opened, %d resolved, %d still open.", d.Label, d.Range, d.Opened, d.Resolved, len(d.StillOpen))
	fmt.Fprintf(&b, " MTTA median %s (%s), MTTR median %s (%s).", d.MTTA.MedianText(), d.MTTA.MedianChange(), d.MTTR.MedianText(), d.MTTR.MedianChange())
	if n := len(d.WithoutPostmortem); n > 0 {
		fmt.Fprintf(&b, " %d resolved SEV1/SEV2 without a postmortem.", n)
	}
	return b.String()
}

// Options configure Generate.
type Options struct {
	TemplatesDir string
	Now          time.Time
	// Chart also draws the chart of the ChartWeeks weeks ending with the
	// period (Rendered.Chart).
	Chart bool
	// Directory names the people the digest mentions; nil: mentions.
	Directory incident.Directory
}

// Generate loads the incidents of period p from the store, builds the digest
// and renders it.
func Generate(ctx context.Context, store incident.Store, p Period, opts Options) (Rendered, error) {
	records, err := Load(ctx, store, p)
	if err != nil {
		return Rendered{}, err
	}
	in := Input{Period: p, Records: records, Generated: opts.Now}
	if opts.Directory != nil {
		var ids []string
		for _, r := range records {
			for _, f := range r.Incident.Followups {
				if f.Owner != "" && !slices.Contains(ids, f.Owner) {
					ids = append(ids, f.Owner)
				}
			}
		}
		in.Names = opts.Directory.Names(ctx, ids)
	}
	r, err := Render(Build(in), opts.TemplatesDir)
	if err != nil || !opts.Chart {
		return r, err
	}
	history, err := LoadHistory(ctx, store, p)
	if err != nil {
		return Rendered{}, err
	}
	if r.Chart, err = Chart(History(history, p, ChartWeeks), p.From.Location().String()); err != nil {
		return Rendered{}, err
	}
	return r, nil
}

// Load reads what Build needs for period p in one snapshot: every incident
// declared before p ends that changed since the previous period began (with
// its timeline), is still open, or has an open follow-up (without its
// timeline unless it changed).
//
// It reads every incident record, because the store indexes incidents by
// declaration time only and an incident declared long ago can be resolved
// in p; timelines are read only for incidents that changed.
func Load(ctx context.Context, store incident.Store, p Period) ([]Record, error) {
	since := p.Previous().From
	var out []Record
	err := store.View(ctx, func(tx incident.Tx) error {
		return tx.ForEachIncident(func(inc *incident.Incident) error {
			if !inc.DeclaredAt.Before(p.To) {
				return nil
			}
			changed := inc.UpdatedAt.IsZero() || !inc.UpdatedAt.Before(since)
			if !changed && !inc.Status.Open() && !hasOpenFollowup(inc, p.To) {
				return nil
			}
			r := Record{Incident: inc}
			if changed {
				events, err := tx.Timeline(inc.Number)
				if err != nil {
					return err
				}
				r.Timeline = events
			}
			out = append(out, r)
			return ctx.Err()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("loading incidents for the digest of %s: %w", p.Label(), err)
	}
	return out, nil
}

func hasOpenFollowup(inc *incident.Incident, before time.Time) bool {
	for _, f := range inc.Followups {
		if !f.Done && f.CreatedAt.Before(before) {
			return true
		}
	}
	return false
}
