package runbook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"
)

// MaxFileBytes is the largest runbook file the loader reads (§4.1).
const MaxFileBytes = 64 << 10

// Problem is one precise finding about a runbook file.
type Problem struct {
	File   string // path of the file (or directory entry)
	Field  string // path inside the document, e.g. "params[2].pattern"; "" for the whole file
	Reason string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.File + ": " + p.Reason
	}
	return p.File + ": " + p.Field + ": " + p.Reason
}

// LoadOptions configures loading and linting.
type LoadOptions struct {
	// Caps are the bot-wide limits the linter enforces; zero fields take
	// DefaultCaps.
	Caps Caps
	// CheckProgram reports why path cannot be executed on this host, or nil.
	// nil means the default: an absolute regular file this process may
	// execute (access(2) X_OK). A failure makes the runbook unavailable, not
	// invalid.
	CheckProgram func(path string) error
}

// LoadReport is the outcome of loading a runbooks directory.
type LoadReport struct {
	Dir      string
	Runbooks []*Runbook // valid runbooks, sorted by ID
	Errors   []Problem  // every excluded file has at least one
	Warnings []Problem  // ignored entries, unavailable programs, advice
	// Rejected lists the file stems (intended IDs) of excluded files, so
	// chat can say "failed validation" rather than "unknown".
	Rejected []string
}

// HasErrors reports whether any file was excluded.
func (r *LoadReport) HasErrors() bool { return len(r.Errors) > 0 }

// String renders the report for humans and CI: one line per error
// ("file: field: reason"), one per warning, then a summary line.
func (r *LoadReport) String() string {
	var b strings.Builder
	for _, p := range r.Errors {
		b.WriteString("error: " + p.String() + "\n")
	}
	for _, p := range r.Warnings {
		b.WriteString("warning: " + p.String() + "\n")
	}
	unavailable := 0
	for _, rb := range r.Runbooks {
		if !rb.Available() {
			unavailable++
		}
	}
	fmt.Fprintf(&b, "%s: %d runbook(s) valid (%d unavailable on this host), %d invalid, %d error(s), %d warning(s)\n",
		r.Dir, len(r.Runbooks), unavailable, len(r.Rejected), len(r.Errors), len(r.Warnings))
	return b.String()
}

// ValidateDir is what `bot runbooks validate [DIR]` calls: it loads dir
// exactly as the bot does and returns the human-readable report and whether
// there were errors. Unavailable programs are warnings only, so CI without
// kubectl passes.
func ValidateDir(dir string, opts LoadOptions) (report string, hasErrors bool) {
	r, err := LoadDir(dir, opts)
	if err != nil {
		return "error: " + err.Error() + "\n", true
	}
	return r.String(), r.HasErrors()
}

// LoadDir loads every runbook in dir (not recursively) per §4.1 and §4.10.
// Invalid files are excluded and reported; the others load. The error is
// non-nil only when the directory itself cannot be read.
func LoadDir(dir string, opts LoadOptions) (*LoadReport, error) {
	opts.Caps = opts.Caps.withDefaults()
	if opts.CheckProgram == nil {
		opts.CheckProgram = checkExecutable
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading runbooks directory: %w", err)
	}
	report := &LoadReport{Dir: dir}
	byID := map[string][]*Runbook{}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if reason := ignoreReason(e); reason != "" {
			report.Warnings = append(report.Warnings, Problem{File: path, Reason: reason})
			continue
		}
		stem := strings.TrimSuffix(e.Name(), ".yaml")
		rb, errs, warns := loadFile(path, stem, opts)
		report.Warnings = append(report.Warnings, warns...)
		if len(errs) > 0 {
			report.Errors = append(report.Errors, errs...)
			report.Rejected = append(report.Rejected, stem)
			continue
		}
		byID[rb.ID] = append(byID[rb.ID], rb)
	}
	mergeUnique(report, byID)
	return report, nil
}

// mergeUnique adds the runbooks whose ID is unique to the report and
// rejects every copy of a duplicated ID: neither is more authoritative.
func mergeUnique(report *LoadReport, byID map[string][]*Runbook) {
	for id, rbs := range byID {
		if len(rbs) == 1 {
			report.Runbooks = append(report.Runbooks, rbs[0])
			continue
		}
		for _, rb := range rbs {
			report.Errors = append(report.Errors, Problem{File: rb.File, Field: "id", Reason: fmt.Sprintf("duplicate id %q (defined in %d files)", id, len(rbs))})
		}
		report.Rejected = append(report.Rejected, id)
	}
	sort.Slice(report.Runbooks, func(i, j int) bool { return report.Runbooks[i].ID < report.Runbooks[j].ID })
	sort.Strings(report.Rejected)
}

// ignoreReason says why a directory entry is not loaded, or "" to load it.
func ignoreReason(e os.DirEntry) string {
	name := e.Name()
	switch {
	case strings.HasPrefix(name, "."):
		return "ignored: dotfile"
	case e.Type()&os.ModeSymlink != 0:
		return "ignored: symlink (runbooks must be regular files)"
	case e.IsDir():
		return "ignored: directory (runbooks are not loaded recursively)"
	case strings.HasSuffix(name, "~"):
		return "ignored: editor backup file"
	case strings.HasSuffix(name, ".yml"):
		return "ignored: runbooks must use the .yaml extension"
	case !strings.HasSuffix(name, ".yaml"):
		return "ignored: not a .yaml file"
	case !e.Type().IsRegular():
		return "ignored: not a regular file"
	}
	return ""
}

// loadFile reads, decodes and lints one file.
func loadFile(path, stem string, opts LoadOptions) (*Runbook, []Problem, []Problem) {
	fail := func(field, format string, args ...any) []Problem {
		return []Problem{{File: path, Field: field, Reason: fmt.Sprintf(format, args...)}}
	}
	data, err := readLimited(path)
	if err != nil {
		return nil, fail("", "%v", err), nil
	}
	sum := sha256.Sum256(data)
	spec, errs := decodeStrict(path, data)
	if len(errs) > 0 {
		return nil, errs, nil
	}
	l := &linter{file: path, caps: opts.Caps, checkProgram: opts.CheckProgram}
	rb := l.runbook(spec, stem, hex.EncodeToString(sum[:]))
	rb.File = path
	if len(l.errs) > 0 {
		return nil, l.errs, l.warns
	}
	return rb, nil, l.warns
}

// readLimited opens path without following symlinks (closing the race with
// the directory listing) and reads at most MaxFileBytes.
func readLimited(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileBytes)
	}
	return data, nil
}

// decodeStrict parses data as exactly one YAML document without anchors or
// aliases, then decodes it into the schema with unknown keys rejected.
// Problems carry a field path reconstructed from yaml's line numbers.
func decodeStrict(path string, data []byte) (*fileSpec, []Problem) {
	fail := func(field, reason string) []Problem {
		return []Problem{{File: path, Field: field, Reason: reason}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail("", "file is empty")
		}
		return nil, fail("", "invalid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		// Not a second document: text after the first that is not YAML.
		return nil, fail("", "invalid YAML after the document: "+strings.TrimPrefix(err.Error(), "yaml: "))
	default:
		return nil, fail("", "file must contain exactly one YAML document")
	}
	idx := indexNodes(&root)
	if len(idx.aliases) > 0 {
		var ps []Problem
		for _, f := range idx.aliases {
			ps = append(ps, Problem{File: path, Field: f, Reason: "YAML anchors and aliases are not allowed"})
		}
		return nil, ps
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fail("", "document must be a mapping")
	}
	var spec fileSpec
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&spec); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fail("", "invalid YAML: "+err.Error())
		}
		var ps []Problem
		for _, msg := range te.Errors {
			field, reason := idx.explain(msg)
			ps = append(ps, Problem{File: path, Field: field, Reason: reason})
		}
		return nil, ps
	}
	return &spec, nil
}

// nodeIndex maps source lines to field paths so yaml's "line N: ..."
// messages can be reported as "params[2].pattern: ...".
type nodeIndex struct {
	byLine  map[int][]indexedNode
	aliases []string // paths of anchors and aliases
}

type indexedNode struct {
	path  string
	key   string // mapping key; "" for sequence items
	keyAt int    // line of the key
	value *yaml.Node
}

func indexNodes(root *yaml.Node) *nodeIndex {
	idx := &nodeIndex{byLine: map[int][]indexedNode{}}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			idx.aliases = append(idx.aliases, displayPath(path))
			return // never follow an alias
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Kind == yaml.AliasNode || k.Anchor != "" {
					idx.aliases = append(idx.aliases, displayPath(path))
					continue
				}
				p := joinPath(path, k.Value)
				entry := indexedNode{path: p, key: k.Value, keyAt: k.Line, value: v}
				idx.byLine[k.Line] = append(idx.byLine[k.Line], entry)
				if v.Line != k.Line {
					idx.byLine[v.Line] = append(idx.byLine[v.Line], entry)
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				idx.byLine[c.Line] = append(idx.byLine[c.Line], indexedNode{path: p, value: c})
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return idx
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func displayPath(p string) string {
	if p == "" {
		return "(document)"
	}
	return p
}

var (
	yamlLineMsg    = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknownKey = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	yamlBadType    = regexp.MustCompile("^cannot unmarshal (!!\\w+) (?:`(.*)` )?into (.+)$")
	yamlDupKey     = regexp.MustCompile(`^mapping key "(.*)" already defined at line (\d+)$`)
)

// explain turns one yaml TypeError line into a field path and a reason.
func (idx *nodeIndex) explain(msg string) (field, reason string) {
	m := yamlLineMsg.FindStringSubmatch(msg)
	if m == nil {
		return "", msg
	}
	line, _ := strconv.Atoi(m[1])
	text := m[2]
	candidates := idx.byLine[line]
	fallback := "line " + m[1]
	if len(candidates) > 0 {
		fallback = candidates[0].path
	}
	if k := yamlUnknownKey.FindStringSubmatch(text); k != nil {
		for _, c := range candidates {
			if c.key == k[1] && c.keyAt == line {
				return c.path, fmt.Sprintf("unknown field %q", k[1])
			}
		}
		return fallback, fmt.Sprintf("unknown field %q", k[1])
	}
	if k := yamlDupKey.FindStringSubmatch(text); k != nil {
		for _, c := range candidates {
			if c.key == k[1] {
				return c.path, "duplicate key (first defined at line " + k[2] + ")"
			}
		}
		return fallback, "duplicate key " + strconv.Quote(k[1])
	}
	if k := yamlBadType.FindStringSubmatch(text); k != nil {
		reason = "expected " + goTypeWords(k[3]) + ", found " + tagWords(k[1])
		for _, c := range candidates {
			if c.value.ShortTag() == k[1] && c.value.Line == line && sameShortValue(c.value.Value, k[2]) {
				return c.path, reason
			}
		}
		return fallback, reason
	}
	return fallback, text
}

// sameShortValue compares a node value with yaml's message form of it,
// which cuts values over 10 bytes to 7 bytes plus "...".
func sameShortValue(value, shown string) bool {
	if prefix, cut := strings.CutSuffix(shown, "..."); cut && len(value) > 10 {
		return strings.HasPrefix(value, prefix)
	}
	return value == shown
}

func tagWords(tag string) string {
	switch tag {
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!str":
		return "text"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return tag
}

func goTypeWords(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.Contains(t, "Spec"):
		return "a mapping"
	case t == "string":
		return "text"
	case t == "int", t == "int64":
		return "a whole number"
	case t == "bool":
		return "true or false"
	}
	return t
}

// checkExecutable is the default LoadOptions.CheckProgram.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("program %s is not installed on this host", path)
		}
		return fmt.Errorf("program %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("program %s is not a regular file", path)
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return fmt.Errorf("program %s is not executable by the bot", path)
	}
	return nil
}
