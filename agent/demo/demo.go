// Package demo is the call the agent replays when it has no config file and
// no interface (`pbx-agent` on a fresh machine, `make run`): a real
// Asterisk 20 call between two baresip phones on loopback, and the AMI
// session Asterisk sent during the same call, embedded in the binary so
// the demo works from any folder and from the .deb.
//
// The files are copies of testdata/pcap/asterisk-call-answered.pcap and
// testdata/ami/ami-call-answered{,.sent}.raw (see testdata/README.md).
package demo

import _ "embed"

// CaptureName names the embedded capture in logs.
const CaptureName = "embedded asterisk-call-answered.pcap"

// Capture is the call's SIP and RTP (pcap).
//
//go:embed asterisk-call-answered.pcap
var Capture []byte

// AMI is what Asterisk sent on the AMI session during the call.
//
//go:embed ami-call-answered.raw
var AMI []byte

// AMISent is what the AMI client sent (its Getvar actions tie channels to
// SIP Call-IDs).
//
//go:embed ami-call-answered.sent.raw
var AMISent []byte
