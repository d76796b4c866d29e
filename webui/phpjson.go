package webui

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// PHP's json_encode output is the contract (VoIPmonitor's GUI is PHP): the
// encoder below writes objects in insertion order, escapes "/" as "\/" and
// every non-ASCII character as \uXXXX, and reads strings that are not UTF-8
// as latin1 (the cdr tables' charset).

// kv is one member of an ordered object.
type kv struct {
	k string
	v any
}

// obj is a JSON object whose members keep their order.
type obj []kv

// rawJSON is inserted as is.
type rawJSON []byte

// appendJSON appends v in PHP's json_encode form. Supported: nil, string,
// []byte (as a string), bool, ints, uint32/uint64, float64, obj, []obj, []any,
// []string, rawJSON.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendPHPString(b, x)
	case []byte:
		if x == nil {
			return append(b, "null"...)
		}
		return appendPHPString(b, string(x))
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case float64:
		return appendPHPFloat(b, x)
	case rawJSON:
		return append(b, x...)
	case obj:
		if len(x) == 0 {
			return append(b, "{}"...)
		}
		b = append(b, '{')
		for i, m := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPHPString(b, m.k)
			b = append(b, ':')
			b = appendJSON(b, m.v)
		}
		return append(b, '}')
	case []obj:
		return appendArray(b, x, func(b []byte, o obj) []byte { return appendJSON(b, o) })
	case []any:
		return appendArray(b, x, appendJSON)
	case []string:
		return appendArray(b, x, appendPHPString)
	default:
		// Not reached by our handlers; keep the output valid JSON.
		j, err := json.Marshal(x)
		if err != nil {
			return append(b, "null"...)
		}
		return append(b, j...)
	}
}

// appendPHPFloat writes a float as PHP 7.1+ does (serialize_precision -1):
// the shortest form that reads back the same; integral values keep ".0".
func appendPHPFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendFloat(b, f, 'f', 1, 64)
	}
	if a := math.Abs(f); a < 1e-4 || a >= 1e15 {
		return strconv.AppendFloat(b, f, 'E', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendPHPString writes s with json_encode's default escaping.
func appendPHPString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '/':
				b = append(b, '\\', '/')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				if c < 0x20 {
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
				} else {
					b = append(b, c)
				}
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			r = rune(c) // latin1 byte
		}
		i += size
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			b = appendU(appendU(b, r1), r2)
		} else {
			b = appendU(b, r)
		}
	}
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15], hexDigits[r&15])
}

// appendArray writes xs as a JSON array, each element by elem.
func appendArray[T any](b []byte, xs []T, elem func([]byte, T) []byte) []byte {
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = elem(b, x)
	}
	return append(b, ']')
}
