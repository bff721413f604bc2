package main

import (
	"fmt"
	"io"
)

func runbooksCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bot runbooks: not implemented yet")
	return exitFail
}
