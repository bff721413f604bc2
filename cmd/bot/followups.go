package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// followupRow is one follow-up as `bot followups` prints it.
type followupRow struct {
	Incident  string         `json:"incident"`
	ID        int            `json:"id"`
	Text      string         `json:"text"`
	Owner     string         `json:"owner,omitempty"`
	Due       string         `json:"due,omitempty"`
	Done      bool           `json:"done"`
	Overdue   bool           `json:"overdue"`
	CreatedAt time.Time      `json:"created_at"`
	CreatedBy incident.Actor `json:"created_by"`
	DoneAt    time.Time      `json:"done_at,omitzero"`
	number    int64
}

// followupRows lists the follow-ups of incs, oldest first; with openOnly
// only those not done, with owner only that owner's ("none": nobody's).
func followupRows(incs []*incident.Incident, openOnly bool, owner string, now time.Time, loc *time.Location) []followupRow {
	var out []followupRow
	for _, inc := range incs {
		for _, f := range inc.Followups {
			if openOnly && f.Done {
				continue
			}
			if owner != "" && f.Owner != owner && !(owner == "none" && f.Owner == "") {
				continue
			}
			out = append(out, followupRow{
				Incident: inc.ID(), ID: f.ID, Text: f.Text, Owner: f.Owner, Due: f.Due, Done: f.Done,
				Overdue: f.Overdue(now, loc), CreatedAt: f.CreatedAt, CreatedBy: f.CreatedBy, DoneAt: f.DoneAt, number: inc.Number,
			})
		}
	}
	slices.SortFunc(out, func(a, b followupRow) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.number, b.number), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func followupsCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	var openOnly, asJSON bool
	var owner string
	if !subFlags("followups", &configPath, args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&openOnly, "open", false, "only follow-ups not done")
		fs.StringVar(&owner, "owner", "", `only this owner's (a Slack user id, or "none")`)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}) {
		return exitConfig
	}
	cfg, ok := loadConfig(configPath, stderr)
	if !ok {
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	incs, err := app.AdminCLI(cfg).Incidents(ctx, false)
	if err != nil {
		fmt.Fprintf(stderr, "bot followups: %s\n", cliErrorText(err))
		return exitFail
	}
	owner = ownerID(owner)
	rows := followupRows(incs, openOnly, owner, time.Now(), cfg.Location)
	if asJSON {
		if rows == nil {
			rows = []followupRow{}
		}
		return printJSON("followups", rows, stdout, stderr)
	}
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "no follow-ups")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "INCIDENT\t#\tSTATE\tOWNER\tDUE\tADDED (%s)\tTEXT\n", cfg.Location)
	for _, r := range rows {
		state := "open"
		switch {
		case r.Done:
			state = "done"
		case r.Overdue:
			state = "overdue"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Incident, r.ID, state, cmp.Or(r.Owner, "-"), cmp.Or(r.Due, "-"),
			r.CreatedAt.In(cfg.Location).Format("2006-01-02 15:04"), r.Text)
	}
	if err := tw.Flush(); err != nil {
		return exitFail
	}
	return exitOK
}

// ownerID accepts an owner as a user id, an @name (the shell's users) or a
// Slack mention <@U123>.
func ownerID(s string) string {
	if len(s) > 3 && s[0] == '<' && s[1] == '@' && s[len(s)-1] == '>' {
		s = s[2 : len(s)-1]
	}
	if len(s) > 1 && s[0] == '@' {
		s = s[1:]
	}
	return s
}
