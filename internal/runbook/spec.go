package runbook

import "go.yaml.in/yaml/v3"

// The file schema (§4.2). Plain structs only: Decoder.KnownFields is not
// carried into custom unmarshalers (go-yaml #460), so nothing here
// implements yaml.Unmarshaler. Fields that accept two shapes (values: list
// or map) are captured as yaml.Node and interpreted by the linter. Pointers
// distinguish "absent" from the zero value where the difference matters.

type fileSpec struct {
	APIVersion  string            `yaml:"apiVersion"`
	Kind        string            `yaml:"kind"`
	ID          string            `yaml:"id"`
	Title       string            `yaml:"title"`
	Description string            `yaml:"description"`
	Owner       string            `yaml:"owner"`
	Enabled     *bool             `yaml:"enabled"`
	Risk        string            `yaml:"risk"`
	Params      []paramSpec       `yaml:"params"`
	Access      *accessSpec       `yaml:"access"`
	Confirm     *bool             `yaml:"confirm"`
	Approval    *approvalSpec     `yaml:"approval"`
	Limits      *limitsSpec       `yaml:"limits"`
	Env         map[string]string `yaml:"env"`
	Secrets     []secretSpec      `yaml:"secrets"`
	Steps       []stepSpec        `yaml:"steps"`
	DryRun      *dryRunSpec       `yaml:"dry_run"`
	Output      *outputSpec       `yaml:"output"`
}

type paramSpec struct {
	Name         string    `yaml:"name"`
	Type         string    `yaml:"type"`
	Description  string    `yaml:"description"`
	Values       yaml.Node `yaml:"values"`
	Pattern      *string   `yaml:"pattern"`
	MaxLength    *int      `yaml:"max_length"`
	Min          *string   `yaml:"min"`
	Max          *string   `yaml:"max"`
	Default      *string   `yaml:"default"`
	Required     bool      `yaml:"required"`
	Secret       bool      `yaml:"secret"`
	AllowUnicode bool      `yaml:"allow_unicode"`
	Example      *string   `yaml:"example"`
	// AllowAddresses: url and host only.
	AllowAddresses []string `yaml:"allow_addresses"`
}

type principalsSpec struct {
	Users         []string `yaml:"users"`
	UserGroups    []string `yaml:"user_groups"`
	IncidentRoles []string `yaml:"incident_roles"`
}

type accessSpec struct {
	Requesters *principalsSpec `yaml:"requesters"`
	Channels   *channelsSpec   `yaml:"channels"`
}

type channelsSpec struct {
	IncidentChannelsOnly *bool `yaml:"incident_channels_only"`
	AllowDirectMessage   bool  `yaml:"allow_direct_message"`
}

type approvalSpec struct {
	RequiredWhen *[]conditionSpec `yaml:"required_when"`
	Approvers    *principalsSpec  `yaml:"approvers"`
	Count        *int             `yaml:"count"`
	ExpiresAfter string           `yaml:"expires_after"`
}

type conditionSpec struct {
	Param string   `yaml:"param"`
	In    []string `yaml:"in"`
}

type limitsSpec struct {
	Timeout        string `yaml:"timeout"`
	ConcurrencyKey string `yaml:"concurrency_key"`
	MaxConcurrent  *int   `yaml:"max_concurrent"`
	Cooldown       string `yaml:"cooldown"`
}

type secretSpec struct {
	Env string `yaml:"env"`
	Ref string `yaml:"ref"`
}

type stepSpec struct {
	Name    string   `yaml:"name"`
	Argv    []string `yaml:"argv"`
	Timeout string   `yaml:"timeout"`
}

type dryRunSpec struct {
	Steps []stepSpec `yaml:"steps"`
}

type outputSpec struct {
	CaptureMaxBytes  string    `yaml:"capture_max_bytes"`
	Chat             *chatSpec `yaml:"chat"`
	Redact           []string  `yaml:"redact"`
	SuccessExitCodes []int     `yaml:"success_exit_codes"`
}

type chatSpec struct {
	Where    string `yaml:"where"`
	Show     string `yaml:"show"`
	MaxLines *int   `yaml:"max_lines"`
	MaxChars *int   `yaml:"max_chars"`
}
