package configs

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps a dotted key ("server.listen", "ratelimit.rule.0.limit")
// to the line where the file sets it.
type positions map[string]int

// line returns the line of key, or of its closest parent the file names,
// or 0.
func (p positions) line(key string) int {
	for key != "" {
		if l, ok := p[key]; ok {
			return l
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// scanPositions walks the TOML document and records the line of every key,
// table and array-of-tables entry. A syntax error is reported by the
// decoder, which runs first, so an error here only stops the scan.
func scanPositions(data []byte) positions {
	pos := positions{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	arrays := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			table = keyParts(e)
			pos[strings.Join(table, ".")] = lineOf(&p, e)
		case unstable.ArrayTable:
			base := strings.Join(keyParts(e), ".")
			n := arrays[base]
			arrays[base] = n + 1
			table = append(keyParts(e), strconv.Itoa(n))
			pos[strings.Join(table, ".")] = lineOf(&p, e)
			if _, ok := pos[base]; !ok {
				pos[base] = lineOf(&p, e)
			}
		case unstable.KeyValue:
			key := append(append([]string{}, table...), keyParts(e)...)
			recordValue(&p, pos, strings.Join(key, "."), e.Value(), lineOf(&p, e))
		}
	}
	return pos
}

// recordValue records key and, for inline tables and arrays of them, the
// keys inside.
func recordValue(p *unstable.Parser, pos positions, key string, v *unstable.Node, line int) {
	pos[key] = line
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			kv := it.Node()
			if kv.Kind != unstable.KeyValue {
				continue
			}
			sub := key + "." + strings.Join(keyParts(kv), ".")
			recordValue(p, pos, sub, kv.Value(), lineOf(p, kv))
		}
	case unstable.Array:
		it := v.Children()
		for i := 0; it.Next(); i++ {
			n := it.Node()
			recordValue(p, pos, key+"."+strconv.Itoa(i), n, lineOf(p, n))
		}
	}
}

func keyParts(n *unstable.Node) []string {
	var parts []string
	it := n.Key()
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// lineOf is the line of a node: its own raw bytes, else its first key's.
func lineOf(p *unstable.Parser, n *unstable.Node) int {
	if n.Raw.Length > 0 {
		return p.Shape(n.Raw).Start.Line
	}
	if n.Kind == unstable.KeyValue || n.Kind == unstable.Table || n.Kind == unstable.ArrayTable {
		it := n.Key()
		if it.Next() && it.Node().Raw.Length > 0 {
			return p.Shape(it.Node().Raw).Start.Line
		}
	}
	if c := n.Child(); c != nil && c.Raw.Length > 0 {
		return p.Shape(c.Raw).Start.Line
	}
	return 0
}
