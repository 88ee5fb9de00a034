package configs

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/pelletier/go-toml/v2"
)

// Load reads the config file at path, fills what it does not state from
// its preset, and validates the result. On error the *Config is nil and the
// error lists every Fault found (see Faults), each "path:line: ...".
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load on bytes already read; name is used in fault messages.
func Parse(name string, data []byte) (*Config, error) {
	var tree map[string]any
	if err := toml.Unmarshal(data, &tree); err != nil {
		return nil, syntaxFault(name, err)
	}
	fs := &faults{file: name, pos: scanPositions(data)}
	preset := PresetMastodon
	if v, ok := tree["preset"]; ok {
		s, isString := v.(string)
		if !isString {
			fs.bad("preset", "want one of %q, in quotes; got %s", Presets, tomlKind(v))
		} else {
			preset = s
		}
	}
	cfg, err := Default(preset)
	if err != nil {
		fs.bad("preset", "unknown preset %q: want one of %q", preset, Presets)
		cfg, _ = Default(PresetMastodon)
	}
	d := &decoder{faults: fs, ruleKeys: map[string]string{}}
	d.decodeStruct("", tree, reflect.ValueOf(cfg).Elem())
	cfg.Preset = preset
	cfg.Source = name
	validate(cfg, fs, d.ruleKeys)
	if err := fs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// syntaxFault turns go-toml's error into a Fault with the line.
func syntaxFault(name string, err error) error {
	f := &Fault{File: name, Msg: err.Error(), Kind: ErrSyntax}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		f.Line, _ = de.Position()
		f.Msg = "TOML syntax: " + de.Error()
	}
	return f
}
