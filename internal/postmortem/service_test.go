package postmortem

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/incident/incidenttest"
	"github.com/incidentbot/incident-bot/internal/queue"
)

// uploads records shared files; fail, if set, answers the next calls.
type uploads struct {
	mu    sync.Mutex
	files []sharedFile
	fail  []error
}

type sharedFile struct {
	channel string
	file    incident.File
}

func (u *uploads) Upload(_ context.Context, channelID string, f incident.File) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.fail) > 0 {
		err := u.fail[0]
		u.fail = u.fail[1:]
		return err
	}
	u.files = append(u.files, sharedFile{channelID, f})
	return nil
}

func (u *uploads) names() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, f := range u.files {
		out = append(out, f.channel+"/"+f.file.Name)
	}
	return out
}

// harness is a real store file with the incident use cases, the postmortem
// service and a job runner on top.
type harness struct {
	t      *testing.T
	path   string
	clock  *incidenttest.Clock
	up     *uploads
	store  *boltstore.Store
	svc    *incident.Service
	pm     *Service
	runner *queue.Runner
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "bot.db"), clock: incidenttest.NewClock(at("10:00:00")), up: &uploads{}}
	h.open()
	return h
}

func (h *harness) open() {
	t := h.t
	store, err := boltstore.Open(h.path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h.store = store
	h.svc = incident.NewService(incident.ServiceConfig{Store: store, Clock: h.clock})
	log := zaptest.NewLogger(t)
	h.pm = New(Config{Incidents: h.svc, Location: time.UTC, Uploader: h.up, Logger: log})
	h.runner = queue.New(queue.Config{Store: store, Clock: h.clock, Logger: log, MinBackoff: time.Second, MaxBackoff: time.Minute})
	// The channel exists already (see declare); the chat sync has nothing
	// to do here but must run so the upload behind it in the queue can.
	h.runner.Handle(incident.JobChatSync, func(context.Context, incident.Job) error { return nil })
	h.runner.Handle(JobPost, h.pm.HandlePost)
}

// restart closes the store and opens it again, as a new process would.
func (h *harness) restart() {
	if err := h.store.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *harness) runJobs() {
	h.t.Helper()
	if _, err := h.runner.RunDue(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// declare opens an incident with a channel.
func (h *harness) declare() *incident.Incident {
	h.t.Helper()
	ctx := context.Background()
	inc, err := h.svc.Declare(ctx, incident.Declaration{Title: "Checkout down", Severity: incident.SEV2, By: alice})
	if err != nil {
		h.t.Fatal(err)
	}
	inc, err = h.svc.Change(ctx, incident.Ref{Number: inc.Number}, func(inc *incident.Incident, _ time.Time) ([]incident.Event, error) {
		inc.Chat.ChannelID, inc.Chat.ChannelName = "C0INC1", "inc-1-checkout-down"
		return nil, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return inc
}

func (h *harness) versions(n int64) (latest int, drafted []string) {
	h.t.Helper()
	err := h.store.View(context.Background(), func(tx incident.Tx) error {
		var err error
		if latest, err = latestVersion(tx, incident.FormatID(n)); err != nil {
			return err
		}
		events, err := tx.Timeline(n)
		for _, ev := range events {
			if ev.Kind == incident.EventPostmortemDrafted {
				drafted = append(drafted, ev.Data["version"])
			}
		}
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return latest, drafted
}

func TestDraftStoresVersionsAndPostsEachOnce(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	inc := h.declare()
	ref := incident.Ref{ChannelID: "C0INC1"}

	reply, err := h.pm.Draft(ctx, ref, bob)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply, "v1") || !strings.Contains(reply, "<#C0INC1>") || !strings.Contains(reply, "INC-1-postmortem-v1.md") {
		t.Errorf("reply = %q", reply)
	}
	h.runJobs()
	h.runJobs() // nothing left to do: no second upload
	if got := h.up.names(); strings.Join(got, ",") != "C0INC1/INC-1-postmortem-v1.md" {
		t.Fatalf("uploads after the first draft: %v", got)
	}

	h.clock.Advance(time.Hour)
	if _, err := h.svc.Resolve(ctx, ref, alice, "fixed"); err != nil {
		t.Fatal(err)
	}
	reply, err = h.pm.Draft(ctx, incident.Ref{Number: inc.Number}, bob)
	if err != nil || !strings.Contains(reply, "v2") {
		t.Fatalf("second draft: %q, %v", reply, err)
	}
	h.runJobs()
	h.runJobs()
	if got := h.up.names(); strings.Join(got, ",") != "C0INC1/INC-1-postmortem-v1.md,C0INC1/INC-1-postmortem-v2.md" {
		t.Fatalf("uploads after the second draft: %v", got)
	}

	latest, drafted := h.versions(inc.Number)
	if latest != 2 || strings.Join(drafted, ",") != "1,2" {
		t.Errorf("stored version %d, timeline records versions %v; want 2 and [1 2]", latest, drafted)
	}
	// The stored version is the file that was posted, and v2 knows it is v2
	// and that the incident was resolved in between.
	var v1, v2 []byte
	_ = h.store.View(ctx, func(tx incident.Tx) error {
		v1, _, _ = tx.Doc(DocKind, "INC-1", 1)
		v2, _, _ = tx.Doc(DocKind, "INC-1", 2)
		return nil
	})
	files := h.up.files
	if string(files[0].file.Content) != string(v1) || string(files[1].file.Content) != string(v2) {
		t.Error("the posted files are not the stored versions")
	}
	if !strings.Contains(string(v2), "version 2") || !strings.Contains(string(v2), "| Resolved | 2026-11-20 11:00:00 |") {
		t.Errorf("v2 does not show its version and the resolution:\n%s", v2)
	}
	if c := files[1].file.Comment; !strings.Contains(c, "Postmortem draft v2 for *INC-1* (SEV2, resolved after 1h 0m)") {
		t.Errorf("comment = %q", c)
	}
}

func TestDraftOutsideAnIncidentChannel(t *testing.T) {
	h := newHarness(t)
	_, err := h.pm.Draft(context.Background(), incident.Ref{ChannelID: "CGENERAL"}, bob)
	if incident.ErrorCode(err) != incident.EINVALID || !strings.Contains(incident.ErrorMessage(err), "not an incident channel") {
		t.Errorf("err = %v", err)
	}
	_, err = h.pm.Draft(context.Background(), incident.Ref{Number: 99}, bob)
	if incident.ErrorCode(err) != incident.ENOTFOUND {
		t.Errorf("err = %v", err)
	}
}

func TestPostRetriesAfterAFailedUploadWithoutDuplicates(t *testing.T) {
	h := newHarness(t)
	h.declare()
	h.up.fail = []error{incident.Retryable(errors.New("slack: ratelimited"), 30*time.Second)}
	if _, err := h.pm.Draft(context.Background(), incident.Ref{Number: 1}, bob); err != nil {
		t.Fatal(err)
	}
	h.runJobs()
	if got := h.up.names(); len(got) != 0 {
		t.Fatalf("uploaded despite the failure: %v", got)
	}
	h.clock.Advance(31 * time.Second)
	h.runJobs()
	h.clock.Advance(time.Hour)
	h.runJobs()
	got := h.up.names()
	if len(got) != 1 {
		t.Fatalf("uploads = %v, want exactly one", got)
	}
	if strings.Contains(h.up.files[0].file.Comment, "Sent again") {
		t.Error("a retry after a failed call says it may be a duplicate; it is not")
	}
}

func TestPostSurvivesARestart(t *testing.T) {
	h := newHarness(t)
	h.declare()
	if _, err := h.pm.Draft(context.Background(), incident.Ref{Number: 1}, bob); err != nil {
		t.Fatal(err)
	}
	h.restart() // before the job ran
	h.runJobs()
	h.restart()
	h.runJobs()
	if got := h.up.names(); len(got) != 1 {
		t.Fatalf("uploads across restarts = %v, want one", got)
	}
}

func TestPostAfterAnInterruptedUploadSaysSo(t *testing.T) {
	h := newHarness(t)
	h.declare()
	if _, err := h.pm.Draft(context.Background(), incident.Ref{Number: 1}, bob); err != nil {
		t.Fatal(err)
	}
	// A crash after "posting" was recorded and before the outcome was.
	if err := h.pm.mark(context.Background(), postKey(1, 1), statePosting); err != nil {
		t.Fatal(err)
	}
	h.runJobs()
	if len(h.up.files) != 1 || !strings.Contains(h.up.files[0].file.Comment, "Sent again") {
		t.Fatalf("uploads = %+v", h.up.files)
	}
	// A job for a version that is posted already does nothing.
	job := incident.Job{Kind: JobPost, Payload: []byte(`{"incident":1,"version":1}`)}
	if err := h.pm.HandlePost(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if len(h.up.files) != 1 {
		t.Errorf("a posted version was uploaded again")
	}
}

func TestDraftWithoutUploader(t *testing.T) {
	h := newHarness(t)
	h.declare()
	h.runJobs()
	pm := New(Config{Incidents: h.svc, Logger: zaptest.NewLogger(t)})
	reply, err := pm.Draft(context.Background(), incident.Ref{Number: 1}, bob)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply, "bot postmortem INC-1") {
		t.Errorf("reply = %q", reply)
	}
	var pending int
	_ = h.store.View(context.Background(), func(tx incident.Tx) error {
		pending, _ = tx.PendingJobs()
		return nil
	})
	h.runJobs()
	if len(h.up.files) != 0 {
		t.Error("posted without an uploader")
	}
	// The timeline line is not quiet then: it is how the channel learns.
	events, _ := timeline(t, h, 1)
	last := events[len(events)-1]
	if last.Kind != incident.EventPostmortemDrafted || last.Quiet {
		t.Errorf("last event = %+v", last)
	}
	if pending != 1 {
		t.Errorf("%d jobs queued, want only the chat sync", pending)
	}
}

func TestDraftWithBrokenTemplateRepliesWithWhere(t *testing.T) {
	h := newHarness(t)
	h.declare()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "postmortem.md.tmpl"), "# {{.ID}}\n{{.Nope}}\n")
	pm := New(Config{Incidents: h.svc, TemplatesDir: dir, Uploader: h.up, Logger: zaptest.NewLogger(t)})
	reply, err := pm.Draft(context.Background(), incident.Ref{Number: 1}, bob)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply, "custom template failed (postmortem.md.tmpl, line 2)") {
		t.Errorf("reply = %q", reply)
	}
	if strings.Contains(reply, dir) {
		t.Errorf("reply shows a server path: %q", reply)
	}
	h.runJobs()
	if len(h.up.files) != 1 || !strings.HasPrefix(string(h.up.files[0].file.Content), "# Postmortem INC-1:") {
		t.Errorf("posted %+v, want the built-in draft", h.up.files)
	}
}

func TestPreviewStoresNothing(t *testing.T) {
	h := newHarness(t)
	h.declare()
	r, err := h.pm.Preview(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r.Body), "preview (not stored)") {
		t.Errorf("body:\n%.300s", r.Body)
	}
	if latest, drafted := h.versions(1); latest != 0 || len(drafted) != 0 {
		t.Errorf("a preview stored version %d / events %v", latest, drafted)
	}
}

func timeline(t *testing.T, h *harness, n int64) ([]incident.Event, error) {
	t.Helper()
	var events []incident.Event
	err := h.store.View(context.Background(), func(tx incident.Tx) error {
		var err error
		events, err = tx.Timeline(n)
		return err
	})
	return events, err
}
