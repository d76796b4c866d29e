// Package client talks to a manager API server (pbx-agent's or
// VoIPmonitor's sniffer) over TCP or a unix socket: Exchange sends one
// command and returns its reply; DialStream opens a listen_stream and reads
// its records. Both encrypt with the manager's AES key when given one. It
// depends on the wire format (agent/manager/wire) only, not on the server.
package client
