package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/incidentbot/incident-bot/internal/app"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// fillStore writes a bit of everything a store keeps: enough incidents and
// events that an etcd import needs several commits, idempotency keys
// (expiring and kept), pending jobs with and without keys, dead letters,
// document versions with a pruned one, and counters past the last
// incident (a declaration that failed after allocating its number).
func fillStore(t *testing.T, s *boltstore.Store) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	err := s.Update(ctx, func(tx incident.Tx) error {
		for i := range 40 {
			n, err := tx.NextIncidentNumber()
			if err != nil {
				return err
			}
			inc := &incident.Incident{Number: n, Title: fmt.Sprintf("incident %d", n), Severity: 2,
				Status: incident.StatusTriggered, DeclaredAt: at.Add(time.Duration(i) * time.Hour)}
			inc.Chat.ChannelID = fmt.Sprintf("C%03d", n)
			if i%3 == 0 {
				inc.Status = incident.StatusResolved
				inc.Pager.System, inc.Pager.IncidentID = "pagerduty", fmt.Sprintf("PD%03d", n)
			}
			if err := tx.PutIncident(inc); err != nil {
				return err
			}
			for j := range 4 {
				ev := &incident.Event{Incident: n, At: at.Add(time.Duration(i*10-j) * time.Minute), Kind: "note", Text: fmt.Sprintf("note %d", j)}
				if j == 1 {
					ev.Key = fmt.Sprintf("slack:%d", n)
				}
				if _, err := tx.AppendEvent(ev); err != nil {
					return err
				}
			}
			if err := tx.PutKey(fmt.Sprintf("pd-webhook:%d", i), []byte{byte(i)}, at); err != nil {
				return err
			}
		}
		if _, err := tx.NextIncidentNumber(); err != nil { // allocated, never stored
			return err
		}
		if err := tx.PutKey("modal:empty", nil, at); err != nil {
			return err
		}
		for i := range 6 {
			j := &incident.Job{Kind: "chat.sync", Due: at.Add(time.Duration(i) * time.Minute), Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), Created: at}
			if i%2 == 0 {
				j.Key = "C001"
			}
			if err := tx.Enqueue(j); err != nil {
				return err
			}
		}
		for v := range 3 {
			if _, err := tx.PutDoc("postmortem", "INC-1", []byte(fmt.Sprintf("draft %d", v+1))); err != nil {
				return err
			}
		}
		_, err := tx.PutDoc("digest", "2026-W45", []byte("digest"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two jobs fail for good (dead letters), one completes: the job
	// counter is past every job still there.
	due, err := s.DueJobs(at.Add(time.Hour), 10, nil)
	if err != nil || len(due) < 3 {
		t.Fatalf("due jobs: %v %v", due, err)
	}
	for i, j := range due[:3] {
		if i == 2 {
			err = s.CompleteJob(j.ID)
		} else {
			err = s.FailJob(j.ID, "HTTP 400: channel_not_found", at.Add(time.Duration(i)*time.Second))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func export(t *testing.T, s incident.Exporter) []incident.Record {
	t.Helper()
	var out []incident.Record
	if err := s.Export(context.Background(), func(r incident.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// observe reads a store through the interfaces the bot uses, not the
// export, and returns what it saw.
type observed struct {
	Incidents            []*incident.Incident
	Timelines            [][]incident.Event
	ByChannel, ByPager   int64
	Open                 int
	Keys                 []string
	Docs                 []string
	Due, Dead            []incident.Job
	NextNumber, NextJob  int64
	Pending, DeadCounted int
}

type fullStore interface {
	incident.Store
	DueJobs(now time.Time, limit int, skip func(incident.Job) bool) ([]incident.Job, error)
	DeadJobs() ([]incident.Job, error)
}

func observe(t *testing.T, s fullStore) observed {
	t.Helper()
	ctx := context.Background()
	var o observed
	err := s.View(ctx, func(tx incident.Tx) error {
		var err error
		if o.Incidents, err = tx.Incidents(incident.Filter{}); err != nil {
			return err
		}
		for _, inc := range o.Incidents {
			tl, err := tx.Timeline(inc.Number)
			if err != nil {
				return err
			}
			o.Timelines = append(o.Timelines, tl)
		}
		open, err := tx.Incidents(incident.Filter{OpenOnly: true})
		o.Open = len(open)
		if err != nil {
			return err
		}
		inc, err := tx.IncidentByChannel("C007")
		if err != nil {
			return err
		}
		o.ByChannel = inc.Number
		if inc, err = tx.IncidentByPager(incident.SourcePagerDuty, "PD010"); err != nil {
			return err
		}
		o.ByPager = inc.Number
		for _, k := range []string{"pd-webhook:3", "modal:empty", "pd-webhook:99"} {
			v, ok, err := tx.Key(k)
			if err != nil {
				return err
			}
			o.Keys = append(o.Keys, fmt.Sprintf("%s=%v/%v", k, v, ok))
		}
		for _, v := range []int{0, 1, 3} {
			body, ver, err := tx.Doc("postmortem", "INC-1", v)
			if err != nil {
				return err
			}
			o.Docs = append(o.Docs, fmt.Sprintf("%d:%s", ver, body))
		}
		o.Pending, err = tx.PendingJobs()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.Due, err = s.DueJobs(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 100, nil); err != nil {
		t.Fatal(err)
	}
	if o.Dead, err = s.DeadJobs(); err != nil {
		t.Fatal(err)
	}
	o.DeadCounted = len(o.Dead)
	// The counters continue where the source's stopped (this write is
	// discarded by failing the transaction).
	errDiscard := errors.New("discard")
	err = s.Update(ctx, func(tx incident.Tx) error {
		if o.NextNumber, err = tx.NextIncidentNumber(); err != nil {
			return err
		}
		j := &incident.Job{Kind: "probe", Created: time.Unix(0, 0)}
		if err := tx.Enqueue(j); err != nil {
			return err
		}
		o.NextJob = int64(j.ID)
		return errDiscard
	})
	if !errors.Is(err, errDiscard) {
		t.Fatal(err)
	}
	return o
}

func migrateConfig(c *etcdtest.Cluster, prefix string) config.Config {
	return config.Config{Store: config.StoreBolt, Etcd: config.Etcd{Endpoints: c.Endpoints(), Prefix: prefix}}
}

// TestMigrateRoundTrip copies a bbolt database into etcd and back: each
// copy holds every record and behaves as the original for everything the
// store exposes (look-ups, timelines, keys, documents, due and dead jobs,
// the next incident number and job id).
func TestMigrateRoundTrip(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()
	src := filepath.Join(dir, "bot.db")
	s, err := boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s)
	want, wantSeen := export(t, s), observe(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := migrateConfig(c, "/migrate/")
	ctx := context.Background()

	res, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "bolt:" + src, To: "etcd"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records["Incident"] != 40 || res.Records["Event"] != 160 || res.Records["Dead"] != 2 || res.Records["Job"] != 3 || res.Stats.Incidents != 40 {
		t.Fatalf("migrated: %+v", res)
	}
	es := c.Open("/migrate/", etcdstore.Options{})
	if got := export(t, es); !reflect.DeepEqual(got, want) {
		t.Fatalf("etcd holds %d records, differing from the %d of the source", len(got), len(want))
	}
	if got := observe(t, es); !reflect.DeepEqual(got, wantSeen) {
		t.Fatalf("etcd copy behaves differently:\n got %+v\nwant %+v", got, wantSeen)
	}

	back := filepath.Join(dir, "back", "bot.db")
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "etcd", To: "bolt:" + back}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(back + ".migrating"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	b, err := boltstore.Open(back, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := export(t, b); !reflect.DeepEqual(got, want) {
		t.Fatalf("bbolt copy holds %d records, differing from the %d of the source", len(got), len(want))
	}
	if got := observe(t, b); !reflect.DeepEqual(got, wantSeen) {
		t.Fatalf("bbolt copy behaves differently:\n got %+v\nwant %+v", got, wantSeen)
	}
}

// TestMigrateRefuses: a non-empty destination without --force, a bbolt
// source a running bot holds, and a bbolt destination a bot holds are
// refused, each leaving the destination as it was.
func TestMigrateRefuses(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()
	ctx := context.Background()
	cfg := migrateConfig(c, "/refuse/")
	src := filepath.Join(dir, "bot.db")
	s, err := boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s)

	// Held by a running bot (this process holds the lock, as `bot serve` would).
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "bolt:" + src, To: "etcd"}); !errors.Is(err, boltstore.ErrLocked) {
		t.Fatalf("migrating a database in use: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	es := c.Open("/refuse/", etcdstore.Options{})
	if got := export(t, es); len(got) != 0 {
		t.Fatalf("a refused migration wrote %d records", len(got))
	}

	// Something else is in etcd already.
	if err := es.Update(ctx, func(tx incident.Tx) error { return tx.PutKey("other-bot", []byte("x"), time.Unix(1, 0)) }); err != nil {
		t.Fatal(err)
	}
	before := export(t, es)
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "bolt:" + src, To: "etcd"}); !errors.Is(err, app.ErrNotEmpty) {
		t.Fatalf("migrating into a non-empty etcd: %v, want ErrNotEmpty", err)
	}
	if got := export(t, es); !reflect.DeepEqual(got, before) {
		t.Fatal("a refused migration changed etcd")
	}
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "bolt:" + src, To: "etcd", Force: true}); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if _, ok, _ := keyOf(t, es, "other-bot"); ok {
		t.Error("--force kept what etcd held before")
	}

	// Back into the non-empty source file, and into a file a bot holds.
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "etcd", To: "bolt:" + src}); !errors.Is(err, app.ErrNotEmpty) {
		t.Fatalf("migrating into a non-empty file: %v, want ErrNotEmpty", err)
	}
	ro, err := boltstore.Open(src, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	before = export(t, ro)
	ro.Close()
	res, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "etcd", To: "bolt:" + src, Force: true})
	if err != nil || res.Previous == "" {
		t.Fatalf("--force into a non-empty file: %+v %v", res, err)
	}
	kept, err := boltstore.Open(res.Previous, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := export(t, kept); !reflect.DeepEqual(got, before) {
		t.Error("the file --force replaced is not kept as it was")
	}
	kept.Close()
	empty := filepath.Join(dir, "empty.db")
	held, err := boltstore.Open(empty, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "etcd", To: "bolt:" + empty, Force: true}); !errors.Is(err, boltstore.ErrLocked) {
		t.Fatalf("migrating into a file in use: %v, want ErrLocked", err)
	}
	if got := export(t, held); len(got) != 0 {
		t.Fatalf("a refused migration wrote %d records into the file", len(got))
	}

	// Bad names.
	for _, args := range [][2]string{{"bolt:" + src, "ectd"}, {"bolt:", "etcd"}, {"etcd", "etcd"}} {
		_, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: args[0], To: args[1]})
		if err == nil {
			t.Errorf("migrate %s %s: no error", args[0], args[1])
		}
	}
}

func keyOf(t *testing.T, s incident.Store, key string) ([]byte, bool, error) {
	t.Helper()
	var (
		v  []byte
		ok bool
	)
	err := s.View(context.Background(), func(tx incident.Tx) error {
		var err error
		v, ok, err = tx.Key(key)
		return err
	})
	return v, ok, err
}

// TestMigrateInterrupted: an import into etcd that stops half-way leaves
// the keyspace marked, the bot refuses to serve from it (and `bot check`
// fails), and migrating again with --force completes it. An import into
// bbolt that stops half-way leaves the file as it was.
func TestMigrateInterrupted(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dir := t.TempDir()
	ctx := context.Background()
	src := filepath.Join(dir, "bot.db")
	s, err := boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s)
	want := export(t, s)
	errStop := errors.New("interrupted")
	partial := func(fn func(incident.Record) error) error {
		n := 0
		return s.Export(ctx, func(r incident.Record) error {
			if n++; n == 100 {
				return errStop
			}
			return fn(r)
		})
	}

	es := c.Open("/half/", etcdstore.Options{Importing: true})
	if err := es.Import(ctx, partial); !errors.Is(err, errStop) {
		t.Fatalf("import: %v", err)
	}
	if got := export(t, es); len(got) == 0 {
		t.Fatal("nothing was committed before the interruption: the test proves nothing")
	}
	if _, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: "/half/"}); err == nil || !strings.Contains(err.Error(), "unfinished `bot migrate`") {
		t.Fatalf("opening a half-migrated keyspace: %v", err)
	}
	cfg := migrateConfig(c, "/half/")
	cfg.Store = config.StoreEtcd
	if _, err := app.AdminCLI(cfg).Check(ctx); err == nil {
		t.Fatal("bot check passes a half-migrated keyspace")
	}
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "etcd", To: "bolt:" + filepath.Join(dir, "x.db")}); err == nil {
		t.Fatal("migrated out of a half-migrated keyspace")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{From: "bolt:" + src, To: "etcd", Force: true}); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	done := c.Open("/half/", etcdstore.Options{})
	if got := export(t, done); !reflect.DeepEqual(got, want) {
		t.Fatal("the completed migration differs from the source")
	}

	// bbolt: one transaction.
	s, err = boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := boltstore.Open(filepath.Join(dir, "other.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Update(ctx, func(tx incident.Tx) error { return tx.PutKey("kept", nil, time.Unix(1, 0)) }); err != nil {
		t.Fatal(err)
	}
	before := export(t, other)
	if err := other.Import(ctx, partial); !errors.Is(err, errStop) {
		t.Fatalf("import: %v", err)
	}
	if got := export(t, other); !reflect.DeepEqual(got, before) {
		t.Fatal("an interrupted import changed the bbolt file")
	}
}
