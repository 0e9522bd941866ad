package cpu

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"google.golang.org/protobuf/proto"
)

// TestXsaveRoundTrip converts a live thread's XSAVE area to the image entry
// and back: every byte the image carries must come back where it was.
func TestXsaveRoundTrip(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to seize a process")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	tr := ptrace.NewTracer()
	defer tr.Close()
	tc, err := tr.Seize(cmd.Process.Pid, cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Detach()
	area, err := tc.Xstate()
	if err != nil {
		t.Fatal(err)
	}
	// Make the state interesting: nonzero xmm registers and AVX halves.
	for i := offXMM; i < offXMM+lenXMM; i++ {
		area[i] = byte(i)
	}
	if c := xsaveComponent(featYMM); c.size > 0 {
		for i := 0; i < c.size; i++ {
			area[c.offset+i] = byte(3 * i)
		}
		area[offXstateBV] |= 1 << featYMM
	}
	img, err := XsaveToImage(area)
	if err != nil {
		t.Fatal(err)
	}
	back, err := XsaveFromImage(img, area)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back[:offSWBytes], area[:offSWBytes]) {
		t.Fatal("legacy region differs after the round trip")
	}
	img2, err := XsaveToImage(back)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(img, img2) {
		t.Fatalf("image entry differs after the round trip:\n%v\n%v", img, img2)
	}
	if Xfeatures(area) == 0 {
		t.Fatal("kernel reported no xfeatures in the XSAVE area")
	}
	// An image needing a component this CPU lacks is refused.
	img.Xsave.XstateBv = proto.Uint64(img.Xsave.GetXstateBv() | 1<<62)
	if _, err := XsaveFromImage(img, area); err == nil {
		t.Fatal("image with an unknown xsave component was accepted")
	}
}
