// Package swrk serves CRIU's RPC ("criu swrk FD"), through which container
// engines (runc, crun, podman through runc, go-criu) drive a checkpoint: one
// go-criu/v7 rpc message per SOCK_SEQPACKET packet, VERSION, FEATURE_CHECK,
// CHECK, DUMP, RESTORE and the NOTIFY round trips of a dump or restore.
//
// The server translates each request's criu_opts into a Request and hands
// it to an Engine: cryo's own dump and restore today, its public API later.
// An option cryo cannot honour fails the request with a cr_errmsg naming
// it; every failure's cr_errmsg is the one line cryo's command line prints.
package swrk

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"github.com/cryo-cr/cryo/internal/memtrack"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// versionReply is what VERSION answers: runc refuses anything older than
// 3.15 (31500) for containers and crun asks for 3.15 too. No gitid, which
// callers round up to the next minor. Name says it is cryo.
func versionReply() *rpc.CriuVersion {
	return &rpc.CriuVersion{MajorNumber: proto.Int32(4), MinorNumber: proto.Int32(0), Sublevel: proto.Int32(0), Name: proto.String("cryo")}
}

// Serve answers requests on the SOCK_SEQPACKET socket fd until the caller
// closes its end, then returns nil. A request that fails is answered with
// success false and its error; Serve itself fails only when the socket
// does (the caller gone before a reply).
func Serve(fd int, eng Engine) error {
	c, err := newConn(fd)
	if err != nil {
		return err
	}
	defer unix.Close(c.fd)
	for {
		req, err := c.recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		s := &session{conn: c, eng: eng, logf: func(string, ...any) {}}
		resp := s.handle(req)
		s.close()
		if err := c.send(resp); err != nil {
			return err
		}
	}
}

// session is one request being served: what it opened and how it logs.
type session struct {
	conn *conn
	eng  Engine
	// files are the caller's descriptors opened for the request (images
	// and work directories, status_fd) and the log.
	files  []*os.File
	status *os.File // the caller's status_fd, if given
	// notifyScripts is criu_opts.notify_scripts: the caller wants the
	// NOTIFY round trips.
	notifyScripts bool
	// cgMode is the request's manage_cgroups mode (IGNORE when unset):
	// with any other, a dump saves the cgroups' limits; full and strict
	// restore or check them (cgprops.go).
	cgMode  rpc.CriuCgMode
	log     *log.Logger // the log file, if any
	verbose bool        // log_level 4 or more
	logf    func(format string, args ...any)
}

// close closes what the request opened.
func (s *session) close() {
	for _, f := range s.files {
		f.Close()
	}
	s.files = nil
}

// handle runs one request and returns its reply.
func (s *session) handle(req *rpc.CriuReq) *rpc.CriuResp {
	t := req.GetType()
	resp := &rpc.CriuResp{Type: t.Enum(), Success: proto.Bool(true)}
	var err error
	switch t {
	case rpc.CriuReqType_VERSION:
		resp.Version = versionReply()
	case rpc.CriuReqType_FEATURE_CHECK:
		// What cryo has, whatever was asked: write tracking when this
		// kernel has what it needs (memtrack.Probe: what PRE_DUMP and
		// track_mem use), no lazy pages, no pidfd store.
		resp.Features = &rpc.CriuFeatures{MemTrack: proto.Bool(memtrack.Probe() == nil), LazyPages: proto.Bool(false), PidfdStore: proto.Bool(false)}
	case rpc.CriuReqType_CHECK:
		err = s.check(req.GetOpts())
	case rpc.CriuReqType_DUMP:
		err = s.dump(req.GetOpts())
	case rpc.CriuReqType_RESTORE:
		var pid int
		if pid, err = s.restore(req.GetOpts()); err == nil {
			resp.Restore = &rpc.CriuRestoreResp{Pid: proto.Int32(int32(pid))}
		}
	case rpc.CriuReqType_PRE_DUMP, rpc.CriuReqType_SINGLE_PRE_DUMP:
		// CRIU's single pre-dump differs only in that CRIU ends its swrk
		// after it; here a keeper holds the tracking either way, and the
		// server waits for the next request (runc closes the socket).
		err = s.preDump(req.GetOpts())
	case rpc.CriuReqType_NOTIFY:
		// Typed EMPTY, as CRIU answers what it does not serve: a reply
		// typed NOTIFY would read as a notification to answer, and caller
		// and server would answer each other forever.
		resp.Type = rpc.CriuReqType_EMPTY.Enum()
		err = errors.New("NOTIFY answer received with no notification pending")
	default:
		resp.Type = rpc.CriuReqType_EMPTY.Enum()
		err = fmt.Errorf("request %s: not supported", t)
	}
	if err != nil {
		msg := "cryo: " + oneLine(err.Error())
		if s.log != nil {
			s.log.Printf("Error: %s", msg)
		}
		resp.Success = proto.Bool(false)
		resp.CrErrmsg = proto.String(msg)
		var errno syscall.Errno
		if errors.As(err, &errno) {
			resp.CrErrno = proto.Int32(int32(errno))
		}
	}
	return resp
}

// oneLine joins a message's lines, as cryo's command line prints them.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// openLog opens criu_opts.log_file in the work directory, as CRIU does
// (a bare name: "no subdirs are allowed"), and sets the verbosity from
// log_level.
func (s *session) openLog(workDir string, o *rpc.CriuOpts) error {
	s.verbose = o.GetLogLevel() >= 4
	name := o.GetLogFile()
	if name == "" {
		return nil
	}
	if strings.Contains(name, "/") || name == "." || name == ".." {
		return fmt.Errorf("log_file %q: a name in the work directory, without a directory, is needed", name)
	}
	f, err := os.OpenFile(filepath.Join(workDir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("log_file: %w", err)
	}
	s.files = append(s.files, f)
	s.log = log.New(f, "", log.Lmicroseconds)
	s.logf = func(format string, args ...any) {
		if s.verbose {
			s.log.Printf(format, args...)
		}
	}
	return nil
}

// check runs `cryo check`, its table going to the log.
func (s *session) check(o *rpc.CriuOpts) error {
	if o != nil {
		if _, err := s.translateLogOnly(o); err != nil {
			return err
		}
	}
	var w io.Writer = io.Discard
	if s.log != nil {
		w = s.log.Writer()
	}
	return s.eng.Check(w)
}

// translateLogOnly opens the work directory and log of a CHECK request,
// which names no images.
func (s *session) translateLogOnly(o *rpc.CriuOpts) (string, error) {
	if o.WorkDirFd == nil || o.GetWorkDirFd() < 0 {
		return "", nil
	}
	f, err := s.conn.peerFile("work_dir_fd", o.GetWorkDirFd(), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	s.files = append(s.files, f)
	dir, err := dirPath(f)
	if err != nil {
		return "", fmt.Errorf("work_dir_fd: %w", err)
	}
	return dir, s.openLog(dir, o)
}

// dump serves DUMP.
func (s *session) dump(o *rpc.CriuOpts) error {
	if o == nil {
		return errors.New("DUMP request without options")
	}
	r, err := s.translate(rpc.CriuReqType_DUMP, o)
	if err != nil {
		return err
	}
	r.Logf, r.Notify = s.logf, s.notify
	// Read while the tree runs, saved once the dump succeeded: it may be
	// gone by then.
	var cg *cgroup.CgroupEntry
	if s.cgMode != rpc.CriuCgMode_IGNORE {
		if cg, err = readCgroupProps(r.Pid); err != nil {
			return fmt.Errorf("dump %d: %w", r.Pid, err)
		}
	}
	if err := s.eng.Dump(r); err != nil {
		return err
	}
	if cg != nil {
		if err := writeCgroupImage(r.ImagesDir, cg); err != nil {
			return fmt.Errorf("dump %d: %w", r.Pid, err)
		}
	}
	s.copyStats(r, "stats-dump")
	return nil
}

// preDump serves PRE_DUMP: cryo pre-dump with the request's options.
func (s *session) preDump(o *rpc.CriuOpts) error {
	if o == nil {
		return errors.New("PRE_DUMP request without options")
	}
	r, err := s.translate(rpc.CriuReqType_PRE_DUMP, o)
	if err != nil {
		return err
	}
	r.PreDump = true
	r.Logf, r.Notify = s.logf, s.notify
	if err := s.eng.Dump(r); err != nil {
		return err
	}
	s.copyStats(r, "stats-dump")
	return nil
}

// restore serves RESTORE and returns the root's pid.
func (s *session) restore(o *rpc.CriuOpts) (int, error) {
	if o == nil {
		return 0, errors.New("RESTORE request without options")
	}
	r, err := s.translate(rpc.CriuReqType_RESTORE, o)
	if err != nil {
		return 0, err
	}
	r.Logf, r.Notify = s.logf, s.notify
	if s.cgMode == rpc.CriuCgMode_FULL || s.cgMode == rpc.CriuCgMode_STRICT {
		did, err := restoreCgroupProps(r.ImagesDir, s.cgMode)
		if err != nil {
			return 0, fmt.Errorf("restore: %w", err)
		}
		s.logf("%s", did)
	}
	if r.OrphanPts {
		r.OrphanPtsMaster = s.sendPtsMaster
	}
	pid, err := s.eng.Restore(r)
	if err != nil {
		return 0, err
	}
	s.copyStats(r, "stats-restore")
	if s.status != nil {
		// The tree runs: one zero byte, as CRIU writes, then closed.
		if _, err := s.status.Write([]byte{0}); err != nil {
			s.logf("status_fd: %v", err)
		}
	}
	return pid, nil
}

// copyStats puts a statistics image into the work directory too, where
// podman --print-stats reads it, when it is not the images directory.
func (s *session) copyStats(r Request, name string) {
	if r.WorkDir == r.ImagesDir {
		return
	}
	b, err := os.ReadFile(filepath.Join(r.ImagesDir, name))
	if err == nil {
		err = os.WriteFile(filepath.Join(r.WorkDir, name), b, 0o600)
	}
	if err != nil {
		s.logf("statistics %s not copied to the work directory: %v", name, err)
	}
}

// notify is the dump's and restore's Notify hook. A caller that closed the
// socket fails it, so that a dump whose caller went away leaves the tree
// running. With notify_scripts, each event is a round trip: a NOTIFY
// response naming it, answered by a NOTIFY request with notify_success.
func (s *session) notify(event string, pid int) error {
	if s.conn.gone() {
		return errors.New("the caller closed the RPC socket")
	}
	if !s.notifyScripts {
		return nil
	}
	s.logf("notify %s (pid %d)", event, pid)
	n := &rpc.CriuNotify{Script: proto.String(event)}
	if pid != 0 {
		n.Pid = proto.Int32(int32(pid))
	}
	resp := &rpc.CriuResp{Type: rpc.CriuReqType_NOTIFY.Enum(), Success: proto.Bool(true), Notify: n}
	if err := s.conn.send(resp); err != nil {
		return err
	}
	ans, err := s.conn.recv()
	if err == io.EOF {
		return errors.New("the caller closed the RPC socket")
	}
	if err != nil {
		return err
	}
	if ans.GetType() != rpc.CriuReqType_NOTIFY {
		return fmt.Errorf("the caller answered with a %s request", ans.GetType())
	}
	if !ans.GetNotifySuccess() {
		return errors.New("the caller's handler failed")
	}
	return nil
}

// sendPtsMaster sends the master of an orphan pty made by the restore to
// the caller, with SCM_RIGHTS on an orphan-pts-master NOTIFY (runc passes
// it on to --console-socket), and waits for the answer. It is sent
// whatever notify_scripts says: asking for orphan_pts_master asks for it.
func (s *session) sendPtsMaster(master *os.File) error {
	defer master.Close()
	s.logf("notify orphan-pts-master")
	resp := &rpc.CriuResp{Type: rpc.CriuReqType_NOTIFY.Enum(), Success: proto.Bool(true),
		Notify: &rpc.CriuNotify{Script: proto.String("orphan-pts-master")}}
	if err := s.conn.send(resp, int(master.Fd())); err != nil {
		return fmt.Errorf("orphan-pts-master: %w", err)
	}
	ans, err := s.conn.recv()
	switch {
	case err == io.EOF:
		return errors.New("orphan-pts-master: the caller closed the RPC socket")
	case err != nil:
		return fmt.Errorf("orphan-pts-master: %w", err)
	case ans.GetType() != rpc.CriuReqType_NOTIFY:
		return fmt.Errorf("orphan-pts-master: the caller answered with a %s request", ans.GetType())
	case !ans.GetNotifySuccess():
		return errors.New("orphan-pts-master: the caller's handler failed")
	}
	return nil
}
