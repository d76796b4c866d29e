//go:build cgo && !nocodecs

package fax

/*
#include <stdint.h>
#include <stdlib.h>
#include <tiffio.h>

typedef struct {
	uint32_t width, length;
	uint16_t bps, spp, photometric;
	float xres, yres;
	uint16_t unit;
} fax_page_info_t;

static int fax_page_info(TIFF *t, fax_page_info_t *p) {
	p->bps = 1; p->spp = 1; p->photometric = PHOTOMETRIC_MINISWHITE;
	p->xres = 0; p->yres = 0; p->unit = RESUNIT_INCH;
	if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &p->width) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &p->length))
		return -1;
	TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &p->bps);
	TIFFGetField(t, TIFFTAG_SAMPLESPERPIXEL, &p->spp);
	TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &p->photometric);
	TIFFGetField(t, TIFFTAG_XRESOLUTION, &p->xres);
	TIFFGetField(t, TIFFTAG_YRESOLUTION, &p->yres);
	TIFFGetField(t, TIFFTAG_RESOLUTIONUNIT, &p->unit);
	return 0;
}

static int fax_write_page(TIFF *t, uint8_t *bits, uint32_t width, uint32_t rows, float xres, float yres, int page, int pages) {
	TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
	TIFFSetField(t, TIFFTAG_IMAGEWIDTH, width);
	TIFFSetField(t, TIFFTAG_IMAGELENGTH, rows);
	TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1);
	TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
	TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX3);
	TIFFSetField(t, TIFFTAG_GROUP3OPTIONS, 0);
	TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
	TIFFSetField(t, TIFFTAG_FILLORDER, FILLORDER_LSB2MSB);
	TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
	TIFFSetField(t, TIFFTAG_XRESOLUTION, xres);
	TIFFSetField(t, TIFFTAG_YRESOLUTION, yres);
	TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
	TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rows);
	TIFFSetField(t, TIFFTAG_PAGENUMBER, page, pages);
	uint32_t stride = (width + 7) / 8;
	for (uint32_t y = 0; y < rows; y++)
		if (TIFFWriteScanline(t, bits + (size_t) y * stride, y, 0) < 0)
			return -1;
	return TIFFWriteDirectory(t) ? 0 : -1;
}
static void fax_silence_tiff_warnings(void) {
	TIFFSetWarningHandler(NULL);
	TIFFSetErrorHandler(NULL);
}
*/
import "C"

import (
	"fmt"
	"image"
	"sync"
	"unsafe"
)

var quietOnce sync.Once

// quietTIFF stops libtiff printing warnings and errors on stderr (errors
// come back as return codes).
func quietTIFF() { quietOnce.Do(func() { C.fax_silence_tiff_warnings() }) }

// Page limits: anything larger is not a fax page.
const (
	maxWidth = 4864  // A3 at 400 dpi (T.4 widths go up to 4864)
	maxRows  = 16384 // a very long page at superfine resolution
	maxPages = 500
)

// PageInfo describes one page of a TIFF-F.
type PageInfo struct {
	Width, Rows int
	// XRes and YRes are in pixels per inch (204 × 98 standard, 204 × 196
	// fine, ...).
	XRes, YRes float64
}

func openTIFF(path, mode string) (*C.TIFF, error) {
	quietTIFF()
	cp, cm := C.CString(path), C.CString(mode)
	defer C.free(unsafe.Pointer(cp))
	defer C.free(unsafe.Pointer(cm))
	t := C.TIFFOpen(cp, cm)
	if t == nil {
		return nil, fmt.Errorf("%w: cannot open %s", ErrTIFF, path)
	}
	return t, nil
}

// CountPages returns the number of pages (directories) of a TIFF file.
func CountPages(path string) (int, error) {
	t, err := openTIFF(path, "r")
	if err != nil {
		return 0, err
	}
	defer C.TIFFClose(t)
	n := int(C.TIFFNumberOfDirectories(t))
	if n > maxPages {
		return 0, fmt.Errorf("%w: %d pages (max %d)", ErrTooBig, n, maxPages)
	}
	return n, nil
}

// ReadPage decodes page i (from 0) of a bilevel TIFF into a grey image
// (black 0, white 255).
func ReadPage(path string, i int) (*image.Gray, PageInfo, error) {
	t, err := openTIFF(path, "r")
	if err != nil {
		return nil, PageInfo{}, err
	}
	defer C.TIFFClose(t)
	if i < 0 || i >= maxPages || C.TIFFSetDirectory(t, C.tdir_t(i)) == 0 {
		return nil, PageInfo{}, fmt.Errorf("%w: no page %d", ErrTIFF, i+1)
	}
	var pi C.fax_page_info_t
	if C.fax_page_info(t, &pi) != 0 {
		return nil, PageInfo{}, fmt.Errorf("%w: page %d has no size", ErrTIFF, i+1)
	}
	info := PageInfo{Width: int(pi.width), Rows: int(pi.length), XRes: float64(pi.xres), YRes: float64(pi.yres)}
	if pi.unit == C.RESUNIT_CENTIMETER {
		info.XRes, info.YRes = info.XRes*2.54, info.YRes*2.54
	}
	if pi.bps != 1 || pi.spp != 1 {
		return nil, info, fmt.Errorf("%w: page %d is not bilevel (%d bits × %d samples)", ErrTIFF, i+1, pi.bps, pi.spp)
	}
	if info.Width <= 0 || info.Width > maxWidth || info.Rows <= 0 || info.Rows > maxRows {
		return nil, info, fmt.Errorf("%w: page %d is %d × %d", ErrTooBig, i+1, info.Width, info.Rows)
	}
	stride := int(C.TIFFScanlineSize(t))
	if stride < (info.Width+7)/8 {
		return nil, info, fmt.Errorf("%w: page %d scanline %d octets", ErrTIFF, i+1, stride)
	}
	line := C.malloc(C.size_t(stride))
	defer C.free(line)
	bits := unsafe.Slice((*byte)(line), stride)
	img := image.NewGray(image.Rect(0, 0, info.Width, info.Rows))
	black := byte(1)
	if pi.photometric == C.PHOTOMETRIC_MINISBLACK {
		black = 0
	}
	for y := range info.Rows {
		if C.TIFFReadScanline(t, line, C.uint32_t(y), 0) < 0 {
			return nil, info, fmt.Errorf("%w: page %d row %d", ErrTIFF, i+1, y)
		}
		row := img.Pix[y*img.Stride : y*img.Stride+info.Width]
		for x := range row {
			if (bits[x>>3]>>(7-uint(x&7)))&1 == black {
				row[x] = 0
			} else {
				row[x] = 255
			}
		}
	}
	return img, info, nil
}

// WriteTIFF writes pages as a TIFF-F (T.4 one-dimensional, as every fax
// machine accepts) at xres × yres pixels per inch; a pixel darker than
// mid-grey is black.
func WriteTIFF(path string, pages []*image.Gray, xres, yres float64) error {
	t, err := openTIFF(path, "w")
	if err != nil {
		return err
	}
	defer C.TIFFClose(t)
	for n, pg := range pages {
		b := pg.Bounds()
		w, h := b.Dx(), b.Dy()
		stride := (w + 7) / 8
		bits := C.calloc(C.size_t(stride*h), 1)
		buf := unsafe.Slice((*byte)(bits), stride*h)
		for y := range h {
			for x := range w {
				if pg.GrayAt(b.Min.X+x, b.Min.Y+y).Y < 128 {
					buf[y*stride+x>>3] |= 0x80 >> uint(x&7)
				}
			}
		}
		rc := C.fax_write_page(t, (*C.uint8_t)(bits), C.uint32_t(w), C.uint32_t(h), C.float(xres), C.float(yres), C.int(n), C.int(len(pages)))
		C.free(bits)
		if rc != 0 {
			return fmt.Errorf("%w: writing page %d of %s", ErrTIFF, n+1, path)
		}
	}
	return nil
}
