package main

import (
	"fmt"
	"io"
)

func digestCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bot digest: not implemented yet")
	return exitFail
}
