package configs

import (
	"embed"
	"fmt"
)

//go:embed mastodon.toml pleroma.toml akkoma.toml custom.toml
var examples embed.FS

// Example returns the complete, commented config file of a preset: every
// key at that preset's default. `fedigate init -preset NAME` prints it.
func Example(preset string) ([]byte, error) {
	b, err := examples.ReadFile(preset + ".toml")
	if err != nil {
		return nil, fmt.Errorf("unknown preset %q: want one of %q", preset, Presets)
	}
	return b, nil
}
