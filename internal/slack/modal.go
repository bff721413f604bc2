package slack

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// The declare form: its callback id and the block and action ids of its
// inputs. A global shortcut with the same callback id opens it too.
const (
	DeclareCallbackID = "declare_incident"
	blockTitle        = "title"
	blockSeverity     = "severity"
	blockDescription  = "description"
)

var channelIDShape = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// declareView is the declare form. privateMetadata carries only the
// channel the command ran in, to say there where the incident is.
func declareView(channelID string, sev incident.Severity) slackapi.ModalViewRequest {
	if !sev.Valid() {
		sev = incident.DefaultSeverity
	}
	title := slackapi.NewPlainTextInputBlockElement(plain("e.g. Checkout API returns 500s"), blockTitle)
	title.MaxLength = incident.MaxTitleLength
	var options []*slackapi.OptionBlockObject
	var initial *slackapi.OptionBlockObject
	for _, s := range incident.Severities {
		o := slackapi.NewOptionBlockObject(strings.ToLower(s.String()), plain(severityLabel(s)), nil)
		options = append(options, o)
		if s == sev {
			initial = o
		}
	}
	severity := slackapi.NewOptionsSelectBlockElement(slackapi.OptTypeStatic, plain("Severity"), blockSeverity, options...)
	severity.InitialOption = initial
	desc := slackapi.NewPlainTextInputBlockElement(plain("What is happening, who is affected?"), blockDescription)
	desc.Multiline = true
	desc.MaxLength = incident.MaxTextLength
	descBlock := slackapi.NewInputBlock(blockDescription, plain("Description"), nil, desc)
	descBlock.Optional = true
	meta := ""
	if channelIDShape.MatchString(channelID) {
		meta = channelID
	}
	return slackapi.ModalViewRequest{
		Type:            slackapi.VTModal,
		CallbackID:      DeclareCallbackID,
		Title:           plain("Declare an incident"),
		Submit:          plain("Declare"),
		Close:           plain("Cancel"),
		PrivateMetadata: meta,
		Blocks: slackapi.Blocks{BlockSet: []slackapi.Block{
			slackapi.NewInputBlock(blockTitle, plain("Title"), nil, title),
			slackapi.NewInputBlock(blockSeverity, plain("Severity"), nil, severity),
			descBlock,
		}},
	}
}

func severityLabel(s incident.Severity) string {
	switch s {
	case incident.SEV1:
		return "SEV1: critical, customers badly affected"
	case incident.SEV2:
		return "SEV2: major, many affected"
	case incident.SEV3:
		return "SEV3: minor, some affected"
	}
	return "SEV4: low, little impact"
}

// declareInput is the validated content of a submitted declare form.
type declareInput struct {
	Title       string
	Severity    incident.Severity
	Description string
	Channel     string      // where the form was opened, if known
	From        *messageRef // the message it is declared from, if any
}

// parseDeclareView validates a submitted declare form on the server (the
// form's own limits are not trusted). Problems are keyed by block id, as
// response_action "errors" wants them.
func parseDeclareView(v slackapi.View) (declareInput, map[string]string) {
	var in declareInput
	problems := map[string]string{}
	value := func(block string) slackapi.BlockAction {
		if v.State == nil {
			return slackapi.BlockAction{}
		}
		return v.State.Values[block][block]
	}
	// Slack escapes &, < and > in form values as in messages; they are
	// decoded here, once.
	in.Title = strings.TrimSpace(fromSlack(value(blockTitle).Value))
	switch n := utf8.RuneCountInString(in.Title); {
	case n == 0:
		problems[blockTitle] = "Give the incident a title."
	case n > incident.MaxTitleLength:
		problems[blockTitle] = fmt.Sprintf("Keep the title to %d characters (it has %d).", incident.MaxTitleLength, n)
	}
	sev, err := incident.ParseSeverity(value(blockSeverity).SelectedOption.Value)
	if err != nil {
		problems[blockSeverity] = "Pick a severity."
	}
	in.Severity = sev
	in.Description = strings.TrimSpace(fromSlack(value(blockDescription).Value))
	if n := utf8.RuneCountInString(in.Description); n > incident.MaxTextLength {
		problems[blockDescription] = fmt.Sprintf("Keep the description to %d characters (it has %d).", incident.MaxTextLength, n)
	}
	in.Channel, in.From = declareMetadata(v.PrivateMetadata)
	if len(problems) == 0 {
		return in, nil
	}
	return in, problems
}
