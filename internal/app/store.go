package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/admin"
	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/config"
	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/incident"
	"github.com/incidentbot/incident-bot/internal/queue"
)

// botStore is what the app uses of its store, bbolt's (BOT_STORE=bolt) or
// etcd's (BOT_STORE=etcd).
type botStore interface {
	incident.Store
	incident.Batcher
	queue.Store
	OnEnqueue(fn func())
	Writable(ctx context.Context) error
	JobStats() (pending int, oldestDue time.Time, dead int, err error)
	DueCount(now time.Time) (int, error)
	PruneKeys(prefixes []string, cutoff time.Time, limit int) (int, error)
	PruneDeadJobs(cutoff, now time.Time, limit int) (int, error)
	PruneDocs(kind string, cutoff time.Time, limit int, at func(body []byte) (time.Time, bool)) (int, error)
	Check() error
	WriteBackup(w io.Writer) (int64, error)
	Path() string
	Close() error
}

// storeStats counts what a store holds, in the admin API's terms.
func storeStats(s botStore) (admin.Stats, error) {
	switch s := s.(type) {
	case *boltstore.Store:
		st, err := s.Stats()
		return admin.Stats(st), err
	case *etcdstore.Store:
		st, err := s.Stats()
		return admin.Stats(st), err
	}
	return admin.Stats{}, fmt.Errorf("no statistics for a %T", s)
}

// openStore opens the configured store. readOnly (bbolt only) opens the
// file with a shared lock for the CLI; lockWait bounds the wait for it.
func openStore(cfg config.Config, log *zap.Logger, readOnly bool, lockWait time.Duration) (botStore, error) {
	if cfg.Store != config.StoreEtcd {
		s, err := boltstore.Open(cfg.DB, boltstore.Options{ReadOnly: readOnly, LockTimeout: lockWait})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	opts, err := etcdOptions(cfg.Etcd)
	if err != nil {
		return nil, err
	}
	// The client logs its retries at warn; the bot reports what fails.
	opts.Logger = log.WithOptions(zap.IncreaseLevel(zap.ErrorLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := etcdstore.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// etcdOptions builds the etcd client's options, reading the TLS files.
func etcdOptions(e config.Etcd) (etcdstore.Options, error) {
	opts := etcdstore.Options{
		Endpoints:    e.Endpoints,
		Prefix:       e.Prefix,
		Username:     e.Username,
		Password:     e.Password.Value(),
		ExpiringKeys: prunedKeyPrefixes,
		KeyTTL:       keyRetention,
	}
	if !e.TLS() {
		return opts, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return opts, fmt.Errorf("BOT_ETCD_CA_FILE: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return opts, errors.New("BOT_ETCD_CA_FILE: no PEM certificate in " + e.CAFile)
		}
	}
	if e.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return opts, fmt.Errorf("BOT_ETCD_CERT_FILE/BOT_ETCD_KEY_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	opts.TLS = tc
	return opts, nil
}
