// Package pathcanon is the gateway's one rule for spelling a request path. Every spelling that
// an upstream (nginx, Express, Spring/Tomcat, http.FileServer) could resolve to the same resource
// becomes one canonical escaped path; the gateway prices, records and forwards that path, so an
// upstream's own normalisation has nothing left to change.
//
// The rule, applied to the escaped path (r.URL.EscapedPath()):
//   - escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded, every other escape is
//     kept with upper-case hex; %2F and %5C stay escaped and never separate segments;
//   - `;params` are removed from every segment (before dot segments are resolved, as Tomcat does);
//   - repeated slashes collapse; `.` and `..` segments are resolved (RFC 3986 §5.2.4), and a
//     path ending in a dot segment keeps its trailing slash;
//   - characters that may not appear raw in a path (space, `"`, non-ASCII bytes, ...) are escaped.
//
// Refused: a malformed escape, a raw backslash, a raw or encoded control character (encoded NUL
// included), `..` above the root, and a path that does not start with a slash.
package pathcanon

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error of Canonical. The errors never quote the path: callers may
// send them to clients.
var ErrInvalid = errors.New("invalid path")

const upperHex = "0123456789ABCDEF"

func invalid(what string, at int) error {
	return fmt.Errorf("%w: %s at byte %d", ErrInvalid, what, at)
}

// Canonical returns the canonical form of an escaped path; the empty path is "/".
func Canonical(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", invalid("a path that does not start with /", 0)
	}
	if isCanonical(p) {
		return p, nil // the common case: no allocation
	}
	if err := check(p); err != nil {
		return "", err
	}
	buf := make([]byte, 0, len(p))
	var starts []int // offset in buf of each kept segment's slash, for ".."
	trailing := false
	rest := p[1:]
	for {
		raw, tail, more := strings.Cut(rest, "/")
		raw, _, _ = strings.Cut(raw, ";")
		start := len(buf)
		buf = append(buf, '/')
		buf = appendSegment(buf, raw)
		switch seg := string(buf[start+1:]); seg {
		case "", ".":
			buf = buf[:start]
			trailing = true
		case "..":
			if len(starts) == 0 {
				return "", invalid("a .. segment above the root", len(p)-len(rest))
			}
			buf = buf[:starts[len(starts)-1]]
			starts = starts[:len(starts)-1]
			trailing = true
		default:
			starts = append(starts, start)
			trailing = false
		}
		if !more {
			break
		}
		rest = tail
	}
	if len(buf) == 0 || trailing {
		buf = append(buf, '/')
	}
	return string(buf), nil
}

// check refuses what no spelling rule can make safe.
func check(p string) error {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return invalid("a control character", i)
		case c == '\\':
			return invalid("a backslash", i)
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return invalid("a malformed percent-escape", i)
			}
			switch v := unhex(p[i+1])<<4 | unhex(p[i+2]); {
			case v == 0:
				return invalid("an encoded NUL", i)
			case v < 0x20 || v == 0x7f:
				return invalid("an encoded control character", i)
			}
			i += 2
		}
	}
	return nil
}

// appendSegment appends the canonical spelling of one segment (params already cut, escapes
// already checked).
func appendSegment(buf []byte, raw string) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
			if unreserved(c) {
				buf = append(buf, c)
			} else {
				buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
			}
			continue
		}
		if pathChar(c) {
			buf = append(buf, c)
		} else {
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return buf
}

// isCanonical reports, without allocating, whether p is already canonical (plain characters
// only, no empty or dot segments).
func isCanonical(p string) bool {
	seg := 1 // start of the current segment
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if c := p[i]; c == ';' || !pathChar(c) {
				return false
			}
			continue
		}
		switch p[seg:i] {
		case ".", "..":
			return false
		case "":
			if i < len(p) { // "//"; an empty last segment is the trailing slash
				return false
			}
		}
		seg = i + 1
	}
	return true
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// pathChar: RFC 3986 pchar without pct-encoded, plus the slash.
func pathChar(c byte) bool {
	if unreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// Key is the form in which canonical paths are compared. Escapes are decoded except %2F, %5C
// and %25 (decoding those would move segment boundaries or turn data into escapes), so "/a:b"
// and "/a%3Ab" have one key: an upstream that decodes the path serves them as one resource. With
// fold, letters are case-folded with Unicode simple folding ("/Reports", "/REPORTS" and
// "/reports" share a key, and so does a Kelvin sign with "k"). A key is for comparison only,
// never a path to send.
func Key(p string, fold bool) string {
	if !strings.Contains(p, "%") && (!fold || !hasUpper(p)) {
		return p
	}
	buf := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if v == '/' || v == '\\' || v == '%' {
				buf = append(buf, '%', upperHex[v>>4], upperHex[v&15])
			} else {
				buf = append(buf, v)
			}
			i += 2
			continue
		}
		buf = append(buf, c)
	}
	if !fold {
		return string(buf)
	}
	out := make([]byte, 0, len(buf))
	for i := 0; i < len(buf); {
		r, size := utf8.DecodeRune(buf[i:])
		if r == utf8.RuneError && size <= 1 {
			out = append(out, buf[i]) // not UTF-8: compared byte for byte
			i++
			continue
		}
		out = utf8.AppendRune(out, foldRune(r))
		i += size
	}
	return string(out)
}

// hasUpper reports an upper-case ASCII letter or a non-ASCII byte (which may fold).
func hasUpper(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; 'A' <= c && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}

// foldRune maps every rune of a simple-folding orbit (the classes of strings.EqualFold) to one
// member: the smallest lower-case form, which for an orbit with an ASCII letter is that letter
// in lower case.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	m := unicode.ToLower(r)
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if l := unicode.ToLower(f); l < m {
			m = l
		}
	}
	return m
}

// DecodeSlashes returns how p reads to an upstream that takes %2F and %5C for separators
// (nginx decodes %2F before matching locations; Windows servers split on backslashes): literal
// is p with those escapes decoded and nothing else changed (Express routes "/a/.." as it is),
// resolved its canonical form (nginx resolves dot segments after decoding). ok says whether p
// has such escapes; err, whether resolved is refused. p must be canonical.
func DecodeSlashes(p string) (literal, resolved string, ok bool, err error) {
	if !strings.Contains(p, "%2F") && !strings.Contains(p, "%5C") {
		return p, p, false, nil
	}
	literal = strings.NewReplacer("%2F", "/", "%5C", "/").Replace(p)
	resolved, err = Canonical(literal)
	return literal, resolved, true, err
}
