package tokenexchange

import (
	"encoding/json"
	"errors"
)

var errNotObject = errors.New("not a JSON object")

// errDuplicate: a member name repeats. RFC 7519 §4 lets a parser refuse such a token or take the
// last value; refusing means no two parsers can read different claims out of one token.
var errDuplicate = errors.New("a JSON member name repeats")

// scanObject calls member for each member of the JSON object b, in order, with its name (escapes
// decoded) and its raw value. Names match exactly: encoding/json would fill a struct field sub
// from "Sub" or "SUB" too, and a token with a user-controlled claim of such a name could then
// choose its own subject. A repeated name is an error.
//
// It validates b first, so the scan itself can assume well-formed JSON; it allocates only names
// with escapes.
func scanObject(b []byte, member func(name string, value []byte)) error {
	if !json.Valid(b) {
		return errNotObject
	}
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return errNotObject
	}
	var seen [16]string // small objects; more names fall back to a map
	n := 0
	var more map[string]bool
	i = skipSpace(b, i+1)
	for b[i] != '}' {
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		end := endOfString(b, i)
		name, err := unquote(b[i:end])
		if err != nil {
			return err
		}
		for _, s := range seen[:n] {
			if s == name {
				return errDuplicate
			}
		}
		if n < len(seen) {
			seen[n] = name
			n++
		} else {
			if more == nil {
				more = map[string]bool{}
			}
			if more[name] {
				return errDuplicate
			}
			more[name] = true
		}
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // the colon
		vend := endOfValue(b, i)
		member(name, b[i:vend])
		i = skipSpace(b, vend)
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index after the closing quote of the string starting at b[i].
func endOfString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// endOfValue returns the index after the value starting at b[i].
func endOfValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = endOfString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// unquote decodes a JSON string; without escapes it is the bytes between the quotes.
func unquote(raw []byte) (string, error) {
	if s, ok := str(raw); ok {
		return s, nil
	}
	return "", errNotObject
}
