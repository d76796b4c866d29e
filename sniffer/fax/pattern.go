package fax

import "image"

// Standard fax page geometry: A4 width at 204 dpi, 297 mm at 98 lpi.
const (
	PageWidth = 1728
	PageRows  = 1143
)

// Pattern draws test page n (from 1) at standard resolution: a border, n
// thick horizontal bars, a 7-segment digit n (0-9) and a checkerboard, so
// pages are told apart at a glance and compared pixel by pixel.
func Pattern(n int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, PageWidth, PageRows))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	fill := func(x0, y0, x1, y1 int) {
		for y := max(y0, 0); y < min(y1, PageRows); y++ {
			for x := max(x0, 0); x < min(x1, PageWidth); x++ {
				img.Pix[y*img.Stride+x] = 0
			}
		}
	}
	// border
	fill(40, 20, PageWidth-40, 28)
	fill(40, PageRows-28, PageWidth-40, PageRows-20)
	fill(40, 20, 56, PageRows-20)
	fill(PageWidth-56, 20, PageWidth-40, PageRows-20)
	// n bars
	for i := range n {
		fill(120, 60+i*40, 800, 80+i*40)
	}
	// 7-segment digit: a top, b top-right, c bottom-right, d bottom, e
	// bottom-left, f top-left, g middle
	segs := [10]string{"abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg"}
	x0, y0, w, h, t := 1000, 80, 400, 500, 50
	for _, s := range segs[n%10] {
		switch s {
		case 'a':
			fill(x0, y0, x0+w, y0+t)
		case 'b':
			fill(x0+w-t, y0, x0+w, y0+h/2)
		case 'c':
			fill(x0+w-t, y0+h/2, x0+w, y0+h)
		case 'd':
			fill(x0, y0+h-t, x0+w, y0+h)
		case 'e':
			fill(x0, y0+h/2, x0+t, y0+h)
		case 'f':
			fill(x0, y0, x0+t, y0+h/2)
		case 'g':
			fill(x0, y0+h/2-t/2, x0+w, y0+h/2+t/2)
		}
	}
	// checkerboard, 64 px squares, shifted by the page number
	for y := 700; y < 1080; y += 64 {
		for x := 120; x < PageWidth-120; x += 64 {
			if ((x-120)/64+(y-700)/64+n)%2 == 0 {
				fill(x, y, x+64, min(y+64, 1080))
			}
		}
	}
	return img
}
