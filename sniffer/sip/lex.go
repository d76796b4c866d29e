package sip

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isTokenChar: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
func isTokenChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '-', '.', '!', '%', '*', '_', '+', '`', '\'', '~':
		return true
	}
	return false
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

// isScheme: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
func isScheme(b []byte) bool {
	if len(b) == 0 || !isAlpha(b[0]) {
		return false
	}
	for _, c := range b[1:] {
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipLWS skips spaces, tabs and line folds from i.
func skipLWS(b []byte, i int) int {
	for i < len(b) && isLWS(b[i]) {
		i++
	}
	return i
}

func skipWSP(b []byte, i, end int) int {
	for i < end && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

func trimLWS(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isLWS(b[i]) {
		i++
	}
	for j > i && isLWS(b[j-1]) {
		j--
	}
	return b[i:j]
}

// quotedEnd returns the index just past the closing quote of the quoted
// string starting at b[i] == '"', or -1 when it is unterminated.
func quotedEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// splitList calls fn for each comma-separated element of v, ignoring commas
// inside quoted strings and <...>. Elements are LWS-trimmed; empty ones are
// passed too (callers decide). It stops when fn returns false.
// It returns ErrQuote for an unterminated quoted string.
func splitList(v []byte, fn func(e []byte) bool) error {
	start, angle := 0, false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			j := quotedEnd(v, i)
			if j < 0 {
				return ErrQuote
			}
			i = j - 1
		case '<':
			angle = true
		case '>':
			angle = false
		case ',':
			if !angle {
				if !fn(trimLWS(v[start:i])) {
					return nil
				}
				start = i + 1
			}
		}
	}
	fn(trimLWS(v[start:]))
	return nil
}
