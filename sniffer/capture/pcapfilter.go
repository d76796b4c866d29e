package capture

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// A pure-Go compiler for the part of pcap-filter(7) that voipmonitor.conf's
// `filter` key is written in (VoIPmonitor hands it to libpcap's
// pcap_compile). Supported: host, src host, dst host, net A/N, net A mask M,
// port, src port, dst port, portrange a-b (each with src/dst, src or dst,
// src and dst), the protocols ip, ip6, udp, tcp, sctp, icmp (and ip/ip6
// before host/net, udp/tcp/sctp before port/portrange), vlan [id], and/&&,
// or/||, not/!, parentheses, and pcap's abbreviations ("host A or B" repeats
// the last qualifiers). and and or have equal precedence and associate left
// to right, not binds tightest, as in pcap-filter(7). Everything else is
// refused with the token and its column.
//
// The expression compiles to classic BPF with libpcap's semantics: the
// kernel runs it on a live socket (KernelProgram), and Matcher runs the
// same program on frames read from files.

// Bounds on what CompileFilter accepts.
const (
	maxFilterLen   = 4096 // bytes of expression
	maxFilterDepth = 32   // nested parentheses and nots
	maxFilterPrims = 256  // primitives
	maxFilterVLANs = 8    // vlan keywords
	// maxBPFInsns leaves room under the kernel's BPF_MAXINSNS (4096) for
	// the programs a live capture runs first (After, OpenLive's prefixes).
	maxBPFInsns = 4096 - 256
)

type filterTok struct {
	kind byte // 'w' word, '(' ')' '!' '&' '|', 0 = end
	text string
	col  int // 1-based
}

func lexFilter(s string) ([]filterTok, error) {
	var toks []filterTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, filterTok{kind: c, text: s[i : i+1], col: i + 1})
			i++
		case c == '!':
			toks = append(toks, filterTok{kind: '!', text: "!", col: i + 1})
			i++
		case c == '&' || c == '|':
			if i+1 >= len(s) || s[i+1] != c {
				return nil, fmt.Errorf("%w: %q at column %d: bitwise arithmetic is not in the supported subset (%c%c is the boolean operator)", ErrFilterUnsupported, s[i:i+1], i+1, c, c)
			}
			toks = append(toks, filterTok{kind: c, text: s[i : i+2], col: i + 1})
			i += 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()!&|", rune(s[j])) {
				j++
			}
			w := s[i:j]
			switch w { // pcap-filter's keywords are lower case only
			case "and":
				toks = append(toks, filterTok{kind: '&', text: w, col: i + 1})
			case "or":
				toks = append(toks, filterTok{kind: '|', text: w, col: i + 1})
			case "not":
				toks = append(toks, filterTok{kind: '!', text: w, col: i + 1})
			default:
				toks = append(toks, filterTok{kind: 'w', text: w, col: i + 1})
			}
			i = j
		}
	}
	return append(toks, filterTok{col: len(s) + 1}), nil
}

// Node operators.
const (
	opPrim = iota
	opAnd
	opOr
	opNot
)

// Primitive kinds.
const (
	kProto = iota // ip, ip6, udp, tcp, sctp, icmp alone
	kHost
	kNet
	kPort
	kPortRange
	kVLAN
)

// Protocol qualifiers (IP protocol numbers where they are one).
const (
	pAny  = 0
	pICMP = 1
	pTCP  = 6
	pUDP  = 17
	pSCTP = 132
	pIP   = 0x10000 // ethertype qualifiers, outside the protocol byte
	pIP6  = 0x10001
)

// Direction qualifiers.
const (
	dSrcOrDst = iota
	dSrc
	dDst
	dSrcAndDst
)

type filterPrim struct {
	kind, proto, dir int
	v6               bool
	addr, mask       [16]byte // host and net (IPv4 in the first 4 bytes)
	lo, hi           uint16   // port and portrange
	vlanID           int      // -1: any
	shift            int      // vlan keywords before this primitive
}

type filterNode struct {
	op   int
	l, r int // operands (opAnd, opOr: both; opNot: l)
	prim filterPrim
}

// qual is the qualifiers a bare ID inherits ("host A or B").
type qual struct {
	set             bool
	proto, dir, typ int
}

type filterParser struct {
	toks  []filterTok
	pos   int
	nodes []filterNode
	last  qual
	vlans int
	prims int
	depth int
}

// Filter is a compiled pcap-filter expression.
type Filter struct {
	expr  string
	nodes []filterNode
	root  int
	vlans int
}

// String returns the expression.
func (f *Filter) String() string { return f.expr }

// CompileFilter parses a pcap-filter(7) expression of the supported subset.
// An empty (or blank) expression is no filter: nil, nil. Errors wrap
// ErrFilterSyntax, ErrFilterUnsupported or ErrFilterLimit and name the
// token and its column.
func CompileFilter(expr string) (*Filter, error) {
	if len(expr) > maxFilterLen {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrFilterLimit, len(expr), maxFilterLen)
	}
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	toks, err := lexFilter(expr)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	root, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == 'w' && pcapKeywords[t.text] {
		return nil, fmt.Errorf("%w: %q at column %d is not in the supported subset of pcap-filter", ErrFilterUnsupported, t.text, t.col)
	}
	if t := p.peek(); t.kind != 0 {
		return nil, fmt.Errorf("%w: unexpected %q at column %d", ErrFilterSyntax, t.text, t.col)
	}
	f := &Filter{expr: expr, nodes: p.nodes, root: root, vlans: p.vlans}
	// Both programs must fit the kernel's limit.
	if _, err := f.KernelProgram(); err != nil {
		return nil, err
	}
	return f, nil
}

func (p *filterParser) peek() filterTok { return p.toks[p.pos] }

func (p *filterParser) next() filterTok {
	t := p.toks[p.pos]
	if t.kind != 0 {
		p.pos++
	}
	return t
}

func (p *filterParser) add(n filterNode) int {
	p.nodes = append(p.nodes, n)
	return len(p.nodes) - 1
}

// expr := unary { (and | or) unary }, left to right, equal precedence.
func (p *filterParser) expr() (int, error) {
	l, err := p.unary()
	if err != nil {
		return 0, err
	}
	for {
		t := p.peek()
		if t.kind != '&' && t.kind != '|' {
			return l, nil
		}
		p.next()
		r, err := p.unary()
		if err != nil {
			return 0, err
		}
		op := opAnd
		if t.kind == '|' {
			op = opOr
		}
		l = p.add(filterNode{op: op, l: l, r: r})
	}
}

func (p *filterParser) enter(t filterTok) error {
	p.depth++
	if p.depth > maxFilterDepth {
		return fmt.Errorf("%w: nesting deeper than %d at column %d", ErrFilterLimit, maxFilterDepth, t.col)
	}
	return nil
}

func (p *filterParser) unary() (int, error) {
	t := p.peek()
	switch t.kind {
	case '!':
		p.next()
		if err := p.enter(t); err != nil {
			return 0, err
		}
		x, err := p.unary()
		p.depth--
		if err != nil {
			return 0, err
		}
		return p.add(filterNode{op: opNot, l: x}), nil
	case '(':
		p.next()
		if err := p.enter(t); err != nil {
			return 0, err
		}
		x, err := p.expr()
		p.depth--
		if err != nil {
			return 0, err
		}
		if c := p.next(); c.kind != ')' {
			return 0, fmt.Errorf("%w: %s at column %d, want ) for the ( at column %d", ErrFilterSyntax, describe(c), c.col, t.col)
		}
		p.last = qual{} // "(host A) or B" is no abbreviation to libpcap
		return x, nil
	case 'w':
		return p.primitive()
	}
	return 0, fmt.Errorf("%w: %s at column %d, want a primitive", ErrFilterSyntax, describe(t), t.col)
}

func describe(t filterTok) string {
	if t.kind == 0 {
		return "end of expression"
	}
	return strconv.Quote(t.text)
}

var filterProtos = map[string]int{"ip": pIP, "ip6": pIP6, "udp": pUDP, "tcp": pTCP, "sctp": pSCTP, "icmp": pICMP}

var filterTypes = map[string]int{"host": kHost, "net": kNet, "port": kPort, "portrange": kPortRange}

// pcapKeywords are pcap-filter(7) words outside the subset: refused by name.
var pcapKeywords = map[string]bool{"ether": true, "arp": true, "rarp": true, "gateway": true, "broadcast": true,
	"multicast": true, "less": true, "greater": true, "len": true, "proto": true, "protochain": true, "mpls": true,
	"pppoes": true, "pppoed": true, "geneve": true, "icmp6": true, "igmp": true, "igrp": true, "pim": true, "vrrp": true,
	"carp": true, "ah": true, "esp": true, "inbound": true, "outbound": true, "ifname": true, "on": true, "decnet": true,
	"iso": true, "atalk": true, "aarp": true, "ipx": true, "netbeui": true, "stp": true, "llc": true, "wlan": true,
	"type": true, "subtype": true, "addr1": true, "addr2": true, "addr3": true, "addr4": true, "ra": true, "ta": true,
	"link": true, "ppp": true, "slip": true, "fddi": true, "tr": true, "lat": true, "mopdl": true, "moprc": true,
	"sca": true, "clnp": true, "esis": true, "isis": true, "radio": true, "dir": true, "reason": true, "rnr": true,
	"rulenum": true, "rset": true, "srnr": true, "action": true, "hdpcap": true, "mask": true}

func (p *filterParser) primitive() (int, error) {
	p.prims++
	if p.prims > maxFilterPrims {
		return 0, fmt.Errorf("%w: more than %d primitives at column %d", ErrFilterLimit, maxFilterPrims, p.peek().col)
	}
	t := p.next()
	w := t.text
	if lw := strings.ToLower(w); lw != w && (lw == "and" || lw == "or" || lw == "not" || lw == "vlan" || lw == "src" || lw == "dst" ||
		filterProtos[lw] != 0 || filterTypes[lw] != 0 || pcapKeywords[lw]) {
		return 0, fmt.Errorf("%w: %q at column %d: pcap-filter keywords are lower case", ErrFilterSyntax, t.text, t.col)
	}
	if w == "vlan" {
		return p.vlan(t)
	}
	q := qual{set: true, proto: pAny, dir: dSrcOrDst, typ: -1}
	proto, isProto := filterProtos[w]
	_, isDir := map[string]bool{"src": true, "dst": true}[w]
	_, isType := filterTypes[w]
	if !isProto && !isDir && !isType {
		// A bare ID: the qualifiers of the primitive before the and/or
		// again ("host A or B"); libpcap knows no other.
		if pcapKeywords[w] {
			return 0, fmt.Errorf("%w: %q at column %d is not in the supported subset of pcap-filter", ErrFilterUnsupported, t.text, t.col)
		}
		if !p.last.set {
			if _, err := netip.ParseAddr(w); err == nil || isNumber(w) {
				return 0, fmt.Errorf("%w: %q at column %d: host, net, port or portrange before it (a bare address or port only repeats the qualifiers of the primitive before and/or)", ErrFilterSyntax, t.text, t.col)
			}
			if isHostName(w) {
				return 0, fmt.Errorf("%w: %q at column %d is not in the supported subset of pcap-filter (a host name? write host and an address)", ErrFilterUnsupported, t.text, t.col)
			}
			return 0, fmt.Errorf("%w: %q at column %d is not in the supported subset of pcap-filter", ErrFilterUnsupported, t.text, t.col)
		}
		q = p.last
		p.pos--
		return p.id(q, true)
	}
	if isProto {
		q.proto = proto
		n := p.peek()
		nw := n.text
		if n.kind != 'w' || (nw != "src" && nw != "dst" && filterTypes[nw] == 0 && nw != "host") {
			p.last = qual{}
			return p.add(filterNode{op: opPrim, prim: filterPrim{kind: kProto, proto: proto, vlanID: -1, shift: p.vlans}}), nil
		}
		t = p.next()
		w = nw
	}
	if w == "src" || w == "dst" {
		q.dir = dSrc
		if w == "dst" {
			q.dir = dDst
		}
		// "src or dst" / "src and dst" (an and/or followed by the other direction)
		if c := p.peek(); (c.kind == '|' || c.kind == '&') && p.pos+1 < len(p.toks) {
			o := p.toks[p.pos+1].text
			if p.toks[p.pos+1].kind == 'w' && (o == "src" || o == "dst") && o != w {
				q.dir = dSrcOrDst
				if c.kind == '&' {
					q.dir = dSrcAndDst
				}
				p.pos += 2
			}
		}
		n := p.peek()
		if typ, ok := filterTypes[n.text]; ok && n.kind == 'w' {
			p.next()
			q.typ = typ
		} else {
			q.typ = kHost
		}
	} else {
		q.typ = filterTypes[w]
	}
	return p.id(q, false)
}

// vlan [id]: every primitive after it in the expression reads 4 bytes
// further, as libpcap's.
func (p *filterParser) vlan(t filterTok) (int, error) {
	if p.vlans >= maxFilterVLANs {
		return 0, fmt.Errorf("%w: more than %d vlan at column %d", ErrFilterLimit, maxFilterVLANs, t.col)
	}
	pr := filterPrim{kind: kVLAN, vlanID: -1, shift: p.vlans}
	if n := p.peek(); n.kind == 'w' && n.text != "" && n.text[0] >= '0' && n.text[0] <= '9' {
		p.next()
		v, err := filterNumber(n.text, 4095)
		if err != nil {
			return 0, fmt.Errorf("%w: vlan id %q at column %d: %v", ErrFilterSyntax, n.text, n.col, err)
		}
		pr.vlanID = v
	}
	p.vlans++
	p.last = qual{}
	return p.add(filterNode{op: opPrim, prim: pr}), nil
}

// filterNumber parses a decimal or 0x number up to max.
func filterNumber(s string, max int) (int, error) {
	base := 10
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s, base = s[2:], 16
	}
	if s == "" || strings.ContainsAny(s, "+-_") {
		return 0, fmt.Errorf("not a number")
	}
	v, err := strconv.ParseUint(s, base, 32)
	if err != nil {
		return 0, fmt.Errorf("not a number")
	}
	if v > uint64(max) {
		return 0, fmt.Errorf("%d > %d", v, max)
	}
	return int(v), nil
}

// id reads the ID of a primitive with qualifiers q (bare: the ID stands
// alone, its qualifiers implied).
func (p *filterParser) id(q qual, bare bool) (int, error) {
	t := p.next()
	if t.kind != 'w' {
		return 0, fmt.Errorf("%w: %s at column %d, want an address or a port", ErrFilterSyntax, describe(t), t.col)
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: %q at column %d: %s", ErrFilterSyntax, t.text, t.col, why)
	}
	w := t.text
	if _, kw := filterProtos[w]; kw || pcapKeywords[w] || filterTypes[w] != 0 || w == "host" || w == "src" || w == "dst" || w == "vlan" {
		if pcapKeywords[w] {
			return 0, fmt.Errorf("%w: %q at column %d is not in the supported subset of pcap-filter", ErrFilterUnsupported, t.text, t.col)
		}
		return 0, bad("want an address or a port")
	}
	pr := filterPrim{kind: q.typ, proto: q.proto, dir: q.dir, vlanID: -1, shift: p.vlans}
	switch q.typ {
	case kHost:
		if q.proto != pAny && q.proto != pIP && q.proto != pIP6 {
			return 0, bad("host cannot follow a transport protocol")
		}
		a, err := netip.ParseAddr(t.text)
		if err != nil || a.Zone() != "" {
			if isNumber(t.text) {
				return 0, bad("a number where an address is wanted (port or portrange before it?)")
			}
			if isHostName(t.text) {
				return 0, fmt.Errorf("%w: %q at column %d: host names are not resolved, write an address", ErrFilterUnsupported, t.text, t.col)
			}
			if bare {
				return 0, fmt.Errorf("%w: %q at column %d is not in the supported subset of pcap-filter (nor an address)", ErrFilterUnsupported, t.text, t.col)
			}
			return 0, bad("not an IPv4 or IPv6 address")
		}
		if err := setAddr(&pr, a, 128); err != nil {
			return 0, bad(err.Error())
		}
	case kNet:
		if q.proto != pAny && q.proto != pIP && q.proto != pIP6 {
			return 0, bad("net cannot follow a transport protocol")
		}
		if err := p.net(&pr, t); err != nil {
			return 0, err
		}
	case kPort, kPortRange:
		if q.proto != pAny && q.proto != pUDP && q.proto != pTCP && q.proto != pSCTP {
			return 0, bad("port needs udp, tcp or sctp (or no protocol)")
		}
		lo, hi := t.text, t.text
		if q.typ == kPortRange {
			var ok bool
			if lo, hi, ok = strings.Cut(t.text, "-"); !ok {
				return 0, bad("want a range such as 10000-20000")
			}
		}
		l, err := filterNumber(lo, 65535)
		if err != nil {
			if isHostName(lo) {
				return 0, fmt.Errorf("%w: %q at column %d: service names are not resolved, write a number", ErrFilterUnsupported, t.text, t.col)
			}
			return 0, bad("port: " + err.Error())
		}
		h, err := filterNumber(hi, 65535)
		if err != nil {
			return 0, bad("port: " + err.Error())
		}
		if l > h {
			l, h = h, l // libpcap swaps a reversed range
		}
		pr.lo, pr.hi = uint16(l), uint16(h)
	}
	if (pr.proto == pIP && pr.v6) || (pr.proto == pIP6 && !pr.v6 && (pr.kind == kHost || pr.kind == kNet)) {
		return 0, bad("address family does not match " + map[int]string{pIP: "ip", pIP6: "ip6"}[pr.proto])
	}
	p.last = q
	return p.add(filterNode{op: opPrim, prim: pr}), nil
}

func isNumber(s string) bool {
	_, err := filterNumber(s, 1<<31)
	return err == nil
}

func isHostName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// setAddr stores a with a prefix of bits (capped at the family's length).
func setAddr(pr *filterPrim, a netip.Addr, bits int) error {
	a = a.Unmap()
	pr.v6 = a.Is6()
	n := 32
	if pr.v6 {
		n = 128
	}
	bits = min(bits, n)
	b := a.AsSlice()
	copy(pr.addr[:], b)
	for i := 0; i < bits; i++ {
		pr.mask[i/8] |= 0x80 >> (i % 8)
	}
	for i := range b {
		if pr.addr[i]&^pr.mask[i] != 0 {
			return fmt.Errorf("non-network bits set in the address (want /%d of %s)", bits, netip.PrefixFrom(a, bits).Masked().Addr())
		}
	}
	return nil
}

// net reads A/N, A mask M, or A (IPv4 A with 1-4 parts is /8-/32).
func (p *filterParser) net(pr *filterPrim, t filterTok) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q at column %d: %s", ErrFilterSyntax, t.text, t.col, why)
	}
	addr, plen, hasLen := strings.Cut(t.text, "/")
	a, bits, err := netAddr(addr)
	if err != nil {
		if isHostName(addr) {
			return fmt.Errorf("%w: %q at column %d: network names are not resolved, write an address", ErrFilterUnsupported, t.text, t.col)
		}
		return bad(err.Error())
	}
	if hasLen && a.Is4() && !strings.Contains(addr, ".") {
		return bad("write the network dotted (10.0.0.0/8), as libpcap wants it")
	}
	if hasLen {
		max := 32
		if a.Is6() {
			max = 128
		}
		if bits, err = filterNumber(plen, max); err != nil || strings.HasPrefix(plen, "0x") {
			return bad(fmt.Sprintf("prefix length: want 0-%d", max))
		}
	} else if m := p.peek(); m.kind == 'w' && m.text == "mask" {
		p.next()
		mt := p.next()
		ma, err := netip.ParseAddr(mt.text)
		if mt.kind != 'w' || err != nil || !ma.Is4() || !a.Is4() {
			return fmt.Errorf("%w: %s at column %d: mask wants an IPv4 network and an IPv4 mask", ErrFilterSyntax, describe(mt), mt.col)
		}
		m4 := ma.As4()
		v := uint32(m4[0])<<24 | uint32(m4[1])<<16 | uint32(m4[2])<<8 | uint32(m4[3])
		bits = 0
		for v&0x80000000 != 0 {
			bits++
			v <<= 1
		}
		if v != 0 {
			return fmt.Errorf("%w: %q at column %d: the mask's bits are not contiguous", ErrFilterUnsupported, mt.text, mt.col)
		}
	} else if a.Is6() {
		bits = 128
	}
	if err := setAddr(pr, a, bits); err != nil {
		return bad(err.Error())
	}
	return nil
}

// netAddr parses an address, IPv4 with 1-4 dotted parts (10, 10.1, 10.1.2)
// as libpcap's net, and the prefix those parts imply.
func netAddr(s string) (netip.Addr, int, error) {
	if strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, 0, fmt.Errorf("not an IPv6 address")
		}
		return a, 128, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, 0, fmt.Errorf("not an IPv4 network")
	}
	var b [4]byte
	for i, x := range parts {
		v, err := strconv.ParseUint(x, 10, 8)
		if err != nil || x == "" || len(x) > 1 && x[0] == '0' {
			return netip.Addr{}, 0, fmt.Errorf("not an IPv4 network")
		}
		b[i] = byte(v)
	}
	return netip.AddrFrom4(b), 8 * len(parts), nil
}
