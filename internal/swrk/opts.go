package swrk

import (
	"fmt"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
)

// translate turns a DUMP or RESTORE request's criu_opts into a Request. It
// honours what cryo can, notes in the log options whose effect cryo has
// anyway, and refuses every other option that is set, naming each with the
// reason, in one error: the caller learns everything it asked for that
// cryo cannot do at once, never by silence. The descriptors it opens are
// added to s.files, closed when the request is done.
func (s *session) translate(kind rpc.CriuReqType, o *rpc.CriuOpts) (Request, error) {
	req := Request{
		Pid:            int(o.GetPid()),
		LeaveRunning:   o.GetLeaveRunning(),
		LeaveStopped:   o.GetLeaveStopped(),
		ShellJob:       o.GetShellJob(),
		TCPEstablished: o.GetTcpEstablished(),
		ExtUnixSk:      o.GetExtUnixSk(),
	}
	var refused, noted []string
	refuse := func(format string, args ...any) { refused = append(refused, fmt.Sprintf(format, args...)) }
	note := func(format string, args ...any) { noted = append(noted, fmt.Sprintf(format, args...)) }
	// A pre-dump takes a dump's options: it seizes the same tree.
	dumping := kind == rpc.CriuReqType_DUMP || kind == rpc.CriuReqType_PRE_DUMP

	// Where the images are, and the work directory for the log and stats.
	switch {
	case o.ImagesDirFd != nil && o.GetImagesDirFd() >= 0:
		f, err := s.conn.peerFile("images_dir_fd", o.GetImagesDirFd(), unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return req, err
		}
		s.files = append(s.files, f)
		if req.ImagesDir, err = dirPath(f); err != nil {
			return req, fmt.Errorf("images_dir_fd: %w", err)
		}
	case o.GetImagesDir() != "":
		req.ImagesDir = o.GetImagesDir()
	default:
		return req, fmt.Errorf("no images directory: images_dir_fd and images_dir are both unset")
	}
	req.WorkDir = req.ImagesDir
	if o.WorkDirFd != nil && o.GetWorkDirFd() >= 0 {
		f, err := s.conn.peerFile("work_dir_fd", o.GetWorkDirFd(), unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return req, err
		}
		s.files = append(s.files, f)
		if req.WorkDir, err = dirPath(f); err != nil {
			return req, fmt.Errorf("work_dir_fd: %w", err)
		}
	}
	if err := s.openLog(req.WorkDir, o); err != nil {
		return req, err
	}
	if o.StatusFd != nil && o.GetStatusFd() >= 0 {
		f, err := s.conn.peerFile("status_fd", o.GetStatusFd(), unix.O_WRONLY)
		if err != nil {
			return req, err
		}
		s.files = append(s.files, f)
		s.status = f
	}
	s.notifyScripts = o.GetNotifyScripts()

	if dumping && o.Pid == nil {
		refuse("pid unset: dumping the calling process itself is not supported, give the tree's pid")
	}
	if !dumping && o.GetPid() != 0 {
		note("pid %d ignored on restore: the images name the tree", o.GetPid())
	}

	// Options whose effect cryo has anyway: said in the log.
	if o.GetEvasiveDevices() {
		note("evasive_devices: devices are opened again at their dumped path (no other is tried)")
	}
	if o.GetFileLocks() {
		// As --file-locks: saved by the dump; a restore takes again
		// whatever locks the images hold.
		req.FileLocks = true
		if !dumping {
			note("file_locks: the locks the images hold are taken again")
		}
	}
	if o.GetLinkRemap() {
		req.LinkRemap = true
	}
	// orphan_pts_master: a terminal whose master is outside the tree is
	// saved, and its new master sent back on orphan-pts-master.
	req.OrphanPts = o.GetOrphanPtsMaster()
	if o.NetworkLock != nil {
		note("network_lock %s: cryo locks the network with nftables", o.GetNetworkLock())
	}
	if o.CpuCap != nil {
		note("cpu_cap %#x: cryo always checks the CPU features the images need", o.GetCpuCap())
	}
	if o.GetWeakSysctls() {
		note("weak_sysctls: cryo writes no sysctl")
	}
	if o.GetUnprivileged() {
		note("unprivileged: cryo needs no capability for a tree in a user namespace of the caller's")
	}
	if c := o.GetFreezeCgroup(); c != "" {
		if dumping {
			req.FreezeCgroup = c
		} else {
			note("freeze_cgroup %s: a dump option, unused on restore", c)
		}
	}
	if o.GetDisplayStats() {
		note("display_stats: the statistics are in the stats-dump and stats-restore images")
	}
	if o.GetLogToStderr() {
		note("log_to_stderr: the log goes to the log file")
	}
	if c := o.GetConfigFile(); c != "" {
		if b, err := os.ReadFile(c); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			refuse("config_file %s: cryo does not read CRIU configuration files, and this one is not empty", c)
		} else {
			note("config_file %s: absent or empty", c)
		}
	}

	// Options cryo cannot honour yet.
	if err := s.cgroups(kind, o, note); err != nil {
		refuse("%v", err)
	}
	if o.GetCgroupProps() != "" || o.GetCgroupPropsFile() != "" || len(o.GetCgroupDumpController()) > 0 || o.GetCgroupYard() != "" {
		refuse("cgroup_props, cgroup_props_file, cgroup_dump_controller, cgroup_yard: cryo does not record cgroups yet")
	}
	if r := o.GetRoot(); r != "" && r != "/" {
		if dumping {
			note("root %s: a container's mounts are read from its processes", r)
		} else {
			req.Root = r
		}
	}
	for _, m := range o.GetExtMnt() {
		if req.ExtMounts == nil {
			req.ExtMounts = map[string]string{}
		}
		req.ExtMounts[m.GetKey()] = m.GetVal()
	}
	if n := len(o.GetExternal()); n > 0 && dumping {
		// CRIU's --external at dump (podman's net[INO]:extRootNetNS for
		// a container on its network): checked by the dump, which
		// refuses a kind it does not know in one line.
		req.External = append(req.External, o.GetExternal()...)
	} else if n > 0 {
		refuse("external (%d resources, the first %s) at restore: cryo does not handle external resources given at restore yet", n, o.GetExternal()[0])
	}
	if o.GetEmptyNs()&unix.CLONE_NEWNET != 0 {
		req.EmptyNetNS = true
	}
	if ns := o.GetEmptyNs() &^ unix.CLONE_NEWNET; ns != 0 {
		refuse("empty_ns %#x (%s): cryo does not %s yet", ns, nsNames(ns), map[bool]string{true: "leave namespaces out of a dump", false: "restore a tree into fresh namespaces"}[dumping])
	}
	for _, j := range o.GetJoinNs() {
		refuse("join_ns %s=%s: cryo does not join given namespaces yet", j.GetNs(), j.GetNsFile())
	}
	for _, f := range o.GetInheritFd() {
		switch {
		case dumping:
			refuse("inherit_fd %s at %d: a restore option", f.GetKey(), f.GetFd())
		default:
			if req.InheritFds == nil {
				req.InheritFds = map[string]int{}
			}
			req.InheritFds[f.GetKey()] = int(f.GetFd())
		}
	}
	if o.GetRstSibling() {
		note("rst_sibling: the root is cryo's child until cryo exits, then the caller's if it is a child subreaper (runc restore is, unless --no-subreaper)")
	}
	if o.GetTcpSkipInFlight() {
		req.SkipInFlight = true
	}
	if o.GetTcpClose() {
		req.TCPClose = true
	}
	if o.GetLsmProfile() != "" || o.GetLsmMountContext() != "" {
		refuse("lsm_profile %q, lsm_mount_context %q: cryo does not set LSM labels (no AppArmor or SELinux here)", o.GetLsmProfile(), o.GetLsmMountContext())
	}
	if o.Ps != nil {
		refuse("ps: cryo has no page server")
	}
	// Incremental dumps, as cryo's --prev-images-dir and --track-mem.
	if p := o.GetParentImg(); p != "" {
		if dumping {
			req.ParentDir = p
		} else {
			note("parent_img %s: unused on restore, which follows the images' parent link", p)
		}
	}
	if o.GetTrackMem() {
		if dumping {
			req.TrackMem = true
		} else {
			note("track_mem: a dump option, unused on restore")
		}
	}
	if o.GetAutoDedup() {
		refuse("auto_dedup: cryo does not punch the parent's pages out of its images")
	}
	if o.GetLazyPages() {
		refuse("lazy_pages: cryo has no lazy restore")
	}
	if len(o.GetVeths()) > 0 {
		refuse("veths: cryo does not restore network namespaces yet")
	}
	if len(o.GetExecCmd()) > 0 {
		refuse("exec_cmd: not supported")
	}
	if o.GetForceIrmap() || len(o.GetIrmapScanPaths()) > 0 {
		refuse("force_irmap, irmap_scan_paths: cryo keeps no inotify path map")
	}
	if len(o.GetUnixSkIno()) > 0 {
		refuse("unix_sk_ino: external Unix sockets are given by ext_unix_sk only")
	}
	if o.GetAutoExtMnt() || o.GetExtSharing() || o.GetExtMasters() || len(o.GetSkipMnt()) > 0 || len(o.GetEnableFs()) > 0 || o.GetMntnsCompatMode() {
		refuse("auto_ext_mnt, ext_sharing, ext_masters, skip_mnt, enable_fs, mntns_compat_mode: cryo does not handle external or skipped mounts yet")
	}
	if o.GhostLimit != nil {
		refuse("ghost_limit %d: cryo's limit for unlinked files is fixed (64 MiB)", o.GetGhostLimit())
	}
	if o.GetTimeout() != 0 {
		refuse("timeout %d: cryo has no freezing timeout", o.GetTimeout())
	}
	if o.GetTls() || o.GetTlsCacert() != "" || o.GetTlsCacrl() != "" || o.GetTlsCert() != "" || o.GetTlsKey() != "" || o.GetTlsNoCnVerify() {
		refuse("tls: cryo has no page server")
	}
	if o.PidfdStoreSk != nil {
		refuse("pidfd_store_sk: cryo knows a tracked process by its pid and start time, it keeps no pidfd store")
	}
	if o.GetSkipFileRwxCheck() {
		refuse("skip_file_rwx_check: cryo always checks a file's access mode")
	}
	for _, n := range noted {
		s.logf("option %s", n)
	}
	if len(refused) > 0 {
		return req, fmt.Errorf("options cryo cannot honour: %s", strings.Join(refused, "; "))
	}
	return req, nil
}

// nsNames spells a CLONE_NEW* mask.
func nsNames(mask uint32) string {
	names := []struct {
		bit  uint32
		name string
	}{{unix.CLONE_NEWNET, "net"}, {unix.CLONE_NEWNS, "mnt"}, {unix.CLONE_NEWPID, "pid"}, {unix.CLONE_NEWUTS, "uts"},
		{unix.CLONE_NEWIPC, "ipc"}, {unix.CLONE_NEWUSER, "user"}, {unix.CLONE_NEWCGROUP, "cgroup"}, {unix.CLONE_NEWTIME, "time"}}
	var out []string
	for _, n := range names {
		if mask&n.bit != 0 {
			out = append(out, n.name)
			mask &^= n.bit
		}
	}
	if mask != 0 {
		out = append(out, fmt.Sprintf("%#x", mask))
	}
	return strings.Join(out, ",")
}
