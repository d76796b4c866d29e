package ami_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"pbx-agent/ami"
)

// TestListAnswerBounded: a server that answers CoreShowChannels with an
// endless list (EventList: start, items, never Complete) fails the action
// once MaxListItems items came, not at its timeout with every item held
// (the reader appended each: about 1 kB per CoreShowChannel, without
// limit until the timeout).
func TestListAnswerBounded(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	go func() {
		fmt.Fprint(srv, "Asterisk Call Manager/9.0.0\r\n")
		br := bufio.NewReader(srv)
		id := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if v, ok := strings.CutPrefix(line, "ActionID: "); ok {
				id = strings.TrimSpace(v)
			}
			if line == "\r\n" {
				break
			}
		}
		fmt.Fprintf(srv, "Response: Success\r\nActionID: %s\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n", id)
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(srv, "Event: CoreShowChannel\r\nActionID: %s\r\nChannel: PJSIP/%d\r\nUniqueid: 1733580000.%d\r\n\r\n", id, i, i); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := ami.NewConn(ctx, cli, ami.ConnConfig{MaxListItems: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do(ctx, ami.NewAction("CoreShowChannels")); !errors.Is(err, ami.ErrListTooLong) {
		t.Fatalf("err = %v, want %v", err, ami.ErrListTooLong)
	}
}
