// Package sysv reads and recreates the System V IPC objects (shared memory
// segments, semaphore sets, message queues) of a traced process's IPC
// namespace, by system calls injected into that process (package remote):
// cryo itself stays in its own namespaces.
package sysv

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"

	"github.com/cryo-cr/cryo/internal/remote"
)

// Object is one line of /proc/sysvipc/{shm,sem,msg}, ids as the reader's
// user namespace sees them.
type Object struct {
	Key        int32
	ID         int
	Mode       uint32
	UID, GID   uint32
	CUID, CGID uint32
	Size       uint64 // shm: bytes; sem: nsems; msg: bytes queued
	Count      uint64 // msg: number of messages
}

// List reads /proc/sysvipc/kind ("shm", "sem" or "msg") as p sees it: the
// objects of p's IPC namespace, ids as p's user namespace maps them.
func List(p remote.Proc, kind string) ([]Object, error) {
	b, err := p.ReadFile("/proc/sysvipc/" + kind)
	if err != nil {
		return nil, err
	}
	return parseList(kind, b)
}

// parseList parses a /proc/sysvipc table.
func parseList(kind string, b []byte) ([]Object, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() {
		return nil, nil
	}
	heads := bytes.Fields(sc.Bytes())
	var out []Object
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) != len(heads) {
			return nil, fmt.Errorf("/proc/sysvipc/%s: %d columns, heading has %d", kind, len(f), len(heads))
		}
		col := map[string]string{}
		for i, h := range heads {
			col[string(h)] = string(f[i])
		}
		num := func(name string, base int) uint64 {
			v, _ := strconv.ParseUint(col[name], base, 64)
			return v
		}
		key, _ := strconv.ParseInt(col["key"], 10, 64)
		o := Object{Key: int32(key), Mode: uint32(num("perms", 8)),
			UID: uint32(num("uid", 10)), GID: uint32(num("gid", 10)), CUID: uint32(num("cuid", 10)), CGID: uint32(num("cgid", 10))}
		switch kind {
		case "shm":
			o.ID, o.Size = int(num("shmid", 10)), num("size", 10)
		case "sem":
			o.ID, o.Size = int(num("semid", 10)), num("nsems", 10)
		case "msg":
			o.ID, o.Size, o.Count = int(num("msqid", 10)), num("cbytes", 10), num("qnum", 10)
		}
		out = append(out, o)
	}
	return out, nil
}
