// amistorm measures the AMI client against two misbehaving managers (issue 17
// item 10): how many connections it makes in 15 s to a server that accepts the
// login and then drops the session, and how long it waits on a port that
// accepts and never sends the banner:
//
//	go run ./scripts/probe/amistorm
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"pbx-agent/ami"
)

func main() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func(c net.Conn) {
				defer c.Close()
				c.Write([]byte("Asterisk Call Manager/9.0.0\r\n"))
				r := bufio.NewReader(c)
				id := ""
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(l, "ActionID:") {
						id = strings.TrimSpace(strings.TrimPrefix(l, "ActionID:"))
					}
					if l == "\r\n" {
						c.Write([]byte("Response: Success\r\nActionID: " + id + "\r\nMessage: Authentication accepted\r\n\r\n"))
						time.Sleep(10 * time.Millisecond)
						return // then misbehave: drop the session
					}
				}
			}(c)
		}
	}()
	c := ami.New(ami.Config{Addr: ln.Addr().String(), Username: "u", Secret: "s", PingInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c.Run(ctx)
	fmt.Printf("server that drops after login: %d connections in 15 s (stats %+v)\n", conns.Load(), c.Stats())

	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			_ = c // held open, never written
		}
	}()
	c2 := ami.New(ami.Config{Addr: silent.Addr().String(), Username: "u", Secret: "s", PingInterval: -1})
	ctx2, cancel2 := context.WithCancel(context.Background())
	t0 := time.Now()
	go c2.Run(ctx2)
	for c2.Stats().Failures == 0 && time.Since(t0) < 60*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("silent server: gave up after %.1f s: %s\n", time.Since(t0).Seconds(), c2.Stats().Err)
	cancel2()
}
