package image

import (
	"encoding/binary"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/creds"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fown"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	pipe_data "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	sk_packet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"google.golang.org/protobuf/proto"
)

// sample is one image file used by several tests.
type sample struct {
	name    string
	magic   string
	entries []proto.Message
}

var (
	u32 = proto.Uint32
	u64 = proto.Uint64
)

func sampleIDs() *criu_core.TaskKobjIdsEntry {
	return &criu_core.TaskKobjIdsEntry{
		VmId: u32(1), FilesId: u32(2), FsId: u32(3), SighandId: u32(4),
		PidNsId: u32(5), NetNsId: u32(6), MntNsId: u32(7),
	}
}

func samples() []sample {
	const pid = 42
	return []sample{
		{InventoryName, "INVENTORY", []proto.Message{&inventory.InventoryEntry{
			ImgVersion:  u32(2),
			FdinfoPerId: proto.Bool(true),
			RootIds:     sampleIDs(),
			NsPerId:     proto.Bool(true),
			Lsmtype:     inventory.Lsmtype_NO_LSM.Enum(),
		}}},
		{PstreeName, "PSTREE", []proto.Message{
			&pstree.PstreeEntry{Pid: u32(pid), Ppid: u32(0), Pgid: u32(pid), Sid: u32(pid), Threads: []uint32{pid, pid + 1}},
			&pstree.PstreeEntry{Pid: u32(pid + 2), Ppid: u32(pid), Pgid: u32(pid), Sid: u32(pid), Threads: []uint32{pid + 2}},
		}},
		{CoreName(pid), "CORE", []proto.Message{&criu_core.CoreEntry{
			Mtype: criu_core.CoreEntry_X86_64.Enum(),
			Tc: &criu_core.TaskCoreEntry{
				TaskState: u32(1), ExitCode: u32(0), Personality: u32(0), Flags: u32(0x400100),
				BlkSigset: u64(0xfffffffe7ffbfeff), Comm: proto.String("sleep"),
			},
			ThreadCore: &criu_core.ThreadCoreEntry{FutexRla: u64(0x7f0000001000), FutexRlaLen: u32(24)},
		}}},
		{IDsName(pid), "IDS", []proto.Message{sampleIDs()}},
		{MMName(pid), "MM", []proto.Message{&mm.MmEntry{
			MmStartCode: u64(0x400000), MmEndCode: u64(0x401000), MmStartData: u64(0x600000), MmEndData: u64(0x601000),
			MmStartStack: u64(0x7ffc00000000), MmStartBrk: u64(0x1000000), MmBrk: u64(0x1021000),
			MmArgStart: u64(0x7ffc00001000), MmArgEnd: u64(0x7ffc00001010),
			MmEnvStart: u64(0x7ffc00001010), MmEnvEnd: u64(0x7ffc00002000), ExeFileId: u32(9),
			MmSavedAuxv: []uint64{33, 0x7ffc00010000, 0, 0},
			Vmas: []*vma.VmaEntry{{
				Start: u64(0x400000), End: u64(0x402000), Pgoff: u64(0), Shmid: u64(9),
				Prot: u32(5), Flags: u32(2), Status: u32(0x41), Fd: proto.Int64(-1),
			}},
		}}},
		{FSName(pid), "FS", []proto.Message{&fs.FsEntry{CwdId: u32(10), RootId: u32(11), Umask: u32(0o22)}}},
		{FdinfoName(2), "FDINFO", []proto.Message{
			&fdinfo.FdinfoEntry{Id: u32(10), Flags: u32(0), Type: fdinfo.FdTypes_REG.Enum(), Fd: u32(0)},
			&fdinfo.FdinfoEntry{Id: u32(12), Flags: u32(1), Type: fdinfo.FdTypes_REG.Enum(), Fd: u32(1)},
		}},
		{FilesName, "FILES", []proto.Message{&fdinfo.FileEntry{
			Type: fdinfo.FdTypes_REG.Enum(), Id: u32(10),
			Reg: &regfile.RegFileEntry{
				Id: u32(10), Flags: u32(0o2), Pos: u64(0), Name: proto.String("/dev/null"),
				Fown: &fown.FownEntry{Uid: u32(0), Euid: u32(0), Signum: u32(0), PidType: u32(0), Pid: u32(0)},
			},
		}}},
		{CredsName(pid), "CREDS", []proto.Message{&creds.CredsEntry{
			Uid: u32(1000), Gid: u32(1000), Euid: u32(1000), Egid: u32(1000), Suid: u32(1000), Sgid: u32(1000),
			Fsuid: u32(1000), Fsgid: u32(1000), Secbits: u32(0), CapEff: []uint32{0, 0}, Groups: []uint32{1000, 27},
		}}},
		// A type with an empty entry list: only the header.
		{"reg-files.img", "REG_FILES", nil},
	}
}

func samplePagemap() (uint32, []*pagemap.PagemapEntry) {
	ps := pageSize
	return 7, []*pagemap.PagemapEntry{
		{Vaddr: u64(0x400000), NrPages: u32(2), Flags: u32(PagemapPresent)},
		{Vaddr: u64(0x400000 + 2*ps), NrPages: u32(1), Flags: u32(PagemapPresent)},
		{Vaddr: u64(0x7ffc00000000), NrPages: u32(3), Flags: u32(PagemapPresent)},
	}
}

// encodeImage returns the bytes of an image file, without any checks
// (required fields may be missing).
func encodeImage(magic string, entries ...proto.Message) []byte {
	b := header(magic)
	for _, m := range entries {
		data, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
		if err != nil {
			panic(err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
		b = append(b, data...)
	}
	return b
}

func pagemapMessages(id uint32, es []*pagemap.PagemapEntry) []proto.Message {
	ms := []proto.Message{&pagemap.PagemapHead{PagesId: u32(id)}}
	for _, e := range es {
		ms = append(ms, e)
	}
	return ms
}

// payloadSample is one payload image used by several tests.
type payloadSample struct {
	name     string
	magic    string
	entries  []proto.Message
	payloads [][]byte
}

func samplePayloads() []payloadSample {
	big := make([]byte, 3*4096+5) // longer than Show shows
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	pde := func(id uint32, p []byte) *pipe_data.PipeDataEntry {
		return &pipe_data.PipeDataEntry{PipeId: u32(id), Bytes: u32(uint32(len(p))), Size: u32(65536)}
	}
	ske := func(id uint32, p []byte) *sk_packet.SkPacketEntry {
		return &sk_packet.SkPacketEntry{IdFor: u32(id), Length: u32(uint32(len(p)))}
	}
	hello, bin, none := []byte("hello, pipe\n"), []byte{0, 0xff, 0xfe, '\n', 0, 1}, []byte{}
	return []payloadSample{
		{"pipes-data.img", "PIPES_DATA",
			[]proto.Message{pde(7, hello), pde(8, none), pde(9, big), pde(10, bin)},
			[][]byte{hello, none, big, bin}},
		{"fifo-data.img", "FIFO_DATA", []proto.Message{pde(11, bin)}, [][]byte{bin}},
		{"sk-queues.img", "SK_QUEUES",
			[]proto.Message{ske(3, hello), ske(3, bin), ske(4, none), &sk_packet.SkPacketEntry{
				IdFor: u32(5), Length: u32(uint32(len(hello))),
				Scm: []*sk_packet.ScmEntry{{Type: u32(1), Rights: []uint32{12, 13}}},
			}},
			[][]byte{hello, bin, none, hello}},
		// Only the header.
		{"fifo-data-empty.img", "FIFO_DATA", nil, nil},
	}
}

// encodePayloadImage returns the bytes of a payload image, without checks.
func encodePayloadImage(magic string, entries []proto.Message, payloads [][]byte) []byte {
	b := header(magic)
	for i, m := range entries {
		data, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
		if err != nil {
			panic(err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
		b = append(b, data...)
		b = append(b, payloads[i]...)
	}
	return b
}
