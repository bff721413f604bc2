package main

import (
	"fmt"
	"io"
)

func backupCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bot backup: not implemented yet")
	return exitFail
}
