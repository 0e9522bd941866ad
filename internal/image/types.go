package image

import (
	"github.com/checkpoint-restore/go-criu/v7/crit/images/apparmor"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/autofs"
	binfmt_misc "github.com/checkpoint-restore/go-criu/v7/crit/images/binfmt-misc"
	bpfmap_file "github.com/checkpoint-restore/go-criu/v7/crit/images/bpfmap-file"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/cpuinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/creds"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	criu_sa "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-sa"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventpoll"
	ext_file "github.com/checkpoint-restore/go-criu/v7/crit/images/ext-file"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fh"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fifo"
	file_lock "github.com/checkpoint-restore/go-criu/v7/crit/images/file-lock"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fsnotify"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/inventory"
	ipc_var "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-var"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/netdev"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/ns"
	packet_sock "github.com/checkpoint-restore/go-criu/v7/crit/images/packet-sock"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pidns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pipe"
	pipe_data "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	remap_file_path "github.com/checkpoint-restore/go-criu/v7/crit/images/remap-file-path"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/rlimit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/siginfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/signalfd"
	sk_inet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	sk_netlink "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-netlink"
	sk_packet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	sk_unix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timens"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timer"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timerfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tun"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/userns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/utsns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// entryTypes maps the magic name of every image whose file is nothing but a
// sequence of length-prefixed entries of one protobuf type to a constructor
// for that type. It follows go-criu's crit/cli mapping (plus SIGNAL, which
// CRIU's python crit decodes as signal_queue_entry).
//
// Not listed, because their files are not plain entry sequences:
//   - PAGEMAP: a pagemap_head entry, then pagemap_entry entries
//     (see ReadPagemap/WritePagemap);
//   - magics in payloadTypes: each entry is followed by raw data whose
//     length a field of the entry gives (see ReadPayloads/WritePayloads);
//   - magics in rawPayloadMagics: entries followed by raw data in layouts
//     cryo does not handle.
var entryTypes = map[string]func() proto.Message{
	"APPARMOR":       func() proto.Message { return &apparmor.ApparmorEntry{} },
	"AUTOFS":         func() proto.Message { return &autofs.AutofsEntry{} },
	"BINFMT_MISC":    func() proto.Message { return &binfmt_misc.BinfmtMiscEntry{} },
	"BPFMAP_FILE":    func() proto.Message { return &bpfmap_file.BpfmapFileEntry{} },
	"CGROUP":         func() proto.Message { return &cgroup.CgroupEntry{} },
	"CORE":           func() proto.Message { return &criu_core.CoreEntry{} },
	"CPUINFO":        func() proto.Message { return &cpuinfo.CpuinfoEntry{} },
	"CREDS":          func() proto.Message { return &creds.CredsEntry{} },
	"EVENTFD_FILE":   func() proto.Message { return &eventfd.EventfdFileEntry{} },
	"EVENTPOLL_FILE": func() proto.Message { return &eventpoll.EventpollFileEntry{} },
	"EVENTPOLL_TFD":  func() proto.Message { return &eventpoll.EventpollTfdEntry{} },
	"EXT_FILES":      func() proto.Message { return &ext_file.ExtFileEntry{} },
	"FANOTIFY_FILE":  func() proto.Message { return &fsnotify.FanotifyFileEntry{} },
	"FANOTIFY_MARK":  func() proto.Message { return &fsnotify.FanotifyMarkEntry{} },
	"FDINFO":         func() proto.Message { return &fdinfo.FdinfoEntry{} },
	"FIFO":           func() proto.Message { return &fifo.FifoEntry{} },
	"FILES":          func() proto.Message { return &fdinfo.FileEntry{} },
	"FILE_LOCKS":     func() proto.Message { return &file_lock.FileLockEntry{} },
	"FS":             func() proto.Message { return &fs.FsEntry{} },
	"IDS":            func() proto.Message { return &criu_core.TaskKobjIdsEntry{} },
	"INETSK":         func() proto.Message { return &sk_inet.InetSkEntry{} },
	"INOTIFY_FILE":   func() proto.Message { return &fsnotify.InotifyFileEntry{} },
	"INOTIFY_WD":     func() proto.Message { return &fsnotify.InotifyWdEntry{} },
	"INVENTORY":      func() proto.Message { return &inventory.InventoryEntry{} },
	"IPC_VAR":        func() proto.Message { return &ipc_var.IpcVarEntry{} },
	"IRMAP_CACHE":    func() proto.Message { return &fh.IrmapCacheEntry{} },
	"ITIMERS":        func() proto.Message { return &timer.ItimerEntry{} },
	"MEMFD_INODE":    func() proto.Message { return &memfd.MemfdInodeEntry{} },
	"MM":             func() proto.Message { return &mm.MmEntry{} },
	"MNTS":           func() proto.Message { return &mnt.MntEntry{} },
	"NETDEV":         func() proto.Message { return &netdev.NetDeviceEntry{} },
	"NETLINK_SK":     func() proto.Message { return &sk_netlink.NetlinkSkEntry{} },
	"NETNS":          func() proto.Message { return &netdev.NetnsEntry{} },
	"NS_FILES":       func() proto.Message { return &ns.NsFileEntry{} },
	"PACKETSK":       func() proto.Message { return &packet_sock.PacketSockEntry{} },
	"PIDNS":          func() proto.Message { return &pidns.PidnsEntry{} },
	"PIPES":          func() proto.Message { return &pipe.PipeEntry{} },
	"POSIX_TIMERS":   func() proto.Message { return &timer.PosixTimerEntry{} },
	"PSTREE":         func() proto.Message { return &pstree.PstreeEntry{} },
	"REG_FILES":      func() proto.Message { return &regfile.RegFileEntry{} },
	"REMAP_FPATH":    func() proto.Message { return &remap_file_path.RemapFilePathEntry{} },
	"RLIMIT":         func() proto.Message { return &rlimit.RlimitEntry{} },
	"SECCOMP":        func() proto.Message { return &seccomp.SeccompEntry{} },
	"SIGACT":         func() proto.Message { return &criu_sa.SaEntry{} },
	"SIGNAL":         func() proto.Message { return &siginfo.SignalQueueEntry{} },
	"SIGNALFD":       func() proto.Message { return &signalfd.SignalfdEntry{} },
	"STATS":          func() proto.Message { return &stats.StatsEntry{} },
	"TIMENS":         func() proto.Message { return &timens.TimensEntry{} },
	"TIMERFD":        func() proto.Message { return &timerfd.TimerfdEntry{} },
	"TTY_DATA":       func() proto.Message { return &tty.TtyDataEntry{} },
	"TTY_FILES":      func() proto.Message { return &tty.TtyFileEntry{} },
	"TTY_INFO":       func() proto.Message { return &tty.TtyInfoEntry{} },
	"TUNFILE":        func() proto.Message { return &tun.TunfileEntry{} },
	"UNIXSK":         func() proto.Message { return &sk_unix.UnixSkEntry{} },
	"USERNS":         func() proto.Message { return &userns.UsernsEntry{} },
	"UTSNS":          func() proto.Message { return &utsns.UtsnsEntry{} },
	"VMAS":           func() proto.Message { return &vma.VmaEntry{} },
}

// payloadType describes an image in which every entry is immediately
// followed by raw payload bytes, as many as the entry's sizeField says.
type payloadType struct {
	newEntry  func() proto.Message
	sizeField protoreflect.Name
}

// payloadSize returns the payload length m's size field gives; ok is false if
// m's type has no such unsigned 32-bit field.
func (pt payloadType) payloadSize(m proto.Message) (size uint64, ok bool) {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(pt.sizeField)
	if fd == nil || fd.Kind() != protoreflect.Uint32Kind || fd.IsList() {
		return 0, false
	}
	return r.Get(fd).Uint(), true
}

// payloadTypes are the payload images cryo reads and writes. Their layout is
// that of CRIU (pipes.c, fifo.c, sk-queue.c: the entry, then exactly that
// many bytes, no padding), go-criu's crit (decodePipesData, decodeSkQueues)
// and CRIU's python crit (pipes_data_extra_handler, sk_queues_extra_handler).
var payloadTypes = map[string]payloadType{
	"FIFO_DATA":  {func() proto.Message { return &pipe_data.PipeDataEntry{} }, "bytes"},
	"PIPES_DATA": {func() proto.Message { return &pipe_data.PipeDataEntry{} }, "bytes"},
	"SK_QUEUES":  {func() proto.Message { return &sk_packet.SkPacketEntry{} }, "length"},
}

// rawPayloadMagics are the other images in which entries are followed by raw
// data (ghost file contents, TCP queues, SysV IPC objects, BPF maps), in
// layouts with padding, nested entries or two lengths. cryo neither writes
// nor decodes them.
var rawPayloadMagics = map[string]bool{
	"BPFMAP_DATA": true,
	"GHOST_FILE":  true,
	"IPCNS_MSG":   true,
	"IPCNS_SEM":   true,
	"IPCNS_SHM":   true,
	"TCP_STREAM":  true,
}

// NewEntry returns a new empty message of the entry type that images with the
// given magic name hold, or nil if cryo does not know how to decode that magic
// as a plain entry sequence (PAGEMAP, images with raw payloads such as
// PIPES_DATA, which ReadPayloads reads, unknown names).
func NewEntry(magic string) proto.Message {
	if f, ok := entryTypes[magic]; ok {
		return f()
	}
	return nil
}
