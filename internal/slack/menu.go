package slack

import (
	"context"
	"strings"

	slackapi "github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/command"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// The buttons of the menu `/incident` alone shows: ActionMenuPrefix plus a
// command.Menu id ("incident_menu_declare", "incident_menu_list",
// "incident_menu_mine", "incident_menu_help"). ActionHomeDeclare is the
// Home tab's Declare button.
const (
	ActionMenuPrefix  = "incident_menu_"
	ActionHomeDeclare = "home_declare"
	blockMenu         = "incident_menu"
)

// menuReply is the answer to `/incident` typed alone: the menu, as buttons,
// shown only to the person who typed it.
func menuReply() reply {
	var buttons []slackapi.BlockElement
	for _, m := range command.Menu {
		style := slackapi.Style("")
		if m.ID == command.MenuDeclare {
			style = slackapi.StylePrimary
		}
		buttons = append(buttons, button(ActionMenuPrefix+m.ID, m.ID, m.Label, style))
	}
	return reply{
		// The text is the notification's and the fallback's: mrkdwn, so
		// the usage's <title> is escaped.
		Text: SafeText(command.MenuText()),
		Blocks: []slackapi.Block{
			section("*" + command.MenuPrompt + "* Or type a command: `/incident help` lists them."),
			slackapi.NewActionBlock(blockMenu, buttons...),
		},
	}
}

// menuAction takes a click on a menu button or the Home tab's Declare
// button; ok is false for any other action. None of them changes anything
// (declare only opens the form, whose submission is keyed by its view id),
// so they need no replay record: the click is acknowledged at once and
// answered in the background, the declare form with the click's trigger id
// and the rest through the click's response_url, ephemerally.
func (h *Handler) menuAction(ic *slackapi.InteractionCallback, a *slackapi.BlockAction, actor incident.Actor) (outcome string, ok bool) {
	id, isMenu := strings.CutPrefix(a.ActionID, ActionMenuPrefix)
	if a.ActionID == ActionHomeDeclare {
		id, isMenu = command.MenuDeclare, true
	}
	if !isMenu {
		return "", false
	}
	item, known := command.MenuItemByID(id)
	if !known {
		return reqMalformed, true
	}
	channel := ic.Channel.ID
	if channel == "" {
		channel = ic.Container.ChannelID
	}
	if item.ID == command.MenuDeclare {
		if ic.TriggerID == "" {
			return reqMalformed, true
		}
		h.goBackground(func(ctx context.Context) {
			if err := h.client.openView(ctx, ic.TriggerID, declareView(channel, 0)); err != nil {
				h.log.Warn("cannot open the declare form", zap.String("user", actor.ID), zap.Error(err))
				h.respond(ctx, ic.ResponseURL, "I could not open the declare form. Declare with a title instead: `/incident declare [sev1-4] <title>`.")
			}
		})
		return reqOK, true
	}
	if ic.ResponseURL == "" {
		return reqMalformed, true // menu buttons are only on messages
	}
	h.goBackground(func(ctx context.Context) {
		cmd, err := command.Parse(item.Command, command.Options{})
		if err != nil {
			h.log.Error("menu command does not parse", zap.String("command", item.Command), zap.Error(err))
			return
		}
		r := h.disp.Run(ctx, command.Request{Actor: actor, TeamID: ic.Team.ID, ChannelID: channel}, cmd)
		h.respond(ctx, ic.ResponseURL, SafeText(r.Text))
	})
	return reqOK, true
}

// respond answers a click through its response_url, ephemerally; best
// effort (the person can click again).
func (h *Handler) respond(ctx context.Context, responseURL, text string) {
	if responseURL == "" || text == "" {
		return
	}
	if err := h.client.Respond(ctx, responseURL, Response{Text: text}); err != nil {
		h.log.Warn("cannot answer a menu click", zap.Error(err))
	}
}
