// Package eol holds what the line-based protocol framers (SIP over a
// stream, AMI) share about line ends.
package eol

// EmptyLines returns the length of the empty lines, "\n" or "\r\n", at the
// start of p: the keep-alives or padding between two messages. A CR counts
// only with its LF: a lone CR starts a line like any other byte, so the
// framing does not depend on where a stream's segments were cut.
func EmptyLines(p []byte) int {
	k := 0
	for k < len(p) {
		switch {
		case p[k] == '\n':
			k++
		case p[k] == '\r' && k+1 < len(p) && p[k+1] == '\n':
			k += 2
		default:
			return k
		}
	}
	return k
}
