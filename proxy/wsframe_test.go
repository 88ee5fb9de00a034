package proxy

import (
	"encoding/binary"
	"testing"
)

// wsFrame builds a server frame (unmasked unless mask) of opcode op.
func wsFrame(op byte, payload int, mask bool) []byte {
	b := []byte{0x80 | op, 0}
	switch {
	case payload < 126:
		b[1] = byte(payload)
	case payload <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(payload))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(payload))
	}
	if mask {
		b[1] |= 0x80
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, payload)...)
}

func TestWSFramesFollowsBoundariesInAnySplit(t *testing.T) {
	var stream []byte
	var ends []int // offsets where a frame ends
	for _, f := range [][]byte{wsFrame(1, 0, false), wsFrame(1, 5, false), wsFrame(2, 126, false), wsFrame(9, 3, true),
		wsFrame(1, 70000, false), wsFrame(8, 2, false)} {
		stream = append(stream, f...)
		ends = append(ends, len(stream))
	}
	for _, step := range []int{1, 2, 3, 7, 13, 1000, len(stream)} {
		var f wsFrames
		boundary := map[int]bool{}
		for i := 0; i < len(stream); i += step {
			f.advance(stream[i:min(i+step, len(stream))], false)
			boundary[min(i+step, len(stream))] = f.atBoundary()
		}
		for off, at := range boundary {
			want := false
			for _, e := range ends {
				want = want || e == off
			}
			if at != want {
				t.Fatalf("step %d: at offset %d boundary=%v, want %v", step, off, at, want)
			}
		}
		if !f.closeSeen {
			t.Fatalf("step %d: the close frame went unseen", step)
		}
	}
	// stop: only the bytes up to the end of the current frame are taken
	var f wsFrames
	two := append(wsFrame(1, 10, false), wsFrame(1, 10, false)...)
	f.advance(two[:5], false)
	if k := f.advance(two[5:], true); k != 7 || !f.atBoundary() {
		t.Fatalf("stop took %d bytes (want 7), boundary %v", k, f.atBoundary())
	}
}

// FuzzWSFrames: any byte stream, in any split, is followed the same way,
// and never panics.
func FuzzWSFrames(f *testing.F) {
	f.Add(wsFrame(1, 5, false), 3)
	f.Add(wsFrame(2, 300, true), 1)
	f.Fuzz(func(t *testing.T, stream []byte, step int) {
		step = 1 + (step&0xff)%64
		var whole, split wsFrames
		whole.advance(stream, false)
		for i := 0; i < len(stream); i += step {
			split.advance(stream[i:min(i+step, len(stream))], false)
		}
		if whole != split {
			t.Fatalf("split by %d: %+v, whole: %+v", step, split, whole)
		}
	})
}

// BenchmarkWSFramesAdvance: following a 16 KiB read of small frames, the
// per-read cost the websocket relay adds.
func BenchmarkWSFramesAdvance(b *testing.B) {
	var chunk []byte
	for len(chunk) < 16<<10 {
		chunk = append(chunk, wsFrame(1, 200, false)...)
	}
	var f wsFrames
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		f.advance(chunk, false)
	}
}
