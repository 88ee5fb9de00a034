package proxy

import "encoding/binary"

// wsFrames follows the frames of the backend's side of a websocket
// (RFC 6455 section 5.2), so that the edge knows where one ends (where a
// close frame of its own may go) and whether the backend sent a close
// frame. It reads headers only; payloads, compressed or not, pass by.
type wsFrames struct {
	hdr       [14]byte
	n         int    // header bytes held
	left      uint64 // payload bytes still to come
	closeSeen bool   // the backend sent a close frame
}

// atBoundary reports whether the next byte starts a frame.
func (f *wsFrames) atBoundary() bool { return f.n == 0 && f.left == 0 }

// advance follows p and returns how many of its bytes it took: all of
// them, or with stop, those up to the end of the current frame.
func (f *wsFrames) advance(p []byte, stop bool) int {
	i := 0
	for i < len(p) {
		if f.left > 0 {
			k := min(uint64(len(p)-i), f.left)
			i += int(k)
			f.left -= k
			if f.left == 0 && stop {
				return i
			}
			continue
		}
		f.hdr[f.n] = p[i]
		f.n++
		i++
		if f.n < wsHeaderLen(f.hdr[:f.n]) {
			continue
		}
		if f.hdr[0]&0x0f == 0x8 {
			f.closeSeen = true
		}
		f.left = wsPayloadLen(f.hdr[:f.n])
		f.n = 0
		if f.left == 0 && stop {
			return i
		}
	}
	return i
}

// wsHeaderLen is the length of a frame header whose first bytes are h.
func wsHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 { // masked: not from a server, but followed all the same
		n += 4
	}
	return n
}

// wsPayloadLen is the payload length of the complete header h.
func wsPayloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}
