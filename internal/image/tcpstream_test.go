package image

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	tcpstream "github.com/checkpoint-restore/go-criu/v7/crit/images/tcp-stream"
	"google.golang.org/protobuf/proto"
)

func sampleTCPStream() (*tcpstream.TcpStreamEntry, []byte, []byte) {
	inq, outq := []byte("received, not read"), []byte("sent, not acknowledged")
	return &tcpstream.TcpStreamEntry{
		InqLen: u32(uint32(len(inq))), InqSeq: u32(1000), OutqLen: u32(uint32(len(outq))), OutqSeq: u32(2000),
		OptMask: u32(7), SndWscale: u32(7), MssClamp: u32(65483), RcvWscale: u32(7), Timestamp: u32(12345),
		Cork: proto.Bool(false), Nodelay: proto.Bool(true), UnsqLen: u32(0),
		SndWl1: u32(999), SndWnd: u32(65536), MaxWindow: u32(65536), RcvWnd: u32(65536), RcvWup: u32(1000),
	}, inq, outq
}

// TestTCPStream writes a connection's state and both queues and reads them
// back; CRIU's crit sees the same queues; a truncated image is refused.
func TestTCPStream(t *testing.T) {
	d := newDir(t)
	e, inq, outq := sampleTCPStream()
	if err := d.WriteTCPStream(0x1234, e, inq, outq); err != nil {
		t.Fatal(err)
	}
	ge, gin, gout, err := d.ReadTCPStream(0x1234)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(ge, e) || !bytes.Equal(gin, inq) || !bytes.Equal(gout, outq) {
		t.Fatalf("read back %v %q %q", ge, gin, gout)
	}
	if err := d.WriteTCPStream(1, e, inq, nil); err == nil {
		t.Error("a send queue shorter than its length was written")
	}
	path := filepath.Join(d.Path(), TCPStreamName(0x1234))
	if critPath, err := exec.LookPath("crit"); err == nil {
		out, err := exec.Command(critPath, "decode", "-i", path).CombinedOutput()
		if err != nil {
			t.Fatalf("crit decode: %v\n%s", err, out)
		}
		var img struct{ Entries []map[string]any }
		if err := json.Unmarshal(out, &img); err != nil || len(img.Entries) != 1 {
			t.Fatalf("crit decode: %v\n%s", err, out)
		}
		extra, _ := img.Entries[0]["extra"].(map[string]any)
		for name, want := range map[string][]byte{"inq": inq, "outq": outq} {
			got, _ := extra[name].(string)
			if strings.ReplaceAll(got, "\n", "") != base64.StdEncoding.EncodeToString(want) {
				t.Errorf("crit decode: %s = %q, want %q", name, got, want)
			}
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("CRIU's crit is not installed: scripts/install-test-deps.sh should have installed package criu")
	}
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := d.ReadTCPStream(0x1234); err == nil || !strings.Contains(err.Error(), TCPStreamName(0x1234)) {
		t.Errorf("truncated image: %v", err)
	}
}
