package federation

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Mastodon's domain-block export (Moderation > Federation > Export) is a
// CSV file whose header is
//
//	#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate
//
// (the import also takes the names without "#", as other published lists
// write them). Severity "suspend" is refused, "silence" and "noop" pass:
// those are about what the backend shows, not what it accepts. A
// suspended domain's subdomains are refused too, as Mastodon's own
// domain blocks cover them.

// maxBlocklistBytes bounds the file read into memory.
const maxBlocklistBytes = 64 << 20

// blocklist is one good read of the file.
type blocklist struct {
	set       *domainSet
	suspended int // rows with severity suspend
	rows      int
	stamp     fileStamp
}

// fileStamp tells a changed file from the one read: size, modification
// time and, through os.SameFile, a file replaced by rename.
type fileStamp struct {
	info os.FileInfo
}

func (a fileStamp) same(b os.FileInfo) bool {
	return a.info != nil && b != nil && os.SameFile(a.info, b) &&
		a.info.Size() == b.Size() && a.info.ModTime().Equal(b.ModTime())
}

// readBlocklist reads and parses the file at path. Every fault is
// "path:line: what is wrong", all of them joined.
func readBlocklist(path string) (*blocklist, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("blocklist: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("blocklist: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBlocklistBytes+1))
	if err != nil {
		return nil, fmt.Errorf("blocklist: %w", err)
	}
	if len(data) > maxBlocklistBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxBlocklistBytes>>20)
	}
	b, err := parseBlocklist(path, data)
	if err != nil {
		return nil, err
	}
	b.stamp = fileStamp{st}
	return b, nil
}

// maxFaults bounds the faults one read reports.
const maxFaults = 20

// parseBlocklist parses the CSV in data; name is used in faults.
func parseBlocklist(name string, data []byte) (*blocklist, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte-order mark
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	b := &blocklist{set: newDomainSet()}
	var faults []error
	fault := func(line int, format string, args ...any) {
		if len(faults) < maxFaults {
			faults = append(faults, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
		}
	}
	domainCol, severityCol := -1, -1
	header := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				fault(pe.Line, "not CSV: %v", pe.Err)
			} else {
				fault(0, "%v", err)
			}
			break
		}
		line, _ := r.FieldPos(0)
		if header {
			header = false
			for i, col := range rec {
				switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(col)), "#") {
				case "domain":
					domainCol = i
				case "severity":
					severityCol = i
				}
			}
			if domainCol < 0 || severityCol < 0 {
				fault(line, "the first line must name the columns, as Mastodon's export does: #domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate")
				break
			}
			continue
		}
		if domainCol >= len(rec) || severityCol >= len(rec) {
			fault(line, "%d fields: the row needs a domain and a severity", len(rec))
			continue
		}
		b.rows++
		raw := rec[domainCol]
		d, ok := normalDomain(raw)
		if !ok {
			fault(line, "%q is not a domain", raw)
			continue
		}
		switch strings.ToLower(strings.TrimSpace(rec[severityCol])) {
		case "suspend":
			b.set.exact[d] = struct{}{}
			b.set.sub[d] = struct{}{}
			b.suspended++
		case "silence", "noop":
		default:
			fault(line, "severity %q: want suspend, silence or noop", rec[severityCol])
		}
	}
	if header && len(faults) == 0 {
		fault(1, "empty: want Mastodon's export, whose first line is #domain,#severity,...")
	}
	if len(faults) > 0 {
		return nil, errors.Join(faults...)
	}
	return b, nil
}
