package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStoreDefaultsToBolt(t *testing.T) {
	cfg, err := Load("", fakeSource(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store != StoreBolt || cfg.Etcd.Prefix != DefaultEtcdPrefix {
		t.Fatalf("store %q prefix %q", cfg.Store, cfg.Etcd.Prefix)
	}
}

func TestEtcdFromEnvAndFiles(t *testing.T) {
	cfg, err := Load("", fakeSource(map[string]string{
		"BOT_STORE":              "etcd",
		"BOT_ETCD_ENDPOINTS":     " https://etcd-0:2379, https://etcd-1:2379 ,10.0.0.5:2379",
		"BOT_ETCD_CA_FILE":       "/certs/ca.pem",
		"BOT_ETCD_CERT_FILE":     "/certs/bot.pem",
		"BOT_ETCD_KEY_FILE":      "/certs/bot-key.pem",
		"BOT_ETCD_USERNAME_FILE": "/secrets/user",
		"BOT_ETCD_PASSWORD_FILE": "/secrets/pass",
		"BOT_ETCD_PREFIX":        "/bots/incident/",
		"BOT_ETCD_LEADER_TTL":    "4s",
	}, map[string]string{"/secrets/user": "bot\n", "/secrets/pass": "s3cret-etcd\n"}))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Etcd
	if cfg.Store != StoreEtcd || strings.Join(e.Endpoints, "|") != "https://etcd-0:2379|https://etcd-1:2379|10.0.0.5:2379" ||
		e.Prefix != "/bots/incident/" || e.Username != "bot" || e.Password.Value() != "s3cret-etcd" || !e.TLS() || e.LeaderTTL != 4*time.Second {
		t.Fatalf("etcd config: %+v", e)
	}
	if s := fmt.Sprintf("%v %+v", cfg, cfg); strings.Contains(s, "s3cret-etcd") {
		t.Fatal("the etcd password printed")
	}
}

func TestEtcdProblemsAllAtOnce(t *testing.T) {
	_, err := Load("", fakeSource(map[string]string{
		"BOT_STORE":           "etcd",
		"BOT_ETCD_ENDPOINTS":  "etcd-0, ftp://x:1",
		"BOT_ETCD_PREFIX":     "incident-bot",
		"BOT_ETCD_CERT_FILE":  "/certs/bot.pem",
		"BOT_ETCD_PASSWORD":   "pw",
		"BOT_ETCD_LEADER_TTL": "500ms",
	}, nil))
	msg := fmt.Sprint(err)
	for _, want := range []string{`"etcd-0" is not an etcd client URL`, `"ftp://x:1" is not`, "BOT_ETCD_PREFIX", "BOT_ETCD_KEY_FILE go together", "without BOT_ETCD_USERNAME", "BOT_ETCD_LEADER_TTL 500ms must be whole seconds"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems do not mention %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "pw\"") {
		t.Error("the password printed")
	}
	_, err = Load("", fakeSource(map[string]string{"BOT_STORE": "etcd"}, nil))
	if !strings.Contains(fmt.Sprint(err), "needs BOT_ETCD_ENDPOINTS") {
		t.Errorf("etcd without endpoints: %v", err)
	}
	_, err = Load("", fakeSource(map[string]string{"BOT_STORE": "postgres"}, nil))
	if !strings.Contains(fmt.Sprint(err), `BOT_STORE "postgres" must be bolt`) {
		t.Errorf("unknown store: %v", err)
	}
}
