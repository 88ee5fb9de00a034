//go:build !linux

package proxy

import "log/slog"

// pollReg is a direction's registration with the poller; there is none
// here (no epoll): idle directions wait in goroutines (turns.wait).
type pollReg struct{}

func setPollLogger(*slog.Logger) {}

func pollArm(*pollReg, *turns) bool { return false }

func pollForget(*pollReg) {}
