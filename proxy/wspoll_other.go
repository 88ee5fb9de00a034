//go:build !linux

package proxy

// pollReg is a direction's registration with the poller; there is none
// here (no epoll): idle directions wait in goroutines (turns.wait).
type pollReg struct{}

func pollArm(*pollReg, *turns) bool { return false }

func pollForget(*pollReg) {}
