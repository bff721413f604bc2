package main

import (
	"fmt"
	"io"
)

func postmortemCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bot postmortem: not implemented yet")
	return exitFail
}
