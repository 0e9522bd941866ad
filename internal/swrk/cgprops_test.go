package swrk

import (
	"os"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// TestCgroupProps: the limits of this process's cgroups are saved in
// cgroup.img; a strict restore into the same cgroups finds them equal;
// one changed in the image is refused by strict, naming the file and
// both values; a property cryo does not restore, or no image, is refused.
func TestCgroupProps(t *testing.T) {
	e, err := readCgroupProps(0)
	if err == nil {
		t.Fatal("the cgroups of pid 0 were read")
	}
	self := func() *cgroup.CgroupEntry {
		e, err := readCgroupProps(pidSelf())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e = self()
	if len(e.GetSets()) != 1 || len(e.GetSets()[0].GetCtls()) == 0 {
		t.Fatalf("no cgroup set: %v", e)
	}
	var prop *cgroup.CgroupPropEntry
	var ctrls string
	for _, c := range e.GetControllers() {
		for _, d := range c.GetDirs() {
			for _, p := range d.GetProperties() {
				if prop == nil {
					prop, ctrls = p, strings.Join(c.GetCnames(), ",")
				}
			}
		}
	}
	dir := t.TempDir()
	if _, err := restoreCgroupProps(dir, rpc.CriuCgMode_STRICT); err == nil || !strings.Contains(err.Error(), "the images hold no cgroup properties") {
		t.Errorf("no cgroup.img: %v", err)
	}
	if err := writeCgroupImage(dir, e); err != nil {
		t.Fatal(err)
	}
	did, err := restoreCgroupProps(dir, rpc.CriuCgMode_STRICT)
	if err != nil || !strings.Contains(did, "limits match") {
		t.Fatalf("strict into the same cgroups: %q, %v", did, err)
	}
	if prop == nil {
		t.Skip("this machine's cgroups expose none of the limits cryo saves")
	}
	saved := prop.GetValue()
	prop.Value = proto.String(saved + "1")
	if err := writeCgroupImage(dir, e); err != nil {
		t.Fatal(err)
	}
	_, err = restoreCgroupProps(dir, rpc.CriuCgMode_STRICT)
	if err == nil || !strings.Contains(err.Error(), prop.GetName()+" is "+saved+", the images say "+saved+"1") {
		t.Errorf("strict with %s (%s) changed in the image: %v", prop.GetName(), ctrls, err)
	}
	prop.Name, prop.Value = proto.String("cgroup.procs"), proto.String("1")
	if err := writeCgroupImage(dir, e); err != nil {
		t.Fatal(err)
	}
	if _, err = restoreCgroupProps(dir, rpc.CriuCgMode_FULL); err == nil || !strings.Contains(err.Error(), `property "cgroup.procs"`) {
		t.Errorf("a property cryo does not restore: %v", err)
	}
}

func pidSelf() int { return os.Getpid() }
