// Command gohttp is the done-when program of issue 11: a Go net/http
// server (its listener MPTCP, Go's default since 1.24) and a keep-alive
// client in a child process of its own, both in the tree that is dumped
// and restored while they talk.
//
//	gohttp [mptcp]    the server: prints "ADDR host:port" and
//	                  "LISTENER proto=N", starts the client, and once it has
//	                  answered 5 requests prints "ACCEPTED proto=N" (the
//	                  accepted connection's protocol) and "READY pid=PID".
//	gohttp client URL [mptcp]
//	                  the client: GET URL again and again on one
//	                  keep-alive connection, dialled with MPTCP if asked
//	                  (Go dials plain TCP by default).
//
// After SIGTERM the server sends SIGTERM to the client and waits for it;
// the client fails unless every request succeeded on one connection, the
// first (no error, no new connection: the restored connection carried
// on). The server checks that its listener and the accepted connection
// kept their protocol. It prints PASS and exits 0 when the client did and it
// answered requests after the restore as before, FAIL lines otherwise.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "client" {
		os.Exit(client(os.Args[2], len(os.Args) == 4))
	}
	os.Exit(server(len(os.Args) == 2 && os.Args[1] == "mptcp"))
}

// protocol is SO_PROTOCOL of a connection or listener: 262 for MPTCP, 6
// for TCP.
func protocol(c syscall.Conn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	p := -1
	rc.Control(func(fd uintptr) {
		p, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, 38) // SO_PROTOCOL
	})
	return p
}

func server(mptcpClient bool) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("FAIL: listen:", err)
		return 1
	}
	lnProto := protocol(ln.(*net.TCPListener))
	fmt.Printf("ADDR %s\nLISTENER proto=%d\n", ln.Addr(), lnProto)
	var served atomic.Int64
	accepted := make(chan *net.TCPConn, 1)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%d", served.Add(1))
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				select {
				case accepted <- c.(*net.TCPConn):
				default:
				}
			}
		},
	}
	go srv.Serve(ln)
	// The client is started with ForkExec, not os/exec: os.StartProcess
	// holds a pidfd, a descriptor kind beside the point here.
	self, _ := os.Executable()
	args := []string{self, "client", "http://" + ln.Addr().String() + "/"}
	if mptcpClient {
		args = append(args, "mptcp")
	}
	pid, err := syscall.ForkExec(self, args, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
	if err != nil {
		fmt.Println("FAIL: start the client:", err)
		return 1
	}
	for served.Load() < 5 {
		time.Sleep(10 * time.Millisecond)
	}
	conn := <-accepted
	connProto := protocol(conn)
	fmt.Printf("ACCEPTED proto=%d\nREADY pid=%d\n", connProto, os.Getpid())
	<-term
	before := served.Load()
	fails := 0
	if p := protocol(ln.(*net.TCPListener)); p != lnProto {
		fmt.Printf("FAIL: server: the listener's protocol is %d, was %d\n", p, lnProto)
		fails++
	}
	if p := protocol(conn); p != connProto {
		fmt.Printf("FAIL: server: the accepted connection's protocol is %d, was %d\n", p, connProto)
		fails++
	}
	// The client goes on after the restore: wait until it was answered
	// again (bounded: the test's own bound is longer).
	deadline := time.Now().Add(20 * time.Second)
	for served.Load() < before+5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := served.Load(); n < before+5 {
		fmt.Printf("FAIL: server: %d requests answered after SIGTERM, want 5\n", n-before)
		fails++
	}
	syscall.Kill(pid, syscall.SIGTERM)
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		fmt.Printf("FAIL: client: wait status %v (%v)\n", ws, err)
		fails++
	}
	if fails == 0 {
		fmt.Println("PASS")
		return 0
	}
	return 1
}

func client(url string, mptcp bool) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	var first net.Addr
	var newConns, errs, n int
	var lastErr error
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if first == nil {
			first = i.Conn.LocalAddr()
		} else if !i.Reused || i.Conn.LocalAddr().String() != first.String() {
			newConns++
		}
	}}
	d := &net.Dialer{}
	d.SetMultipathTCP(mptcp)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	for {
		select {
		case <-term:
			if errs > 0 || newConns > 0 || n == 0 {
				fmt.Printf("FAIL: client: %d requests, %d errors (last %v), %d new connections after the first\n", n, errs, lastErr, newConns)
				return 1
			}
			return 0
		default:
		}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
		resp, err := c.Do(req)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if _, perr := strconv.Atoi(string(b)); err == nil && perr != nil {
				err = perr
			}
		}
		if err != nil {
			errs++
			lastErr = err
		}
		n++
		time.Sleep(5 * time.Millisecond)
	}
}
