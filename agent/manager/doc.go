// Package manager serves VoIPmonitor's manager API (TCP 5029 and a unix
// socket) so scripts and GUIs written for VoIPmonitor's sniffer work
// unchanged against pbx-agent.
//
// The protocol is one command per connection: the client sends a line
// (`listcalls\r\n\r\n`), the server writes the reply and closes the
// connection. Requests may be AES-128-CBC encrypted (`aes-128-cbc:` +
// ciphertext + `:sea`); replies to them are `aes:` + ciphertext. See
// shared/spec/voipmonitor.md §1.
//
// The server knows nothing about packets: call data comes through the Calls
// interface, live audio through AudioSource and FrameSource, the AES key
// through wire.KeySource. Every command is a Command in a map; handlers
// write to an io.Writer and can be tested without a socket.
//
// This package is the server and its commands only. The wire format (AES
// framing, listen_stream records, the key) is agent/manager/wire; the client
// (Exchange, DialStream) is agent/manager/client. Both work without the
// server.
package manager
