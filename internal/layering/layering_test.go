package layering

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/incidentbot/incident-bot/"

// sdks maps each outside SDK (an import path prefix) to the only packages,
// relative to the module, that may import it: the adapter that owns it and
// that adapter's test-helper packages.
var sdks = map[string][]string{
	"github.com/slack-go/slack":         {"internal/slack"},
	"github.com/PagerDuty/go-pagerduty": {"internal/pagerduty"},
	"go.etcd.io/bbolt":                  {"internal/boltstore"},
	"go.etcd.io/etcd/client":            {"internal/etcdstore"},
	"go.etcd.io/etcd/api":               {"internal/etcdstore"},
	// The etcd server runs only embedded, for tests and the load tool
	// (etcdstore/etcdtest, etcdstore/etcdembed); the bot is only a client.
	"go.etcd.io/etcd/server": {"internal/etcdstore"},
	"gonum.org/v1/plot":      {"internal/digest"},
	"github.com/robfig/cron": {"internal/digest"},
}

// core is what any package may import from the module: the domain, the
// command language, the typed configuration, the embedded templates, and
// the webhook intakes' shared edge (bearer tokens, the durable enqueue),
// which knows no source and imports only the domain.
var core = []string{"internal/incident", "internal/command", "internal/config", "templates", "internal/webhook"}

// exceptions lists, with the reason, the module packages a package may
// import beyond core. Everything not listed here and not the composition
// root is an adapter and imports no other adapter.
var exceptions = map[string][]string{
	// config validates BOT_DIGEST_SCHEDULE with the digest's own parser, so
	// that there is one parser and a bad schedule fails at start-up.
	"internal/config": {"internal/digest"},
	// The on-call handover runs on the digest's schedule parser, cron loop
	// and post records, so that the bot has one cron and one "posted once"
	// record; it constructs and wires nothing of the digest.
	"internal/handover": {"internal/digest"},
	// runbookflow is the runbook engine's use of incidents and chat: it
	// drives the engine and reaches the chat only through its own small
	// Presenter port, so it constructs nothing and wires nothing.
	"internal/runbookflow": {"internal/runbook"},
	// The fakes serve the adapter's own wire types.
	"internal/slack/slacktest":    {"internal/slack"},
	"internal/boltstore/bolttest": {"internal/boltstore"},
}

// roots may import everything: the composition root, its test harness, and
// the binaries.
var roots = []string{"internal/app", "internal/app/apptest", "cmd/bot", "cmd/loadtest"}

// packages returns, for every package directory of the module, the imports
// of its non-test Go files.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	top, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string][]string{}
	err = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != top && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			pkgs[rel] = append(pkgs[rel], p)
		}
		if _, ok := pkgs[rel]; !ok {
			pkgs[rel] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages under %s: the walk is broken", len(pkgs), top)
	}
	return pkgs
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// within reports whether pkg is dir or below it.
func within(pkg, dir string) bool {
	return pkg == dir || strings.HasPrefix(pkg, dir+"/")
}

// TestDomainIsStdlibOnly: the domain owns the vocabulary and depends on
// nothing but the standard library (STYLE.md convention 1).
func TestDomainIsStdlibOnly(t *testing.T) {
	pkgs := packages(t)
	for _, imp := range pkgs["internal/incident"] {
		if !isStdlib(imp) {
			t.Errorf("internal/incident imports %s; the domain may import only the standard library", imp)
		}
	}
}

// TestSDKsStayInTheirAdapter: each outside SDK is imported only by the
// adapter that owns it (and that adapter's test helpers).
func TestSDKsStayInTheirAdapter(t *testing.T) {
	for pkg, imps := range packages(t) {
		for _, imp := range imps {
			for sdk, owners := range sdks {
				if !within(imp, sdk) {
					continue
				}
				if !slices.ContainsFunc(owners, func(o string) bool { return within(pkg, o) }) {
					t.Errorf("%s imports %s; only %v may", pkg, imp, owners)
				}
			}
		}
	}
}

// TestAdaptersDoNotImportEachOther: outside the composition root, a package
// imports from the module only the core packages, its own sub-packages and
// the listed exceptions.
func TestAdaptersDoNotImportEachOther(t *testing.T) {
	for pkg, imps := range packages(t) {
		if slices.Contains(roots, pkg) {
			continue
		}
		for _, imp := range imps {
			rel, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			switch {
			case within(rel, pkg), within(pkg, rel), slices.Contains(core, rel):
				// Its own sub-packages, its parent (test helpers such as
				// incidenttest), and the core.
				continue
			case slices.Contains(exceptions[pkg], rel):
				continue
			}
			if within(pkg, "internal/incident") && !within(rel, "internal/incident") {
				t.Errorf("%s imports %s; the domain imports nothing of the module", pkg, rel)
				continue
			}
			t.Errorf("%s imports %s; adapters must not import each other (add a reasoned exception in layering_test.go only if it is wiring-free)", pkg, rel)
		}
	}
}
