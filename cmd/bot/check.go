package main

import (
	"fmt"
	"io"
)

func checkCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bot check: not implemented yet")
	return exitFail
}
