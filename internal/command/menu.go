package command

import (
	"fmt"
	"strings"
)

// MenuItem is one choice of the menu that `/incident` typed alone shows.
type MenuItem struct {
	// ID is stable: front ends key their controls (Slack buttons) on it.
	ID    string
	Label string
	// Command is the command the choice runs. For declare, front ends
	// with forms open the declare form instead.
	Command string
	// Hint is what to type for the same thing, for front ends without
	// controls.
	Hint string
}

// The menu's choices.
const (
	MenuDeclare = "declare"
	MenuList    = "list"
	MenuMine    = "mine"
	MenuHelp    = "help"
)

// Menu is what `/incident` typed alone offers, in order.
var Menu = []MenuItem{
	{ID: MenuDeclare, Label: "Declare an incident", Command: "declare", Hint: "declare [sev1-4] <title>"},
	{ID: MenuList, Label: "List open incidents", Command: "list", Hint: "list"},
	{ID: MenuMine, Label: "My incidents", Command: "list mine", Hint: "list mine"},
	{ID: MenuHelp, Label: "Help", Command: "help", Hint: "help"},
}

// MenuItemByID returns the menu choice with id.
func MenuItemByID(id string) (MenuItem, bool) {
	for _, m := range Menu {
		if m.ID == id {
			return m, true
		}
	}
	return MenuItem{}, false
}

// MenuPrompt heads the menu.
const MenuPrompt = "What do you want to do?"

// MenuText is the menu for front ends without buttons (the shell).
func MenuText() string {
	var b strings.Builder
	b.WriteString(MenuPrompt)
	for _, m := range Menu {
		fmt.Fprintf(&b, "\n• %s: `%s`", m.Label, m.Hint)
	}
	return b.String()
}
