// Package wire is the manager API's wire format, shared by the server
// (agent/manager) and its clients (agent/manager/client, agent/sensors):
// VoIPmonitor's AES-128-CBC framing of requests and replies, the manager
// key and where it comes from (KeySource), and the records of pbx-agent's
// listen_stream command. It does no I/O of its own beyond the readers and
// writers it is handed, and knows nothing about the server.
//
// See shared/spec/voipmonitor.md §1 for the AES framing.
package wire
