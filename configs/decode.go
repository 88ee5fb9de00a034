package configs

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	durationType = reflect.TypeOf(time.Duration(0))
	prefixType   = reflect.TypeOf(netip.Prefix{})
)

// decoder maps the generic TOML tree onto the typed Config, field by field,
// recording a Fault for every key it cannot take and going on, so one run
// reports every fault. A value that fails leaves the field as it was.
type decoder struct {
	*faults
	ruleKeys map[string]string // rule name -> its key in the file, for validation
}

// decodeStruct decodes table m (at dotted path) into the struct rv.
func (d *decoder) decodeStruct(path string, m map[string]any, rv reflect.Value) {
	fields := tomlFields(rv.Type())
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// In file order, so faults come out in the order an admin reads them.
	sort.Slice(keys, func(i, j int) bool {
		li, lj := d.pos.line(join(path, keys[i])), d.pos.line(join(path, keys[j]))
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		key := join(path, k)
		f, ok := fields[k]
		if !ok {
			d.add(ErrUnknownKey, key, "unknown key%s", suggest(k, fields))
			continue
		}
		if k == "rule" && path == "ratelimit" {
			d.decodeRules(key, m[k], rv.Field(f.index))
			continue
		}
		d.decodeValue(key, m[k], rv.Field(f.index), f.size)
	}
}

// decodeValue decodes one TOML value v into rv; size marks a byte size.
func (d *decoder) decodeValue(key string, v any, rv reflect.Value, size bool) {
	t := rv.Type()
	switch {
	case t == durationType:
		s, ok := v.(string)
		if !ok {
			d.bad(key, "want a duration in quotes, like \"30s\" or \"5m\"; got %s", tomlKind(v))
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil || dur < 0 {
			d.bad(key, "%q is not a duration: write it like \"30s\", \"5m\" or \"1h\"", s)
			return
		}
		rv.SetInt(int64(dur))
	case t == prefixType:
		s, ok := v.(string)
		if !ok {
			d.bad(key, "want an address or CIDR in quotes, like \"10.0.0.0/8\"; got %s", tomlKind(v))
			return
		}
		p, err := parsePrefix(s)
		if err != nil {
			d.bad(key, "%s", err)
			return
		}
		rv.Set(reflect.ValueOf(p))
	case size:
		n, err := parseSize(v)
		if err != nil {
			d.bad(key, "%s", err)
			return
		}
		rv.SetInt(n)
	case t.Kind() == reflect.String:
		s, ok := v.(string)
		if !ok {
			d.bad(key, "want a string in quotes; got %s", tomlKind(v))
			return
		}
		rv.SetString(s)
	case t.Kind() == reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.bad(key, "want true or false; got %s", tomlKind(v))
			return
		}
		rv.SetBool(b)
	case t.Kind() == reflect.Int:
		n, ok := v.(int64)
		if !ok || n > math.MaxInt32 || n < math.MinInt32 {
			d.bad(key, "want a whole number; got %s", tomlKind(v))
			return
		}
		rv.SetInt(n)
	case t.Kind() == reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			d.bad(key, "want a list in brackets, like [\"a\", \"b\"]; got %s", tomlKind(v))
			return
		}
		if len(list) == 0 {
			rv.Set(reflect.Zero(t)) // [] and an absent key mean the same
			return
		}
		out := reflect.MakeSlice(t, len(list), len(list))
		before := len(d.list)
		for i, e := range list {
			d.decodeValue(key+"."+strconv.Itoa(i), e, out.Index(i), size)
		}
		if len(d.list) == before {
			rv.Set(out)
		}
	case t.Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.bad(key, "want a table ([%s]); got %s", displayKey(key), tomlKind(v))
			return
		}
		d.decodeStruct(key, m, rv)
	default:
		d.bad(key, "cannot be set from a file")
	}
}

// decodeRules decodes [[ratelimit.rule]] and merges it over the preset's
// rules: a rule with a preset rule's name starts from that rule, so it
// states only what differs, and takes its place; other rules are added.
func (d *decoder) decodeRules(key string, v any, rv reflect.Value) {
	list, ok := v.([]any)
	if !ok {
		d.bad(key, "want [[ratelimit.rule]] tables; got %s", tomlKind(v))
		return
	}
	rules := rv.Interface().([]Rule)
	merged := append([]Rule(nil), rules...)
	seen := map[string]int{}
	for i, e := range list {
		k := key + "." + strconv.Itoa(i)
		m, ok := e.(map[string]any)
		if !ok {
			d.bad(k, "want a table; got %s", tomlKind(e))
			continue
		}
		name, _ := m["name"].(string)
		if name == "" {
			d.bad(k, "a rule needs a name (name = \"...\"); a preset rule of the same name is replaced")
			continue
		}
		if first, dup := seen[name]; dup {
			d.contradiction(k+".name", "rule %q is defined twice (first as ratelimit.rule[%d])", name, first)
			continue
		}
		seen[name] = i
		var r Rule
		at := -1
		for j := range merged {
			if merged[j].Name == name {
				r, at = merged[j], j
				break
			}
		}
		rr := reflect.ValueOf(&r).Elem()
		d.decodeStruct(k, m, rr)
		d.ruleKeys[name] = k
		if at >= 0 {
			merged[at] = r
		} else {
			merged = append(merged, r)
		}
	}
	rv.Set(reflect.ValueOf(merged))
}

type tomlField struct {
	index int
	size  bool
}

func tomlFields(t reflect.Type) map[string]tomlField {
	out := map[string]tomlField{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		out[name] = tomlField{index: i, size: opt == "size"}
	}
	return out
}

// suggest names the closest known key, for a misspelt one.
func suggest(k string, fields map[string]tomlField) string {
	best, bestD := "", 3
	for name := range fields {
		if d := editDistance(k, name); d < bestD || (d == bestD && name < best && best != "") {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func tomlKind(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the number %d", x)
	case float64:
		return fmt.Sprintf("the number %g", x)
	case bool:
		return fmt.Sprintf("%t", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
