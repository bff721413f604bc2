package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// UserDirectory finds chat users by email: the Slack adapter's cached
// users.lookupByEmail. It returns an ENOTFOUND domain error for an email
// with no chat user, and incident.Retryable errors for rate limits and
// outages.
type UserDirectory interface {
	LookupUserByEmail(ctx context.Context, email string) (string, error)
}

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Service *incident.Service
	// Client makes the outbound calls; nil: webhooks only (pages,
	// escalations and user look-ups are not possible).
	Client *Client
	// Directory resolves emails to chat users; nil: PagerDuty assignees and
	// responders are not invited.
	Directory  UserDirectory
	Severities Severities
	// DefaultService is the service id an escalation-policy page is opened
	// on (PagerDuty incidents belong to a service).
	DefaultService string
	Logger         *zap.Logger
	Clock          incident.Clock // default incident.SystemClock
	// EmailTTL bounds how long a PagerDuty user's email is cached (default 1h).
	EmailTTL time.Duration
	// LookupTimeout bounds the PagerDuty look-ups `page` makes while the
	// user waits (default 2s: Slack wants an answer within 3s).
	LookupTimeout time.Duration
}

// Worker runs the PagerDuty jobs and implements the `page` and `escalate`
// commands (command.Pager).
type Worker struct {
	cfg WorkerConfig
	log *zap.Logger

	mu     sync.Mutex
	emails map[string]cachedEmail
}

type cachedEmail struct {
	email   string
	at      time.Time
	missing bool // PagerDuty answered 404
}

// maxCachedEmails bounds the email cache.
const maxCachedEmails = 10000

// NewWorker returns a worker.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = incident.SystemClock
	}
	if cfg.EmailTTL <= 0 {
		cfg.EmailTTL = time.Hour
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 2 * time.Second
	}
	return &Worker{cfg: cfg, log: cfg.Logger.Named("pagerduty"), emails: map[string]cachedEmail{}}
}

func (w *Worker) rest() bool   { return w.cfg.Client != nil && w.cfg.Client.REST() }
func (w *Worker) events() bool { return w.cfg.Client != nil && w.cfg.Client.Events() }

// HandleEvent runs a pagerduty.event job: it applies one stored webhook
// event to the domain. It makes no outside calls.
func (w *Worker) HandleEvent(ctx context.Context, job incident.Job) error {
	d, err := Decode(job.Payload)
	if err != nil {
		return incident.Errorf(incident.EINVALID, "stored PagerDuty event cannot be decoded: %v", err)
	}
	if !d.Handled() {
		return nil
	}
	ev := d.PagerEvent(w.cfg.Severities)
	if n := len(d.Data.Assignees); n > MaxInvitesPerEvent {
		w.log.Warn("PagerDuty event lists more assignees than are invited", zap.String("event_id", ev.ID),
			zap.Int("assignees", n), zap.Int("invited_at_most", MaxInvitesPerEvent))
	}
	inc, err := w.cfg.Service.ApplyPagerEvent(ctx, ev)
	if err != nil {
		return err
	}
	w.log.Debug("applied PagerDuty event", zap.String("event_id", ev.ID), zap.String("event_type", ev.Type),
		zap.String("pager_incident", ev.Incident.ID), zap.String("incident", inc.ID()))
	return nil
}

// HandleUsers runs a pager.users job: each PagerDuty user is resolved to
// an email (GET /users/{id}, cached, and so is a user PagerDuty does not
// know) and then to a chat user, and the ones found are added to the
// incident, so the chat sync invites them. Users without an email or a
// chat account are skipped. One job costs at most MaxInvitesPerEvent
// look-ups of each kind and one log line, whatever its payload holds.
func (w *Worker) HandleUsers(ctx context.Context, job incident.Job) error {
	var p incident.PagerUsersJob
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Incident == 0 {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", job.Kind, job.Payload)
	}
	log := w.log.With(zap.String("incident", incident.FormatID(p.Incident)))
	if !w.rest() || w.cfg.Directory == nil {
		log.Debug("not resolving PagerDuty users: no REST API token or no chat directory", zap.Int("users", len(p.Users)))
		return nil
	}
	users := p.Users
	if len(users) > MaxInvitesPerEvent { // a job stored before the cap
		users = users[:MaxInvitesPerEvent]
	}
	var ids []string
	var unknown, noEmail, noChat, unreadable int
	for _, u := range users {
		email, err := w.email(ctx, u.ID)
		if _, retry := incident.IsRetryable(err); retry {
			return err
		}
		switch {
		case errors.Is(err, errNoSuchUser):
			unknown++
			continue
		case err != nil:
			unreadable++
			log.Debug("cannot read PagerDuty user", zap.String("pager_user", u.ID), zap.Error(err))
			continue
		case email == "":
			noEmail++
			continue
		}
		id, err := w.cfg.Directory.LookupUserByEmail(ctx, email)
		if _, retry := incident.IsRetryable(err); retry {
			return err
		} else if err != nil {
			noChat++
			log.Debug("no chat user for PagerDuty user", zap.String("pager_user", u.ID), zap.String("name", u.Name), zap.Error(err))
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) < len(p.Users) {
		log.Info("some PagerDuty users were not invited", zap.Int("users", len(p.Users)), zap.Int("invited", len(ids)),
			zap.Int("unknown_to_pagerduty", unknown), zap.Int("unreadable", unreadable), zap.Int("no_email", noEmail),
			zap.Int("no_chat_user", noChat), zap.Int("over_the_limit", len(p.Users)-len(users)))
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := w.cfg.Service.AddMembers(ctx, incident.Ref{Number: p.Incident}, ids)
	return err
}

// errNoSuchUser: PagerDuty does not know the user (404); remembered like
// an email, so a repeated unknown id costs one look-up per EmailTTL.
var errNoSuchUser = errors.New("PagerDuty does not know this user")

func (w *Worker) email(ctx context.Context, userID string) (string, error) {
	now := w.cfg.Clock.Now()
	w.mu.Lock()
	c, ok := w.emails[userID]
	w.mu.Unlock()
	if ok && now.Sub(c.at) < w.cfg.EmailTTL {
		if c.missing {
			return "", errNoSuchUser
		}
		return c.email, nil
	}
	email, err := w.cfg.Client.UserEmail(ctx, userID)
	missing := notFound(err)
	if err != nil && !missing {
		return "", err
	}
	w.mu.Lock()
	if len(w.emails) >= maxCachedEmails {
		clear(w.emails)
	}
	w.emails[userID] = cachedEmail{email: email, at: now, missing: missing}
	w.mu.Unlock()
	if missing {
		return "", errNoSuchUser
	}
	return email, nil
}

// HandleAction runs a pager.action job: one call to PagerDuty. Rate limits,
// 5xx and network errors are returned as retryable (the queue waits as
// PagerDuty asked); any other failure is told in the incident's channel
// in plain words, and the job fails for good.
func (w *Worker) HandleAction(ctx context.Context, job incident.Job) error {
	var a incident.PagerAction
	if err := json.Unmarshal(job.Payload, &a); err != nil || a.Incident == 0 {
		return incident.Errorf(incident.EINVALID, "bad %s payload %q", job.Kind, job.Payload)
	}
	log := w.log.With(zap.String("incident", incident.FormatID(a.Incident)), zap.String("op", a.Op), zap.Uint64("job", job.ID))
	err := w.act(ctx, a)
	if err == nil {
		log.Debug("PagerDuty action done")
		return nil
	}
	if _, retry := incident.IsRetryable(err); retry {
		return err
	}
	log.Warn("PagerDuty action failed", zap.Error(err))
	if rerr := w.cfg.Service.ReportPagerFailure(ctx, a, strconv.FormatUint(job.ID, 10), plain(err)); rerr != nil {
		return fmt.Errorf("reporting PagerDuty failure: %w", rerr)
	}
	return fmt.Errorf("%w: %v", incident.Errorf(incident.EINVALID, "PagerDuty refused the %s", a.Op), err)
}

// errNoAPI is a permanent failure: the action needs an API the bot has no
// credentials for.
type errNoAPI string

func (e errNoAPI) Error() string { return string(e) }

func plain(err error) string {
	var api *APIError
	var no errNoAPI
	var dom *incident.Error
	switch {
	case errors.As(err, &api):
		return api.Plain()
	case errors.As(err, &no):
		return string(no)
	case errors.As(err, &dom):
		return dom.Message
	}
	return "an unexpected error (the details are in the bot's log)"
}

func (w *Worker) act(ctx context.Context, a incident.PagerAction) error {
	c := w.cfg.Client
	switch a.Op {
	case incident.PagerOpPage:
		return w.page(ctx, a)
	case incident.PagerOpEscalate:
		if !w.rest() {
			return errNoAPI("escalating needs PAGERDUTY_API_TOKEN (the Events API cannot escalate)")
		}
		if a.Reason == "ack_timeout" {
			// Acknowledged since the timer fired: paging the next level now
			// would wake someone for nothing.
			inc, err := w.cfg.Service.Get(ctx, incident.Ref{Number: a.Incident})
			if err != nil {
				return err
			}
			if inc.Status != incident.StatusTriggered {
				w.log.Info("automatic escalation dropped: acknowledged meanwhile", zap.String("incident", inc.ID()))
				return nil
			}
		}
		return c.Escalate(ctx, a.PagerIncidentID, a.Level)
	case incident.PagerOpAcknowledge, incident.PagerOpResolve:
		status := map[string]string{incident.PagerOpAcknowledge: "acknowledged", incident.PagerOpResolve: "resolved"}[a.Op]
		switch {
		case a.PagerIncidentID != "" && w.rest():
			return c.SetStatus(ctx, a.PagerIncidentID, status)
		case a.DedupKey != "" && w.events():
			// The ops are named as the Events API's actions.
			_, err := c.SendEvent(ctx, Event{Action: a.Op, DedupKey: a.DedupKey})
			return err
		}
		w.log.Info("not syncing status to PagerDuty: no API for this link", zap.String("incident", incident.FormatID(a.Incident)))
		return nil
	case incident.PagerOpNote:
		if !w.rest() || a.PagerIncidentID == "" {
			return nil
		}
		return c.AddNote(ctx, a.PagerIncidentID, a.Text)
	}
	return incident.Errorf(incident.EINVALID, "unknown pager action %q", a.Op)
}

// page opens the PagerDuty incident for a page: through the REST API when
// there is a token (incident_key makes a retry open nothing new), else
// through the Events API with the incident's id as dedup key.
func (w *Worker) page(ctx context.Context, a incident.PagerAction) error {
	inc, err := w.cfg.Service.Get(ctx, incident.Ref{Number: a.Incident})
	if err != nil {
		return err
	}
	if !inc.Status.Open() || (a.Page == 0 && inc.Status != incident.StatusTriggered) {
		// Resolved (or, for the bot's own page, acknowledged) before the
		// page went out.
		w.log.Info("page dropped: the incident moved on", zap.String("incident", inc.ID()), zap.String("status", string(inc.Status)))
		return nil
	}
	title := fmt.Sprintf("%s: %s", inc.ID(), inc.Title)
	details := a.Message
	if details == "" {
		details = inc.Description
	}
	switch {
	case w.rest():
		n := NewIncident{Title: title, Details: details, Key: incident.PageKey(inc.Number, a.Page)}
		switch a.Target.Kind {
		case KindEscalationPolicy:
			n.ServiceID, n.EscalationPolicyID = w.cfg.DefaultService, a.Target.ID
			if n.ServiceID == "" {
				return errNoAPI("paging an escalation policy needs PAGERDUTY_DEFAULT_SERVICE (PagerDuty incidents belong to a service)")
			}
		default:
			n.ServiceID = a.Target.ID
		}
		pdInc, err := w.cfg.Client.CreateIncident(ctx, n)
		if err != nil {
			return err
		}
		ref := incident.PagerRef{
			System: string(Source), SystemName: Name, IncidentID: pdInc.ID, Number: pdInc.Number, URL: pdInc.URL, Status: pdInc.Status, Urgency: "high",
			ServiceID: firstNonEmpty(pdInc.ServiceID, n.ServiceID), ServiceName: pdInc.ServiceName,
			EscalationPolicyID: firstNonEmpty(pdInc.EscalationPolicyID, n.EscalationPolicyID), EscalationLevel: 1,
		}
		if ref.ServiceName == "" && a.Target.Kind != KindEscalationPolicy {
			ref.ServiceName = a.Target.Name
		}
		_, err = w.cfg.Service.LinkPager(ctx, a, ref)
		return err
	case w.events():
		details := map[string]string{"incident": inc.ID(), "severity": inc.Severity.String()}
		if a.Target.Name != "" {
			details["target"] = a.Target.Name
		}
		if a.Message != "" {
			details["message"] = a.Message
		}
		if a.By.Source != incident.SourceBot {
			details["paged_by"] = a.By.Mention()
		}
		key, err := w.cfg.Client.SendEvent(ctx, Event{Action: "trigger", DedupKey: inc.ID(), Summary: title, Severity: eventSeverity(inc.Severity), Details: details})
		if err != nil {
			return err
		}
		_, err = w.cfg.Service.LinkPager(ctx, a, incident.PagerRef{System: string(Source), SystemName: Name, DedupKey: key})
		return err
	}
	return errNoAPI("paging needs PAGERDUTY_API_TOKEN or PAGERDUTY_ROUTING_KEY")
}

// eventSeverity maps a severity to an Events API v2 severity.
func eventSeverity(s incident.Severity) string {
	switch s {
	case incident.SEV1:
		return "critical"
	case incident.SEV2:
		return "error"
	case incident.SEV3:
		return "warning"
	}
	return "info"
}

// Page implements `page <service or escalation policy> [message]`: the
// target is resolved now (by id or name, through the REST API) so that a
// typo is answered at once, and the page itself is a durable job.
func (w *Worker) Page(ctx context.Context, ref incident.Ref, target, message string, by incident.Actor) (string, error) {
	var t incident.PagerTarget
	switch {
	case w.rest():
		if strings.TrimSpace(target) == "" {
			return "", incident.Errorf(incident.EINVALID, "Name the PagerDuty service or escalation policy to page.")
		}
		lctx, cancel := context.WithTimeout(ctx, w.cfg.LookupTimeout)
		defer cancel()
		var err error
		if t, err = w.cfg.Client.FindTarget(lctx, target); err != nil {
			var dom *incident.Error
			if errors.As(err, &dom) {
				return "", err
			}
			w.log.Warn("looking up PagerDuty page target", zap.String("target", target), zap.Error(err))
			var api *APIError
			if errors.As(err, &api) && !api.temporary() {
				return "", incident.Errorf(incident.EINTERNAL, "PagerDuty did not let the bot look up %q: %s.", incident.Clip(target, 64), api.Plain())
			}
			return "", incident.Errorf(incident.EINTERNAL, "PagerDuty did not answer in time; try again in a minute.")
		}
		if t.Kind == KindEscalationPolicy && w.cfg.DefaultService == "" {
			return "", incident.Errorf(incident.EINVALID, "%s is an escalation policy; paging one needs PAGERDUTY_DEFAULT_SERVICE (PagerDuty incidents belong to a service). Page a service instead.", t.Name)
		}
	case w.events():
		// The routing key decides the service; the target is only told.
		t = incident.PagerTarget{Name: strings.TrimSpace(target)}
	default:
		return "", incident.Errorf(incident.EINVALID, "Paging needs PagerDuty: set PAGERDUTY_API_TOKEN (with PAGERDUTY_FROM_EMAIL) or PAGERDUTY_ROUTING_KEY.")
	}
	inc, _, err := w.cfg.Service.RequestPage(ctx, ref, t, message, by)
	if err != nil {
		return "", err
	}
	kind := ""
	if t.Kind != "" {
		kind = strings.ReplaceAll(t.Kind, "_", " ") + " "
	}
	return fmt.Sprintf("Paging %s*%s* for *%s*. The result will be posted in the incident's channel.", kind, t, inc.ID()), nil
}

// Escalate implements `escalate`: the linked PagerDuty incident goes to
// its next escalation level, through a durable job.
func (w *Worker) Escalate(ctx context.Context, ref incident.Ref, by incident.Actor) (string, error) {
	if !w.rest() {
		return "", incident.Errorf(incident.EINVALID, "Escalating needs PAGERDUTY_API_TOKEN and PAGERDUTY_FROM_EMAIL (the PagerDuty Events API cannot escalate).")
	}
	inc, level, err := w.cfg.Service.RequestEscalation(ctx, ref, by)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Escalating %s of *%s* to level %d. The result will be posted in the incident's channel.", inc.Pager.Label(), inc.ID(), level), nil
}

func (e *APIError) temporary() bool {
	return e.Status == 429 || e.Status >= 500
}
