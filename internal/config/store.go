package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Store backends (BOT_STORE).
const (
	StoreBolt = "bolt" // one process on one bbolt file (BOT_DB); the default
	StoreEtcd = "etcd" // replicas on an etcd cluster (BOT_ETCD_*)
)

// DefaultEtcdPrefix is the default BOT_ETCD_PREFIX.
const DefaultEtcdPrefix = "/incident-bot/"

// Etcd configures the replicated mode's etcd client (BOT_STORE=etcd).
type Etcd struct {
	// Endpoints are the members' client URLs (http://host:2379 or
	// https://...); a bare host:port means http.
	Endpoints []string `yaml:"endpoints"`
	// Prefix is prepended to every key the bot writes.
	Prefix string `yaml:"prefix"`
	// CAFile verifies the members' certificates; CertFile and KeyFile are
	// the bot's client certificate (mutual TLS). All PEM.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Username and Password authenticate with etcd's own authentication.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// LeaderTTL is the leader's session lease: a dead leader is replaced
	// within it (plus an election). Shorter fails over faster; too short
	// deposes a leader for a GC pause or a slow etcd.
	LeaderTTL time.Duration `yaml:"leader_ttl"`
}

// DefaultLeaderTTL is the default BOT_ETCD_LEADER_TTL.
const DefaultLeaderTTL = 10 * time.Second

// TLS reports whether the client speaks TLS to etcd.
func (e Etcd) TLS() bool {
	if e.CAFile != "" || e.CertFile != "" {
		return true
	}
	for _, ep := range e.Endpoints {
		if strings.HasPrefix(ep, "https://") {
			return true
		}
	}
	return false
}

var storeVars = []envVar{
	strVar("BOT_STORE", func(c *Config) *string { return &c.Store }),
	parseVar("BOT_ETCD_ENDPOINTS", func(c *Config, v string) error {
		c.Etcd.Endpoints = nil
		for _, ep := range strings.Split(v, ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				c.Etcd.Endpoints = append(c.Etcd.Endpoints, ep)
			}
		}
		return nil
	}),
	strVar("BOT_ETCD_PREFIX", func(c *Config) *string { return &c.Etcd.Prefix }),
	strVar("BOT_ETCD_CA_FILE", func(c *Config) *string { return &c.Etcd.CAFile }),
	strVar("BOT_ETCD_CERT_FILE", func(c *Config) *string { return &c.Etcd.CertFile }),
	strVar("BOT_ETCD_KEY_FILE", func(c *Config) *string { return &c.Etcd.KeyFile }),
	fileVar(strVar("BOT_ETCD_USERNAME", func(c *Config) *string { return &c.Etcd.Username })),
	secretVar("BOT_ETCD_PASSWORD", func(c *Config) *Secret { return &c.Etcd.Password }),
	parseVar("BOT_ETCD_LEADER_TTL", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 10s", v)
		}
		c.Etcd.LeaderTTL = d
		return nil
	}),
}

func validateStore(c *Config) []string {
	var p problemList
	c.Store = strings.ToLower(strings.TrimSpace(c.Store))
	switch c.Store {
	case "":
		c.Store = StoreBolt
	case StoreBolt, StoreEtcd:
	default:
		p.add("BOT_STORE %q must be bolt (one process on the BOT_DB file) or etcd (replicas on an etcd cluster)", c.Store)
	}
	if c.Store != StoreEtcd {
		return p
	}
	e := &c.Etcd
	if len(e.Endpoints) == 0 {
		p.add("BOT_STORE=etcd needs BOT_ETCD_ENDPOINTS, the etcd members' client URLs (https://etcd-0.etcd:2379,...)")
	}
	for _, ep := range e.Endpoints {
		if !validEndpoint(ep) {
			p.add("BOT_ETCD_ENDPOINTS: %q is not an etcd client URL like https://etcd-0.etcd:2379 or 10.0.0.5:2379", ep)
		}
	}
	if e.Prefix == "" {
		e.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/") {
		p.add("BOT_ETCD_PREFIX %q must start and end with / (like /incident-bot/), so no other prefix can contain it", e.Prefix)
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		p.add("BOT_ETCD_CERT_FILE and BOT_ETCD_KEY_FILE go together: set both for a client certificate, or neither")
	}
	if e.Password.Set() && e.Username == "" {
		p.add("BOT_ETCD_PASSWORD is set without BOT_ETCD_USERNAME")
	}
	if e.LeaderTTL == 0 {
		e.LeaderTTL = DefaultLeaderTTL
	}
	if e.LeaderTTL < 2*time.Second || e.LeaderTTL > time.Minute || e.LeaderTTL%time.Second != 0 {
		p.add("BOT_ETCD_LEADER_TTL %s must be whole seconds between 2s and 1m (etcd leases count seconds)", e.LeaderTTL)
	}
	if e.Username != "" && !e.Password.Set() {
		p.add("BOT_ETCD_USERNAME is set without BOT_ETCD_PASSWORD")
	}
	return p
}

func validEndpoint(ep string) bool {
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && (u.Path == "" || u.Path == "/")
	}
	_, port, err := net.SplitHostPort(ep)
	return err == nil && port != ""
}
