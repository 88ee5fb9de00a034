package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// soak.png: four panels over time (requests, latency, memory, goroutines)
// with each fault's window shaded and named. Drawn with the standard image
// packages and x/image's built-in bitmap font: no plotting library.
const (
	plotW, panelH, marginL, marginR, marginT, gap = 1200, 190, 70, 20, 40, 30
)

type series struct {
	name string
	c    color.RGBA
	pts  [][2]float64 // seconds since start, value; NaN = gap
}

var (
	green  = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	red    = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	blue   = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	purple = color.RGBA{0x94, 0x67, 0xbd, 0xff}
	orange = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	grey   = color.RGBA{0x88, 0x88, 0x88, 0xff}
	black  = color.RGBA{0x22, 0x22, 0x22, 0xff}
)

var faultColor = map[string]color.RGBA{
	"redis": {0xff, 0xe0, 0xe0, 0xff}, "socks": {0xe0, 0xe8, 0xff, 0xff},
	"web": {0xff, 0xf0, 0xc8, 0xff}, "reload": {0xe0, 0xf5, 0xe0, 0xff},
}

func (r *report) plot(path string) error {
	bin := 10 * time.Second
	n := int(r.d/bin) + 1
	okN, errN := make([]float64, n), make([]float64, n)
	lat := make([][]time.Duration, n)
	for _, x := range r.results {
		i := min(int(x.at/bin), n-1)
		if r.isOK(x) {
			okN[i]++
			if !kinds[x.kind].long() {
				lat[i] = append(lat[i], x.latency)
			}
		} else {
			errN[i]++
		}
	}
	ok, bad, p50, p99 := series{name: "as expected /s", c: green}, series{name: "errors /s", c: red},
		series{name: "p50 ms", c: blue}, series{name: "p99 ms", c: red}
	for i := range n {
		t := (time.Duration(i)*bin + bin/2).Seconds()
		ok.pts = append(ok.pts, [2]float64{t, okN[i] / bin.Seconds()})
		bad.pts = append(bad.pts, [2]float64{t, errN[i] / bin.Seconds()})
		v50, v99 := math.NaN(), math.NaN()
		if len(lat[i]) > 0 {
			v50, v99 = msf(quantile(lat[i], .5)), msf(quantile(lat[i], .99))
		}
		p50.pts = append(p50.pts, [2]float64{t, v50})
		p99.pts = append(p99.pts, [2]float64{t, v99})
	}
	rss, heap, gor := series{name: "RSS MiB", c: blue}, series{name: "Go heap in use MiB", c: purple}, series{name: "goroutines", c: orange}
	for _, p := range r.samples {
		if p.ok {
			t := p.at.Seconds()
			rss.pts = append(rss.pts, [2]float64{t, p.rss / (1 << 20)})
			heap.pts = append(heap.pts, [2]float64{t, p.heap / (1 << 20)})
			gor.pts = append(gor.pts, [2]float64{t, p.goroutines})
		}
	}
	panels := []struct {
		title string
		s     []series
	}{
		{"Requests per second (10 s bins)", []series{ok, bad}},
		{"Latency of requests answered as expected, websockets left out (ms)", []series{p50, p99}},
		{"fedigate memory (MiB)", []series{rss, heap}},
		{"fedigate goroutines", []series{gor}},
	}
	h := marginT + len(panels)*(panelH+gap) + 10
	img := image.NewRGBA(image.Rect(0, 0, plotW, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	text(img, marginL, 20, black, fmt.Sprintf("fedigate soak, %s: %d requests; shaded: fault windows (part down, then %s to recover)", r.d, len(r.results), recoveryGrace))
	span := r.d.Seconds()
	for pi, p := range panels {
		top := marginT + pi*(panelH+gap) + 14
		rect := image.Rect(marginL, top, plotW-marginR, top+panelH-14)
		for _, f := range r.faults {
			x0 := rect.Min.X + int(float64(rect.Dx())*f.start.Seconds()/span)
			x1 := rect.Min.X + int(float64(rect.Dx())*(f.end+recoveryGrace).Seconds()/span)
			draw.Draw(img, image.Rect(x0, rect.Min.Y, max(x1, x0+2), rect.Max.Y), image.NewUniform(faultColor[f.name]), image.Point{}, draw.Src)
			if pi == 0 {
				text(img, x0+2, rect.Min.Y+12, grey, f.name)
			}
		}
		text(img, marginL, top-4, black, p.title)
		ymax := 0.0
		for _, s := range p.s {
			for _, pt := range s.pts {
				if !math.IsNaN(pt[1]) {
					ymax = math.Max(ymax, pt[1])
				}
			}
		}
		if ymax == 0 {
			ymax = 1
		}
		ymax *= 1.1
		box(img, rect, grey)
		for _, frac := range []float64{0, .5, 1} {
			y := rect.Max.Y - int(frac*float64(rect.Dy()))
			text(img, 8, y+4, grey, fmt.Sprintf("%8.1f", frac*ymax))
		}
		for m := 0.0; m <= span; m += tickStep(span) {
			x := rect.Min.X + int(float64(rect.Dx())*m/span)
			text(img, x-10, rect.Max.Y+13, grey, mmss(time.Duration(m)*time.Second))
		}
		lx := rect.Max.X - 10
		for i := len(p.s) - 1; i >= 0; i-- {
			s := p.s[i]
			lx -= 8*len(s.name) + 24
			draw.Draw(img, image.Rect(lx, rect.Min.Y+6, lx+12, rect.Min.Y+14), image.NewUniform(s.c), image.Point{}, draw.Src)
			text(img, lx+16, rect.Min.Y+14, black, s.name)
			var prev *image.Point
			for _, pt := range s.pts {
				if math.IsNaN(pt[1]) {
					prev = nil
					continue
				}
				q := image.Pt(rect.Min.X+int(float64(rect.Dx())*pt[0]/span), rect.Max.Y-int(float64(rect.Dy())*pt[1]/ymax))
				if prev != nil {
					line(img, *prev, q, s.c)
				}
				prev = &q
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func tickStep(span float64) float64 {
	for _, s := range []float64{30, 60, 120, 300, 600} {
		if span/s <= 12 {
			return s
		}
	}
	return 1200
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func text(img *image.RGBA, x, y int, c color.RGBA, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func box(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	line(img, r.Min, image.Pt(r.Max.X, r.Min.Y), c)
	line(img, image.Pt(r.Max.X, r.Min.Y), r.Max, c)
	line(img, r.Max, image.Pt(r.Min.X, r.Max.Y), c)
	line(img, image.Pt(r.Min.X, r.Max.Y), r.Min, c)
}

// line draws a 2-pixel line from a to b (Bresenham).
func line(img *image.RGBA, a, b image.Point, c color.RGBA) {
	dx, dy := abs(b.X-a.X), -abs(b.Y-a.Y)
	sx, sy := sign(b.X-a.X), sign(b.Y-a.Y)
	e := dx + dy
	for {
		img.SetRGBA(a.X, a.Y, c)
		img.SetRGBA(a.X, a.Y+1, c)
		if a == b {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			a.X += sx
		}
		if e2 <= dx {
			e += dx
			a.Y += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
