package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// ErrNotEmpty is returned by Migrate when the destination holds data and
// force is not set.
var ErrNotEmpty = errors.New("the destination is not empty (use --force to replace what it holds)")

// MigrateOptions name the two sides of `bot migrate`: "bolt:PATH" (or
// "bolt", meaning BOT_DB) for a bbolt file, "etcd" for the cluster that
// BOT_ETCD_* configure.
type MigrateOptions struct {
	From, To string
	Force    bool
}

// Migrated says what Migrate copied: the records by kind and the
// destination's own check.
type Migrated struct {
	To      string
	Records map[string]int
	// Previous is where a bbolt destination that held data before --force
	// is kept ("" if there was none).
	Previous string
	Stats    admin.Stats
}

type migrateSide struct {
	kind, path string // kind "bolt" or "etcd"
}

func parseSide(cfg config.Config, s string) (migrateSide, error) {
	switch {
	case s == "etcd":
		if len(cfg.Etcd.Endpoints) == 0 {
			return migrateSide{}, errors.New("etcd: BOT_ETCD_ENDPOINTS is not set")
		}
		return migrateSide{kind: "etcd", path: "etcd " + strings.Join(cfg.Etcd.Endpoints, ",") + " " + cfg.Etcd.Prefix}, nil
	case s == "bolt":
		return migrateSide{kind: "bolt", path: cfg.DB}, nil
	case strings.HasPrefix(s, "bolt:") && len(s) > len("bolt:"):
		return migrateSide{kind: "bolt", path: s[len("bolt:"):]}, nil
	}
	return migrateSide{}, fmt.Errorf("%q names no store: use bolt:PATH, bolt (BOT_DB) or etcd (BOT_ETCD_*)", s)
}

func (m migrateSide) openEtcd(cfg config.Config, importing bool) (*etcdstore.Store, error) {
	opts, err := etcdOptions(cfg.Etcd)
	if err != nil {
		return nil, err
	}
	opts.Logger = zap.NewNop()
	opts.Importing = importing
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return etcdstore.Open(ctx, opts)
}

// exportable is a store Migrate reads or writes.
type exportable interface {
	incident.Exporter
	incident.Importer
	Close() error
}

// countRecords counts a store's records by kind.
func countRecords(ctx context.Context, s incident.Exporter) (map[string]int, error) {
	counts := map[string]int{}
	err := s.Export(ctx, func(r incident.Record) error {
		v := reflect.ValueOf(r)
		for i := range v.NumField() {
			if !v.Field(i).IsNil() {
				counts[v.Type().Field(i).Name]++
			}
		}
		return nil
	})
	return counts, err
}

// Migrate copies every record of one store into another (`bot migrate`),
// then checks the destination and compares its records with the source's.
// A bbolt source is opened read-only with a shared lock, so a bot serving
// from it makes Migrate fail with boltstore.ErrLocked. A bbolt destination
// is written to PATH.migrating and renamed over PATH only once complete
// and checked; an etcd destination is marked as unfinished until the last
// commit (see etcdstore.Store.Import). Replicas serving from etcd must be
// stopped first.
func Migrate(ctx context.Context, cfg config.Config, opts MigrateOptions) (Migrated, error) {
	from, err := parseSide(cfg, opts.From)
	if err != nil {
		return Migrated{}, fmt.Errorf("FROM %w", err)
	}
	to, err := parseSide(cfg, opts.To)
	if err != nil {
		return Migrated{}, fmt.Errorf("TO %w", err)
	}
	if from == to {
		return Migrated{}, errors.New("FROM and TO are the same store")
	}
	if from.kind == to.kind && from.kind == "etcd" {
		return Migrated{}, errors.New("FROM and TO are both etcd: copy between clusters with etcd's own tools")
	}
	var src exportable
	if from.kind == "bolt" {
		src, err = boltstore.Open(from.path, boltstore.Options{ReadOnly: true})
	} else {
		src, err = from.openEtcd(cfg, false)
	}
	if err != nil {
		return Migrated{}, err
	}
	defer src.Close()
	want, err := countRecords(ctx, src)
	if err != nil {
		return Migrated{}, fmt.Errorf("reading %s: %w", from.path, err)
	}
	res := Migrated{To: to.path, Records: want}
	if to.kind == "etcd" {
		dst, err := to.openEtcd(cfg, true)
		if err != nil {
			return res, err
		}
		defer dst.Close()
		if err := copyStore(ctx, src, dst, opts.Force, want); err != nil {
			return res, err
		}
		if err := dst.Check(); err != nil {
			return res, err
		}
		st, err := dst.Stats()
		res.Stats = admin.Stats(st)
		return res, err
	}
	if _, err := os.Stat(to.path); err == nil {
		// Lock the existing file as a bot would, and look inside.
		old, err := boltstore.Open(to.path, boltstore.Options{})
		if err != nil {
			return res, err
		}
		n, err := countRecords(ctx, old)
		_ = old.Close()
		if err != nil {
			return res, err
		}
		if len(n) > 0 && !opts.Force {
			return res, fmt.Errorf("%s: %w", to.path, ErrNotEmpty)
		}
		if len(n) > 0 {
			res.Previous = to.path + ".before-migrate-" + time.Now().UTC().Format("20060102T150405Z")
		}
	}
	tmp := to.path + ".migrating"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, err
	}
	dst, err := boltstore.Open(tmp, boltstore.Options{})
	if err != nil {
		return res, err
	}
	err = copyStore(ctx, src, dst, true, want)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		var st boltstore.Stats
		st, err = boltstore.CheckFile(tmp, 0)
		res.Stats = admin.Stats(st)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return res, err
	}
	if res.Previous != "" {
		// --force over a file that held data: keep it, as bot restore does.
		if err := os.Link(to.path, res.Previous); err != nil {
			_ = os.Remove(tmp)
			return res, fmt.Errorf("keeping %s: %w", to.path, err)
		}
	}
	return res, os.Rename(tmp, to.path)
}

// copyStore imports src into dst (refusing a non-empty dst unless force)
// and checks that dst then holds what src held.
func copyStore(ctx context.Context, src incident.Exporter, dst exportable, force bool, want map[string]int) error {
	if !force {
		n, err := countRecords(ctx, dst)
		if err != nil {
			return err
		}
		if len(n) > 0 {
			return ErrNotEmpty
		}
	}
	if err := dst.Import(ctx, func(fn func(incident.Record) error) error { return src.Export(ctx, fn) }); err != nil {
		return fmt.Errorf("copying: %w", err)
	}
	got, err := countRecords(ctx, dst)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("the copy holds %v, the source %v", got, want)
	}
	return nil
}
