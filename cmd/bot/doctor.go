package main

import (
	"fmt"
	"io"
)

func doctorCmd(configPath string, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bot doctor: not implemented yet")
	return exitFail
}
