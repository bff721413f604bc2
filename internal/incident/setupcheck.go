package incident

// SetupCheck is one result of an adapter's setup checks (`bot doctor`,
// and warnings at start-up): Slack's and PagerDuty's share this shape.
type SetupCheck struct {
	Name   string
	OK     bool
	Detail string // what was found
	Fix    string // what to do, when not OK
}
