package dump

import (
	"encoding/binary"
	"fmt"

	x86 "github.com/checkpoint-restore/go-criu/v7/crit/images/core-x86"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/creds"
	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	sa "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-sa"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/rlimit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/rseq"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/siginfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timer"
	"github.com/cryo-cr/cryo/internal/cpu"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Offsets in the scratch mapping.
const (
	scratchWord  = 0   // one 8-byte result
	scratchStack = 64  // a stack_t
	scratchSigs  = 128 // 64 struct sigaction, 32 bytes each
)

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// threadCore collects one thread's registers and per-thread kernel state.
func (p *process) threadCore(t *ptrace.Tracee) (*core.CoreEntry, uint64, error) {
	fail := func(what string, err error) (*core.CoreEntry, uint64, error) {
		return nil, 0, fmt.Errorf("process %d thread %d: %s: %w", p.pid, t.Tid, what, err)
	}
	regs, err := t.Regs()
	if err != nil {
		return fail("registers", err)
	}
	area, err := t.Xstate()
	if err != nil {
		return fail("xstate", err)
	}
	fp, err := cpu.XsaveToImage(area)
	if err != nil {
		return fail("xstate", err)
	}
	mask, err := t.SigMask()
	if err != nil {
		return fail("signal mask", err)
	}
	rs, err := t.Rseq()
	if err != nil {
		return fail("rseq", err)
	}
	head, headLen, err := ptrace.RobustList(t.Tid)
	if err != nil {
		return fail("robust list", err)
	}
	s := &p.scratch
	if err := s.zero(scratchWord, 8); err != nil {
		return fail("scratch", err)
	}
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_GET_TID_ADDRESS, s.addr+scratchWord); err != nil {
		return fail("clear_child_tid", err)
	}
	w, err := s.read(scratchWord, 8)
	if err != nil {
		return fail("clear_child_tid", err)
	}
	clearTid := le64(w)
	if _, err := t.Syscall(unix.SYS_SIGALTSTACK, 0, s.addr+scratchStack); err != nil {
		return fail("sigaltstack", err)
	}
	ss, err := s.read(scratchStack, 24)
	if err != nil {
		return fail("sigaltstack", err)
	}
	if err := s.zero(scratchWord, 8); err != nil {
		return fail("scratch", err)
	}
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_GET_PDEATHSIG, s.addr+scratchWord); err != nil {
		return fail("pdeath signal", err)
	}
	if w, err = s.read(scratchWord, 4); err != nil {
		return fail("pdeath signal", err)
	}
	pdeath := binary.LittleEndian.Uint32(w)
	secbits, err := t.Syscall(unix.SYS_PRCTL, unix.PR_GET_SECUREBITS)
	if err != nil {
		return fail("securebits", err)
	}
	st, err := proc.ReadTaskStatus(p.pid, t.Tid)
	if err != nil {
		return fail("status", err)
	}
	stat, err := proc.ReadTaskStat(p.pid, t.Tid)
	if err != nil {
		return fail("stat", err)
	}
	comm, err := proc.TaskComm(p.pid, t.Tid)
	if err != nil {
		return fail("comm", err)
	}

	tc := &core.ThreadCoreEntry{
		FutexRla:    proto.Uint64(head),
		FutexRlaLen: proto.Uint32(uint32(headLen)),
		SchedNice:   proto.Int32(int32(stat.Nice)),
		SchedPolicy: proto.Uint32(stat.Policy),
		SchedPrio:   proto.Uint32(stat.RTPriority),
		BlkSigset:   proto.Uint64(mask),
		Sas: &core.ThreadSasEntry{
			SsSp:    proto.Uint64(le64(ss[0:])),
			SsFlags: proto.Uint32(binary.LittleEndian.Uint32(ss[8:])),
			SsSize:  proto.Uint64(le64(ss[16:])),
		},
		PdeathSig:   proto.Uint32(pdeath),
		Creds:       credsEntry(st, uint32(secbits), p.uidMap, p.gidMap),
		SeccompMode: core.SeccompMode(st.Seccomp).Enum(),
		Comm:        proto.String(comm),
	}
	pending, err := t.PendingSiginfo(false)
	if err != nil {
		return fail("pending signals", err)
	}
	tc.SignalsP = signalQueue(append(append([][]byte(nil), t.InterceptedSignals()...), pending...))
	if rs.Pointer != 0 {
		tc.RseqEntry = &rseq.RseqEntry{
			RseqAbiPointer: proto.Uint64(rs.Pointer),
			RseqAbiSize:    proto.Uint32(rs.Size),
			Signature:      proto.Uint32(rs.Signature),
		}
	}
	entry := &core.CoreEntry{
		Mtype: core.CoreEntry_X86_64.Enum(),
		ThreadInfo: &x86.ThreadInfoX86{
			ClearTidAddr: proto.Uint64(clearTid),
			Gpregs:       cpu.GPRsToImage(&regs),
			Fpregs:       fp,
		},
		ThreadCore: tc,
	}
	return entry, cpu.Xfeatures(area), nil
}

// signalQueue wraps raw siginfo records for the image.
func signalQueue(infos [][]byte) *siginfo.SignalQueueEntry {
	q := &siginfo.SignalQueueEntry{}
	for _, info := range infos {
		q.Signals = append(q.Signals, &siginfo.SiginfoEntry{Siginfo: info})
	}
	return q
}

// capWords splits a 64-bit capability set into CRIU's two 32-bit words.
func capWords(v uint64) []uint32 { return []uint32{uint32(v), uint32(v >> 32)} }

// credsEntry records a thread's credentials as its own user namespace sees
// them (CRIU's convention): /proc shows them as the host sees them, and a
// restored thread sets them from inside its namespace. uids and gids the
// namespace does not map show as the overflow id, as the kernel shows them.
func credsEntry(st *proc.Status, secbits uint32, uids, gids userns.Map) *creds.CredsEntry {
	u := func(i int) *uint32 { return proto.Uint32(uids.ToInside(st.Uid[i])) }
	g := func(i int) *uint32 { return proto.Uint32(gids.ToInside(st.Gid[i])) }
	groups := make([]uint32, len(st.Groups))
	for i, gr := range st.Groups {
		groups[i] = gids.ToInside(gr)
	}
	c := &creds.CredsEntry{
		Uid: u(0), Euid: u(1), Suid: u(2), Fsuid: u(3),
		Gid: g(0), Egid: g(1), Sgid: g(2), Fsgid: g(3),
		CapInh:  capWords(st.CapInh),
		CapPrm:  capWords(st.CapPrm),
		CapEff:  capWords(st.CapEff),
		CapBnd:  capWords(st.CapBnd),
		Secbits: proto.Uint32(secbits),
		Groups:  groups,
	}
	image.SetCredsExt(c, image.CredsExt{CapAmb: st.CapAmb, NoNewPrivs: st.NoNewPrivs})
	return c
}

// taskCore collects what belongs to the whole process.
func (p *process) taskCore(leader *core.CoreEntry) (*core.TaskCoreEntry, error) {
	t := p.leader()
	fail := func(what string, err error) (*core.TaskCoreEntry, error) {
		return nil, fmt.Errorf("process %d: %s: %w", p.pid, what, err)
	}
	s := &p.scratch
	acts := make([]*sa.SaEntry, 64)
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			acts[sig-1] = &sa.SaEntry{Sigaction: proto.Uint64(0), Flags: proto.Uint64(0), Restorer: proto.Uint64(0), Mask: proto.Uint64(0)}
			continue
		}
		off := uint64(scratchSigs + 32*(sig-1))
		if _, err := t.Syscall(unix.SYS_RT_SIGACTION, uint64(sig), 0, s.addr+off, 8); err != nil {
			return fail(fmt.Sprintf("sigaction %d", sig), err)
		}
	}
	raw, err := s.read(scratchSigs, 32*64)
	if err != nil {
		return fail("sigactions", err)
	}
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		b := raw[32*(sig-1):]
		acts[sig-1] = &sa.SaEntry{
			Sigaction: proto.Uint64(le64(b[0:])),
			Flags:     proto.Uint64(le64(b[8:])),
			Restorer:  proto.Uint64(le64(b[16:])),
			Mask:      proto.Uint64(le64(b[24:])),
		}
	}
	shared, err := t.PendingSiginfo(true)
	if err != nil {
		return fail("pending signals", err)
	}
	// The three interval timers; getitimer can only be asked from inside.
	var itimers [3]*timer.ItimerEntry
	for which := range itimers {
		if _, err := t.Syscall(unix.SYS_GETITIMER, uint64(which), s.addr+scratchWord); err != nil {
			return fail("itimer", err)
		}
		b, err := s.read(scratchWord, 32)
		if err != nil {
			return fail("itimer", err)
		}
		itimers[which] = &timer.ItimerEntry{Isec: proto.Uint64(le64(b[0:])), Iusec: proto.Uint64(le64(b[8:])),
			Vsec: proto.Uint64(le64(b[16:])), Vusec: proto.Uint64(le64(b[24:]))}
	}
	posix, err := p.posixTimers()
	if err != nil {
		return nil, err
	}
	lim, err := proc.Limits(p.pid)
	if err != nil {
		return fail("limits", err)
	}
	rl := &core.TaskRlimitsEntry{}
	for _, l := range lim {
		rl.Rlimits = append(rl.Rlimits, &rlimit.RlimitEntry{Cur: proto.Uint64(l.Cur), Max: proto.Uint64(l.Max)})
	}
	pers, err := proc.Personality(p.pid)
	if err != nil {
		return fail("personality", err)
	}
	stat, err := proc.ReadStat(p.pid)
	if err != nil {
		return fail("stat", err)
	}
	oom, err := proc.OOMScoreAdj(p.pid)
	if err != nil {
		return fail("oom_score_adj", err)
	}
	loginuid, err := proc.LoginUID(p.pid)
	if err != nil {
		return fail("loginuid", err)
	}
	if err := s.zero(scratchWord, 8); err != nil {
		return fail("scratch", err)
	}
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_GET_CHILD_SUBREAPER, s.addr+scratchWord); err != nil {
		return fail("child subreaper", err)
	}
	w, err := s.read(scratchWord, 4)
	if err != nil {
		return fail("child subreaper", err)
	}
	state, stopSig := uint32(taskAlive), (*uint32)(nil)
	if t.GroupStopped {
		// Stopped by a signal (CRIU's TASK_STOPPED): restore stops it
		// again with the same signal, which its parent's waitpid reports.
		state, stopSig = taskStopped, proto.Uint32(uint32(t.StopSignal))
	}
	return &core.TaskCoreEntry{
		TaskState:      proto.Uint32(state),
		StopSigno:      stopSig,
		ExitCode:       proto.Uint32(0),
		Personality:    proto.Uint32(pers),
		Flags:          proto.Uint32(uint32(stat.Flags)),
		BlkSigset:      proto.Uint64(leader.GetThreadCore().GetBlkSigset()),
		Comm:           proto.String(leader.GetThreadCore().GetComm()),
		Rlimits:        rl,
		Loginuid:       proto.Uint32(loginuid),
		OomScoreAdj:    proto.Int32(int32(oom)),
		Sigactions:     acts,
		ChildSubreaper: proto.Bool(binary.LittleEndian.Uint32(w) != 0),
		SignalsS:       signalQueue(shared),
		Timers:         &timer.TaskTimersEntry{Real: itimers[0], Virt: itimers[1], Prof: itimers[2], Posix: posix},
	}, nil
}
