package proc

import (
	"bytes"
	"errors"
	"fmt"
	"math"
)

// The helpers below work on []byte instead of strings so the hot parsers
// (smaps, stat, status of every thread) do not allocate per field; strconv
// would need a string conversion and allocates a *NumError on failure anyway.

var errEmptyNumber = errors.New("empty number")

// parseUint parses an unsigned number in base 8, 10 or 16 without prefix or
// sign and rejects overflow.
func parseUint(b []byte, base int) (uint64, error) {
	if len(b) == 0 {
		return 0, errEmptyNumber
	}
	var v uint64
	ubase := uint64(base)
	for _, c := range b {
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		case 'A' <= c && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, fmt.Errorf("invalid digit in %q", b)
		}
		if d >= ubase {
			return 0, fmt.Errorf("invalid digit in %q", b)
		}
		if v > (math.MaxUint64-d)/ubase {
			return 0, fmt.Errorf("number %q overflows uint64", b)
		}
		v = v*ubase + d
	}
	return v, nil
}

// parseInt parses a signed decimal number.
func parseInt(b []byte) (int64, error) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	u, err := parseUint(b, 10)
	if err != nil {
		return 0, err
	}
	if neg {
		if u > 1<<63 {
			return 0, fmt.Errorf("number -%s overflows int64", b)
		}
		return -int64(u), nil
	}
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("number %s overflows int64", b)
	}
	return int64(u), nil
}

func parseUint32(b []byte, base int) (uint32, error) {
	v, err := parseUint(b, base)
	if err != nil {
		return 0, err
	}
	if v > math.MaxUint32 {
		return 0, fmt.Errorf("number %q overflows uint32", b)
	}
	return uint32(v), nil
}

func parseIntField(b []byte) (int, error) {
	v, err := parseInt(b)
	return int(v), err
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// nextField splits off the first whitespace-separated field of b. It returns
// an empty field when b holds only whitespace.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !isSpace(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}

// nextLine splits off the first line of b without its '\n'.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// cutKey splits a "Key:<ws>value" line as used by status, fdinfo and smaps.
func cutKey(line []byte) (key, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return nil, nil, false
	}
	return line[:i], trimSpace(line[i+1:]), true
}

// parseIntList parses whitespace-separated signed decimals, as in the status
// NSpid line or a children file.
func parseIntList(b []byte) ([]int, error) {
	var out []int
	for {
		var f []byte
		f, b = nextField(b)
		if len(f) == 0 {
			return out, nil
		}
		v, err := parseIntField(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}
