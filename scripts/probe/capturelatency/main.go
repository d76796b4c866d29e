// capturelatency measures how long a datagram sent on lo takes to come out of
// capture.OpenLive (AF_PACKET, TPACKET_V3) for a given ring block timeout:
//
//	sudo go run ./scripts/probe/capturelatency -tov 64ms   # the kernel ring's old default
//	sudo go run ./scripts/probe/capturelatency -tov 4ms    # capture_block_timeout default
//
// It sends 250 timestamped datagrams, one every 20 ms (an RTP stream's pace),
// and prints p50/p95 of send → read.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"sort"
	"time"

	"pbx-agent/sniffer/capture"
)

func main() {
	tov := flag.Duration("tov", 4*time.Millisecond, "block timeout")
	flag.Parse()
	src, err := capture.OpenLive(capture.LiveOptions{Interface: "lo", Filter: capture.UDPPortFilter(), BlockSize: 1 << 20, NumBlocks: 8, BlockTimeout: *tov})
	if err != nil {
		panic(err)
	}
	rx, _ := net.ListenPacket("udp", "127.0.0.1:0")
	conn, _ := net.Dial("udp", rx.LocalAddr().String())
	marker := []byte("latprobe!")
	go func() {
		for i := 0; i < 250; i++ {
			b := append([]byte{}, marker...)
			b = binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixNano()))
			conn.Write(b)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var lat, kern []float64
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) && len(lat) < 250 {
		data, ci, err := src.ReadPacket()
		if errors.Is(err, capture.ErrTimeout) {
			continue
		}
		i := bytes.Index(data, marker)
		if i < 0 {
			continue
		}
		sent := int64(binary.BigEndian.Uint64(data[i+len(marker):]))
		lat = append(lat, float64(time.Now().UnixNano()-sent)/1e6)
		kern = append(kern, float64(ci.Timestamp.UnixNano()-sent)/1e6)
	}
	sort.Float64s(lat)
	sort.Float64s(kern)
	fmt.Printf("tov %v: n=%d send->read p50 %.2f ms p95 %.2f ms (send->kernel timestamp p50 %.3f)\n", *tov, len(lat), lat[len(lat)/2], lat[len(lat)*95/100], kern[len(kern)/2])
}
