package incident

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ListPageSize is how many incidents one page of a list shows.
const ListPageSize = 20

// ListQuery is what `list` and `bot incidents` show, as people write it:
// "all" (resolved ones too; default: open ones), a severity ("sev1", "P2",
// "critical"), "mine", "service=NAME", "since=7d" (or 24h, or a date
// 2026-11-01 in loc), "page=N".
type ListQuery struct {
	All      bool
	Severity Severity // 0: any
	Mine     bool
	Service  string
	Since    time.Time // zero: any time
	Page     int       // from 1
}

var sinceRel = regexp.MustCompile(`^(\d{1,4})(h|d|w)$`)

// ParseListQuery reads the words of a list query.
func ParseListQuery(words []string, now time.Time, loc *time.Location) (ListQuery, error) {
	q := ListQuery{Page: 1}
	for _, w := range words {
		lw := strings.ToLower(w)
		key, val, isKV := strings.Cut(lw, "=")
		switch {
		case lw == "all":
			q.All = true
		case lw == "open":
			q.All = false
		case lw == "mine":
			q.Mine = true
		case isKV && key == "service":
			if val == "" {
				return q, Errorf(EINVALID, "Name the service: `service=checkout`.")
			}
			_, q.Service, _ = strings.Cut(w, "=") // as written
		case isKV && key == "since":
			t, err := parseSince(val, now, loc)
			if err != nil {
				return q, err
			}
			q.Since = t
		case isKV && key == "page":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 100000 {
				return q, Errorf(EINVALID, "%q is not a page number.", truncate(val, 20))
			}
			q.Page = n
		default:
			s, err := ParseSeverity(w)
			if err != nil {
				return q, Errorf(EINVALID, "`list` does not know %q: use all, a severity (sev1, P2, critical), mine, service=NAME, since=7d or since=2026-11-01, page=2.", truncate(w, 40))
			}
			q.Severity = s
		}
	}
	return q, nil
}

func parseSince(v string, now time.Time, loc *time.Location) (time.Time, error) {
	if m := sinceRel.FindStringSubmatch(v); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		return now.Add(-time.Duration(n) * unit), nil
	}
	if t, err := time.ParseInLocation(DateFormat, v, loc); err == nil {
		return t, nil
	}
	return time.Time{}, Errorf(EINVALID, "%q is not a time to list since: use 24h, 7d, 2w or a date like 2026-11-01.", truncate(v, 20))
}

// Filter is the store filter that narrows the query (status, declaration
// time); Match decides the rest.
func (q ListQuery) Filter() Filter {
	return Filter{OpenOnly: !q.All, DeclaredFrom: q.Since, Newest: q.All}
}

// Match reports whether inc is in the query for user (the one asking, for
// "mine": declarer, role holder or member).
func (q ListQuery) Match(inc *Incident, user string) bool {
	switch {
	case !q.All && !inc.Status.Open():
		return false
	case q.Severity != 0 && inc.Severity != q.Severity:
		return false
	case !q.Since.IsZero() && inc.DeclaredAt.Before(q.Since):
		return false
	case q.Service != "" && !slices.ContainsFunc(inc.Services, func(s string) bool { return strings.EqualFold(s, q.Service) }):
		return false
	case q.Mine && !slices.Contains(inc.People(), user):
		return false
	}
	return true
}

// PageOf returns page q.Page of incs and how many pages there are.
func (q ListQuery) PageOf(incs []*Incident) ([]*Incident, int) {
	pages := max(1, (len(incs)+ListPageSize-1)/ListPageSize)
	from := min(len(incs), (q.Page-1)*ListPageSize)
	return incs[from:min(len(incs), from+ListPageSize)], pages
}

// String describes the query for a list's heading: "Open SEV1 incidents
// of service checkout since 2026-11-01".
func (q ListQuery) String() string {
	var b strings.Builder
	if q.All {
		b.WriteString("Incidents")
	} else {
		b.WriteString("Open incidents")
	}
	if q.Severity != 0 {
		fmt.Fprintf(&b, ", %s", q.Severity)
	}
	if q.Mine {
		b.WriteString(", yours")
	}
	if q.Service != "" {
		fmt.Fprintf(&b, ", service %s", q.Service)
	}
	if !q.Since.IsZero() {
		fmt.Fprintf(&b, ", declared since %s", q.Since.Format("2006-01-02 15:04 MST"))
	}
	return b.String()
}
