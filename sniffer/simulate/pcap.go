package simulate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Snaplen of the pcaps WritePcap writes.
const Snaplen = 65535

// WritePcap generates the traffic o describes and streams it to w as a
// microsecond pcap with Ethernet link type. Memory stays bounded by the number
// of active calls, whatever the number of packets. It checks ctx every few
// thousand packets.
func WritePcap(ctx context.Context, w io.Writer, o Options) (*Truth, error) {
	g, err := New(o)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(Snaplen, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("simulate: write pcap header: %w", err)
	}
	for n := 0; ; n++ {
		if n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("simulate: after %d packets: %w", n, err)
			}
		}
		data, ci, err := g.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := pw.WritePacket(ci, data); err != nil {
			return nil, fmt.Errorf("simulate: write packet %d: %w", n, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("simulate: flush pcap: %w", err)
	}
	return g.Truth(), nil
}
