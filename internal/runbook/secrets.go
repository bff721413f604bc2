package runbook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// SecretResolver returns the value of a secret reference such as
// "cdn-purger/aws-access-key-id". The engine calls it just before exec and
// injects the value as an env var only; the value is then masked in all
// output. An error fails the run before anything executes.
type SecretResolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// maxSecretBytes bounds a secret file.
const maxSecretBytes = 64 << 10

// FileSecrets resolves ref to the contents of <Dir>/<ref>, the layout of a
// mounted Kubernetes secret or a systemd credentials directory. One trailing
// newline is trimmed. Refs are validated (lower-case segments, no "." or
// "..") and opened through os.Root, so neither a crafted ref nor a symlink
// can read outside Dir.
type FileSecrets struct {
	Dir string
}

var _ SecretResolver = FileSecrets{}

// Resolve implements SecretResolver.
func (fs FileSecrets) Resolve(_ context.Context, ref string) (string, error) {
	if !validSecretRef(ref) {
		return "", fmt.Errorf("invalid secret reference %q", ref)
	}
	root, err := os.OpenRoot(fs.Dir)
	if err != nil {
		return "", fmt.Errorf("opening secrets directory: %w", err)
	}
	defer root.Close()
	f, err := root.Open(ref)
	if err != nil {
		return "", fmt.Errorf("opening secret %s: %w", ref, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading secret %s: %w", ref, err)
	}
	if len(data) > maxSecretBytes {
		return "", fmt.Errorf("secret %s is larger than %d bytes", ref, maxSecretBytes)
	}
	v := string(data)
	if s, ok := strings.CutSuffix(v, "\n"); ok {
		v = strings.TrimSuffix(s, "\r")
	}
	if v == "" {
		return "", errors.New("secret " + ref + " is empty")
	}
	if strings.ContainsRune(v, 0) {
		return "", errors.New("secret " + ref + " contains NUL and cannot be passed in env")
	}
	return v, nil
}
