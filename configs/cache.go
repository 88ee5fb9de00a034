package configs

import (
	"strings"
	"time"
)

// Cache is the [cache] section: the shared response cache in front of
// backend.web (package cache).
type Cache struct {
	Enabled      bool          `toml:"enabled"`
	MaxMemory    int64         `toml:"max_memory,size"`
	MaxObject    int64         `toml:"max_object,size"`
	Dir          string        `toml:"dir"` // "" = no disk tier
	MaxDisk      int64         `toml:"max_disk,size"`
	StaleIfError time.Duration `toml:"stale_if_error"`
	StatusHeader string        `toml:"status_header"` // "" = none
	// NormalizeAccept keys Accept by the classes the preset's backend
	// tells apart (ActivityPub JSON, JSON, HTML; any other value is kept
	// as it is) and Accept-Encoding by whether gzip is accepted; filled by
	// the preset, false in custom (field values kept as sent).
	NormalizeAccept bool `toml:"-"`
	// DiskPrefixes are path prefixes whose answers go to the disk tier
	// whatever their size, when Dir is set (Pleroma's /media and /proxy);
	// filled by the preset.
	DiskPrefixes []string `toml:"-"`
}

// cacheDefaults fills c.Cache for the preset.
func cacheDefaults(c *Config) {
	c.Cache = Cache{
		Enabled:      c.Preset != PresetCustom,
		MaxMemory:    256 << 20,
		MaxObject:    8 << 20,
		MaxDisk:      1 << 30,
		StaleIfError: time.Hour,
		StatusHeader: "Cache-Status",
	}
	switch c.Preset {
	case PresetMastodon:
		c.Cache.NormalizeAccept = true
	case PresetPleroma, PresetAkkoma:
		c.Cache.NormalizeAccept = true
		c.Cache.DiskPrefixes = []string{"/media/", "/proxy/"}
	}
}

func validateCache(c *Config, fs *faults) {
	k := &c.Cache
	if !k.Enabled {
		return
	}
	if k.MaxMemory < 1<<20 {
		fs.bad("cache.max_memory", "%d bytes is too small to hold anything useful: use at least \"1MB\"", k.MaxMemory)
	}
	if k.MaxObject <= 0 {
		fs.bad("cache.max_object", "must be more than 0, like \"8MB\"")
	} else if k.MaxObject > k.MaxMemory/4 && k.MaxMemory >= 1<<20 {
		fs.contradiction("cache.max_object", "%d bytes is more than a quarter of cache.max_memory (%d): one answer would push out most others; lower it or raise max_memory", k.MaxObject, k.MaxMemory)
	}
	if k.Dir != "" {
		if !strings.HasPrefix(k.Dir, "/") && !strings.HasPrefix(k.Dir, ".") {
			fs.bad("cache.dir", "%q: write an absolute path like \"/var/cache/fedigate\" (or one starting with ./)", k.Dir)
		}
		if k.MaxDisk < 1<<20 {
			fs.bad("cache.max_disk", "%d bytes is too small for a disk tier: use at least \"1MB\"", k.MaxDisk)
		}
	}
	if k.StaleIfError < 0 {
		fs.bad("cache.stale_if_error", "must not be negative")
	}
	if k.StatusHeader != "" && !validToken(k.StatusHeader) {
		fs.bad("cache.status_header", "%q is not a header name (\"\" turns the header off)", k.StatusHeader)
	}
}
