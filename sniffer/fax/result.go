package fax

// Modes of a fax call.
const (
	ModeT38  = "t38"  // T.38 over UDPTL
	ModeG711 = "g711" // T.30 over G.711 audio
)

// Result is what a receiver made of one direction of a call.
type Result struct {
	Mode     string `json:"mode"`
	Pages    int    `json:"pages"`
	Code     int    `json:"code"`   // spandsp's T.30 completion code (0 = OK), -1 if the session never ended
	Status   string `json:"status"` // its text ("OK", ...)
	RemoteID string `json:"remote_station_id"`
	// Src and Dst are the addresses the image came from and went to.
	Src string `json:"src,omitempty"`
	Dst string `json:"dst,omitempty"`
}
