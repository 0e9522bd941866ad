package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/siginfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timer"
	"github.com/cryo-cr/cryo/internal/cpu"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

func putU64(b []byte, vs ...uint64) []byte {
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

var rlimitNames = [...]string{"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
	"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"}

// restoreTask restores what belongs to the whole process: signal
// dispositions, personality, umask, session and group, and the
// mm fields (with the executable link).
func (p *process) restoreTask() error {
	t := p.leader
	tc := p.c.cores[0].GetTc()
	fail := func(what string, err error) error {
		return fmt.Errorf("restore pid %d: %s: %w", p.c.pid, what, err)
	}
	for i, a := range tc.GetSigactions() {
		sig := uint64(i + 1)
		if sig == uint64(unix.SIGKILL) || sig == uint64(unix.SIGSTOP) {
			continue
		}
		addr, err := p.put(putU64(nil, a.GetSigaction(), a.GetFlags(), a.GetRestorer(), a.GetMask()))
		if err != nil {
			return err
		}
		if _, err := t.Syscall(unix.SYS_RT_SIGACTION, sig, addr, 0, 8); err != nil {
			return fail(fmt.Sprintf("sigaction %d", sig), err)
		}
	}
	for which, it := range []*timer.ItimerEntry{tc.GetTimers().GetReal(), tc.GetTimers().GetVirt(), tc.GetTimers().GetProf()} {
		if it == nil || (it.GetVsec() == 0 && it.GetVusec() == 0 && it.GetIsec() == 0 && it.GetIusec() == 0) {
			continue
		}
		vsec, vusec := it.GetVsec(), it.GetVusec()
		if vsec == 0 && vusec == 0 {
			// Expired with its signal still pending: the kernel re-arms a
			// periodic timer when the signal is taken; give it one interval.
			vsec, vusec = it.GetIsec(), it.GetIusec()
		}
		addr, err := p.put(putU64(nil, it.GetIsec(), it.GetIusec(), vsec, vusec))
		if err != nil {
			return err
		}
		if _, err := t.Syscall(unix.SYS_SETITIMER, uint64(which), addr, 0); err != nil {
			return fail(fmt.Sprintf("itimer %d", which), err)
		}
	}
	if _, err := t.Syscall(unix.SYS_PERSONALITY, uint64(tc.GetPersonality())); err != nil {
		return fail("personality", err)
	}
	if _, err := t.Syscall(unix.SYS_UMASK, uint64(p.c.fs.GetUmask())); err != nil {
		return fail("umask", err)
	}
	if tc.GetChildSubreaper() {
		if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_CHILD_SUBREAPER, 1); err != nil {
			return fail("child subreaper", err)
		}
	}
	return p.restoreMM()
}

// restoreMM sets start/end of code, data, brk, stack, args, environment, the
// auxv and the executable in one PR_SET_MM_MAP.
func (p *process) restoreMM() error {
	t := p.leader
	m := p.c.mm
	auxv := m.GetMmSavedAuxv()
	if len(auxv) > 2*64 || len(auxv)%2 != 0 {
		return fmt.Errorf("mm-%d.img: auxv of %d words is invalid", p.c.pid, len(auxv))
	}
	exe := p.r.snap.reg(m.GetExeFileId()).GetName()
	exeFd, err := p.openExe()
	if err != nil {
		return err
	}
	defer t.Syscall(unix.SYS_CLOSE, exeFd)
	if err := p.r.snap.checkMapped(m.GetExeFileId(), p.pid, exeFd); err != nil {
		return fmt.Errorf("restore pid %d: executable: %w", p.c.pid, err)
	}
	auxvAddr, err := p.putAt(4096, putU64(nil, auxv...))
	if err != nil {
		return err
	}
	b := putU64(nil, m.GetMmStartCode(), m.GetMmEndCode(), m.GetMmStartData(), m.GetMmEndData(),
		m.GetMmStartBrk(), m.GetMmBrk(), m.GetMmStartStack(), m.GetMmArgStart(), m.GetMmArgEnd(),
		m.GetMmEnvStart(), m.GetMmEnvEnd(), auxvAddr)
	b = binary.LittleEndian.AppendUint32(b, uint32(8*len(auxv)))
	b = binary.LittleEndian.AppendUint32(b, uint32(exeFd))
	addr, err := p.put(b)
	if err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_MM, unix.PR_SET_MM_MAP, addr, uint64(len(b)), 0); err != nil {
		return fmt.Errorf("restore pid %d: PR_SET_MM_MAP (exe %s): %w", p.c.pid, exe, err)
	}
	if m.GetThpDisabled() {
		if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("restore pid %d: thp_disable: %w", p.c.pid, err)
		}
	}
	return nil
}

// threadFlags make a thread of the leader's process.
const threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
	unix.CLONE_THREAD | unix.CLONE_SYSVSEM

// cloneThreadAtLastPid clones a thread whose outer TID comes from
// ns_last_pid, as cloneAtLastPidRetry does a process: a thread that got
// another TID (a task elsewhere took it first) exits, and the clone is
// tried again.
func (p *process) cloneThreadAtLastPid(tid uint32, args []byte) (uint64, error) {
	start := time.Now()
	for try := 0; ; try++ {
		got, err := p.cloneAtLastPid(tid, args)
		if err != nil {
			return got, err
		}
		// In cryo's pid namespace the id clone3 returns is the outer one.
		outer := int(got)
		if p.c.nsPids != nil {
			if outer, err = outerTid(p.pid, uint32(got)); err != nil {
				return got, err
			}
		}
		if outer == int(tid) {
			return got, nil
		}
		p.r.logf("restore pid %d: thread id %d was taken meanwhile (got %d), trying again", p.c.pid, tid, outer)
		stray, err := p.r.tr.Adopt(p.pid, outer)
		if err != nil {
			return got, err
		}
		stray.SetSyscallAddr(p.leader.SyscallAddr())
		if err := stray.ExitThread(); err != nil {
			return got, fmt.Errorf("restore pid %d: thread %d made with the wrong id: %w", p.c.pid, outer, err)
		}
		if time.Since(start) > lastPidRetryFor {
			return got, fmt.Errorf("restore pid %d: other processes keep taking thread id %d%s", p.c.pid, tid, heldBy(int(tid)))
		}
		time.Sleep(retryPause(try))
	}
}

// createThreads clones every other thread at its TID.
func (p *process) createThreads() error {
	for i, tid := range p.c.tree.GetThreads()[1:] {
		var got uint64
		var err error
		if p.c.nsPids != nil {
			// Its own pid namespace: the inner id by set_tid, the outer
			// one from ns_last_pid, or the kernel's choice if cryo may
			// not choose it.
			inner := p.c.nsPids[i+1]
			if _, err := p.putAt(128, putU64(nil, uint64(inner))); err != nil {
				return err
			}
			args := ptrace.CloneArgs{Flags: threadFlags, SetTid: p.scratch + 128, SetTidSize: 1}
			switch {
			case p.c.nestedPids != nil:
				// A nested pid namespace in a moved tree: its id there
				// by set_tid, the one a level up through ns_last_pid.
				if err = p.setMovedLevel(tid); err == nil {
					if _, err = p.putAt(128, putU64(nil, uint64(p.c.nestedPids[i+1]))); err == nil {
						got, err = p.cloneSetTid(threadFlags, 0, 1)
					}
				}
			case p.r.movedPids:
				if _, err = p.put(args.Bytes()); err == nil {
					got, err = p.leader.Syscall(unix.SYS_CLONE3, p.scratch, uint64(len(args.Bytes())))
				}
			case p.inCryoUserns():
				got, err = p.cloneBothLevels(inner, tid, threadFlags, 0)
			default:
				got, err = p.cloneThreadAtLastPid(tid, args.Bytes())
			}
		} else {
			args := ptrace.CloneArgs{Flags: threadFlags, SetTid: p.scratch + 128, SetTidSize: 1}
			if _, err := p.put(args.Bytes()); err != nil {
				return err
			}
			if _, err := p.putAt(128, putU64(nil, uint64(tid))); err != nil {
				return err
			}
			got, err = p.leader.Syscall(unix.SYS_CLONE3, p.scratch, uint64(len(args.Bytes())))
		}
		if errors.Is(err, unix.EPERM) {
			// Inside a user namespace that does not own cryo's pid
			// namespace, set_tid is refused: ns_last_pid, tried again
			// when a task elsewhere takes the id first (a busy host).
			plain := ptrace.CloneArgs{Flags: threadFlags}
			got, err = p.cloneThreadAtLastPid(tid, plain.Bytes())
		}
		if err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("restore pid %d: thread id %d is taken", p.c.pid, tid)
			}
			return fmt.Errorf("restore pid %d: clone3 thread %d: %w", p.c.pid, tid, err)
		}
		want := tid
		switch {
		case p.c.nestedPids != nil:
			want = p.c.nestedPids[i+1]
		case p.c.nsPids != nil:
			want = p.c.nsPids[i+1]
		}
		if uint32(got) != want {
			return fmt.Errorf("restore pid %d: clone3 made thread %d, not %d", p.c.pid, got, tid)
		}
		outer := int(tid)
		if p.r.movedPids {
			if outer, err = outerTid(p.pid, uint32(got)); err != nil {
				return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
			}
			if p.c.nestedPids != nil {
				if err := checkMovedLevel(p.pid, outer, tid); err != nil {
					return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
				}
			}
		}
		t, err := p.r.tr.Adopt(p.pid, outer)
		if err != nil {
			return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
		}
		t.SetSyscallAddr(p.leader.SyscallAddr())
		p.threads = append(p.threads, t)
	}
	return nil
}

// restoreThread restores one thread's kernel state; credentials go last
// since they may take away the rights the other steps need.
func (p *process) restoreThread(t *ptrace.Tracee, c *core.CoreEntry) error {
	tc := c.GetThreadCore()
	fail := func(what string, err error) error {
		return fmt.Errorf("restore pid %d thread %d: %s: %w", p.c.pid, t.Tid, what, err)
	}
	if _, err := t.Syscall(unix.SYS_SET_TID_ADDRESS, c.GetThreadInfo().GetClearTidAddr()); err != nil {
		return fail("set_tid_address", err)
	}
	if head := tc.GetFutexRla(); head != 0 {
		if _, err := t.Syscall(unix.SYS_SET_ROBUST_LIST, head, uint64(tc.GetFutexRlaLen())); err != nil {
			return fail("robust list", err)
		}
	}
	if rs := tc.GetRseqEntry(); rs != nil && rs.GetRseqAbiPointer() != 0 {
		if _, err := t.Syscall(unix.SYS_RSEQ, rs.GetRseqAbiPointer(), uint64(rs.GetRseqAbiSize()), 0, uint64(rs.GetSignature())); err != nil {
			return fail("rseq", err)
		}
	}
	if sas := tc.GetSas(); sas != nil && sas.GetSsFlags()&ssDisable == 0 {
		// SS_ONSTACK is state, not a flag one can set; SS_AUTODISARM is.
		flags := uint64(sas.GetSsFlags()) & ssAutoDisarm
		b := putU64(nil, sas.GetSsSp())
		b = binary.LittleEndian.AppendUint64(b, flags)
		b = putU64(b, sas.GetSsSize())
		addr, err := p.put(b)
		if err != nil {
			return err
		}
		if _, err := t.Syscall(unix.SYS_SIGALTSTACK, addr, 0); err != nil {
			return fail("sigaltstack", err)
		}
	}
	if comm := tc.GetComm(); comm != "" {
		addr, err := p.putString(comm)
		if err != nil {
			return err
		}
		if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_NAME, addr); err != nil {
			return fail("name", err)
		}
	}
	if sig := tc.GetPdeathSig(); sig != 0 {
		if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uint64(sig)); err != nil {
			return fail("pdeath signal", err)
		}
	}
	if nice := tc.GetSchedNice(); nice != 0 {
		if _, err := t.Syscall(unix.SYS_SETPRIORITY, unix.PRIO_PROCESS, 0, uint64(int64(nice))); err != nil {
			return fail("nice", err)
		}
	}
	if err := t.SetSigMask(tc.GetBlkSigset()); err != nil {
		return err
	}
	// Queued while every signal is blocked for the injections; they are
	// delivered (or stay pending) once the thread runs with its own mask.
	if err := p.queueSignals(t, unix.SYS_RT_TGSIGQUEUEINFO, tc.GetSignalsP().GetSignals()); err != nil {
		return err
	}
	if t == p.leader {
		if err := p.queueSignals(t, unix.SYS_RT_SIGQUEUEINFO, p.c.cores[0].GetTc().GetSignalsS().GetSignals()); err != nil {
			return err
		}
	}
	return p.restoreCreds(t, c)
}

// drainSignals dequeues every pending signal of the thread (and, for the
// leader, of the process) with a zero-timeout rt_sigtimedwait.
func (p *process) drainSignals(t *ptrace.Tracee) error {
	addr, err := p.put(make([]byte, 24)) // sigset, then a zero timespec
	if err != nil {
		return err
	}
	if _, err := p.putAt(0, putU64(nil, ^uint64(0))); err != nil {
		return err
	}
	for i := 0; i < 1<<16; i++ {
		_, err := t.Syscall(unix.SYS_RT_SIGTIMEDWAIT, addr, 0, addr+8, 8)
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("restore pid %d thread %d: drain signals: %w", p.c.pid, t.Tid, err)
		}
	}
	return fmt.Errorf("restore pid %d thread %d: signals keep arriving", p.c.pid, t.Tid)
}

// innerID is the id of thread t of p in p's own pid namespace: the saved
// one, which is also cryo's view unless the process has a pid namespace of
// its own.
func (p *process) innerID(t *ptrace.Tracee) uint64 {
	for i, x := range p.threads {
		if x == t {
			if p.c.nsPids != nil {
				return uint64(p.c.nsPids[i])
			}
			return uint64(p.c.tree.GetThreads()[i])
		}
	}
	return uint64(t.Tid)
}

// queueSignals queues saved siginfo records from the thread itself: the
// kernel lets only the receiving thread queue kernel- or kill()-made
// siginfo, so sender details come back as they were.
func (p *process) queueSignals(t *ptrace.Tracee, nr uintptr, infos []*siginfo.SiginfoEntry) error {
	if len(infos) > 1<<16 {
		return fmt.Errorf("core-%d.img: %d pending signals", t.Tid, len(infos))
	}
	for _, e := range infos {
		info := e.GetSiginfo()
		if len(info) != ptrace.SiginfoSize {
			return fmt.Errorf("core-%d.img: siginfo of %d bytes", t.Tid, len(info))
		}
		sig := uint64(binary.LittleEndian.Uint32(info))
		if sig == 0 || sig > 64 {
			return fmt.Errorf("core-%d.img: pending signal %d is invalid", t.Tid, sig)
		}
		addr, err := p.put(info)
		if err != nil {
			return err
		}
		// The ids as the process itself sees them.
		args := []uint64{p.innerID(p.leader), p.innerID(t), sig, addr}
		if nr == unix.SYS_RT_SIGQUEUEINFO {
			args = []uint64{p.innerID(p.leader), sig, addr}
		}
		if _, err := t.Syscall(nr, args...); err != nil {
			return fmt.Errorf("restore pid %d thread %d: queue signal %d: %w", p.c.pid, t.Tid, sig, err)
		}
	}
	return nil
}

// Capability and sigaltstack constants.
const (
	ssDisable         = 2
	ssAutoDisarm      = 1 << 31
	capVersion3       = 0x20080522
	secbitKeepCaps    = 1 << 4
	secbitLockedMask  = 1<<1 | 1<<3 | 1<<5 | 1<<7 // the *_LOCKED bits
	prCapAmbient      = 47
	prCapAmbientRaise = 2
	lastCap           = 63
)

func capsOf(words []uint32) uint64 {
	var v uint64
	for i, w := range words {
		if i < 2 {
			v |= uint64(w) << (32 * i)
		}
	}
	return v
}

// restoreCreds sets the thread's credentials. Order matters: drop bounding
// caps while CAP_SETPCAP is there, switch ids keeping capabilities, set the
// securebits, raise ambient ones, and only then lower the capability sets.
func (p *process) restoreCreds(t *ptrace.Tracee, c *core.CoreEntry) error {
	cr := c.GetThreadCore().GetCreds()
	if cr == nil {
		return nil
	}
	ext, err := image.GetCredsExt(cr)
	if err != nil {
		return fmt.Errorf("core-%d.img: %w", t.Tid, err)
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("restore pid %d thread %d: credentials: %s: %w", p.c.pid, t.Tid, what, err)
	}
	call := func(what string, nr uintptr, args ...uint64) error {
		if _, err := t.Syscall(nr, args...); err != nil {
			return fail(what, err)
		}
		return nil
	}
	bnd := capsOf(cr.GetCapBnd())
	for capNr := uint64(0); capNr <= lastCap; capNr++ {
		if bnd&(1<<capNr) != 0 {
			continue
		}
		if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, capNr); err != nil && !errors.Is(err, unix.EINVAL) {
			return fail(fmt.Sprintf("drop bounding capability %d", capNr), err)
		}
	}
	groups := cr.GetGroups()
	if len(groups) > 65536 {
		return fail("groups", fmt.Errorf("%d groups", len(groups)))
	}
	gb := make([]byte, 0, 4*len(groups))
	for _, g := range groups {
		gb = binary.LittleEndian.AppendUint32(gb, g)
	}
	addr := p.scratch
	if len(gb) > 0 {
		if addr, err = p.put(gb); err != nil {
			return err
		}
	}
	// A user namespace with setgroups denied keeps the groups it has.
	if u := p.r.snap.ns.users[p.c.cores[0].GetIds().GetUserNsId()]; u == nil || !u.ext.SetgroupsDeny {
		if err := call("setgroups", unix.SYS_SETGROUPS, uint64(len(groups)), addr); err != nil {
			return err
		}
	}
	if err := call("setresgid", unix.SYS_SETRESGID, uint64(cr.GetGid()), uint64(cr.GetEgid()), uint64(cr.GetSgid())); err != nil {
		return err
	}
	if err := call("setfsgid", unix.SYS_SETFSGID, uint64(cr.GetFsgid())); err != nil {
		return err
	}
	secbits := uint64(cr.GetSecbits())
	if err := call("securebits", unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, secbits&^secbitLockedMask|secbitKeepCaps); err != nil {
		return err
	}
	if err := call("setresuid", unix.SYS_SETRESUID, uint64(cr.GetUid()), uint64(cr.GetEuid()), uint64(cr.GetSuid())); err != nil {
		return err
	}
	if err := call("setfsuid", unix.SYS_SETFSUID, uint64(cr.GetFsuid())); err != nil {
		return err
	}
	// Changing ids made the process non-dumpable. Without root, cryo then
	// could not write its memory (the capset below, the other threads),
	// even as the owner of its user namespace: its mm belongs to the
	// initial one. finishTask sets the saved flag last.
	if err := call("dumpable", unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1); err != nil {
		return err
	}
	capset := func(eff, prm, inh uint64) error {
		b := binary.LittleEndian.AppendUint32(nil, capVersion3)
		b = binary.LittleEndian.AppendUint32(b, 0)
		for i := 0; i < 2; i++ {
			b = binary.LittleEndian.AppendUint32(b, uint32(eff>>(32*i)))
			b = binary.LittleEndian.AppendUint32(b, uint32(prm>>(32*i)))
			b = binary.LittleEndian.AppendUint32(b, uint32(inh>>(32*i)))
		}
		a, err := p.put(b)
		if err != nil {
			return err
		}
		return call("capset", unix.SYS_CAPSET, a, a+8)
	}
	// Still holding the stub's full permitted set (kept over setresuid):
	// make it effective again to set securebits and ambient capabilities.
	prm, inh, eff := capsOf(cr.GetCapPrm()), capsOf(cr.GetCapInh()), capsOf(cr.GetCapEff())
	cur := p.currentPermitted(t)
	if err := capset(cur, cur, inh); err != nil {
		return err
	}
	if err := call("securebits", unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, secbits); err != nil {
		return err
	}
	for capNr := uint64(0); capNr <= lastCap; capNr++ {
		if ext.CapAmb&(1<<capNr) != 0 {
			if err := call(fmt.Sprintf("raise ambient capability %d", capNr), unix.SYS_PRCTL, prCapAmbient, prCapAmbientRaise, capNr, 0, 0); err != nil {
				return err
			}
		}
	}
	if err := capset(eff, prm, inh); err != nil {
		return err
	}
	if ext.NoNewPrivs {
		if err := call("no_new_privs", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// currentPermitted reads the thread's permitted set from /proc.
func (p *process) currentPermitted(t *ptrace.Tracee) uint64 {
	st, err := proc.ReadTaskStatus(p.pid, t.Tid)
	if err != nil {
		return 0
	}
	return st.CapPrm
}

// finishTask restores what must come after the credentials change:
// changing ids clears the dumpable flag.
func (p *process) finishTask() error {
	if err := p.setRlimits(); err != nil {
		return err
	}
	if d := p.c.mm.Dumpable; d != nil {
		if _, err := p.leader.Syscall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, uint64(*d)); err != nil {
			return fmt.Errorf("restore pid %d: dumpable: %w", p.c.pid, err)
		}
	}
	return nil
}

// Kernel return values that ask for a system call to be restarted.
const (
	errRestartSys          = -512
	errRestartNoIntr       = -513
	errRestartNoHand       = -514
	errRestartRestartBlock = -516
)

// setRegisters loads the thread's registers. A thread caught inside a
// system call resumes by re-executing it: the kernel's restart state did
// not survive, so the call starts again with its original arguments
// (a relative sleep sleeps its full length again).
func (p *process) setRegisters(t *ptrace.Tracee, c *core.CoreEntry) error {
	ti := c.GetThreadInfo()
	template, err := t.Xstate()
	if err != nil {
		return err
	}
	area, err := cpu.XsaveFromImage(ti.GetFpregs(), template)
	if err != nil {
		return fmt.Errorf("restore pid %d thread %d: %w", p.c.pid, t.Tid, err)
	}
	if err := t.SetXstate(area); err != nil {
		return err
	}
	regs, err := cpu.GPRsFromImage(ti.GetGpregs())
	if err != nil {
		return fmt.Errorf("restore pid %d thread %d: %w", p.c.pid, t.Tid, err)
	}
	restartSyscall(&regs)
	return t.SetRegs(regs)
}

// setRlimits gives the process its saved resource limits. It comes last
// (from finishTask): a process dumped at its RLIMIT_NOFILE, RLIMIT_AS or
// RLIMIT_NPROC would otherwise leave no room for the descriptors, scratch
// memory and threads the rest of its restore makes.
func (p *process) setRlimits() error {
	for i, l := range p.c.cores[0].GetTc().GetRlimits().GetRlimits() {
		fail := func(err error) error {
			return fmt.Errorf("restore pid %d: rlimit %s: %w", p.c.pid, rlimitNames[i], err)
		}
		addr, err := p.put(putU64(nil, l.GetCur(), l.GetMax()))
		if err != nil {
			return err
		}
		if _, err := p.leader.Syscall(unix.SYS_PRLIMIT64, 0, uint64(i), addr, 0); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fail(fmt.Errorf("hard limit %d is above cryo's and raising it needs CAP_SYS_RESOURCE: %w", l.GetMax(), err))
			}
			return fail(err)
		}
	}
	return nil
}
