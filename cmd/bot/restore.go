package main

import (
	"fmt"
	"io"
)

func restoreCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bot restore: not implemented yet")
	return exitFail
}
